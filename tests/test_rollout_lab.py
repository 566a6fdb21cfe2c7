"""The phased rollout on the lab (real sshd): pilot, provisioning, training, handover, gates.

Provisioning is proven by the lab devices' own logs: the DPC's event log shows each policy
applied once, and the command log shows which device work was (not) redone after a kill.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import progress_drift, rows

pytestmark = [pytest.mark.lab, pytest.mark.backends]
ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "playbooks" / "rollout.yaml"
ROSTER = ROOT / "inventory" / "examples" / "roster.csv"
TEAMS = ("RESPONSE_A", "RESPONSE_B", "RESPONSE_C", "RESPONSE_D", "RESPONSE_E", "NPT", "CID",
         "ROADS", "ADMIN")


def _plan(tmp_path: Path, on_shift: str | None, gate_handed_over: int = 5) -> Path:
    """The shipped plan with rotas that do not depend on the clock: every team off shift,
    except `on_shift`, which is always on."""
    text = SHIPPED.read_text()
    head, rest = text.split("\nshifts:\n", 1)
    waves = rest[rest.index("\nwaves:\n"):]
    teams = "".join(f"    {t}: {{pattern: {'always' if t == on_shift else 'off'}}}\n"
                    for t in TEAMS)
    shifts = ("\nshifts:\n  patterns:\n"
              "    off: {start: 2015-03-30, cycle: [R], shifts: {D: \"08:00-09:00\"}}\n"
              "    always: {start: 2015-03-30, cycle: [D], shifts: {D: \"00:00-24:00\"}}\n"
              f"  teams:\n{teams}")
    waves = waves.replace("min_handed_over_percent: 90\n",
                          f"min_handed_over_percent: {gate_handed_over}\n", 1)
    path = tmp_path / "rollout.yaml"
    path.write_text(head + shifts + waves)
    (tmp_path / "provision.yaml").write_text((ROOT / "playbooks" / "provision.yaml").read_text())
    return path


@pytest.fixture
def pilot(mdm: Any, enrolled: Any, db_path: Path) -> dict[str, Any]:
    """A Cumbria-sized roster, a 55-person pilot, four lab devices allocated to four of it
    (each of a different team)."""
    devices = enrolled(4)
    mdm("officers", "import", ROSTER)
    picked = mdm.json("rollout", "pilot-select", "--size", "55", "--stratify",
                      "rank,worker_type,area", "--seed", "30", "--apply")
    holders: list[dict[str, Any]] = []
    for person in picked["pilot"]:
        if person["team"] in TEAMS and person["team"] not in {h["team"] for h in holders}:
            holders.append(person)
    holders = holders[:4]
    for device, person in zip(devices, holders, strict=True):
        mdm("assign", device.serial, person["officer_id"])
    return {"devices": devices, "holders": holders, "pick": picked}


def _error(result: Any) -> dict[str, Any]:
    return json.loads(result.stderr.strip().splitlines()[-1])


def _applied(device: Any) -> int:
    return (device.path / "log" / "events").read_text().count("dpc applied policy")


def _facts_calls(device: Any) -> int:
    return sum(1 for line in (device.path / "log" / "commands").read_text().splitlines()
               if "{ getprop ; }" in line)


def test_a_simulated_rollout_from_pilot_to_the_next_wave(
        mdm: Any, pilot: dict[str, Any], tmp_path: Path, db_path: Path, files: Any) -> None:
    devices, holders = pilot["devices"], pilot["holders"]
    # The pilot mirrors the force within 3 percentage points in every stratum.
    assert abs(pilot["pick"]["largest_deviation"]["deviation_points"]) <= 3.0
    plan = _plan(tmp_path, on_shift=holders[0]["team"])
    mdm("rollout", "validate", "--plan", plan)
    # Nothing is provisioned before its wave opens.
    refused = mdm.json("provision", "--wave", "pilot", "--plan", plan, code=1)
    assert sorted(refused["refused"]) == sorted(d.serial for d in devices)
    mdm("rollout", "advance", "pilot", "--plan", plan)
    logs = [(d.path / "log" / "commands").read_text() for d in devices]
    check = mdm.json("provision", "--wave", "pilot", "--plan", plan, "--check")
    by_serial = {d["serial"]: d for d in check["devices"]}
    assert by_serial[devices[0].serial]["result"].startswith("refused: its holder's team")
    assert by_serial[devices[1].serial]["to_do"] == ["refresh", "identity", "trust", "policy",
                                                     "apps", "compliance", "provision"]
    assert [(d.path / "log" / "commands").read_text() for d in devices] == logs
    assert rows(db_path, "SELECT COUNT(*) FROM provision_steps") == [(0,)]

    # The on-shift holder's device is refused and not touched; the rest are provisioned.
    run = mdm.json("provision", "--wave", "pilot", "--plan", plan, code=1)
    assert run["refused"] == [devices[0].serial]
    assert sorted(run["provisioned"]) == sorted(d.serial for d in devices[1:])
    assert (devices[0].path / "log" / "commands").read_text() == logs[0]
    assert [_applied(d) for d in devices] == [0, 1, 1, 1]
    mdm("provision", devices[0].serial, "--plan", plan, "--ignore-window", code=2)  # no reason
    mdm("provision", devices[0].serial, "--plan", plan, "--ignore-window", "--reason",
        "at the IT bench for the day, not with its holder")
    assert rows(db_path, "SELECT COUNT(*) FROM audit WHERE action = 'provision.ignore_window'"
                ) == [(1,)]
    assert rows(db_path, "SELECT DISTINCT status FROM devices") == [("provisioned",)]

    # Training, then handover; the untrained holder is refused, naming only that.
    trained = files("trained.csv", "officer,date,trainer,session\n" + "".join(
        f"{h['officer_id']},2015-03-31,T. Hodgson,pilot-Kendal-1\n" for h in holders[:3]))
    mdm("training", "import", trained)
    for device, holder in zip(devices[:3], holders[:3], strict=True):
        mdm("handover", device.serial, "--officer", holder["officer_id"])
    err = _error(mdm("handover", devices[3].serial, "--officer", holders[3]["officer_id"],
                     "--json", code=2))
    assert [p["field"] for p in err["problems"]] == ["trained"]

    status = mdm.json("rollout", "status", "--plan", plan, "--wave", "pilot")
    funnel = {k: v["count"] for k, v in status["waves"][0]["funnel"].items()}
    assert funnel == {"cohort": 55, "allocated": 4, "enrolled": 4, "provisioned": 4,
                      "trained": 3, "handed_over": 3}
    assert progress_drift(db_path) == []  # kept through enrolment, provisioning, handover

    # A blocker holds the next wave back; resolved, the gate lets it go.
    item = mdm.json("feedback", "add", "--officer", holders[1]["officer_id"], "--severity",
                    "blocker", "--text", "notebook entries vanish after a reboot")
    held = _error(mdm("rollout", "advance", "north", "--plan", plan, "--json", code=1))
    assert [p["field"] for p in held["problems"]] == ["max_open_blockers"]
    mdm("feedback", "resolve", str(item["id"]), "--note", "fixed in 1.4.3")
    opened = mdm.json("rollout", "advance", "north", "--plan", plan)
    assert opened["gate"]["holds"] is True and opened["overridden"] is False


def test_provisioning_killed_midway_resumes_and_does_no_device_step_twice(
        mdm: Any, pilot: dict[str, Any], lab: Any, tmp_path: Path, db_path: Path) -> None:
    devices = pilot["devices"]
    plan = _plan(tmp_path, on_shift=None)
    mdm("rollout", "advance", "pilot", "--plan", plan)
    facts_before = [_facts_calls(d) for d in devices]
    slow = devices[0]
    lab.lab.fault(slow.serial, "slow", delay=4.0)
    proc = subprocess.Popen([sys.executable, "-m", "mdm", "provision", "--wave", "pilot",
                             "--plan", str(plan)], env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not all(_applied(d) for d in devices[1:]):  # the fast three have their policy
            assert time.monotonic() < deadline, "the fast devices never took their policy"
            assert proc.poll() is None, "provision ended before it could be killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    recorded = rows(db_path, "SELECT step, COUNT(*) FROM provision_steps GROUP BY step")
    assert dict(recorded) == {"refresh": 4, "identity": 4, "trust": 4}  # policy never recorded
    lab.lab.fault(slow.serial, "slow", clear=True)

    resumed = mdm.json("provision", "--wave", "pilot", "--plan", plan)
    assert sorted(resumed["provisioned"]) == sorted(d.serial for d in devices)
    assert [_applied(d) for d in devices] == [1, 1, 1, 1]  # no policy applied twice
    # Facts were read once by the refresh step (before the kill) and once by the compliance
    # step (after): the proven refresh was not redone.
    assert [_facts_calls(d) - b for d, b in zip(devices, facts_before, strict=True)] == [2] * 4
    steps = rows(db_path, "SELECT step, result, COUNT(*) FROM provision_steps"
                          " GROUP BY step, result ORDER BY step")
    assert {(s, r): n for s, r, n in steps} == {
        (s, "ok"): 4 for s in ("refresh", "identity", "trust", "policy", "apps",
                               "compliance", "provision")}
    again = mdm.json("provision", "--wave", "pilot", "--plan", plan)
    assert {d["result"] for d in again["devices"]} == {"already provisioned"}
    assert progress_drift(db_path) == []  # kept through a killed run and its resumption


def test_provisioning_installs_the_builds_released_to_each_devices_channel(
        mdm: Any, pilot: dict[str, Any], tmp_path: Path, apks: dict[str, Path]) -> None:
    enotebook = "uk.police.cumbria.enotebook"
    devices = pilot["devices"]
    plan = _plan(tmp_path, on_shift=None)
    mdm("rollout", "advance", "pilot", "--plan", plan)
    mdm("apps", "add", apks["enotebook-10500"])
    mdm("apps", "release", enotebook, "10500", "--channel", "stable")
    wanted = {d["serial"] for d in mdm.json("apps", "push", "--check")["devices"]
              if d["package"] == enotebook and d["change"]}
    assert wanted  # the pilot's e-notebook users are on the factory build (10402)
    result = mdm.json("provision", "--wave", "pilot", "--plan", plan)
    assert sorted(result["provisioned"]) == sorted(d.serial for d in devices)
    for device in devices:  # the device's own package list, as its package manager keeps it
        versions = dict(line.split()[:2] for line in
                        (device.path / "packages").read_text().splitlines())
        if device.serial in wanted:
            assert versions[enotebook] == "10500", device.serial
    assert mdm.json("apps", "push", "--check")["would_change"] == 0
