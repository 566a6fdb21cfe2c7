"""The compiled policy is what Google's API accepts; the shipped tree fits a 2015 Note 4."""

from __future__ import annotations

import json
import re
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from mdm import examples
from mdm.cli import app
from mdm.policies import compile as compiler
from mdm.policies.layering import Subject, merge
from mdm.policies.loader import load_tree
from tests.conftest import ENTERPRISE_ID, PILOT_TRACK
from tests.helpers import rows

SHIPPED = Path(__file__).resolve().parent.parent / "playbooks" / "policies"
TARGET = compiler.Target(ENTERPRISE_ID, {"pilot": {"*": PILOT_TRACK}})
POLICY_NAME = re.compile(r"^enterprises/[A-Za-z0-9_-]+/policies/[A-Za-z0-9_.-]+$")

# The Android Management API's Policy resource (v1): the fields mdm emits, and the values
# their enums allow. A field or value outside these is one Google's API would refuse.
POLICY_FIELDS = {
    "name", "passwordPolicies", "maximumTimeToLock", "keyguardDisabledFeatures",
    "deviceOwnerLockScreenInfo", "encryptionPolicy", "advancedSecurityOverrides",
    "deviceConnectivityManagement", "screenCaptureDisabled", "cameraAccess",
    "factoryResetDisabled", "autoDateAndTimeZone", "locationMode", "alwaysOnVpnPackage",
    "applications", "playStoreMode", "systemUpdate", "minimumApiLevel",
    "policyEnforcementRules", "statusReportingSettings"}
ENUMS = {
    "passwordQuality": {"NUMERIC", "NUMERIC_COMPLEX", "ALPHABETIC", "ALPHANUMERIC",
                        "COMPLEX", "COMPLEXITY_LOW", "COMPLEXITY_MEDIUM", "COMPLEXITY_HIGH"},
    "passwordScope": {"SCOPE_DEVICE", "SCOPE_PROFILE"},
    "requirePasswordUnlock": {"USE_DEFAULT_DEVICE_TIMEOUT", "REQUIRE_EVERY_DAY"},
    "encryptionPolicy": {"ENABLED_WITHOUT_PASSWORD", "ENABLED_WITH_PASSWORD"},
    "developerSettings": {"DEVELOPER_SETTINGS_DISABLED", "DEVELOPER_SETTINGS_ALLOWED"},
    "untrustedAppsPolicy": {"DISALLOW_INSTALL", "ALLOW_INSTALL_IN_PERSONAL_PROFILE_ONLY",
                            "ALLOW_INSTALL_DEVICE_WIDE"},
    "usbDataAccess": {"ALLOW_USB_DATA_TRANSFER", "DISALLOW_USB_FILE_TRANSFER",
                      "DISALLOW_USB_DATA_TRANSFER"},
    "cameraAccess": {"CAMERA_ACCESS_USER_CHOICE", "CAMERA_ACCESS_DISABLED",
                     "CAMERA_ACCESS_ENFORCED"},
    "autoDateAndTimeZone": {"AUTO_DATE_AND_TIME_ZONE_USER_CHOICE",
                            "AUTO_DATE_AND_TIME_ZONE_ENFORCED"},
    "locationMode": {"LOCATION_USER_CHOICE", "LOCATION_ENFORCED", "LOCATION_DISABLED"},
    "installType": {"PREINSTALLED", "FORCE_INSTALLED", "BLOCKED", "AVAILABLE",
                    "REQUIRED_FOR_SETUP", "CUSTOM"},
    "playStoreMode": {"WHITELIST", "BLACKLIST"},
    "type": {"AUTOMATIC", "WINDOWED", "POSTPONE"},
    "keyguardDisabledFeatures": {"CAMERA", "NOTIFICATIONS", "UNREDACTED_NOTIFICATIONS",
                                 "TRUST_AGENTS", "DISABLE_FINGERPRINT", "FACE", "IRIS",
                                 "BIOMETRICS", "SHORTCUTS", "ALL_FEATURES"},
}
SUBJECTS = [Subject(worker_type=w, rank=r, area=a, groups=frozenset(g))
            for w, r in (("OFFICER", "CONSTABLE"), ("OFFICER", "INSPECTOR"),
                         ("OFFICER", "CHIEF_CONSTABLE"), ("PCSO", None), ("SPECIAL", None),
                         ("STAFF", None), (None, None))
            for a in ("NORTH", "HQ") for g in ((), ("pilot",))]


def _enums(doc: Any, path: str = "") -> list[str]:
    """Return every enum value in a document that the API does not know."""
    bad = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key in ENUMS:
                for v in value if isinstance(value, list) else [value]:
                    if v not in ENUMS[key]:
                        bad.append(f"{path}{key}={v}")
            bad += _enums(value, f"{path}{key}.")
    elif isinstance(doc, list):
        for item in doc:
            bad += _enums(item, path)
    return bad


def test_every_compiled_policy_uses_only_fields_and_values_of_the_api() -> None:
    layers, _ = load_tree(SHIPPED)
    names = set()
    for subject in SUBJECTS:
        doc = compiler.compile_policy(merge(layers, subject, date(2015, 4, 27)), TARGET).document
        assert set(doc) <= POLICY_FIELDS, set(doc) - POLICY_FIELDS
        assert _enums(doc) == []
        assert POLICY_NAME.match(doc["name"]), doc["name"]
        assert isinstance(doc["maximumTimeToLock"], str)  # int64 travels as a string
        for rule in doc["policyEnforcementRules"]:
            assert rule["blockAction"]["blockAfterDays"] < rule["wipeAction"]["wipeAfterDays"]
        for application in doc["applications"]:
            assert set(application.get("accessibleTrackIds", [PILOT_TRACK])) == {PILOT_TRACK}
        names.add(doc["name"])
    assert f"enterprises/{ENTERPRISE_ID}/policies/force-baseline.pcso.pilot" in names
    assert f"enterprises/{ENTERPRISE_ID}/policies/force-baseline" in names


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "policies"
    shutil.copytree(SHIPPED, folder)
    monkeypatch.setenv("MDM_POLICIES", str(folder))
    return folder


def _pick(roster: list[dict[str, Any]], kind: str, area_not: str = "HQ") -> dict[str, Any]:
    return next(p for p in roster if p["worker_type"] == kind and p["status"] == "ACTIVE"
                and p["area"] != area_not and p["rank"] in ("", "CONSTABLE"))


def _compile(mdm: Any, officer: dict[str, Any], code: int = 0) -> Any:
    result = mdm("policy", "compile", "--officer", officer["officer_id"], code=code)
    return json.loads(result.stdout) if code == 0 else result.stderr


@pytest.mark.backends
def test_the_name_and_track_ids_come_from_the_settings(mdm: Any, inventory: Any,
                                                       tree: Path) -> None:
    constable, pcso = _pick(inventory["roster"], "OFFICER"), _pick(inventory["roster"], "PCSO")
    mdm("groups", "create", "pilot")
    mdm("groups", "add", "pilot", constable["officer_id"])
    doc = _compile(mdm, constable)
    assert doc["name"] == f"enterprises/{ENTERPRISE_ID}/policies/force-baseline.pilot"
    tracks = {a["packageName"]: a.get("accessibleTrackIds") for a in doc["applications"]}
    assert tracks["uk.police.cumbria.enotebook"] == tracks["uk.police.cumbria.custody"] == [
        PILOT_TRACK]
    assert tracks["uk.police.cumbria.vpn"] is None
    doc = _compile(mdm, pcso)
    assert doc["name"] == f"enterprises/{ENTERPRISE_ID}/policies/force-baseline.pcso"
    assert not [a for a in doc["applications"] if "accessibleTrackIds" in a]


@pytest.mark.backends
def test_a_missing_track_id_or_enterprise_id_stops_compile_and_push_but_not_validate(
        mdm: Any, inventory: Any, tree: Path, tmp_path: Path) -> None:
    constable, pcso = _pick(inventory["roster"], "OFFICER"), _pick(inventory["roster"], "PCSO")
    mdm("groups", "create", "pilot")
    mdm("groups", "add", "pilot", constable["officer_id"])
    project = tmp_path / "mdm.toml"
    project.write_text(f'[policy]\nenterprise_id = "{ENTERPRISE_ID}"\n')
    err = _compile(mdm, constable, code=2)
    assert "channel 'pilot' has no Google Play track id" in err
    assert "40-pilot.yaml, line" in err and "under [policy.tracks] in" in err
    assert _compile(mdm, pcso)["name"].endswith("/policies/force-baseline.pcso")
    assert "channel 'pilot'" in mdm("policy", "push", "--check", code=2).stderr
    warnings = mdm.json("policy", "validate")["warnings"]
    assert any("channel 'pilot' has no Google Play track id" in w["message"] for w in warnings)

    project.write_text(f'[policy.tracks]\npilot = "{PILOT_TRACK}"\n')
    err = _compile(mdm, pcso, code=2)
    assert "no Android Management API enterprise id" in err and "MDM_ENTERPRISE_ID" in err
    assert "enterprise id" in mdm("policy", "push", "--check", code=2).stderr
    assert "enterprise id" in mdm("policy", "show", "--officer", pcso["officer_id"],
                                  code=2).stderr
    warnings = mdm.json("policy", "validate")["warnings"]
    assert [w["field"] for w in warnings if "enterprise id" in w["message"]] == [
        "policy.enterprise_id"]


@pytest.mark.backends
def test_block_after_days_must_be_less_than_wipe_after_days(mdm: Any, inventory: Any,
                                                            tree: Path) -> None:
    base = tree / "00-baseline.yaml"
    text = base.read_text()
    base.write_text(text.replace("block_after_days: 0", "block_after_days: 20")
                    .replace("wipe_after_days: 14", "wipe_after_days: 5"))
    line = next(n for n, s in enumerate(base.read_text().splitlines(), 1)
                if "block_after_days" in s)
    err = mdm("policy", "validate", code=2).stderr
    assert f"{base}, line {line}, compliance.block_after_days: blocks after 20 days but" \
           " wipes after 5" in err
    assert "must be less than wipe_after_days" in err
    assert "blocks after 20 days" in _compile(mdm, _pick(inventory["roster"], "PCSO"), code=2)
    base.write_text(text.replace("wipe_after_days: 14", "wipe_after_days: 1")
                    .replace("block_after_days: 0", "block_after_days: 1"))
    assert "blocks after 1 days but wipes after 1" in mdm("policy", "validate", code=2).stderr


def _pretend_enrolled(db_path: Path) -> None:
    rows(db_path, "UPDATE devices SET status = 'enrolled'")


@pytest.mark.backends
def test_a_fresh_inventory_validates_and_plans_a_push_without_a_pilot_group(
        mdm: Any, inventory: Any, tree: Path, db_path: Path) -> None:
    result = mdm.json("policy", "validate")
    assert [w["message"] for w in result["warnings"] if w["field"] == "match"] == [
        "group 'pilot' has no members: layer 'pilot' applies to no one yet"]
    assert result["warnings"][0]["hint"] == "create it with mdm groups create"
    _pretend_enrolled(db_path)  # --check contacts no device; it needs devices to plan for
    mdm("policy", "push", "--check")
    mdm("groups", "create", "pilot")
    warning = mdm.json("policy", "validate")["warnings"][0]
    assert warning["hint"] == "add members with mdm groups add"
    mdm("policy", "push", "--check")


def test_the_shipped_policy_and_examples_fit_what_a_2015_note_4_could_run() -> None:
    from mdm.lab.lab import _factory_props

    layers, _ = load_tree(SHIPPED)
    baseline = next(layer for layer in layers if layer.kind == "baseline")
    minimum = baseline.settings["updates.minimum_api_level"]
    marshmallow = 23  # Android 6.0, released in October 2015, after the rollout
    assert examples.NOTE4_SHIPPED.sdk < minimum <= examples.NOTE4_2015.sdk < marshmallow
    delivery = examples.generate_manifest(3)
    assert {r["os_version"] for r in delivery} == {examples.NOTE4_SHIPPED.release}
    lab = _factory_props("R58F4TEST01", "2015-11-01")
    assert (lab["ro.build.version.release"], lab["ro.build.version.sdk"]) == (
        examples.NOTE4_2015.release, str(examples.NOTE4_2015.sdk))


@pytest.mark.backends
@pytest.mark.lab
def test_compliance_asks_for_an_os_update_before_handover(mdm: Any, enrolled: Any,
                                                          tree: Path) -> None:
    old, current = enrolled(2)
    mdm("policy", "push")
    props = old.path / "props"
    props.write_text(props.read_text()
                     .replace(f"ro.build.version.sdk={examples.NOTE4_2015.sdk}",
                              f"ro.build.version.sdk={examples.NOTE4_SHIPPED.sdk}")
                     .replace(f"ro.build.version.release={examples.NOTE4_2015.release}",
                              f"ro.build.version.release={examples.NOTE4_SHIPPED.release}"))
    mdm("devices", "refresh")
    result = mdm.runner.invoke(app, ["compliance", "report", "--json"])
    assert result.exit_code in (0, 1), result.output  # 1: a device is not compliant
    reasons = {d["serial"]: {r["code"]: r["detail"] for r in d["reasons"]}
               for d in json.loads(result.stdout)["devices"]}
    assert reasons[old.serial]["os_too_old"] == \
        "Android API 19 is below the minimum 21: update the OS before handover"
    assert "os_too_old" not in reasons[current.serial]
