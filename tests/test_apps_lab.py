"""App builds against real sshd devices and real APKs: released, installed, proven, rolled back."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import db_fingerprint, rows

pytestmark = [pytest.mark.lab, pytest.mark.backends]
ENOTEBOOK = "uk.police.cumbria.enotebook"


@pytest.fixture
def fleet(mdm: Any, lab: Any, enrolled: Any, inventory: Any,
          apks: dict[str, Path]) -> dict[str, Any]:
    """Four enrolled lab devices held by officers, two of them in the pilot group."""
    devices = enrolled(4)
    people = [p for p in inventory["roster"] if p["worker_type"] == "OFFICER"
              and p["status"] == "ACTIVE" and not p.get("rank", "").upper().startswith(
                  ("SUPER", "CHIEF", "ASSISTANT", "DEPUTY", "INSPECTOR"))][:4]
    mdm("groups", "create", "pilot")
    mdm("groups", "add", "pilot", people[2]["officer_id"], people[3]["officer_id"])
    for device, person in zip(devices, people, strict=True):
        mdm("assign", device.serial, person["officer_id"])
    for name in ("enotebook-10500", "enotebook-10600"):
        mdm("apps", "add", apks[name])
    return {"stable": devices[:2], "pilot": devices[2:], "all": devices}


def _version(device: Any, package: str = ENOTEBOOK) -> int | None:
    for line in (device.path / "packages").read_text().splitlines():
        name, code, *_ = line.split()
        if name == package:
            return int(code)
    return None


def _installs(device: Any) -> int:
    return (device.path / "log" / "events").read_text().count("pm install")


def test_pilot_first_then_stable_then_a_rollback_and_the_audit_log_tells_it(
        mdm: Any, fleet: dict[str, Any], db_path: Path) -> None:
    stable, pilot = fleet["stable"], fleet["pilot"]
    mdm("apps", "release", ENOTEBOOK, "10500", "--channel", "stable")
    first = mdm.json("apps", "push")
    assert first["changed"] == 4 and [_version(d) for d in fleet["all"]] == [10500] * 4
    assert all(not list((d.path / "mdm-staging").iterdir()) for d in fleet["all"])

    plan = mdm.json("apps", "release", ENOTEBOOK, "10600", "--channel", "pilot", "--check")
    assert {d["serial"] for d in plan["devices"]} == {d.serial for d in pilot}
    mdm("apps", "release", ENOTEBOOK, "10600", "--channel", "pilot")
    second = mdm.json("apps", "push")
    assert {d["serial"] for d in second["done"]} == {d.serial for d in pilot}
    assert set(second["unchanged"]) == {d.serial for d in stable}
    assert [_version(d) for d in stable + pilot] == [10500, 10500, 10600, 10600]

    installs = [_installs(d) for d in fleet["all"]]
    again = mdm.json("apps", "push")
    assert again["changed"] == 0 and len(again["unchanged"]) == 4
    assert [_installs(d) for d in fleet["all"]] == installs

    mdm("apps", "release", ENOTEBOOK, "10600", "--channel", "stable")
    widened = mdm.json("apps", "push")
    assert {d["serial"] for d in widened["done"]} == {d.serial for d in stable}
    assert [_version(d) for d in fleet["all"]] == [10600] * 4
    status = mdm.json("apps", "status", ENOTEBOOK, "--by", "channel")
    assert status["on_release"] == 4 and status["off_release"] == 0

    back = mdm.json("apps", "rollback", ENOTEBOOK, "--channel", "stable", "--reason",
                    "1.6.0 loses drafts on lock")
    assert (back["from"], back["to"]) == (10600, 10500)
    assert {d["serial"] for d in back["done"]} == {d.serial for d in stable}
    assert [_version(d) for d in stable + pilot] == [10500, 10500, 10600, 10600]
    assert "-d" in (stable[0].path / "log" / "commands").read_text().split("pm install")[-1]
    story = rows(db_path, "SELECT action, subject, after FROM audit WHERE action LIKE 'apps.%'"
                          " ORDER BY seq")
    actions = [a for a, _, _ in story]
    assert actions.count("apps.release") == 3 and actions.count("apps.rollback") == 1
    assert actions.count("apps.install") == 4 + 2 + 2 + 2
    rollback = next(json.loads(after) for a, _, after in story if a == "apps.rollback")
    assert rollback == {"channel": "stable", "version_code": 10500, "reason":
                        "1.6.0 loses drafts on lock", "sha256": rollback["sha256"]}
    assert [json.loads(after)["version_code"] for a, s, after in story
            if a == "apps.install" and s == f"device:{stable[0].serial}"] == [10500, 10600, 10500]


def test_a_build_altered_in_the_store_is_refused_before_any_upload(
        mdm: Any, fleet: dict[str, Any], tmp_path: Path, db_path: Path) -> None:
    mdm("apps", "release", ENOTEBOOK, "10600", "--channel", "stable")
    sha = mdm.json("apps", "show", ENOTEBOOK)["channels"]["stable"]["sha256"]
    kept = tmp_path / "builds" / f"{sha}.apk"
    os.chmod(kept, stat.S_IRUSR | stat.S_IWUSR)
    with kept.open("r+b") as fh:
        fh.seek(100)
        fh.write(b"X")
    logs = [(d.path / "log" / "commands").read_text() for d in fleet["all"]]
    before = db_fingerprint(db_path)
    refused = mdm("apps", "push", "--json", code=2)
    assert "altered on disk" in refused.stderr and str(kept) in refused.stderr
    assert [(d.path / "log" / "commands").read_text() for d in fleet["all"]] == logs
    assert db_fingerprint(db_path) == before


def test_the_device_refuses_another_signer_and_a_too_new_sdk_in_its_own_words(
        mdm: Any, fleet: dict[str, Any], apks: dict[str, Path], db_path: Path) -> None:
    one = fleet["stable"][0]
    mdm("apps", "release", ENOTEBOOK, "10500", "--channel", "stable")
    mdm("apps", "push", one.serial)
    mdm("apps", "add", apks["enotebook-10700-other-signer"], "--new-signer", "--reason",
        "test key")
    mdm("apps", "release", ENOTEBOOK, "10700", "--channel", "stable")
    result = mdm("apps", "push", one.serial, "--json", code=1)
    failed = json.loads(result.stdout)["failed"]
    assert [(f["serial"], f["code"]) for f in failed] == [
        (one.serial, "INSTALL_FAILED_UPDATE_INCOMPATIBLE")]
    assert "signatures do not match" in failed[0]["error"] and _version(one) == 10500
    assert rows(db_path, "SELECT event FROM app_events e JOIN devices d ON d.id = e.device_id"
                         " WHERE d.serial = ? ORDER BY e.id", (one.serial,))[-1] == ("failed",)
    mdm("apps", "add", apks["enotebook-10800-sdk30"])
    check = mdm.json("apps", "release", ENOTEBOOK, "10800", "--channel", "stable", "--check")
    assert {"serial": one.serial, "sdk": 22} in check["too_old"]
    refused = mdm("apps", "release", ENOTEBOOK, "10800", "--channel", "stable", code=2)
    assert "needs Android SDK 30" in refused.stderr and f"{one.serial} (SDK 22)" in refused.stderr
    assert mdm.json("apps", "show", ENOTEBOOK)["channels"]["stable"]["version_code"] == 10700
    # Facts that do not say the SDK: the release goes ahead, and the device refuses it.
    rows(db_path, "UPDATE device_facts SET sdk = NULL")
    mdm("apps", "release", ENOTEBOOK, "10800", "--channel", "stable")
    result = mdm("apps", "push", one.serial, "--json", code=1)
    (failed,) = json.loads(result.stdout)["failed"]
    assert failed["code"] == "INSTALL_FAILED_OLDER_SDK" and "#22" in failed["error"]
    assert not list((one.path / "mdm-staging").iterdir())


def test_one_failing_install_is_named_the_rest_proceed_and_max_fail_percent_stops_a_run(
        mdm: Any, lab: Any, fleet: dict[str, Any]) -> None:
    devices = fleet["all"]
    mdm("apps", "release", ENOTEBOOK, "10500", "--channel", "stable")
    lab.lab.fault(devices[0].serial, "pm-install-fail")
    lab.lab.fault(devices[1].serial, "corrupt-upload")
    result = mdm("apps", "push", "--json", code=1)
    summary = json.loads(result.stdout)
    assert sorted((f["serial"], f["kind"], f.get("code")) for f in summary["failed"]) == sorted([
        (devices[0].serial, "install_failed", "INSTALL_FAILED_INTERNAL_ERROR"),
        (devices[1].serial, "corrupt_transfer", None)])
    assert devices[0].serial in result.stderr and devices[1].serial in result.stderr
    assert [_version(d) for d in devices] == [10402, 10402, 10500, 10500]
    assert all(not list((d.path / "mdm-staging").iterdir()) for d in devices)
    lab.lab.fault(devices[1].serial, "corrupt-upload", clear=True)

    mdm("apps", "release", ENOTEBOOK, "10600", "--channel", "stable")
    ordered = sorted(devices, key=lambda d: d.serial)  # one at a time, in serial order
    for i, device in enumerate(ordered):
        lab.lab.fault(device.serial, "pm-install-fail", clear=i >= 2)
    versions = [_version(d) for d in ordered]
    stopped = json.loads(mdm("apps", "push", "--max-fail-percent", "25", "--concurrency", "1",
                             "--json", code=1).stdout)
    assert stopped["stopped_early"] and len(stopped["failed"]) == 2
    assert [s["serial"] for s in stopped["skipped"]] == [d.serial for d in ordered[2:]]
    assert [_version(d) for d in ordered] == versions  # the skipped ones were not touched


def test_compliance_names_a_device_on_the_wrong_build(
        mdm: Any, fleet: dict[str, Any], db_path: Path) -> None:
    behind, ahead = fleet["stable"]
    mdm("apps", "release", ENOTEBOOK, "10500", "--channel", "stable")
    mdm("apps", "push", behind.serial, ahead.serial)
    mdm("apps", "release", ENOTEBOOK, "10600", "--channel", "stable")
    mdm("apps", "push", ahead.serial)
    mdm("devices", "refresh", behind.serial, ahead.serial)
    report = json.loads(mdm("compliance", "report", behind.serial, ahead.serial, "--json",
                            code=1).stdout)
    reasons = {d["serial"]: {r["code"]: r["detail"] for r in d["reasons"]}
               for d in report["devices"]}
    assert reasons[behind.serial]["app_outdated"] == f"{ENOTEBOOK} is 10500, needs 10600"
    assert "app_outdated" not in reasons[ahead.serial]
    # The terminal's summary judges releases as the whole report does.
    from mdm.policies import report as reporter
    from mdm.store import connect
    from tests.conftest import ROOT

    db = connect(db_path)
    try:
        selected = [behind.serial, ahead.serial]
        whole = reporter.report(db, ROOT / "playbooks" / "policies", selected)
        whole.pop("devices")
        assert reporter.summarise(db, ROOT / "playbooks" / "policies", selected) == whole
        assert whole["summary"]["reason"]["app_outdated"]["examples"] == [behind.serial]
    finally:
        db.conn.close()
    compiled = json.loads(mdm("policy", "compile", "--device", ahead.serial).stdout)
    (app,) = [a for a in compiled["applications"] if a["packageName"] == ENOTEBOOK]
    assert app["minimumVersionCode"] == 10600


def test_a_build_is_installed_through_a_provisioning_station_too(
        mdm: Any, lab: Any, station: Any, delivered: Any, apks: dict[str, Path],
        db_path: Path) -> None:
    row = next(r for r in lab.lab.station_status() if r["name"] == station.name)
    devices = delivered(2)
    mdm("stations", "add", station.name, "--address", row["address"], "--host-key",
        row["fingerprint"])
    for device in devices:
        lab.lab.plug(device.serial, station.name)
    mdm("enrol", "station", station.name)
    mdm("apps", "add", apks["enotebook-10500"])
    mdm("apps", "release", ENOTEBOOK, "10500", "--channel", "stable")
    pushed = mdm.json("apps", "push")
    assert {d["serial"] for d in pushed["done"]} == {d.serial for d in devices}
    assert [_version(d) for d in devices] == [10500, 10500]
    assert all(not list((d.path / "mdm-staging").iterdir()) for d in devices)
    assert mdm.json("devices", "show", devices[0].serial)["route"] == f"station:{station.name}"
    again = mdm.json("apps", "push")
    assert again["changed"] == 0


def test_the_lab_package_manager_reads_the_apk_itself(lab: Any, apks: dict[str, Path]) -> None:
    import subprocess

    (device,) = lab.take(1)
    home = device.path

    def pm(*args: str) -> tuple[int, str]:
        done = subprocess.run([str(home / "bin" / "pm"), *args], capture_output=True,
                              text=True, timeout=30,
                              env={"HOME": str(home), "PATH": f"{home}/bin:/usr/bin:/bin"})
        return done.returncode, (done.stdout + done.stderr).strip()

    assert pm("install", "-r", str(apks["not-an-apk"]))[1].startswith(
        "Failure [INSTALL_PARSE_FAILED_NOT_APK")
    assert "INSTALL_PARSE_FAILED_NO_CERTIFICATES" in pm("install", "-r",
                                                        str(apks["enotebook-unsigned"]))[1]
    assert pm("install", "-r", str(apks["enotebook-10600"])) == (0, "Success")
    code, said = pm("install", "-r", str(apks["enotebook-10500"]))
    assert code == 1 and "INSTALL_FAILED_VERSION_DOWNGRADE" in said
    assert pm("install", "-r", "-d", str(apks["enotebook-10500"])) == (0, "Success")
    assert "INSTALL_FAILED_UPDATE_INCOMPATIBLE" in pm(
        "install", "-r", str(apks["enotebook-10700-other-signer"]))[1]
    assert "INSTALL_FAILED_ALREADY_EXISTS" in pm("install", str(apks["enotebook-10600"]))[1]
    assert f"package:{ENOTEBOOK} versionCode:10500" in pm(
        "list", "packages", "--show-versioncode")[1]
