"""Enrolment and fleet facts against real sshd devices, through the CLI."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import inventory_bytes, rows

pytestmark = [pytest.mark.lab, pytest.mark.backends]


def _status(db_path: Any, serial: str) -> str:
    return rows(db_path, "SELECT status FROM devices WHERE serial = ?", (serial,))[0][0]


def test_enrol_confirms_identity_pins_the_key_and_records_facts(mdm, lab, delivered,
                                                                db_path) -> None:
    device = delivered(1)[0]
    fp = lab.fingerprint(device)
    out = mdm.json("enrol", "device", device.serial, "--address", device.address,
                   "--host-key", fp)
    assert out["done"] == [{"serial": device.serial, "address": device.address,
                            "host_key": fp, "host_key_check": "confirmed"}]
    assert rows(db_path, "SELECT status, host_key_fingerprint, address FROM devices"
                         " WHERE serial = ?", (device.serial,)) == [
        ("enrolled", fp, device.address)]
    assert rows(db_path, "SELECT os_release, crypto_state, sdk FROM device_facts") == [
        ("5.1.1", "encrypted", 22)]  # a Note 4 as the bench leaves it in 2015
    log = mdm.json("audit", "log", "--subject", device.serial)
    assert log[-1]["action"] == "devices.enrol"
    assert log[-1]["after"]["host_key_check"] == "confirmed"
    again = mdm.json("enrol", "device", device.serial, "--address", device.address,
                     "--host-key", fp)
    assert again["skipped"][0]["reason"] == "already enrolled"


def test_unconfirmed_or_wrong_host_keys_are_refused(mdm, lab, delivered, db_path) -> None:
    device = delivered(1)[0]
    fp = lab.fingerprint(device)
    result = mdm("enrol", "device", device.serial, "--address", device.address, code=1)
    assert fp in result.stderr and "--trust-on-first-use" in result.stderr
    wrong = "SHA256:" + "A" * 43
    result = mdm("enrol", "device", device.serial, "--address", device.address,
                 "--host-key", wrong, code=1)
    assert wrong in result.stderr and fp in result.stderr
    assert _status(db_path, device.serial) == "delivered"
    assert (device.path / "log" / "commands").read_text() == ""  # nothing ran on it
    out = mdm.json("enrol", "device", device.serial, "--address", device.address,
                   "--trust-on-first-use")
    assert out["done"][0]["host_key_check"] == "trusted on first use"


def test_identity_mismatch_is_refused_and_nothing_is_pinned(mdm, lab, delivered,
                                                            db_path) -> None:
    device = delivered(1)[0]
    lab.lab.fault(device.serial, "identity")
    out = mdm.json("enrol", "device", device.serial, "--address", device.address,
                   "--trust-on-first-use", code=1)
    assert out["failed"][0]["kind"] == "identity_mismatch"
    assert "serial is" in out["failed"][0]["error"]
    assert rows(db_path, "SELECT status, host_key FROM devices") == [("delivered", None)]


def test_a_changed_host_key_quarantines_until_re_enrolled(mdm, lab, enrolled,
                                                          db_path) -> None:
    device = enrolled(1)[0]
    old = lab.fingerprint(device)
    lab.lab.fault(device.serial, "swapped")
    new = lab.fingerprint(device)
    out = mdm.json("devices", "refresh", code=1)
    failure = out["failed"][0]
    assert (failure["kind"], failure["expected_fingerprint"], failure["offered_fingerprint"]) \
        == ("host_key", old, new)
    assert _status(db_path, device.serial) == "quarantined"
    log = mdm.json("audit", "log", "--subject", device.serial)
    assert log[-1]["action"] == "devices.quarantine" and log[-1]["after"]["offered"] == new
    # quarantined: not contacted, and a refresh that would reach nobody says so (exit 2)
    assert "no device is enrolled or provisioned" in mdm("devices", "refresh", code=2).stderr
    assert "(it selects 1 quarantined)" in mdm("devices", "refresh", device.serial,
                                               code=2).stderr
    mdm("enrol", "device", device.serial, "--address", device.address, "--host-key", new)
    assert _status(db_path, device.serial) == "enrolled"


def test_an_offline_device_does_not_stop_a_twenty_device_run(mdm, lab, delivered, files,
                                                             db_path) -> None:
    devices = delivered(20)
    lab.lab.fault(devices[7].serial, "offline")
    lab.lab.fault(devices[12].serial, "slow", delay=1)
    plan = files("plan.csv", "serial_number,address\n" + "".join(
        f"{d.serial},{d.address}\n" for d in devices))
    out = mdm.json("enrol", "devices", "--from", plan, "--trust-on-first-use", code=1)
    assert [f["serial"] for f in out["failed"]] == [devices[7].serial]
    assert out["failed"][0]["kind"] == "unreachable"
    assert len(out["done"]) == 19
    assert rows(db_path, "SELECT COUNT(*) FROM devices WHERE status = 'enrolled'") == [(19,)]
    lab.lab.fault(devices[7].serial, "offline", clear=True)
    lab.lab.fault(devices[3].serial, "offline")
    refreshed = mdm.json("devices", "refresh", "status=enrolled", code=1)
    assert [f["serial"] for f in refreshed["failed"]] == [devices[3].serial]
    assert rows(db_path, "SELECT last_contact_error LIKE 'unreachable%' FROM devices"
                         " WHERE serial = ?", (devices[3].serial,)) == [(1,)]
    assert rows(db_path, "SELECT COUNT(*) FROM devices WHERE last_seen IS NOT NULL") == [(19,)]


def test_the_private_key_never_reaches_the_inventory(mdm, lab, enrolled, db_path,
                                                     operator_key) -> None:
    device = enrolled(1)[0]
    secret = operator_key.read_bytes()
    body = b"".join(secret.splitlines()[1:-1])
    blob = inventory_bytes(db_path)  # PostgreSQL shows a bytea column's bytes in hex
    assert device.serial.encode() in blob and len(body) > 40
    assert body[:40] not in blob and body[:40].hex().encode() not in blob


def test_ctrl_c_records_what_finished_and_a_rerun_completes(mdm, lab, enrolled, db_path,
                                                            operator_key) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from mdm.lab.lab import _descendants

    devices = enrolled(12)
    for device in devices:
        lab.lab.fault(device.serial, "slow", delay=1)
    env = {**os.environ, "MDM_DB": str(db_path), "MDM_OPERATOR": "admin",
           "MDM_KEY": str(operator_key)}
    logs = {d.path / "log" / "commands": "" for d in devices}
    for log in logs:
        logs[log] = log.read_text()
    proc = subprocess.Popen([sys.executable, "-m", "mdm", "devices", "refresh",
                             "--concurrency", "3"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and all(log.read_text() == before
                                              for log, before in logs.items()):
        time.sleep(0.02)  # wait until the first wave is past its delay and running
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    seen = rows(db_path, "SELECT COUNT(*) FROM devices WHERE last_contact_at > enrolled_at")
    assert 3 <= seen[0][0] < 12  # the first wave and the devices in flight, not the rest
    assert mdm.json("audit", "verify")["ok"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
            _descendants(lab.lab._pid(d)) for d in devices):
        time.sleep(0.1)
    assert not any(_descendants(lab.lab._pid(d)) for d in devices)  # no session left
    for device in devices:
        lab.lab.fault(device.serial, "slow", clear=True)
    assert mdm.json("devices", "refresh")["selected"] == 12
    assert rows(db_path, "SELECT COUNT(*) FROM devices WHERE last_contact_at > enrolled_at"
                ) == [(12,)]
