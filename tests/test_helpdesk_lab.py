"""Lost, stolen, recovered, replaced: the command queue against the real-sshd lab.

Each test reads the lab device's own command log (what its DPC carried out, by id) and
its event log, so "exactly once" is what the device did, not what mdm believes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mdm import examples
from tests.helpers import rows

pytestmark = pytest.mark.backends


@pytest.fixture
def people(mdm: Any, files: Callable[..., Path]) -> Callable[[], list[str]]:
    """Import a small roster (once a device delivery made the inventory); return officer ids."""

    def load() -> list[str]:
        roster = examples.generate_roster(12, seed=3)
        mdm("officers", "import", files("roster.csv", roster, examples.ROSTER_COLUMNS))
        mdm("operators", "add", "hd", "--role", "helpdesk")
        mdm("operators", "add", "hd2", "--role", "helpdesk")
        return [p["officer_id"] for p in roster
                if p["status"] == "ACTIVE" and p.get("device_eligible", "1") != "0"]

    return load


def _events(device: Any, word: str) -> int:
    return sum(f"dpc {word}" in line for line in
               (device.path / "log" / "events").read_text().splitlines())


def _log(lab: Any, device: Any) -> list[tuple[str, str]]:
    return [(c["kind"], c["state"]) for c in lab.lab.commands(device.serial)]


def _grace(seconds: str) -> None:
    project = Path(os.environ["MDM_CONFIG"])
    project.write_text(project.read_text() + f'[helpdesk]\nlost_wipe_after = "{seconds}"\n')


def test_lost_while_offline_locked_on_return_wiped_after_grace_then_re_enrolled(
        mdm: Any, lab: Any, enrolled: Any, people: Any, files: Any, db_path: Path) -> None:
    _grace("2s")
    (device,) = enrolled(1)
    officer = people()[0]
    mdm("assign", device.serial, officer)
    old_key = lab.fingerprint(device)
    lab.lab.fault(device.serial, "offline")
    r = mdm.json("lost", device.serial, "--lost", "--reported-by", officer, "--where",
                 "Kendal bus station", operator="hd")
    first = mdm.json("queue", "run")
    assert [(w["kind"], w["serial"]) for w in first["waiting"]] == [("lock", device.serial)]
    assert _log(lab, device) == []
    lab.lab.fault(device.serial, "offline", clear=True)
    back = mdm.json("queue", "run")
    assert [d["kind"] for d in back["done"]] == ["lock"]  # the wipe waits: grace, approval
    mdm("incidents", "approve-wipe", str(r["incident"]), operator="hd2")
    deadline = time.monotonic() + 10
    while mdm.json("queue", "run")["done"] == [] and time.monotonic() < deadline:
        time.sleep(0.5)  # the grace period is 2 s
    assert mdm.json("queue", "run")["done"] == []
    assert _log(lab, device) == [("lock", "acked"), ("lock", "done"), ("wipe", "acked"),
                                 ("wipe", "done")]
    assert (_events(device, "locked"), _events(device, "wiped")) == (1, 1)
    assert rows(db_path, "SELECT status FROM devices") == [("wiped",)]
    incident = mdm.json("incidents")[0]
    assert incident["state"] == "wiped" and incident["dp_deadline"] > incident["known_at"]
    history = mdm.json("custody", "--officer", officer)["custody"]
    assert history[-1]["close_reason"] == "reported lost"

    new_key = lab.fingerprint(device)
    assert new_key != old_key  # a factory reset makes a new host key
    plan = files("re-enrol.csv", f"serial_number,address,host_key\n"
                                 f"{device.serial},{device.address},{new_key}\n")
    mdm("enrol", "devices", "--from", plan)
    assert rows(db_path, "SELECT status, host_key_fingerprint FROM devices") == [
        ("enrolled", new_key)]
    mdm("audit", "verify")


def test_stolen_wipe_waits_for_a_second_operator_and_a_spare_continues_custody(
        mdm: Any, lab: Any, enrolled: Any, people: Any, db_path: Path) -> None:
    stolen, spare = enrolled(2)
    officer, other = people()[:2]
    mdm("assign", stolen.serial, officer)
    lab.lab.notebook(stolen.serial, 7)
    mdm("policy", "push")
    mdm("devices", "provision", spare.serial)
    r = mdm.json("lost", stolen.serial, "--stolen", "--reported-by", other, "--where",
                 "Penrith", "--crime-ref", "CR/0412/26", operator="hd")
    assert r["unsynced_entries"] == 7 and r["wipe_needs_approval"] is True
    assert [d["kind"] for d in mdm.json("queue", "run")["done"]] == ["lock"]
    refused = mdm("incidents", "approve-wipe", str(r["incident"]), operator="hd", code=2)
    assert "cannot approve it" in refused.stderr
    assert _log(lab, stolen) == [("lock", "acked"), ("lock", "done")]
    mdm("incidents", "approve-wipe", str(r["incident"]), operator="hd2")
    assert [d["kind"] for d in mdm.json("queue", "run")["done"]] == ["wipe"]
    assert _events(stolen, "wiped") == 1
    [listed] = mdm.json("incidents")
    assert listed["unsynced_entries"] == 7 and listed["crime_ref"] == "CR/0412/26"

    replaced = mdm.json("replace", stolen.serial, "--with", spare.serial, "--reason",
                        "stolen", operator="hd")
    assert replaced["holder"]["officer_id"] == officer and replaced["incident"] == r["incident"]
    history = mdm.json("custody", "--officer", officer)["custody"]
    assert [(h["serial"], h["closed_at"] is None) for h in history] == [
        (stolen.serial, False), (spare.serial, True)]
    assert history[1]["open_reason"].startswith(f"replacement for {stolen.serial}")
    export = mdm("incidents", "export", "--reason", "DPO review", operator="hd").stdout
    assert "CR/0412/26" in export
    assert rows(db_path, "SELECT action FROM audit WHERE action = 'incidents.export'") == [
        ("incidents.export",)]
    mdm("audit", "verify")


def test_recovered_within_the_grace_period_is_never_wiped(
        mdm: Any, lab: Any, enrolled: Any, people: Any, db_path: Path) -> None:
    (device,) = enrolled(1)
    officer = people()[0]
    mdm("lost", device.serial, "--lost", "--reported-by", officer, "--where", "Keswick",
        operator="hd")
    mdm("queue", "run")
    r = mdm.json("recovered", device.serial, "--note", "handed in at Keswick", operator="hd")
    assert r["status"] == "enrolled" and len(r["cancelled"]) == 1
    assert mdm.json("queue", "run")["done"] == []
    assert _log(lab, device) == [("lock", "acked"), ("lock", "done")]
    assert _events(device, "wiped") == 0
    assert rows(db_path, "SELECT kind, state FROM commands ORDER BY kind") == [
        ("lock", "done"), ("wipe", "cancelled")]
    again = mdm("recovered", device.serial, "--note", "x", operator="hd", code=2)
    assert "already recovered (incident 1" in again.stderr


def test_a_run_killed_between_sending_and_recording_is_finished_once_by_the_next(
        mdm: Any, lab: Any, enrolled: Any, people: Any, db_path: Path) -> None:
    (device,) = enrolled(1)
    officer = people()[0]
    mdm("lost", device.serial, "--lost", "--reported-by", officer, "--where", "Ulverston",
        operator="hd")
    lab.lab.fault(device.serial, "slow-answer", delay=20)
    mdm_bin = Path(sys.executable).parent / "mdm"
    proc = subprocess.Popen([str(mdm_bin), "queue", "run", "--json"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while ("lock", "done") not in _log(lab, device) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert ("lock", "done") in _log(lab, device)  # the device did it; mdm never heard
    assert rows(db_path, "SELECT kind, state FROM commands WHERE kind = 'lock'") == [
        ("lock", "sent")]
    lab.lab.fault(device.serial, "slow-answer", clear=True)
    result = mdm.json("queue", "run")
    assert [(d["kind"], d["answer"]) for d in result["done"]] == [("lock", "lock already-done")]
    assert rows(db_path, "SELECT state, attempts FROM commands WHERE kind = 'lock'") == [
        ("done", 2)]
    assert _log(lab, device) == [("lock", "acked"), ("lock", "done")]
    assert _events(device, "locked") == 1
    mdm("audit", "verify")


def test_a_wipe_killed_before_recording_is_recognised_by_its_new_key(
        mdm: Any, lab: Any, enrolled: Any, people: Any, db_path: Path) -> None:
    stolen, impostor = enrolled(2)
    officer = people()[0]
    r = mdm.json("lost", stolen.serial, "--stolen", "--reported-by", officer, "--where",
                 "Carlisle", operator="hd")
    mdm("lost", impostor.serial, "--stolen", "--reported-by", officer, "--where", "Carlisle",
        operator="hd")
    lab.lab.fault(impostor.serial, "offline")
    assert [d["kind"] for d in mdm.json("queue", "run")["done"]] == ["lock"]
    mdm("incidents", "approve-wipe", str(r["incident"]), operator="hd2")
    lab.lab.fault(stolen.serial, "slow-answer", delay=20)
    proc = subprocess.Popen([str(Path(sys.executable).parent / "mdm"), "queue", "run"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while ("wipe", "done") not in _log(lab, stolen) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert ("wipe", "done") in _log(lab, stolen)  # the device did it; mdm never heard
    lab.lab.fault(stolen.serial, "slow-answer", clear=True)
    # The other phone comes back with a new key, but no wipe was ever sent to it.
    lab.lab.fault(impostor.serial, "offline", clear=True)
    lab.lab.fault(impostor.serial, "swapped")
    result = mdm.json("queue", "run")
    assert [(d["serial"], d["kind"], d["answer"]) for d in result["done"]] == [
        (stolen.serial, "wipe", "wipe already-done")]
    assert [f["serial"] for f in result["unreached"]] == [impostor.serial]
    assert _events(stolen, "wiped") == 1 and _log(lab, impostor) == []
    state = {s: (st, err) for s, st, err in rows(
        db_path, "SELECT serial, status, last_contact_error FROM devices")}
    assert state[stolen.serial][0] == "wiped" and "re-enrol" in state[stolen.serial][1]
    assert state[impostor.serial][0] == "stolen" and "host_key" in state[impostor.serial][1]
    found = mdm.json("recovered", impostor.serial, "--note", "found", operator="hd")
    assert found["status"] == "quarantined" and "re-enrol" in found["next"]
    mdm("audit", "verify")


def test_a_push_a_device_missed_waits_in_the_queue_until_it_answers(
        mdm: Any, lab: Any, enrolled: Any, db_path: Path) -> None:
    import json

    here, away = enrolled(2)
    lab.lab.fault(away.serial, "offline")
    out = mdm.json("policy", "push", code=1)
    assert [f["serial"] for f in out["failed"]] == [away.serial]
    assert out["queued"] == [away.serial]
    shown = mdm.json("devices", "show", away.serial)
    assert [(q["kind"], q["state"]) for q in shown["queue"]] == [("policy", "queued")]
    assert mdm.json("queue", "run")["done"] == []  # still away: it waits
    lab.lab.fault(away.serial, "offline", clear=True)
    [done] = mdm.json("queue", "run")["done"]
    assert (done["serial"], done["kind"]) == (away.serial, "policy")
    status = json.loads((away.path / "mdm-dpc" / "status.json").read_text())
    assert rows(db_path, "SELECT applied_policy FROM devices WHERE serial = ?",
                (away.serial,)) == [(status["policySha256"],)]
    assert mdm.json("devices", "show", away.serial)["queue"] == []


def test_a_stolen_phone_at_a_provisioning_station_is_locked_and_wiped_through_it(
        mdm: Any, lab: Any, enrolled: Any, people: Any, station: Any) -> None:
    (device,) = enrolled(1)
    officer = people()[0]
    mdm("assign", device.serial, officer)
    row = next(r for r in lab.lab.station_status() if r["name"] == station.name)
    mdm("stations", "add", station.name, "--address", row["address"], "--host-key",
        row["fingerprint"])
    lab.lab.plug(device.serial, station.name)
    mdm("stations", "route", device.serial, "--station", station.name, "--reason", "repair")
    mdm("lost", device.serial, "--stolen", "--reported-by", officer, "--where", "Workington",
        operator="hd")
    first = mdm.json("queue", "run")
    assert [(d["serial"], d["kind"]) for d in first["done"]] == [(device.serial, "lock")]
    assert [w["kind"] for w in first["waiting"]] == []  # the wipe waits for approval, not due
    mdm("incidents", "approve-wipe", "1", operator="hd2")
    second = mdm.json("queue", "run")
    assert [(d["serial"], d["kind"]) for d in second["done"]] == [(device.serial, "wipe")]
    assert _log(lab, device) == [("lock", "acked"), ("lock", "done"),
                                 ("wipe", "acked"), ("wipe", "done")]
    assert mdm.json("devices", "show", device.serial)["status"] == "wiped"


def test_a_swap_for_a_fault_sends_the_old_device_back_to_be_wiped(
        mdm: Any, enrolled: Any, people: Any) -> None:
    broken, spare = enrolled(2)
    officer = people()[0]
    mdm("assign", broken.serial, officer)
    mdm("policy", "push")
    mdm("devices", "provision", spare.serial)
    swapped = mdm.json("replace", broken.serial, "--with", spare.serial, "--reason",
                       "screen cracked", operator="hd")
    assert swapped["holder"]["officer_id"] == officer and swapped["incident"] is None
    back = swapped["return"]  # not left in stock, held by nobody and never wiped
    assert (back["reason"], back["then"]) == ("fault", "in_repair")
    assert back["previous_holder"]["officer_id"] == officer
    [case] = mdm.json("incidents", "--open")
    assert (case["serial"], case["kind"]) == (broken.serial, "return")
    commands = [(c["kind"], c["state"]) for c in mdm.json("queue", "list", broken.serial)]
    assert ("wipe", "queued") in commands and ("policy", "queued") not in commands
    mdm("audit", "verify")
