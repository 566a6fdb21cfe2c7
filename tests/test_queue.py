"""The command queue's rules through a fake driver: supersede, expiry, approval, burst,
redelivery by id, and a new host key after a wipe — fast, and no sshd anywhere."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mdm import examples
from mdm.errors import InputError, PartialFailure
from mdm.fleet.transport import Target
from mdm.queue.deliver import Env
from tests.fakes import FakeDriver, FakeDrivers, fake_key_line

pytestmark = pytest.mark.backends

ROOT = Path(__file__).resolve().parent.parent
ENV = Env(ROOT / "playbooks" / "policies")


ROSTER = examples.generate_roster(60, seed=7)
DELIVERY = examples.generate_manifest(20, seed=11)
SERIALS = [r["serial_number"] for r in DELIVERY[:6]]


def _drivers() -> FakeDrivers:
    return FakeDrivers({r["serial_number"]: FakeDriver(
        Target(r["serial_number"], f"10.9.0.{i + 1}"),
        {"ro.serialno": r["serial_number"], "ro.product.manufacturer": r["manufacturer"],
         "ro.product.model": r["model"], "ro.crypto.state": "encrypted"},
        fake_key_line(r["serial_number"])) for i, r in enumerate(DELIVERY[:6])})


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An inventory built once: an admin, two helpdesk operators, a 60-person roster, a
    20-device delivery and six devices enrolled behind fake drivers."""
    import sqlite3

    from typer.testing import CliRunner

    from mdm.cli import app
    from mdm.enrol import service
    from mdm.fleet.keys import fingerprint_of_line
    from mdm.store import connect

    folder = tmp_path_factory.mktemp("queue-template")
    path = folder / "mdm.db"
    project = folder / "mdm.toml"
    project.write_text(f'policies = "{ENV.policies}"\n[policy]\nenterprise_id = "LC04test"\n')
    roster, manifest = folder / "roster.csv", folder / "manifest.csv"
    examples.write_csv(roster, ROSTER, examples.ROSTER_COLUMNS)
    examples.write_csv(manifest, DELIVERY, examples.MANIFEST_COLUMNS)
    names = ("MDM_DB", "MDM_OPERATOR", "MDM_CONFIG")
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update(MDM_DB=str(path), MDM_OPERATOR="admin", MDM_CONFIG=str(project))
    try:
        runner = CliRunner()
        for args in (["operators", "add", "admin"],
                     ["operators", "add", "hd", "--role", "helpdesk"],
                     ["operators", "add", "hd2", "--role", "helpdesk"],
                     ["officers", "import", str(roster)], ["enrol", "import", str(manifest)]):
            result = runner.invoke(app, args)
            assert result.exit_code == 0, result.output
        drivers = _drivers()
        db = connect(path)
        service.enrol(db, "admin", [service.Request(s, f"10.9.0.{i + 1}:22",
                                                    fingerprint_of_line(
                                                        drivers.devices[s].key_line))
                                    for i, s in enumerate(SERIALS)], drivers)
        db.conn.close()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


@pytest.fixture
def fleet(template: Path) -> Iterator[tuple[Any, FakeDrivers, list[str]]]:
    """This test's copy of the template inventory, its six devices behind fake drivers."""
    import shutil

    from mdm.store import connect

    target = os.environ["MDM_DB"]
    if target.startswith("postgresql://"):
        from mdm.store.transfer import copy

        copy(template, target, replace=True)
    else:
        shutil.copy2(template, target)
    db = connect(target)
    yield db, _drivers(), list(SERIALS)
    db.conn.close()


def _run(db: Any, drivers: FakeDrivers) -> dict[str, Any]:
    from mdm.queue.run import run_once

    try:
        return run_once(db, "admin", drivers, ENV)
    except PartialFailure as exc:
        assert isinstance(exc.result, dict)
        return exc.result


def _states(db: Any, serial: str) -> list[tuple[str, str]]:
    return [tuple(r) for r in db.execute(
        "SELECT kind, state FROM commands c JOIN devices d ON d.id = c.device_id"
        " WHERE d.serial = ? ORDER BY c.created_at, c.kind", [serial])]


def test_fifty_queued_pushes_to_an_offline_device_collapse_to_one(
        mdm: Any, fleet: Any) -> None:
    from mdm.queue import service

    db, drivers, serials = fleet
    for _ in range(50):
        service.queue_policy(db, "admin", [serials[0]])
    states = _states(db, serials[0])
    assert states.count(("policy", "queued")) == 1
    assert states.count(("policy", "superseded")) == 49
    listed = mdm("queue", "list", serials[0], "--format", "csv", "--limit", "3").stdout
    assert listed.splitlines()[0].startswith("id,serial,kind,state")
    assert len(listed.splitlines()) == 4  # a header and three of the fifty
    offline = drivers.devices.pop(serials[0])
    result = _run(db, drivers)
    assert [w["serial"] for w in result["waiting"]] == [serials[0]]
    assert _states(db, serials[0]).count(("policy", "queued")) == 1  # waits, not failed
    drivers.devices[serials[0]] = offline
    result = _run(db, drivers)
    assert [(d["serial"], d["kind"]) for d in result["done"]] == [(serials[0], "policy")]
    assert offline.calls.count("apply_policy") == 1
    applied = db.scalar("SELECT applied_policy FROM devices WHERE serial = ?", [serials[0]])
    assert applied == (offline.dpc or {}).get("policySha256")


def test_an_expired_lock_is_never_sent(fleet: Any) -> None:
    from mdm.queue import service

    db, drivers, serials = fleet
    from mdm.store import transaction

    with transaction(db):
        device = db.query("SELECT id, serial FROM devices WHERE serial = ?", [serials[1]])[0]
        lock = service.enqueue(db, "admin", device, "lock")
    db.execute("UPDATE commands SET expires_at = '2000-01-01T00:00:00.000000Z' WHERE id = ?",
               [lock["id"]])
    result = _run(db, drivers)
    assert result["expired"] == [lock["id"]]
    assert "lock" not in drivers.devices[serials[1]].calls
    assert _states(db, serials[1]) == [("lock", "expired")]


def test_a_wipe_cancels_what_was_queued_before_it_but_not_its_own_lock(mdm: Any,
                                                                         fleet: Any) -> None:
    from mdm.queue import service

    db, drivers, serials = fleet
    service.queue_policy(db, "admin", [serials[2]])
    result = mdm.json("lost", serials[2], "--stolen", "--reported-by", _officer(db),
                      "--where", "Penrith", "--crime-ref", "CR/1/26", operator="hd")
    assert _states(db, serials[2]) == [("policy", "cancelled"), ("lock", "queued"),
                                       ("wipe", "queued")]
    assert result["wipe_needs_approval"] is True and result["dp_deadline"] > result["known_at"]
    db.execute("UPDATE commands SET expires_at = '2000-01-01T00:00:00.000000Z' WHERE id = ?",
               [result["wipe"]])
    refused = mdm("incidents", "approve-wipe", str(result["incident"]), operator="hd2", code=2)
    assert "expired" in refused.stderr
    assert db.scalar("SELECT approved_by FROM commands WHERE id = ?", [result["wipe"]]) is None


def _officer(db: Any) -> str:
    return str(db.scalar("SELECT payroll_no FROM officers ORDER BY officer_id LIMIT 1"))


def test_stolen_wipe_waits_for_a_second_operator_then_reaches_the_device(mdm: Any,
                                                                          fleet: Any) -> None:
    db, drivers, serials = fleet
    serial = serials[3]
    r = mdm.json("lost", serial, "--stolen", "--reported-by", _officer(db), "--where", "Kendal",
                 operator="hd")
    result = _run(db, drivers)
    assert [d["kind"] for d in result["done"]] == ["lock"]  # the wipe waits for approval
    refused = mdm("incidents", "approve-wipe", str(r["incident"]), operator="hd", code=2)
    assert "cannot approve it" in refused.stderr
    assert db.scalar("SELECT approved_by FROM commands WHERE id = ?", [r["wipe"]]) is None
    mdm("incidents", "approve-wipe", str(r["incident"]), operator="hd2")
    device = drivers.devices[serial]
    result = _run(db, drivers)
    assert [d["kind"] for d in result["done"]] == ["wipe"]
    assert sorted(device.carried_out.values()) == ["lock", "wipe"]
    assert db.scalar("SELECT status FROM devices WHERE serial = ?", [serial]) == "wiped"
    again = mdm("incidents", "approve-wipe", str(r["incident"]), operator="hd2", code=2)
    assert "is done" in again.stderr
    incident = mdm.json("incidents")[0]
    assert incident["state"] == "wiped" and [c["state"] for c in incident["commands"]] == [
        "done", "done"]


def test_the_sixth_wipe_request_in_a_minute_is_held_for_an_admin(mdm: Any,
                                                                 fleet: Any) -> None:
    from mdm.helpdesk import service

    db, drivers, serials = fleet
    held = [service.lost(db, "hd", s, True, _officer(db), "X")["wipe_held"] for s in serials]
    assert held[:5] == [None] * 5 and "held for an admin's review" in held[5]
    for i in range(1, 7):
        service.approve_wipe(db, "hd2", str(i))
    result = _run(db, drivers)
    wiped = sorted(d["serial"] for d in result["done"] if d["kind"] == "wipe")
    assert wiped == sorted(serials[:5])
    wipe = db.scalar("SELECT id FROM commands WHERE kind = 'wipe' AND held_reason IS NOT NULL")
    assert "needs the admin role" in mdm("queue", "release", wipe, "--note", "checked",
                                         operator="hd", code=2).stderr
    mdm("queue", "release", wipe[:8], "--note", "checked with the officer")
    result = _run(db, drivers)
    assert [(d["serial"], d["kind"]) for d in result["done"]] == [(serials[5], "wipe")]


def test_a_sent_command_is_redelivered_by_id_and_never_done_twice(fleet: Any) -> None:
    from mdm.queue import service
    from mdm.store import transaction

    db, drivers, serials = fleet
    serial = serials[4]
    device = db.query("SELECT id, serial FROM devices WHERE serial = ?", [serial])[0]
    with transaction(db):
        lock = service.enqueue(db, "admin", device, "lock")
        wipe = service.enqueue(db, "admin", device, "wipe", then_status="wiped")
    fake = drivers.devices[serial]
    # A pass that sent both and was killed before recording: the device did them.
    fake.closed = False
    fake.lock(lock["id"])
    fake.wipe(wipe["id"])
    db.execute("UPDATE commands SET state = 'sent', attempts = 1 WHERE device_id = ?",
               [device["id"]])
    result = _run(db, drivers)
    answers = {d["kind"]: d["answer"] for d in result["done"]}
    assert answers == {"wipe": "wipe already-done"}  # reached with its new key, for the wipe only
    assert fake.calls.count("wipe") == 2 and len(fake.carried_out) == 2
    row = db.query("SELECT status, last_contact_error FROM devices WHERE serial = ?", [serial])
    assert row[0]["status"] == "wiped" and "re-enrol" in row[0]["last_contact_error"]


def test_a_changed_key_with_no_wipe_on_record_is_still_refused(mdm: Any, fleet: Any) -> None:
    db, drivers, serials = fleet
    lost, enrolled = serials[0], serials[1]
    mdm("lost", lost, "--lost", "--reported-by", _officer(db), "--where", "Ambleside",
        operator="hd")
    from mdm.queue import service

    service.queue_policy(db, "admin", [enrolled])
    for serial in (lost, enrolled):
        drivers.devices[serial].key_line = fake_key_line(serial + "-impostor")
    result = _run(db, drivers)
    assert result["done"] == []
    statuses = dict(db.execute("SELECT serial, status FROM devices WHERE serial IN (?, ?)",
                               [lost, enrolled]).fetchall())
    assert statuses == {lost: "lost", enrolled: "quarantined"}
    assert ("lock", "queued") in _states(db, lost)


def test_bad_helpdesk_input_changes_nothing(mdm: Any, fleet: Any, db_path: Path) -> None:
    from tests.helpers import db_fingerprint

    db, drivers, serials = fleet
    before = db_fingerprint(db_path)
    officer = _officer(db)
    assert "no device" in mdm("lost", "NOPE123", "--lost", "--reported-by", officer,
                              "--where", "x", operator="hd", code=2).stderr
    assert "in the future" in mdm("lost", serials[0], "--lost", "--reported-by", officer,
                                  "--where", "x", "--when", "2999-01-01T10:00Z",
                                  operator="hd", code=2).stderr
    assert "never reported lost" in mdm("recovered", serials[0], "--note", "x",
                                        operator="hd", code=2).stderr
    assert "not a return reason" in mdm("return", serials[0], "--reason", "bored",
                                        operator="hd", code=2).stderr
    unenrolled = db.execute("SELECT serial FROM devices WHERE status = 'delivered'"
                            " LIMIT 1").fetchone()[0]
    never = mdm("return", unenrolled, "--reason", "leaver", operator="hd", code=2).stderr
    assert "is delivered" in never and "mdm unassign" in never
    assert "not provisioned" in mdm("replace", serials[0], "--with", serials[1], "--reason",
                                    "broken", operator="hd", code=2).stderr
    mdm("operators", "add", "it1", "--role", "it")
    before = db_fingerprint(db_path)
    assert "needs the admin or helpdesk role" in mdm(
        "lost", serials[0], "--lost", "--reported-by", officer, "--where", "x",
        operator="it1", code=2).stderr
    assert db_fingerprint(db_path) == before
    mdm("lost", serials[0], "--lost", "--reported-by", officer, "--where", "x", operator="hd")
    after = db_fingerprint(db_path)
    assert "already lost" in mdm("lost", serials[0], "--stolen", "--reported-by", officer,
                                 "--where", "x", operator="hd", code=2).stderr
    assert db_fingerprint(db_path) == after


def test_expiry_and_grace_come_from_the_project_file(mdm: Any, fleet: Any) -> None:
    project = Path(os.environ["MDM_CONFIG"])
    project.write_text(project.read_text() + '[queue.expiry]\nlock = "2h"\n'
                       '[helpdesk]\nlost_wipe_after = "90m"\nwipe_approval = false\n')
    db, drivers, serials = fleet
    r = mdm.json("lost", serials[0], "--lost", "--reported-by", _officer(db), "--where", "x",
                 operator="hd")
    rows = {k: (nb, exp, ap) for k, nb, exp, ap in db.execute(
        "SELECT kind, not_before, expires_at, needs_approval FROM commands")}
    from mdm.queue.service import plus

    opened = db.scalar("SELECT opened_at FROM incidents WHERE id = ?", [r["incident"]])
    assert rows["lock"] == (None, plus(opened, 7200), 0)
    assert rows["wipe"][0] == plus(opened, 5400) and rows["wipe"][2] == 0
    project.write_text(project.read_text().replace('lock = "2h"', 'instal = "2h"'))
    with pytest.raises(InputError):
        from mdm import config

        config.load()


def test_a_new_holder_or_group_queues_the_policy_push_and_devices_show_says_so(
        mdm: Any, fleet: Any) -> None:
    db, drivers, serials = fleet
    people = [p["officer_id"] for p in ROSTER if p["status"] == "ACTIVE"]
    mdm("assign", serials[0], people[0])
    shown = mdm.json("devices", "show", serials[0])
    assert [(q["kind"], q["state"]) for q in shown["queue"]] == [("policy", "queued")]
    mdm("reassign", serials[0], people[1], "--reason", "moved to CID")
    mdm("groups", "create", "pilot")
    mdm("groups", "add", "pilot", people[1])
    assert _states(db, serials[0]) == [("policy", "superseded"), ("policy", "superseded"),
                                       ("policy", "queued")]
    from mdm.policies import push

    push.push(db, "admin", ENV.policies, [serials[1]], drivers)  # a direct push settles it
    assert _states(db, serials[1]) == []
    mdm("assign", serials[1], people[3])
    push.push(db, "admin", ENV.policies, [serials[1]], drivers)
    assert _states(db, serials[1]) == [("policy", "superseded")]
    result = _run(db, drivers)
    assert [(d["serial"], d["kind"]) for d in result["done"]] == [(serials[0], "policy")]
    assert mdm.json("devices", "show", serials[0])["queue"] == []
    assert drivers.devices[serials[0]].calls.count("apply_policy") == 1


def test_a_returned_device_goes_to_stock_repair_or_retirement_once_its_wipe_is_confirmed(
        mdm: Any, fleet: Any) -> None:
    db, drivers, serials = fleet
    people = [p["officer_id"] for p in ROSTER if p["status"] == "ACTIVE"]
    mdm("assign", serials[0], people[0])
    leaver = mdm.json("return", serials[0], "--reason", "leaver", operator="hd")
    fault = mdm.json("return", serials[1], "--reason", "fault", operator="hd")
    assert leaver["previous_holder"]["officer_id"] == people[0]
    assert "already being returned" in mdm("return", serials[0], "--reason", "leaver",
                                           operator="hd", code=2).stderr
    assert _run(db, drivers)["done"] == []  # both wait for a second operator
    mdm("queue", "cancel", fault["wipe"][:8], "--reason", "repair without a wipe")
    assert "is cancelled" in mdm("incidents", "approve-wipe", str(fault["incident"]),
                                 operator="hd2", code=2).stderr
    mdm("incidents", "approve-wipe", str(leaver["incident"]), operator="hd2")
    assert [d["serial"] for d in _run(db, drivers)["done"]] == [serials[0]]
    statuses = dict(db.execute("SELECT serial, status FROM devices WHERE serial IN (?, ?)",
                               serials[:2]).fetchall())
    assert statuses == {serials[0]: "wiped", serials[1]: "enrolled"}
    assert [i["state"] for i in mdm.json("incidents")] == ["open", "closed"]
    assert [i["id"] for i in mdm.json("incidents", "--open")] == [fault["incident"]]
    history = mdm.json("custody", "--officer", people[0])["custody"]
    assert history[-1]["close_reason"] == "returned: leaver"
    mdm("audit", "verify")


def test_a_broken_policy_tree_never_holds_back_a_lock(mdm: Any, fleet: Any,
                                                       tmp_path: Path) -> None:
    from mdm.queue import service
    from mdm.queue.run import run_once

    db, drivers, serials = fleet
    service.queue_policy(db, "admin", [serials[0]])
    mdm("lost", serials[1], "--lost", "--reported-by", _officer(db), "--where", "x",
        operator="hd")
    broken = tmp_path / "policies"
    broken.mkdir()
    (broken / "00-base.yaml").write_text("this: [is not a policy\n")
    with pytest.raises(PartialFailure) as caught:
        run_once(db, "admin", drivers, Env(broken))
    result = caught.value.result
    assert [d["kind"] for d in result["done"]] == ["lock"]
    assert [h["kind"] for h in result["held_back"]] == ["policy"]
    assert _states(db, serials[0]) == [("policy", "queued")]


def test_queue_run_every_stops_cleanly_on_sigterm(fleet: Any) -> None:
    import select
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([str(Path(sys.executable).parent / "mdm"), "queue", "run",
                             "--every", "30"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        deadline, first = time.monotonic() + 30, ""
        while "delivered" not in first and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], 0.5)
            if ready:
                first = proc.stderr.readline()
        assert "delivered" in first  # one pass done; now it waits for the next
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, err
    assert "stopped after 1 pass(es)" in err


def test_incidents_show_the_deadline_overdue_and_a_never_enrolled_device_gets_no_commands(
        mdm: Any, fleet: Any) -> None:
    db, drivers, serials = fleet
    never = DELIVERY[10]["serial_number"]  # delivered, never enrolled
    refused = mdm("lost", never, "--lost", "--reported-by", _officer(db), "--where", "depot",
                  "--when", "2020-01-01T10:00Z", operator="hd", code=2)
    assert "before device" in refused.stderr and "was delivered" in refused.stderr
    # A device delivered years ago, lost long since (its delivery date is not evidence).
    db.execute("UPDATE devices SET created_at = '2019-06-01T00:00:00.000000Z'"
               " WHERE serial = ?", [never])
    r = mdm.json("lost", never, "--lost", "--reported-by", _officer(db), "--where", "depot",
                 "--when", "2020-01-01T10:00Z", operator="hd")
    assert (r["lock"], r["wipe"]) == (None, None)
    assert r["dp_deadline"] == "2020-01-04T10:00:00.000000Z"
    [incident] = mdm.json("incidents", "--open")
    assert incident["overdue"] is True and incident["hours_left"] < -24 * 365
    piped = mdm("incidents").stdout.splitlines()  # a pipe gets TSV: a header, a line each
    assert piped[0].split("\t")[:4] == ["id", "serial", "kind", "state"]
    assert len(piped) == 2 and "OVERDUE by" in piped[1] and "depot" in piped[1]
    back = mdm.json("recovered", never, "--note", "in the stores", operator="hd")
    assert back["status"] == "delivered"
    assert mdm.json("incidents", "--open") == []
    [closed] = mdm.json("incidents")  # closed: no time left to run, nothing overdue
    assert (closed["state"], closed["hours_left"], closed["overdue"]) == ("recovered", None,
                                                                         False)


def test_a_wipe_cancels_what_was_queued_before_it_but_a_lock_of_its_own_incident(
        fleet: Any) -> None:
    from mdm.devices import service as devices
    from mdm.queue import service
    from mdm.store import incidents, transaction
    from mdm.timeutil import now

    db, _, serials = fleet
    kept = {}
    # (the lock's incident, the wipe's incident): the lock stays only when they are one.
    for serial, (lock_of, wipe_of) in zip(serials[1:5], [("lost", "lost"), (None, "lost"),
                                                         ("lost", None), (None, None)],
                                          strict=True):
        device = devices.get(db, serial)
        at = now()
        with transaction(db):
            lost = incidents.insert(db, {"device_id": device["id"], "kind": "lost",
                                         "known_at": at, "opened_at": at,
                                         "opened_by": "admin"})
            assert lost == db.scalar("SELECT max(id) FROM incidents")  # its own new id
            ids = {None: None, "lost": lost}
            policy = service.enqueue(db, "admin", device, "policy")
            lock = service.enqueue(db, "admin", device, "lock", incident_id=ids[lock_of])
            wipe = service.enqueue(db, "admin", device, "wipe", incident_id=ids[wipe_of])
        assert policy["id"] in wipe["cancelled"]
        kept[(lock_of, wipe_of)] = lock["id"] not in wipe["cancelled"]
        assert db.scalar("SELECT state FROM commands WHERE id = ?", [lock["id"]]) == (
            "queued" if kept[(lock_of, wipe_of)] else "cancelled")
    assert kept == {("lost", "lost"): True, (None, "lost"): False, ("lost", None): False,
                    (None, None): True}
