"""The store's ways of sparing PostgreSQL round trips, run on both backends alike.

A deferred write (`db.defer`) runs before the next statement sees the inventory, and its
failure rolls the whole transaction back and is named as any other; rows of one kind
(`db.defer_rows`: a push's device writes, audit rows) go in one statement, in their order
and after the writes deferred before them; long lists of values
go as one array; a bulk allocation keys its rows in order; rows are read in blocks; a
bulk load is vacuumed after its commit. SQLite runs the same calls at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mdm.errors import MdmError
from mdm.store import audit, connect, transaction
from mdm.store import custody as custody_rows
from mdm.store import devices as device_rows
from mdm.store import officers as officer_rows
from mdm.store import policies as policy_rows
from mdm.store import queue as queue_rows
from mdm.store.db import Database
from mdm.store.failures import is_constraint

STAMP = "2026-01-01T00:00:00Z"
OFFICER = ("INSERT INTO officers (officer_id, payroll_no, collar_number, forename, surname,"
           " worker_type, status, created_at, updated_at) VALUES (?, ?, ?, 'Ann', ?,"
           " 'OFFICER', 'ACTIVE', ?, ?)")
DEVICE = ("INSERT INTO devices (serial, imei1, manufacturer, model, status_changed_at,"
          " created_at) VALUES (?, ?, 'Samsung', 'SM-G991B', ?, ?)")
ASSIGN = ("INSERT INTO assignments (device_id, officer_id, opened_at, opened_by, open_reason)"
          " VALUES (?, ?, ?, 'admin', 'issue')")


@pytest.fixture
def db(backend: str) -> Iterator[Database]:
    inventory = connect(backend)
    yield inventory
    inventory.conn.close()


def _people(count: int) -> list[tuple[Any, ...]]:
    return [(f"O{i:05d}", f"P{i:05d}", f"C{i:05d}", f"Smith{i:05d}", STAMP, STAMP)
            for i in range(count)]


def _devices(count: int) -> list[tuple[Any, ...]]:
    return [(f"R{i:05d}", f"35{i:013d}", STAMP, STAMP) for i in range(count)]


def _stock(db: Database, people: int, devices: int) -> None:
    with transaction(db):
        db.executemany(OFFICER, _people(people))
        db.executemany(DEVICE, _devices(devices))
        audit.record(db, "admin", "test.stock", "inventory")


def test_a_deferred_write_is_seen_by_the_next_statement(db: Database) -> None:
    with transaction(db):
        db.defer(OFFICER, ["O1", "P1", "C1", "Jones", STAMP, STAMP])
        db.defer("UPDATE officers SET surname = ? WHERE officer_id = ?", ["Brown", "O1"])
        assert db.scalar("SELECT surname FROM officers WHERE officer_id = ?", ["O1"]) == "Brown"
        db.defer("UPDATE officers SET rank = :rank WHERE officer_id = :id",
                 {"id": "O1", "rank": "PC"})
        audit.record(db, "admin", "test.deferred", "officer:O1")
    assert db.query("SELECT surname, rank FROM officers") == [{"surname": "Brown",
                                                               "rank": "PC"}]
    assert audit.verify(db).ok


def test_a_deferred_write_last_in_a_transaction_goes_with_its_commit(db: Database) -> None:
    with transaction(db):
        audit.record(db, "admin", "test.deferred", "inventory")
        db.defer(OFFICER, ["O1", "P1", "C1", "Jones", STAMP, STAMP])
    assert db.scalar("SELECT COUNT(*) FROM officers") == 1
    assert audit.verify(db).ok


def _failing_transaction(db: Database, at_commit: bool) -> BaseException:
    """Defer a write the database refuses (an assignment of an unknown officer), inside a
    transaction that also writes good rows; return what the transaction raised."""
    before = audit.head(db)
    with pytest.raises(Exception) as caught:
        with transaction(db):
            db.execute(OFFICER, ["O1", "P1", "C1", "Jones", STAMP, STAMP])
            device = db.scalar("SELECT id FROM devices WHERE serial = 'R00000'")
            db.defer(ASSIGN, [device, "NOBODY", STAMP])
            if not at_commit:
                db.scalar("SELECT COUNT(*) FROM officers")
            audit.record(db, "admin", "test.refused", "inventory")
    assert audit.head(db) == before
    assert db.scalar("SELECT COUNT(*) FROM officers") == 0  # the good row went too
    assert db.scalar("SELECT COUNT(*) FROM assignments") == 0
    return caught.value


@pytest.mark.parametrize("at_commit", [False, True], ids=["next-statement", "commit"])
def test_a_refused_deferred_write_rolls_back_and_is_named(db: Database,
                                                          at_commit: bool) -> None:
    _stock(db, 0, 1)
    refused = _failing_transaction(db, at_commit)
    assert is_constraint(refused), refused
    assert "foreign key" in str(refused).lower()
    # The connection goes on: the same deferred statement works in the next transaction.
    with transaction(db):
        db.execute(OFFICER, ["O2", "P2", "C2", "Jones", STAMP, STAMP])
        device = db.scalar("SELECT id FROM devices WHERE serial = 'R00000'")
        db.defer(ASSIGN, [device, "O2", STAMP])
        audit.record(db, "admin", "test.assigned", "device:R00000")
    assert db.query("SELECT officer_id FROM assignments") == [{"officer_id": "O2"}]
    assert audit.verify(db).ok


def test_a_failure_of_the_server_in_a_deferred_write_is_an_mdm_error(db: Database) -> None:
    """The store translates a deferred write's failure as it does any other's."""
    _stock(db, 0, 0)
    with pytest.raises(MdmError, match="missing part of its schema|no such table"):
        with transaction(db):
            db.defer("UPDATE no_such_table SET x = ? WHERE y = ?", [1, 2])
            db.scalar("SELECT COUNT(*) FROM officers")
            audit.record(db, "admin", "test.refused", "inventory")
    assert db.scalar("SELECT COUNT(*) FROM audit") == 1


def test_deferred_writes_keep_working_after_a_rollback(db: Database) -> None:
    """On PostgreSQL a ROLLBACK makes psycopg deallocate every prepared statement, the
    deferred writes' too: they must be prepared again, not executed by a stale name."""
    _stock(db, 3, 0)
    for round_ in range(3):
        for _ in range(6):  # enough for psycopg to prepare this one itself
            db.scalar("SELECT COUNT(*) FROM officers WHERE status = ?", ["ACTIVE"])
        with transaction(db):
            db.defer("UPDATE officers SET rank = ? WHERE officer_id = ?", [f"R{round_}", "O00001"])
            audit.record(db, "admin", "test.rank", "officer:O00001")
        with pytest.raises(RuntimeError):
            with transaction(db):
                db.defer("UPDATE officers SET rank = ? WHERE officer_id = ?", ["X", "O00001"])
                raise RuntimeError("the feature gave up")
    assert db.scalar("SELECT rank FROM officers WHERE officer_id = 'O00001'") == "R2"
    assert audit.verify(db).ok


def test_a_push_recorded_with_deferred_writes_verifies(db: Database) -> None:
    _stock(db, 0, 30)
    ids = [r["id"] for r in db.query("SELECT id FROM devices ORDER BY id")]
    with transaction(db):  # (facts are no evidence: no audit row needed)
        db.executemany("INSERT INTO device_facts (device_id, collected_at, packages, props)"
                       " VALUES (?, ?, '[]', '{}')", [(i, STAMP) for i in ids])
    for first in range(0, 30, 10):
        with transaction(db):
            for device in ids[first:first + 10]:
                policy_rows.record_push(db, device, "ab" * 32, STAMP,
                                        [("sent", None), ("applied", '{"violations": []}')],
                                        '{"state": "applied"}', "cd" * 32)
                audit.record(db, "admin", "policy.push", f"device:{device}",
                             {"policy": None}, {"policy": "ab" * 32})
    assert [tuple(r.values()) for r in db.query(
        "SELECT id, device_id, event FROM policy_events ORDER BY id")][:4] == [
        (1, ids[0], "sent"), (2, ids[0], "applied"), (3, ids[1], "sent"), (4, ids[1], "applied")]
    assert db.scalar("SELECT COUNT(*) FROM policy_events") == 60
    assert db.scalar("SELECT COUNT(*) FROM devices WHERE applied_policy = ?", ["ab" * 32]) == 30
    assert db.scalar("SELECT COUNT(*) FROM device_facts WHERE dpc_status IS NOT NULL") == 30
    result = audit.verify(db)
    assert result.ok and result.rows == 31, result


def _push(db: Database, device: int, sha: str, at: str) -> None:
    policy_rows.record_push(db, device, sha, at, [("sent", None), ("applied", "{}")],
                            f'{{"policy": "{sha}"}}', sha)
    audit.record(db, "admin", "policy.push", f"device:{device}", None, {"policy": sha})


def test_a_device_pushed_twice_in_one_transaction_keeps_the_later_push(db: Database) -> None:
    _stock(db, 0, 3)
    ids = [r["id"] for r in db.query("SELECT id FROM devices ORDER BY id")]
    with transaction(db):
        db.executemany("INSERT INTO device_facts (device_id, collected_at, packages, props)"
                       " VALUES (?, ?, '[]', '{}')", [(i, STAMP) for i in ids])
    with transaction(db):
        _push(db, ids[0], "aa" * 32, "2026-01-01T00:00:01Z")
        _push(db, ids[1], "aa" * 32, "2026-01-01T00:00:02Z")
        _push(db, ids[0], "bb" * 32, "2026-01-01T00:00:03Z")
    assert db.query("SELECT id, applied_policy, last_seen FROM devices WHERE id = ?",
                    [ids[0]]) == [{"id": ids[0], "applied_policy": "bb" * 32,
                                   "last_seen": "2026-01-01T00:00:03Z"}]
    assert db.scalar("SELECT policy_file_sha256 FROM device_facts WHERE device_id = ?",
                     [ids[0]]) == "bb" * 32
    assert [tuple(r.values()) for r in db.query(
        "SELECT device_id, sha256, event FROM policy_events ORDER BY id")] == [
        (ids[0], "aa" * 32, "sent"), (ids[0], "aa" * 32, "applied"),
        (ids[1], "aa" * 32, "sent"), (ids[1], "aa" * 32, "applied"),
        (ids[0], "bb" * 32, "sent"), (ids[0], "bb" * 32, "applied")]
    result = audit.verify(db)
    assert result.ok and result.rows == 4, result


def test_rows_deferred_keep_their_place_beside_other_deferred_writes(db: Database) -> None:
    _stock(db, 0, 3)
    first, second, third = (r["id"] for r in db.query("SELECT id FROM devices ORDER BY id"))
    seen = "UPDATE devices SET last_seen = ? WHERE id = ?"
    with transaction(db):
        db.defer(seen, ["2025-12-31T00:00:00Z", first], evidential=False)  # before: undone
        _push(db, first, "aa" * 32, "2026-01-01T00:00:01Z")
        _push(db, second, "aa" * 32, "2026-01-01T00:00:02Z")
        db.defer(seen, ["2026-02-01T00:00:00Z", second], evidential=False)  # after: kept
        _push(db, third, "aa" * 32, "2026-01-01T00:00:03Z")
    assert {r["id"]: r["last_seen"] for r in db.query("SELECT id, last_seen FROM devices")} == {
        first: "2026-01-01T00:00:01Z", second: "2026-02-01T00:00:00Z",
        third: "2026-01-01T00:00:03Z"}
    assert [r["device_id"] for r in db.query(
        "SELECT device_id FROM policy_events ORDER BY id")] == [first, first, second, second,
                                                               third, third]
    assert audit.verify(db).ok


def test_long_lists_of_values_find_the_same_rows(db: Database) -> None:
    _stock(db, 700, 700)
    with transaction(db):
        custody_rows.open_many(db, [(i + 1, f"O{i:05d}", STAMP, "admin", "issue")
                                    for i in range(0, 700, 2)])
        db.executemany("INSERT INTO device_imeis (imei, device_id) VALUES (?, ?)",
                       [(f"35{i:013d}", i + 1) for i in range(700)])
        db.execute("UPDATE devices SET status = 'enrolled' WHERE id <= 100")
        audit.record(db, "admin", "test.assign", "inventory")
    people = [f"O{i:05d}" for i in range(600)]
    assert len(device_rows.held_by(db, people)) == 300
    assert len(custody_rows.serials_held_by(db, people)) == 300
    assert len(officer_rows.holders(db, people)) == 300
    assert sorted(r["serial"] for r in device_rows.with_ids(db, list(range(1, 501)))) == [
        f"R{i:05d}" for i in range(500)]
    mixed = [f"r{i:05d}" for i in range(500)]  # any case
    assert sorted(r["serial"] for r in device_rows.with_serials(db, mixed)) == [
        f"R{i:05d}" for i in range(500)]
    assert device_rows.with_serials(db, []) == []
    assert device_rows.imei_owners(db, [f"35{i:013d}" for i in range(0, 600, 3)]) == {
        f"35{i:013d}": i + 1 for i in range(0, 600, 3)}
    managed = queue_rows.managed_without_wipe(db, list(range(1, 501)))
    assert [r["serial"] for r in managed] == [f"R{i:05d}" for i in range(100)]
    assert len(queue_rows.devices_by_id(db, list(range(1, 501)))) == 500
    refs = ["O00001", "P00002", "c00003", "nobody"]
    assert sorted(r["officer_id"] for r in officer_rows.by_refs(db, refs)) == [
        "O00001", "O00002", "O00003"]


def test_a_bulk_allocation_keys_its_rows_in_order(db: Database) -> None:
    _stock(db, 5, 5)
    with transaction(db):
        db.execute(ASSIGN, [5, "O00004", STAMP])
        custody_rows.open_many(db, [(3, "O00001", STAMP, "admin", "issue"),
                                    (1, "O00003", STAMP, "admin", "issue")])
        custody_rows.open_many(db, [])
        audit.record(db, "admin", "test.assign", "inventory")
    assert [tuple(r.values()) for r in db.query(
        "SELECT id, device_id, officer_id FROM assignments ORDER BY id")] == [
        (1, 5, "O00004"), (2, 3, "O00001"), (3, 1, "O00003")]
    assert audit.verify(db).ok


def test_rows_are_read_whole_and_in_order(db: Database) -> None:
    _stock(db, 2500, 0)
    wanted = [f"O{i:05d}" for i in range(2500)]
    assert [r[0] for r in db.execute("SELECT officer_id FROM officers ORDER BY officer_id")
            ] == wanted
    assert dict(db.execute("SELECT officer_id, payroll_no FROM officers")) == {
        w: "P" + w[1:] for w in wanted}
    cursor = db.execute("SELECT officer_id FROM officers ORDER BY officer_id")
    assert cursor.fetchone()[0] == "O00000"
    assert [r["officer_id"] for r in db.iter_query(
        "SELECT officer_id FROM officers ORDER BY officer_id")] == wanted


def test_a_bulk_load_is_vacuumed(backend: str, db: Database) -> None:
    """After a transaction loads thousands of rows, PostgreSQL's planner knows them (and
    the visibility map an index-only scan needs is set); a few rows leave it to
    autovacuum. SQLite keeps no such state."""
    _stock(db, 6000, 10)
    if not backend.startswith("postgresql"):
        return
    seen = {r["relname"]: r for r in db.query(
        "SELECT relname, last_vacuum FROM pg_stat_user_tables"
        " WHERE relname IN ('officers', 'devices')")}
    assert seen["officers"]["last_vacuum"] is not None
    assert seen["devices"]["last_vacuum"] is None
    # Every page visible to all (even on a server that commits asynchronously, as the
    # test cluster does): the whole list is read from its index alone, in order.
    pages, visible = db.execute("SELECT relpages, relallvisible FROM pg_class"
                                " WHERE relname = 'officers'").fetchone()
    assert pages > 0 and visible == pages
    plan = "\n".join(r[0] for r in db.execute(
        "EXPLAIN SELECT o.officer_id FROM officers o"
        " ORDER BY o.area, o.station, o.surname, o.forename, o.officer_id"))
    assert "Index Only Scan using officers_listing" in plan, plan


def test_a_write_wrongly_said_to_change_no_evidence_is_not_committed(backend: str,
                                                                     db: Database) -> None:
    """`evidential=False` lets PostgreSQL's next audit row skip its read of what changed;
    if the statement did change an evidential row, the check before COMMIT still finds
    it unsealed, and nothing is committed. (SQLite's audit row reads the change anyway.)"""
    _stock(db, 0, 1)
    before = audit.head(db)

    def lie() -> None:
        with transaction(db):
            audit.record(db, "admin", "test.first", "inventory")
            db.defer("UPDATE devices SET status = 'lost' WHERE serial = ?", ["R00000"],
                     evidential=False)
            audit.record(db, "admin", "test.second", "device:R00000")

    if backend.startswith("postgresql"):
        with pytest.raises(RuntimeError, match="evidential rows changed without an audit row"):
            lie()
        assert audit.head(db) == before
        assert db.scalar("SELECT status FROM devices") == "delivered"
    else:
        lie()
        assert db.scalar("SELECT status FROM devices") == "lost"
    assert audit.verify(db).ok


class _Counting:
    """A psycopg connection that counts the messages sent through it (`sent`) and the
    deferred writes they run (`executed`: the statements prepared by the store)."""

    def __init__(self, conn: Any) -> None:
        self.conn, self.sent, self.executed = conn, 0, 0

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self.sent += 1
        self.executed += str(args[0]).count("EXECUTE mdm_deferred_")
        return self.conn.execute(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def test_recording_a_push_costs_round_trips_per_batch_not_per_device(backend: str,
                                                                     db: Database) -> None:
    """On PostgreSQL a batch of pushed devices is recorded in three messages to the server
    (BEGIN with the write lock and the chain head; every device's writes with the check
    before commit; the COMMIT), and its writes in three statements, however many devices
    it holds."""
    if not backend.startswith("postgresql"):
        return  # (SQLite: function calls, no round trips)
    _stock(db, 0, 40)
    ids = [r["id"] for r in db.query("SELECT id FROM devices ORDER BY id")]
    counting = _Counting(db.pg)  # type: ignore[attr-defined]
    db.pg = counting  # type: ignore[attr-defined]
    try:
        for batch in (ids[:10], ids[10:40]):
            counting.sent = counting.executed = 0
            with transaction(db):
                for device in batch:
                    policy_rows.record_push(db, device, "ab" * 32, STAMP,
                                            [("sent", None), ("applied", "{}")], "{}", None)
                    audit.record(db, "admin", "policy.push", f"device:{device}")
            assert counting.sent == 3, (len(batch), counting.sent)
            # one statement for each kind of row (policy events, the devices' rows, audit
            # rows), and the check before commit
            assert counting.executed == 4, (len(batch), counting.executed)
    finally:
        db.pg = counting.conn  # type: ignore[attr-defined]
    assert db.scalar("SELECT COUNT(*) FROM policy_events") == 80
    assert audit.verify(db).ok
