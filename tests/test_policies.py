"""Policy as code: validation with file/line/key, deterministic layering, AMAPI compilation."""

from __future__ import annotations

import json
import random
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdm.policies import compile as compiler
from mdm.policies.layering import Subject, merge
from mdm.policies.loader import Layer, load_tree

SHIPPED = Path(__file__).resolve().parent.parent / "playbooks" / "policies"
TODAY = date(2026, 1, 1)
TARGET = compiler.Target("LC04mdmtest", {"pilot": {"*": "4697000000000000001"}})


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "policies"
    shutil.copytree(SHIPPED, folder)
    monkeypatch.setenv("MDM_POLICIES", str(folder))
    return folder


@pytest.fixture
def people(mdm: Any, inventory: dict[str, Any]) -> list[dict[str, Any]]:
    roster = inventory["roster"]
    mdm("groups", "create", "pilot")
    mdm("groups", "add", "pilot", *[p["officer_id"] for p in roster[:5]])
    return roster


SUBJECTS = [Subject(worker_type=w, rank=r, area=a, station=s, groups=frozenset(g))
            for w, r in (("OFFICER", "CONSTABLE"), ("OFFICER", "INSPECTOR"),
                         ("OFFICER", "CHIEF_CONSTABLE"), ("PCSO", None), ("SPECIAL", None),
                         ("STAFF", None), (None, None))
            for a, s in (("NORTH", "Carlisle"), ("HQ", "Carleton Hall"))
            for g in ((), ("pilot",))]


def test_every_shipped_layer_loads_and_every_subject_compiles_cleanly() -> None:
    layers, problems = load_tree(SHIPPED)
    assert problems == [] and len(layers) >= 8
    for subject in SUBJECTS:
        effective = merge(layers, subject, TODAY)
        assert effective.conflicts == []
        doc = compiler.compile_policy(effective, TARGET).document
        assert not compiler.field_names(doc) & set(compiler.DEPRECATED), subject
        assert doc["passwordPolicies"][0]["passwordMinimumLength"] >= 6
        assert doc["passwordPolicies"][0]["maximumFailedPasswordsForWipe"] <= 10
        if subject.worker_type in ("OFFICER", "PCSO", "SPECIAL"):
            assert int(doc["maximumTimeToLock"]) <= 120_000


def test_the_baseline_compiles_to_current_amapi_fields() -> None:
    layers, _ = load_tree(SHIPPED)
    doc = compiler.compile_policy(merge(layers, SUBJECTS[0], TODAY), TARGET).document
    for name in ("passwordPolicies", "maximumTimeToLock", "encryptionPolicy",
                 "advancedSecurityOverrides", "cameraAccess", "screenCaptureDisabled",
                 "deviceConnectivityManagement", "alwaysOnVpnPackage", "applications",
                 "systemUpdate", "minimumApiLevel", "factoryResetDisabled",
                 "keyguardDisabledFeatures", "autoDateAndTimeZone", "locationMode",
                 "policyEnforcementRules", "statusReportingSettings", "playStoreMode"):
        assert name in doc, name
    assert doc["advancedSecurityOverrides"] == {"developerSettings": "DEVELOPER_SETTINGS_DISABLED",
                                                "untrustedAppsPolicy": "DISALLOW_INSTALL"}
    assert doc["alwaysOnVpnPackage"] == {"packageName": "uk.police.cumbria.vpn",
                                         "lockdownEnabled": True}
    assert doc["systemUpdate"] == {"type": "WINDOWED", "startMinutes": 120, "endMinutes": 240}
    apps = {a["packageName"]: a for a in doc["applications"]}
    assert apps["uk.police.cumbria.enotebook"]["installType"] == "FORCE_INSTALLED"
    rule = doc["policyEnforcementRules"][0]
    assert "blockAction" in rule and "wipeAction" in rule


def test_role_variations_apply() -> None:
    layers, _ = load_tree(SHIPPED)

    def apps(subject: Subject) -> dict[str, Any]:
        return {a["packageName"]: a for a in compiler.compile_policy(
            merge(layers, subject, TODAY), TARGET).document["applications"]}

    pcso = apps(Subject(worker_type="PCSO"))
    assert pcso["uk.police.cumbria.custody"]["installType"] == "BLOCKED"
    staff = apps(Subject(worker_type="STAFF"))
    assert "uk.police.cumbria.enotebook" not in staff
    pilot = apps(Subject(worker_type="OFFICER", rank="CONSTABLE", groups=frozenset({"pilot"})))
    assert pilot["uk.police.cumbria.enotebook"]["accessibleTrackIds"] == ["4697000000000000001"]
    special = merge(layers, Subject(worker_type="SPECIAL"), TODAY)
    assert special.settings["compliance.max_offline_days"] == 30
    assert special.sources["compliance.max_offline_days"] == "special-constabulary"


layer_settings = st.fixed_dictionaries({}, optional={
    "lock.auto_lock_seconds": st.sampled_from([60, 120, 300]),
    "password.min_length": st.sampled_from([6, 8]),
    "camera": st.sampled_from(["allowed", "disabled"]),
    "encryption": st.sampled_from(["required", "not_required"])})
kinds = st.sampled_from(["baseline", "worker_type", "area", "station", "group", "device"])


@st.composite
def layer_lists(draw: Any) -> list[Layer]:
    out = []
    for i in range(draw(st.integers(1, 6))):
        kind = draw(kinds)
        match = () if kind == "baseline" else (draw(st.sampled_from(
            ["PCSO", "NORTH", "Kendal", "pilot", "SER1"])),)
        apps = draw(st.dictionaries(st.sampled_from(["a.b", "c.d"]), st.one_of(
            st.none(), st.builds(lambda t: {"type": t}, st.sampled_from(["required",
                                                                        "blocked"])))))
        values = draw(layer_settings) | ({"apps.install": apps} if apps else {})
        out.append(Layer(f"l{i}", kind, f"f{i}.yaml", match, settings=values))
    return out


subjects = st.builds(Subject, st.sampled_from([None, "SER1"]), st.none(),
                     st.sampled_from([None, "PCSO"]), st.none(),
                     st.sampled_from([None, "NORTH"]), st.sampled_from([None, "Kendal"]),
                     st.sampled_from([frozenset(), frozenset({"pilot"})]))


@settings(max_examples=200)
@given(layer_lists(), subjects, st.randoms())
def test_merging_is_deterministic_whatever_the_file_order(layers: list[Layer],
                                                         subject: Subject,
                                                         rnd: random.Random) -> None:
    first = merge(layers, subject, TODAY)
    shuffled = list(layers)
    rnd.shuffle(shuffled)
    again = merge(shuffled, subject, TODAY)
    assert (again.settings, again.sources, again.layers) == (first.settings, first.sources,
                                                             first.layers)


@settings(max_examples=200)
@given(layer_lists(), subjects, st.data())
def test_applying_a_layer_twice_changes_nothing(layers: list[Layer], subject: Subject,
                                                data: st.DataObject) -> None:
    once = merge(layers, subject, TODAY)
    twice = merge(layers + [data.draw(st.sampled_from(layers))], subject, TODAY)
    assert twice.settings == once.settings
    assert compiler.compile_policy(twice, TARGET).sha256 == \
        compiler.compile_policy(once, TARGET).sha256


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


@pytest.mark.backends
def test_bad_values_are_named_by_file_line_and_key(mdm: Any, people: Any, tree: Path) -> None:
    base = (tree / "00-baseline.yaml").read_text()
    _write(tree, "00-baseline.yaml", base.replace("min_length: 6", "min_length: 3")
           .replace("auto_lock_seconds: 120", "auto_lock_seconds: 1800")
           .replace("encryption: required", "encrypton: required")
           .replace("screen_capture: false", "screen_capture: 'no'"))
    err = mdm("policy", "validate", code=2).stderr
    lines = base.splitlines()

    def line_of(text: str) -> int:
        return next(i for i, line in enumerate(lines, 1) if text in line)

    assert f"00-baseline.yaml, line {line_of('min_length')}, password.min_length: 3 is below" \
           " the minimum of 6" in err
    assert f"line {line_of('auto_lock_seconds')}, lock.auto_lock_seconds: 1800 is above" in err
    assert "encrypton: is not a policy setting — did you mean 'encryption'?" in err
    assert "screen_capture: must be true or false, not str" in err


@pytest.mark.backends
def test_front_line_lock_conflicts_and_unmatched_selectors(mdm: Any, people: Any,
                                                          tree: Path) -> None:
    _write(tree, "50-pcso-lock.yaml", "layer: pcso-lock\nkind: worker_type\nmatch: [PCSO]\n"
                                      "settings:\n  lock:\n    auto_lock_seconds: 240\n")
    _write(tree, "51-camera.yaml", "layer: camera-off\nkind: worker_type\n"
                                   "match: [PCSO, SPECIAL]\nsettings:\n  camera: disabled\n")
    _write(tree, "52-camera.yaml", "layer: camera-on\nkind: worker_type\n"
                                   "match: [SPECIAL]\nsettings:\n  camera: enforced\n")
    _write(tree, "60-kendall.yaml", "layer: kendall\nkind: station\nmatch: [Kendall]\n"
                                    "settings:\n  camera: disabled\n")
    err = mdm("policy", "validate", code=2).stderr
    assert "52-camera.yaml, line 5, camera: conflicts with layer 'camera-off'" in err
    assert "gives front-line staff (PCSO) a 240 s lock" in err
    assert "60-kendall.yaml, line 3, match: station 'Kendall' matches no serving officer" in err


@pytest.mark.backends
def test_unsafe_yaml_is_refused(mdm: Any, people: Any, tree: Path, tmp_path: Path) -> None:
    canary = tmp_path / "pwned"
    _write(tree, "70-evil.yaml", "layer: evil\nkind: baseline\nsettings: !!python/object/apply"
                                 f":os.system ['touch {canary}']\n")
    assert "is not valid YAML" in mdm("policy", "validate", code=2).stderr
    assert not canary.exists()
    (tree / "70-evil.yaml").unlink()
    _write(tree, "71-bomb.yaml", "layer: bomb\nkind: area\nmatch: [NORTH]\nx: &a [1, 1]\n"
                                 "y: &b [*a, *a]\nsettings: {camera: allowed}\n")
    assert "71-bomb.yaml, line 4: uses a YAML anchor or alias" in mdm(
        "policy", "validate", code=2).stderr


@pytest.mark.backends
def test_device_exceptions_need_a_reason_and_an_expiry(mdm: Any, people: Any, tree: Path,
                                                       inventory: Any) -> None:
    serial = inventory["delivery"][0]["serial_number"]
    _write(tree, "90-exception.yaml", f"layer: camera-fault\nkind: device\nmatch: [{serial}]\n"
                                      "settings:\n  camera: disabled\n")
    err = mdm("policy", "validate", code=2).stderr
    assert "needs a reason" in err and "needs an expiry date" in err
    _write(tree, "90-exception.yaml", f"layer: camera-fault\nkind: device\nmatch: [{serial}]\n"
                                      "reason: faulty\nexpires: '2099-01-31'\nsettings:\n"
                                      "  camera: disabled\n")
    quoted = json.loads(mdm("policy", "validate", "--json", code=2).stderr)["problems"]
    assert [(p["message"], p["hint"]) for p in quoted] == [
        ("'2099-01-31' is in quotes, so it is text, not a date",
         "write it without quotes: 2099-01-31")]
    _write(tree, "90-exception.yaml", f"layer: camera-fault\nkind: device\nmatch: [{serial}]\n"
                                      "reason: camera module faulty, awaiting repair\n"
                                      "expires: 2099-01-31\nsettings:\n  camera: disabled\n")
    mdm("policy", "validate")
    shown = mdm.json("policy", "show", "--device", serial)
    camera = next(s for s in shown["settings"] if s["setting"] == "camera")
    assert (camera["value"], camera["layer"]) == ("disabled", "camera-fault")
    _write(tree, "90-exception.yaml", f"layer: camera-fault\nkind: device\nmatch: [{serial}]\n"
                                      "reason: old\nexpires: 2015-01-31\nsettings:\n"
                                      "  camera: disabled\n")
    result = mdm.json("policy", "validate")
    assert "expired" in result["warnings"][0]["message"]
    camera = next(s for s in mdm.json("policy", "show", "--device", serial)["settings"]
                  if s["setting"] == "camera")
    assert camera["layer"] == "force-baseline"


@pytest.mark.backends
def test_show_for_an_officer_names_each_settings_layer(mdm: Any, people: Any, tree: Path) -> None:
    pcso = next(p for p in people if p["worker_type"] == "PCSO")
    shown = mdm.json("policy", "show", "--officer", pcso["officer_id"])
    by_key = {s["setting"]: s for s in shown["settings"]}
    assert by_key["apps.install.uk.police.cumbria.custody"]["layer"] == "pcso"
    assert by_key["password.min_length"]["layer"] == "force-baseline"
    assert shown["layers"][0] == "force-baseline"


def test_validate_matches_group_names_in_any_case_and_names_a_serial_in_another_case(
        mdm: Any, people: Any, tree: Path, inventory: Any) -> None:
    """A group layer applies to a group in any case, so validate does not call it empty; a
    device layer matches a serial exactly, so validate says how the inventory spells it."""
    (tree / "40-pilot.yaml").write_text((tree / "40-pilot.yaml").read_text()
                                        .replace("match: [pilot]", "match: [PILOT]"))
    assert mdm.json("policy", "validate")["warnings"] == []
    serial = inventory["delivery"][0]["serial_number"]
    _write(tree, "90-exception.yaml", f"layer: camera-fault\nkind: device\n"
                                      f"match: [{serial.lower()}]\nreason: faulty\n"
                                      "expires: 2099-01-31\nsettings:\n  camera: disabled\n")
    problems = json.loads(mdm("policy", "validate", "--json", code=2).stderr)["problems"]
    assert [p["hint"] for p in problems] == [f"write it as {serial}"]
    assert problems[0]["message"].startswith(f"device {serial.lower()!r} is {serial!r} in"
                                             " the inventory, and a layer matches serials")
