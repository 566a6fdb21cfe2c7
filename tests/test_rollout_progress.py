"""Each person's rollout progress, kept by the inventory as it changes (migrations m018,
m019, m020).

`rollout status` counts the funnel from `rollout_progress` instead of reading every
person, assignment, device, training record and handover. The table is kept by triggers,
whoever writes; these tests change each thing a funnel stage depends on — through the
commands that change it, or straight in the database where the command needs the lab
(tests/test_rollout_lab.py checks the same after real enrolment, provisioning and
handover) — and after each change compare the kept table with the same worked out from
the base tables (tests.helpers.progress_drift).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mdm import examples
from mdm.driver import Applied
from mdm.fleet.executor import DeviceResult
from mdm.fleet.transport import Target
from mdm.policies import push
from mdm.runs import record as runs
from mdm.store import transaction
from mdm.store.db import Database
from tests import test_rollout_judgements as judged
from tests.helpers import Raw, progress_drift, rows

pytestmark = pytest.mark.backends
fleet = judged.fleet  # the stored judgements' fixture: six enrolled devices, each held

PLAN = Path(__file__).resolve().parent.parent / "playbooks" / "rollout.yaml"


def _kept(db_path: Path | str) -> None:
    assert progress_drift(db_path) == []


def _raw(db_path: Path | str, sql: str, *args: Any) -> None:
    conn = Raw(db_path)
    with conn:
        conn.execute(sql, args)
    conn.close()


def _funnel(mdm: Any) -> dict[str, dict[str, int]]:
    return {w["wave"]: {k: v["count"] for k, v in w["funnel"].items()}
            for w in mdm.json("rollout", "status", "--plan", PLAN)["waves"]}


def test_the_kept_progress_equals_the_base_tables_after_every_change(
        mdm: Any, inventory: dict[str, Any], db_path: Path | str, files: Any,
        tmp_path: Path) -> None:
    _kept(db_path)  # officers import, enrol import
    people = [p for p in inventory["roster"] if p["status"] == "ACTIVE"
              and p["worker_type"] != "STAFF"][:6]
    ids = [p["officer_id"] for p in people]
    serials = sorted(d["serial_number"] for d in inventory["delivery"])[:6]
    device = {s: rows(db_path, "SELECT id FROM devices WHERE serial = ?", (s,))[0][0]
              for s in serials}
    before = _funnel(mdm)

    for serial, oid in zip(serials[:5], ids[:5], strict=True):  # allocate
        mdm("assign", serial, oid)
    _kept(db_path)
    assert rows(db_path, "SELECT COUNT(*) FROM rollout_progress WHERE allocated = 1") == [(5,)]
    for serial in serials[:4]:  # enrolled (as `enrol devices` records it: needs the lab)
        _raw(db_path, "UPDATE devices SET status = 'enrolled' WHERE id = ?", device[serial])
    _kept(db_path)
    # provisioning steps: a failure, then the step proven; a device provisioned
    _raw(db_path, "INSERT INTO provision_steps (device_id, step, result, detail, at, operator)"
         " VALUES (?, 'policy', 'failed', 'unreachable', '2015-04-01T10:00:00Z', 'admin')",
         device[serials[0]])
    _kept(db_path)
    assert rows(db_path, "SELECT officer_id FROM rollout_progress WHERE failed = 1") == [
        (ids[0],)]
    _raw(db_path, "INSERT INTO provision_steps (device_id, step, result, at, operator)"
         " VALUES (?, 'policy', 'ok', '2015-04-01T11:00:00Z', 'admin')", device[serials[0]])
    _kept(db_path)
    _raw(db_path, "UPDATE devices SET status = 'provisioned' WHERE id = ?", device[serials[1]])
    _kept(db_path)

    mdm("training", "record", ids[1], "--date", "2015-04-01")
    mdm("training", "import", files("trained.csv", "officer,date,trainer,session\n"
                                    f"{ids[2]},2015-04-02,T. Hodgson,pilot-1\n"))
    _kept(db_path)
    # handed over (`mdm handover` needs a compliant device: tests/test_rollout_lab.py)
    assignment = rows(db_path, "SELECT id FROM assignments WHERE device_id = ? AND closed_at"
                      " IS NULL", (device[serials[1]],))[0][0]
    _raw(db_path, "INSERT INTO handovers (assignment_id, device_id, officer_id, handed_over_at,"
         " handed_over_by) VALUES (?, ?, ?, '2015-04-03T09:30:00Z', 'admin')",
         assignment, device[serials[1]], ids[1])
    _kept(db_path)
    assert rows(db_path, "SELECT officer_id, handed_on FROM rollout_progress"
                " WHERE handed_over = 1") == [(ids[1], "2015-04-03")]

    mdm("reassign", serials[1], ids[5], "--reason", "moved to another team")
    _kept(db_path)  # the handover was the old holder's: the new holder's starts again
    assert rows(db_path, "SELECT COUNT(*) FROM rollout_progress WHERE handed_over = 1") == [(0,)]
    mdm("unassign", serials[2], "--reason", "leaving the pilot")
    _kept(db_path)
    mdm("lost", serials[3], "--reported-by", ids[3], "--where", "Kendal", "--lost")
    _kept(db_path)
    mdm("recovered", serials[3], "--note", "found in a patrol car")
    _kept(db_path)
    mdm("return", serials[0], "--reason", "leaver")
    _kept(db_path)

    # The roster changes: a leaver, a move to another area, a move to police staff.
    roster = [dict(p) for p in inventory["roster"]]
    for person in roster:
        if person["officer_id"] == ids[0]:
            person["status"] = "LEAVER"
        elif person["officer_id"] == ids[5]:
            person["area"] = "SOUTH" if person["area"] != "SOUTH" else "NORTH"
        elif person["officer_id"] == ids[2]:
            person["worker_type"], person["rank"] = "STAFF", ""
    mdm("officers", "import", files("roster2.csv", roster, examples.ROSTER_COLUMNS))
    _kept(db_path)
    # Whether a person is in any group is kept; which groups the plan names is read.
    mdm("groups", "create", "pilot")
    mdm("groups", "add", "pilot", ids[5])
    _kept(db_path)
    assert rows(db_path, "SELECT officer_id FROM rollout_progress WHERE grouped = 1") == [
        (ids[5],)]
    after = _funnel(mdm)
    assert after["pilot"]["cohort"] == 1 and after["pilot"]["allocated"] == 1
    assert after != before
    mdm("groups", "remove", "pilot", ids[5], "--reason", "back to response")
    _kept(db_path)


def test_a_copied_inventory_keeps_the_same_progress(mdm: Any, inventory: dict[str, Any],
                                                    db_path: Path | str,
                                                    tmp_path: Path) -> None:
    # Only commands here: a row written behind mdm's back would not verify, and a copy
    # is refused from an inventory that does not.
    people = [p["officer_id"] for p in inventory["roster"] if p["status"] == "ACTIVE"
              and p["worker_type"] != "STAFF"][:3]
    serials = sorted(d["serial_number"] for d in inventory["delivery"])[:3]
    for serial, oid in zip(serials, people, strict=True):
        mdm("assign", serial, oid)
    mdm("training", "record", people[0], "--date", "2015-04-01")
    mdm("unassign", serials[2], "--reason", "leaving the pilot")
    _kept(db_path)
    # The copy's own triggers fill it as the rows it derives from arrive; the copy is
    # proven table by table, this one included.
    copy = tmp_path / "copy.db"
    result = mdm.json("inventory", "copy", str(db_path), str(copy))
    assert result["tables"]["rollout_progress"]["rows"] == len(inventory["roster"])
    _kept(copy)
    assert sorted(rows(copy, "SELECT * FROM rollout_progress")) == sorted(
        tuple(r) for r in rows(db_path, "SELECT * FROM rollout_progress"))


def _judged(db_path: Path | str, device: int) -> Any:
    return rows(db_path, "SELECT judged_key, judged_compliant FROM rollout_progress"
                " WHERE device_id = ?", (device,))[0]


def test_the_kept_judgements_equal_the_base_tables_after_every_change(
        mdm: Any, fleet: dict[str, Any], db_path: Path | str) -> None:
    """Each held device's serial and stored judgement where it still matches the device
    (m019): kept as judgements are stored, rewritten and deleted, and as the device's last
    seen, last contact error and status change."""
    ids = {s: d for d, s in fleet["ids"].items()}
    first, second, third, fourth = (ids[s] for s in fleet["serials"][:4])
    _kept(db_path)  # serials, nothing judged yet
    assert rows(db_path, "SELECT COUNT(*) FROM rollout_progress WHERE device_id IS NOT NULL"
                " AND serial IS NOT NULL AND judged_key IS NULL") == [(6,)]
    assert judged._stored(fleet) == 6  # written through the store
    _kept(db_path)
    assert _judged(db_path, first) == (
        fleet["db"].scalar("SELECT policy_key FROM device_judgements WHERE device_id = ?",
                           [first]), 1)
    # The device changes under its judgement: last seen, a contact error, quarantined.
    _raw(db_path, "UPDATE devices SET last_seen = '2015-04-01T10:00:00Z' WHERE id = ?", first)
    _kept(db_path)
    assert _judged(db_path, first) == (None, None)
    _raw(db_path, "UPDATE devices SET last_contact_error = 'timed out' WHERE id = ?", second)
    _kept(db_path)
    assert _judged(db_path, second) == (None, None)
    _raw(db_path, "UPDATE devices SET status = 'quarantined' WHERE id = ?", third)
    _kept(db_path)
    assert _judged(db_path, third) == (None, None)
    _raw(db_path, "UPDATE devices SET status = 'enrolled' WHERE id = ?", third)
    _kept(db_path)  # not quarantined, as when it was judged: it holds again
    assert _judged(db_path, third)[0] is not None
    # Judged again (the stored row rewritten): it holds once more.
    assert judged._stored(fleet) == 6
    _kept(db_path)
    assert _judged(db_path, first)[0] is not None and _judged(db_path, second)[0] is not None
    # New facts delete a judgement.
    conn = Raw(db_path)
    with conn:
        judged._facts(conn, fleet["serials"][3], fleet["shas"][fleet["serials"][3]],
                      crypto_state="unencrypted")
    conn.close()
    _kept(db_path)
    assert _judged(db_path, fourth) == (None, None)
    people = [p["officer_id"] for p in fleet["people"]]
    # A device with another holder: its serial and judgement go with it.
    mdm("unassign", fleet["serials"][4], "--reason", "leaving the pilot")
    mdm("reassign", fleet["serials"][0], people[4], "--reason", "moved to another team")
    _kept(db_path)
    assert rows(db_path, "SELECT officer_id FROM rollout_progress WHERE device_id = ?",
                (first,)) == [(people[4],)]
    _raw(db_path, "DELETE FROM device_judgements")
    _kept(db_path)
    assert rows(db_path, "SELECT COUNT(*) FROM rollout_progress"
                " WHERE judged_key IS NOT NULL") == [(0,)]


def _rewrites(db: Database, write: Callable[[], None]) -> int:
    """Run `write` in one transaction; return how many rollout_progress rows it rewrote
    (updated, or deleted to be put back: an UPDATE that leaves a row as it was counts, it
    writes the row again)."""
    pg = db.dialect.name == "postgresql"
    if not pg:  # counted by triggers of this connection alone
        db.execute("CREATE TEMP TABLE IF NOT EXISTS progress_rewrites (officer_id TEXT)")
        for event, row in (("UPDATE", "NEW"), ("DELETE", "OLD")):
            db.execute(f"CREATE TEMP TRIGGER IF NOT EXISTS progress_{event.lower()}d AFTER"
                       f" {event} ON main.rollout_progress BEGIN INSERT INTO progress_rewrites"
                       f" VALUES ({row}.officer_id); END")
    count = ("SELECT COALESCE(SUM(n_tup_upd + n_tup_del), 0) FROM pg_stat_xact_user_tables"
             " WHERE relname = 'rollout_progress'" if pg
             else "SELECT COUNT(*) FROM progress_rewrites")
    with transaction(db):
        before = int(db.scalar(count))
        write()
        return int(db.scalar(count)) - before


def test_recording_a_push_keeps_the_judged_progress_rewriting_only_what_changes(
        fleet: dict[str, Any], db_path: Path | str) -> None:
    """A push's recording (m020): a device that took its policy (its contact and facts
    written), one found already running it (its policy alone), one that did not answer
    (its contact error): each held person's judged columns still equal the base tables,
    and a person's row is written only when they change."""
    db, shas = fleet["db"], fleet["shas"]
    ids = {s: d for d, s in fleet["ids"].items()}
    took, running, silent, unjudged = fleet["serials"][:4]
    assert judged._stored(fleet) == 6
    _raw(db_path, "UPDATE devices SET host_key = 'ssh-ed25519 AAAAC3Nza' WHERE id = ?",
         ids[silent])  # an enrolled device's pinned key: its failed contact is recorded
    _kept(db_path)

    def row(serial: str) -> dict[str, Any]:
        found = db.query("SELECT * FROM devices WHERE id = ?", [ids[serial]])[0]
        return {**found, "compiled": SimpleNamespace(sha256=shas[serial],
                                                     document={"name": "baseline"})}

    outcome, unchanged = runs.Outcome(), list[str]()
    status = {"state": "APPLIED", "nonComplianceDetails": []}

    def recorded(serial: str, changed: bool, at: str) -> Callable[[], None]:
        return lambda: push.record_applied(db, "admin", row(serial), Applied(
            changed, {**status, "policySha256": shas[serial]}, shas[serial]), at, outcome,
            unchanged)

    assert _rewrites(db, recorded(took, True, "2015-05-01T10:00:00Z")) == 1
    _kept(db_path)
    assert _judged(db_path, ids[took]) == (None, None)  # seen since it was judged

    _raw(db_path, "UPDATE devices SET applied_policy = NULL WHERE id = ?", ids[running])
    assert _rewrites(db, recorded(running, False, "2015-05-01T10:01:00Z")) == 0
    _kept(db_path)  # its policy recorded, its contact not: the judgement holds
    assert _judged(db_path, ids[running])[0] is not None and unchanged == [running]

    failed = DeviceResult(Target(silent, "", 0), error="timed out", error_kind="timeout")
    assert _rewrites(db, lambda: runs.record_failure(
        db, "admin", row(silent), failed, "2015-05-01T10:02:00Z")) == 1
    _kept(db_path)
    assert _judged(db_path, ids[silent]) == (None, None)  # a contact error since

    _raw(db_path, "DELETE FROM device_judgements WHERE device_id = ?", ids[unjudged])
    _kept(db_path)
    assert _rewrites(db, recorded(unjudged, True, "2015-05-01T10:03:00Z")) == 0
    _kept(db_path)  # nothing judged before or after: the row is left as it was
    assert [d["serial"] for d in outcome.done] == [took, unjudged]


def test_a_roster_update_recomputes_a_person_only_when_their_row_reads_what_changed(
        fleet: dict[str, Any], db_path: Path | str) -> None:
    """m020: an update of a person's roster row that sets the columns their progress reads
    to what they were (as a re-import does when only an e-mail changed) leaves their row
    alone; a new area recomputes it."""
    db = fleet["db"]
    who = fleet["people"][0]["officer_id"]
    assert _rewrites(db, lambda: db.execute(
        "UPDATE officers SET email = ?, area = area, station = station, status = status"
        " WHERE officer_id = ?", ["new.address@police.example", who])) == 0
    _kept(db_path)
    assert _rewrites(db, lambda: db.execute(
        "UPDATE officers SET area = ? WHERE officer_id = ?", ["EAST", who])) > 0
    _kept(db_path)
    assert rows(db_path, "SELECT area FROM rollout_progress WHERE officer_id = ?",
                (who,)) == [("EAST",)]


def test_the_gate_counts_stored_judgements_per_kind_as_judging_each_device_live_counts(
        mdm: Any, fleet: dict[str, Any], db_path: Path | str) -> None:
    """The compliance figure: stored judgements that hold counted per kind of holder, the
    rest judged live — the same figure as with nothing stored, whatever changed."""
    mdm("groups", "create", "pilot")
    for person in fleet["people"]:
        mdm("groups", "add", "pilot", person["officer_id"])
    mdm("rollout", "advance", "pilot", "--plan", PLAN)
    shas = {r["serial"]: r["to"] for r in mdm.json("policy", "push", "--check")["devices"]}
    old_patch = (datetime.now(UTC).date() - timedelta(days=30)).isoformat()
    conn = Raw(db_path)
    with conn:
        for serial in fleet["serials"]:
            judged._facts(conn, serial, shas[serial], security_patch=old_patch)
        first = fleet["serials"][0]
        judged._facts(conn, first, shas[first], security_patch=old_patch,
                      crypto_state="unencrypted")
    conn.close()

    def live() -> str:  # with nothing stored, every device is judged live
        stored = fleet["db"].query("SELECT * FROM device_judgements")
        with transaction(fleet["db"]):
            fleet["db"].execute("DELETE FROM device_judgements")
        figure = judged._compliant_figure(mdm)
        if stored:  # put back as they were
            columns = list(stored[0])
            with transaction(fleet["db"]):
                fleet["db"].executemany(
                    f"INSERT INTO device_judgements ({', '.join(columns)})"
                    f" VALUES ({', '.join('?' for _ in columns)})",
                    [tuple(r.values()) for r in stored])
        return figure

    assert live().startswith("5 of 6 enrolled devices compliant")
    assert judged._stored(fleet) == 6
    assert judged._compliant_figure(mdm) == live()
    # A layer naming one device: that device is resolved by itself; its stored
    # judgement (judged against the old policy) no longer holds.
    (fleet["folder"] / "50-device.yaml").write_text(
        f"layer: camera-fault\nkind: device\nmatch: [{fleet['serials'][1]}]\n"
        "reason: camera module faulty\nexpires: 2099-06-30\nsettings:\n  camera: disabled\n")
    assert judged._compliant_figure(mdm) == live()
    assert judged._compliant_figure(mdm).startswith("4 of 6")  # its facts say the old policy
    # A policy edit: every stored policy key is stale, every device judged live.
    baseline = fleet["folder"] / "00-baseline.yaml"
    text = baseline.read_text()
    assert "max_patch_age_days: 45" in text
    baseline.write_text(text.replace("max_patch_age_days: 45", "max_patch_age_days: 20"))
    assert judged._compliant_figure(mdm) == live()
    assert judged._compliant_figure(mdm).startswith("0 of 6")
