"""One contract for the inventory store, run against SQLite and PostgreSQL alike.

The facts the database itself enforces must hold on both backends: one open assignment
per device and per officer, custody history and the audit log append-only, foreign keys,
an import that lands whole or not at all, and `audit verify` giving the same answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mdm.store import audit, connect, transaction
from mdm.store.db import Database
from mdm.store.failures import is_constraint

STAMP = "2026-01-01T00:00:00Z"


@pytest.fixture
def db(backend: str) -> Iterator[Database]:
    inventory = connect(backend)
    yield inventory
    inventory.conn.close()


def _officer(db: Database, officer_id: str, payroll: str | None = None) -> None:
    db.execute("INSERT INTO officers (officer_id, payroll_no, forename, surname, worker_type,"
               " status, created_at, updated_at) VALUES (?, ?, 'Ann', 'Smith', 'OFFICER',"
               " 'ACTIVE', ?, ?)", [officer_id, payroll or f"P{officer_id}", STAMP, STAMP])


def _device(db: Database, serial: str) -> int:
    db.execute("INSERT INTO devices (serial, imei1, manufacturer, model, status_changed_at,"
               " created_at) VALUES (?, ?, 'Samsung', 'SM-G991B', ?, ?)",
               [serial, f"35{abs(hash(serial)) % 10**13:013d}", STAMP, STAMP])
    return int(db.scalar("SELECT id FROM devices WHERE serial = ?", [serial]))


def _assign(db: Database, device_id: int, officer_id: str) -> None:
    db.execute("INSERT INTO assignments (device_id, officer_id, opened_at, opened_by,"
               " open_reason) VALUES (?, ?, ?, 'admin', 'issue')",
               [device_id, officer_id, STAMP])


@pytest.fixture
def stocked(db: Database) -> Database:
    """Two officers and two devices, the first device held by the first officer."""
    with transaction(db):
        _officer(db, "O1")
        _officer(db, "O2")
        first, _ = _device(db, "R1"), _device(db, "R2")
        _assign(db, first, "O1")
        audit.record(db, "admin", "test.stock", "inventory", None, {"officers": 2})
    return db


def _refused(db: Database, *statements: tuple[str, list[Any]]) -> BaseException:
    """Run the statements in one transaction; return what the database refused them with."""
    before = audit.head(db)
    with pytest.raises(Exception) as caught:
        with transaction(db):
            for sql, params in statements:
                db.execute(sql, params)
            audit.record(db, "admin", "test.refused", "inventory")
    assert audit.head(db) == before  # nothing of the transaction is left
    return caught.value


def test_a_device_has_one_open_assignment(stocked: Database) -> None:
    device = stocked.scalar("SELECT id FROM devices WHERE serial = 'R1'")
    exc = _refused(stocked, ("INSERT INTO assignments (device_id, officer_id, opened_at,"
                             " opened_by, open_reason) VALUES (?, 'O2', ?, 'admin', 'issue')",
                             [device, STAMP]))
    assert is_constraint(exc), exc
    assert stocked.scalar("SELECT COUNT(*) FROM assignments") == 1


def test_an_officer_holds_one_device(stocked: Database) -> None:
    device = stocked.scalar("SELECT id FROM devices WHERE serial = 'R2'")
    exc = _refused(stocked, ("INSERT INTO assignments (device_id, officer_id, opened_at,"
                             " opened_by, open_reason) VALUES (?, 'O1', ?, 'admin', 'issue')",
                             [device, STAMP]))
    assert is_constraint(exc), exc


def test_a_closed_assignment_frees_device_and_officer(stocked: Database) -> None:
    with transaction(stocked):
        stocked.execute("UPDATE assignments SET closed_at = ?, closed_by = 'admin',"
                        " close_reason = 'returned' WHERE officer_id = 'O1'", [STAMP])
        _assign(stocked, stocked.scalar("SELECT id FROM devices WHERE serial = 'R1'"), "O2")
        audit.record(stocked, "admin", "test.reassign", "device:R1")
    assert stocked.scalar("SELECT COUNT(*) FROM assignments WHERE closed_at IS NULL") == 1
    assert audit.verify(stocked).ok


@pytest.mark.parametrize("sql", [
    "UPDATE assignments SET opened_by = 'mallory'",
    "DELETE FROM assignments",
    "UPDATE audit SET operator = 'mallory'",
    "DELETE FROM audit",
    "UPDATE audit_state SET row_hash = NULL",
    "DELETE FROM audit_state",
])
def test_history_and_audit_are_append_only(stocked: Database, sql: str) -> None:
    exc = _refused(stocked, (sql, []))
    assert is_constraint(exc), exc
    assert "append-only" in str(getattr(exc, "message", exc))
    assert audit.verify(stocked).ok


def test_a_closed_assignment_is_never_reopened(stocked: Database) -> None:
    with transaction(stocked):
        stocked.execute("UPDATE assignments SET closed_at = ?, closed_by = 'admin',"
                        " close_reason = 'returned'", [STAMP])
        audit.record(stocked, "admin", "test.return", "device:R1")
    exc = _refused(stocked, ("UPDATE assignments SET closed_at = NULL", []))
    assert is_constraint(exc), exc


def test_foreign_keys_hold(stocked: Database) -> None:
    exc = _refused(stocked, ("INSERT INTO assignments (device_id, officer_id, opened_at,"
                             " opened_by, open_reason) VALUES (999, 'O2', ?, 'admin', 'issue')",
                             [STAMP]))
    assert is_constraint(exc), exc
    exc = _refused(stocked, ("INSERT INTO group_members (group_name, officer_id, added_at,"
                             " added_by) VALUES ('nope', 'O1', ?, 'admin')", [STAMP]))
    assert is_constraint(exc), exc


def test_an_import_lands_whole_or_not_at_all(db: Database) -> None:
    rows = [(f"O{n}", f"P{n}") for n in range(1000)] + [("O-dup", "P7")]  # P7 twice
    with pytest.raises(Exception) as caught:
        with transaction(db):
            db.executemany("INSERT INTO officers (officer_id, payroll_no, forename, surname,"
                           " worker_type, status, created_at, updated_at) VALUES"
                           f" (?, ?, 'A', 'B', 'STAFF', 'ACTIVE', '{STAMP}', '{STAMP}')", rows)
            audit.record(db, "admin", "officers.import", "roster", None, {"rows": 1001})
    assert is_constraint(caught.value), caught.value
    assert db.scalar("SELECT COUNT(*) FROM officers") == 0
    assert audit.head(db)[0] == 0


def _tamper(db: Database, sql: str, trigger: str) -> None:
    """Change the log behind mdm's back: drop the safeguard, then write (as an attacker)."""
    if db.dialect.name == "sqlite":
        db.execute(f"DROP TRIGGER {trigger}")
    else:
        db.execute(f"DROP TRIGGER {trigger} ON audit")
    db.execute(sql)


def _verify_answer(db: Database) -> dict[str, Any]:
    out = audit.verify(db).as_dict()
    out.pop("head")  # the hashes cover times, which differ between the two runs
    return out


@pytest.fixture(scope="module")
def answers() -> dict[str, list[dict[str, Any]]]:
    return {}


@pytest.mark.parametrize("case", ["sound", "row edited", "row deleted", "state edited"])
def test_audit_verify_gives_the_same_answer(stocked: Database, backend: str, case: str,
                                           answers: dict[str, list[dict[str, Any]]]) -> None:
    for n in range(3):
        with transaction(stocked):
            _officer(stocked, f"X{n}")
            stocked.execute("UPDATE operators SET role = role")  # no evidential change
            audit.record(stocked, "admin", "officers.add", f"officer:X{n}")
    if case == "row edited":
        _tamper(stocked, "UPDATE audit SET operator = 'mallory' WHERE seq = 2",
                "audit_no_update")
    elif case == "row deleted":
        _tamper(stocked, "DELETE FROM audit WHERE seq = 3", "audit_no_delete")
    elif case == "state edited":
        with transaction(stocked):
            stocked.execute("UPDATE assignments SET closed_at = ?, closed_by = 'x',"
                            " close_reason = 'y'", [STAMP])
            audit.record(stocked, "admin", "custody.return", "device:R1")
        if stocked.dialect.name == "sqlite":
            stocked.execute("DROP TRIGGER assignments_close_only")
        else:
            stocked.execute("DROP TRIGGER assignments_close_only ON assignments")
        stocked.execute("UPDATE assignments SET close_reason = 'z'")
    answer = _verify_answer(stocked)
    assert answer["ok"] is (case == "sound")
    answers.setdefault(case, []).append(answer)
    if len(answers[case]) == 2:  # the second backend's answer must equal the first's
        assert answers[case][0] == answers[case][1]
