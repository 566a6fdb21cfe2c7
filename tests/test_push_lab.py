"""Policy push and compliance against real sshd devices: proven by the sha256 they report."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mdm.store import connect, transaction
from mdm.timeutil import format_utc
from tests.helpers import db_fingerprint, rows

pytestmark = [pytest.mark.lab, pytest.mark.backends]
SHIPPED = Path(__file__).resolve().parent.parent / "playbooks" / "policies"


@pytest.fixture
def fleet(mdm: Any, lab: Any, enrolled: Any, inventory: Any, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Four enrolled lab devices held by a constable, a PCSO, a Special and a pilot officer."""
    folder = tmp_path / "policies"
    shutil.copytree(SHIPPED, folder)
    monkeypatch.setenv("MDM_POLICIES", str(folder))
    devices = enrolled(4)
    people = inventory["roster"]
    pick = {kind: next(p for p in people if p["worker_type"] == kind and p["status"] == "ACTIVE")
            for kind in ("OFFICER", "PCSO", "SPECIAL")}
    pilot = next(p for p in people if p["worker_type"] == "OFFICER"
                 and p["officer_id"] != pick["OFFICER"]["officer_id"])
    mdm("groups", "create", "pilot")
    mdm("groups", "add", "pilot", pilot["officer_id"])
    holders = [pick["OFFICER"], pick["PCSO"], pick["SPECIAL"], pilot]
    for device, person in zip(devices, holders, strict=True):
        mdm("assign", device.serial, person["officer_id"])
    return {"devices": devices, "holders": holders, "folder": folder}


def _status(device: Any) -> dict[str, Any]:
    return json.loads((device.path / "mdm-dpc" / "status.json").read_text())


def _device_state(device: Any) -> tuple[str, ...]:
    files = ["log/events", "settings/global", "settings/system", "packages"]
    inbox = device.path / "mdm-dpc" / "inbox" / "policy.json"
    return tuple((device.path / f).read_text() for f in files) + (
        inbox.read_text() if inbox.exists() else "",)


def test_check_changes_nothing_then_push_changes_the_dpc_then_a_second_push_is_a_no_op(
        mdm: Any, fleet: dict[str, Any], db_path: Path) -> None:
    devices = fleet["devices"]
    before_db = db_fingerprint(db_path)
    before_devices = [_device_state(d) for d in devices]
    logs = [(d.path / "log" / "commands").read_text() for d in devices]
    plan = mdm.json("policy", "push", "--check")
    assert plan["would_change"] == 4 and {r["from"] for r in plan["devices"]} == {None}
    assert db_fingerprint(db_path) == before_db
    assert [_device_state(d) for d in devices] == before_devices
    assert [(d.path / "log" / "commands").read_text() for d in devices] == logs

    first = mdm.json("policy", "push")
    assert first["changed"] == 4 and first["unchanged"] == []
    expected = {r["serial"]: r["to"] for r in plan["devices"]}
    for device in devices:
        status = _status(device)
        inbox = (device.path / "mdm-dpc" / "inbox" / "policy.json").read_bytes()
        assert status["policySha256"] == expected[device.serial]
        assert hashlib.sha256(inbox).hexdigest() == expected[device.serial]
        assert "screen_off_timeout=120000" in (device.path / "settings" / "system").read_text()
    assert len({expected[d.serial] for d in devices}) >= 3  # PCSO, Special, pilot differ
    assert rows(db_path, "SELECT COUNT(*) FROM policy_events WHERE event = 'applied'") == [(4,)]
    stored = rows(db_path, "SELECT sha256, body FROM policy_versions")
    assert all(hashlib.sha256(body.encode()).hexdigest() == sha for sha, body in stored)

    states = [_device_state(d) for d in devices]
    second = mdm.json("policy", "push")
    assert second["changed"] == 0 and sorted(second["unchanged"]) == sorted(
        d.serial for d in devices)
    assert [_device_state(d) for d in devices] == states  # not written to
    history = mdm.json("policy", "history", devices[0].serial)
    assert [h["event"] for h in history] == ["sent", "applied"]


def test_a_tampered_inbox_or_a_different_hash_is_drift_and_push_repairs_it(
        mdm: Any, fleet: dict[str, Any], db_path: Path) -> None:
    devices = fleet["devices"]
    mdm("policy", "push")
    inbox = devices[0].path / "mdm-dpc" / "inbox" / "policy.json"
    inbox.write_text(inbox.read_text().replace('"passwordMinimumLength":6',
                                               '"passwordMinimumLength":4'))
    status = _status(devices[1])
    status["policySha256"] = "0" * 64
    (devices[1].path / "mdm-dpc" / "status.json").write_text(json.dumps(status))
    mdm("devices", "refresh")
    report = {r["serial"]: r for r in mdm.json("compliance", "report", code=1)["devices"]}
    assert "policy_tampered" in [x["code"] for x in report[devices[0].serial]["reasons"]]
    assert "policy_drift" in [x["code"] for x in report[devices[1].serial]["reasons"]]
    repaired = mdm.json("policy", "push")
    assert sorted(d["serial"] for d in repaired["done"]) == sorted(
        [devices[0].serial, devices[1].serial])


def test_compliance_reasons_and_role_windows_in_a_read_only_report_that_exits_1(
        mdm: Any, lab: Any, fleet: dict[str, Any], db_path: Path) -> None:
    officer, pcso, special, pilot = fleet["devices"]
    mdm("policy", "push")
    lab.lab.fault(pcso.serial, "unencrypted")
    settings = pilot.path / "settings" / "global"
    settings.write_text(settings.read_text().replace("adb_enabled=0", "adb_enabled=1"))
    mdm("devices", "refresh")
    ten_days_ago = format_utc(datetime.now(UTC) - timedelta(days=10))
    db = connect(db_path)
    with transaction(db):
        db.execute("UPDATE devices SET last_seen = ? WHERE serial IN (?, ?)",
                   (ten_days_ago, officer.serial, special.serial))
    db.conn.close()
    before = db_fingerprint(db_path)
    result = mdm.json("compliance", "report", code=1)  # some devices are not compliant
    assert db_fingerprint(db_path) == before  # a report reads: no status moves, no audit row
    report = {r["serial"]: r for r in result["devices"]}
    codes = {s: [x["code"] for x in r["reasons"]] for s, r in report.items()}
    assert "not_encrypted" in codes[pcso.serial]
    assert "developer_options_on" in codes[pilot.serial]
    assert "not_seen" in codes[officer.serial]
    assert "not_seen" not in codes[special.serial]  # a Special may go 30 days unseen
    assert result["summary"]["group"]["pilot"]["non_compliant"] == 1
    assert (result["compliant"], result["non_compliant"]) == (1, 3)
    assert result["ready_to_provision"] == [special.serial]
    assert {r["status"] for r in result["devices"]} == {"enrolled"}
    assert mdm.json("compliance", "report", special.serial)["compliant"] == 1  # exit 0
    csv_text = mdm("compliance", "report", "--format", "csv", code=1).stdout
    assert csv_text.splitlines()[0].startswith("serial,status,compliant")
    assert "not_encrypted" in csv_text


def test_provision_is_an_explicit_role_checked_step_naming_the_non_compliant(
        mdm: Any, lab: Any, fleet: dict[str, Any], db_path: Path) -> None:
    officer, pcso, special, pilot = fleet["devices"]
    mdm("policy", "push")
    lab.lab.fault(pcso.serial, "unencrypted")
    mdm("devices", "refresh")
    mdm("operators", "add", "hd", "--role", "helpdesk")
    before = db_fingerprint(db_path)
    assert "devices.provision needs the admin or it role" in mdm(
        "devices", "provision", operator="hd", code=2).stderr
    plan = mdm.json("devices", "provision", "--check", code=1)
    assert plan["check"] is True and sorted(plan["provisioned"]) == sorted(
        [officer.serial, special.serial, pilot.serial])
    assert [(d["serial"], [r["code"] for r in d["reasons"]]) for d in plan["not_compliant"]] \
        == [(pcso.serial, ["not_encrypted"])]
    assert db_fingerprint(db_path) == before  # --check changes nothing

    result = mdm("devices", "provision", code=1)
    assert pcso.serial in result.stderr and "storage is unencrypted" in result.stderr
    statuses = dict(rows(db_path, "SELECT serial, status FROM devices WHERE status != 'delivered'"))
    assert statuses == {officer.serial: "provisioned", special.serial: "provisioned",
                        pilot.serial: "provisioned", pcso.serial: "enrolled"}
    audit_rows = rows(db_path, "SELECT subject, after FROM audit WHERE action ="
                      " 'devices.provision'")
    assert len(audit_rows) == 1 and audit_rows[0][0] == "devices"
    assert sorted(d["serial"] for d in json.loads(audit_rows[0][1])["devices"]) == sorted(
        [officer.serial, special.serial, pilot.serial])

    lab.lab.fault(pcso.serial, "unencrypted", clear=True)
    mdm("devices", "refresh", pcso.serial)
    again = mdm.json("devices", "provision")  # all compliant now: exit 0
    assert again["provisioned"] == [pcso.serial] and len(again["already_provisioned"]) == 3
    assert rows(db_path, "SELECT COUNT(*) FROM audit WHERE action = 'devices.provision'") \
        == [(2,)]
    assert "selects no enrolled or provisioned device" in mdm(
        "devices", "provision", "status=delivered", code=2).stderr


def test_a_run_stops_when_more_than_max_fail_percent_fail(mdm: Any, lab: Any,
                                                          fleet: dict[str, Any]) -> None:
    devices = sorted(fleet["devices"], key=lambda d: d.serial)
    lab.lab.fault(devices[0].serial, "offline")
    out = mdm.json("policy", "push", "--max-fail-percent", "25", "--concurrency", "1", code=1)
    assert out["stopped_early"] is False and len(out["failed"]) == 1  # 25% is not > 25%
    lab.lab.fault(devices[1].serial, "offline")
    mdm("policy", "push", "--check")
    out = mdm.json("policy", "push", "--max-fail-percent", "25", "--concurrency", "1", code=1)
    assert out["failed"] and [f["serial"] for f in out["failed"]] == [devices[0].serial,
                                                                      devices[1].serial]
    assert out["stopped_early"] is True


def test_nothing_is_pushed_from_an_invalid_tree(mdm: Any, fleet: dict[str, Any],
                                                db_path: Path) -> None:
    base = fleet["folder"] / "00-baseline.yaml"
    base.write_text(base.read_text().replace("min_length: 6", "min_length: 4"))
    before = [_device_state(d) for d in fleet["devices"]]
    err = mdm("policy", "push", code=2).stderr
    assert "password.min_length: 4 is below the minimum of 6" in err
    assert [_device_state(d) for d in fleet["devices"]] == before
    assert rows(db_path, "SELECT COUNT(*) FROM policy_versions") == [(0,)]


def test_diff_shows_what_a_yaml_change_would_change(mdm: Any, fleet: dict[str, Any]) -> None:
    mdm("policy", "push")
    assert mdm.json("policy", "diff")["changes"] == []
    special = fleet["folder"] / "11-special.yaml"
    special.write_text(special.read_text() + "  lock:\n    auto_lock_seconds: 90\n")
    changes = mdm.json("policy", "diff")["changes"]
    assert [(c["devices"], c["examples"]) for c in changes] == [
        (1, [fleet["devices"][2].serial])]
    fields = {c["field"]: (c["from"], c["to"]) for c in changes[0]["fields"]}
    assert fields["maximumTimeToLock"] == ("120000", "90000")


def test_compile_prints_the_version_that_push_stores(mdm: Any, fleet: dict[str, Any],
                                                     db_path: Path) -> None:
    pcso = fleet["devices"][1]
    result = mdm("policy", "compile", "--device", pcso.serial)
    doc = json.loads(result.stdout)
    apps = {a["packageName"]: a["installType"] for a in doc["applications"]}
    assert apps["uk.police.cumbria.custody"] == "BLOCKED"
    sha = result.stderr.split()[-1]
    mdm("policy", "push", pcso.serial)
    body = rows(db_path, "SELECT body FROM policy_versions WHERE sha256 = ?", (sha,))[0][0]
    assert json.loads(body) == doc and hashlib.sha256(body.encode()).hexdigest() == sha
    (pcso.path / "packages").write_text(
        (pcso.path / "packages").read_text().replace("uk.police.cumbria.vpn", "x.removed"))
    mdm("policy", "push", pcso.serial, "--check")
    pushed = mdm.json("policy", "push", pcso.serial)  # unchanged policy: nothing written
    assert pushed["changed"] == 0
    mdm("devices", "refresh", pcso.serial)
    report = mdm.json("compliance", "report", pcso.serial, code=1)["devices"][0]
    assert [r["code"] for r in report["reasons"]] == ["app_missing"]
