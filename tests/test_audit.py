"""The audit chain: one row per change, append-only, and any tampering is found."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdm.store import audit, connect, transaction
from tests.helpers import rows


def _open(tmp_path: Path, name: str = "a.db"):
    path = tmp_path / name
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return path, connect(path)


def _write(db, n: int, subjects: list[str]) -> None:
    for i in range(n):
        with transaction(db):
            audit.record(db, "op", "test.change", subjects[i % len(subjects)], {"i": i},
                         {"i": i + 1})


def _untrigger(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS audit_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    return conn


subjects = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=5)
fast = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@fast
@given(n=st.integers(1, 12), names=subjects)
def test_any_sequence_of_changes_verifies(tmp_path: Path, n: int, names: list[str]) -> None:
    _, db = _open(tmp_path)
    _write(db, n, names)
    result = audit.verify(db)
    assert result.ok and result.rows == n and result.head_seq == n
    assert audit.verify(db, audit.head(db)).ok
    db.conn.close()


@fast
@given(n=st.integers(2, 10), data=st.data())
def test_any_altered_row_is_found(tmp_path: Path, n: int, data: st.DataObject) -> None:
    path, db = _open(tmp_path)
    _write(db, n, ["s"])
    db.conn.close()
    victim = data.draw(st.integers(1, n))
    column = data.draw(st.sampled_from(["at", "operator", "action", "subject", "before",
                                        "after", "prev_hash", "hash"]))
    conn = _untrigger(path)
    conn.execute(f"UPDATE audit SET {column} = {column} || 'x' WHERE seq = ?", (victim,))
    conn.close()
    result = audit.verify(connect(path))
    assert not result.ok
    # Changing a row's stored hash breaks the next row's link instead.
    assert result.first_bad_seq in (victim, victim + 1)


@fast
@given(n=st.integers(3, 10), data=st.data())
def test_a_deleted_or_swapped_row_is_found(tmp_path: Path, n: int, data: st.DataObject) -> None:
    path, db = _open(tmp_path)
    _write(db, n, ["s"])
    db.conn.close()
    conn = _untrigger(path)
    if data.draw(st.booleans()):
        victim = data.draw(st.integers(1, n - 1))
        conn.execute("DELETE FROM audit WHERE seq = ?", (victim,))
        expected = victim
    else:
        a = data.draw(st.integers(1, n - 1))
        conn.execute("UPDATE audit SET seq = -1 WHERE seq = ?", (a,))
        conn.execute("UPDATE audit SET seq = ? WHERE seq = ?", (a, a + 1))
        conn.execute("UPDATE audit SET seq = ? WHERE seq = -1", (a + 1,))
        expected = a
    conn.close()
    result = audit.verify(connect(path))
    assert not result.ok and result.first_bad_seq == expected


def _retrigger(conn: sqlite3.Connection) -> None:
    """Put the append-only triggers back, as a careful forger would."""
    for op in ("UPDATE", "DELETE"):
        conn.execute(f"CREATE TRIGGER audit_no_{op.lower()} BEFORE {op} ON audit"
                     " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END")


def test_a_cut_tail_is_found_and_a_full_rebuild_only_against_a_checkpoint(
        tmp_path: Path) -> None:
    path, db = _open(tmp_path)
    _write(db, 5, ["s"])
    cp = audit.head(db)
    db.conn.close()
    conn = _untrigger(path)
    conn.execute("DELETE FROM audit WHERE seq = 5")
    conn.close()
    db = connect(path)
    result = audit.verify(db)
    assert not result.ok and result.first_bad_seq == 5
    assert "removed from the end" in result.reason
    assert "truncated" in audit.verify(db, cp).reason
    # Rebuild: rewrite row 3, re-hash everything after it and the head record, and put
    # the triggers back, as a forger who knows mdm's code would.
    rows = [dict(zip(["seq", "at", "operator", "action", "subject", "before", "after"], r,
                     strict=True))
            for r in db.execute("SELECT seq, at, operator, action, subject, before, after"
                                " FROM audit ORDER BY seq")]
    db.conn.close()
    conn = _untrigger(path)
    conn.execute("DELETE FROM audit")
    prev = audit.GENESIS
    for r in rows + [{**rows[-1], "seq": 5, "action": "forged"}]:
        if r["seq"] == 3:
            r = {**r, "operator": "mallory"}
        h = audit.row_hash(prev, r)
        conn.execute("INSERT INTO audit (seq, at, operator, action, subject, before, after,"
                     " prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?)",
                     (r["seq"], r["at"], r["operator"], r["action"], r["subject"], r["before"],
                      r["after"], prev, h))
        prev = h
    conn.execute("UPDATE audit_head SET seq = 5, hash = ?", (prev,))
    _retrigger(conn)
    conn.close()
    db = connect(path)
    assert audit.verify(db).ok
    assert "rebuilt" in audit.verify(db, cp).reason


def test_the_log_refuses_update_and_delete(tmp_path: Path) -> None:
    path, db = _open(tmp_path)
    _write(db, 2, ["s"])
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE audit SET operator = 'x'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM audit")


@pytest.mark.backends  # the others here test the SQLite log's own machinery
def test_cli_verify_checkpoint_and_failure_exit_code(mdm, inventory, db_path) -> None:
    cp = mdm.json("audit", "checkpoint")
    assert cp["seq"] == 3  # operator, roster, manifest: one row per change
    ok = mdm.json("audit", "verify", "--checkpoint", cp["checkpoint"])
    assert ok["ok"] and ok["rows"] == 3
    assert "not SEQ:HASH" in mdm("audit", "verify", "--checkpoint", "nope", code=2).stderr
    edit = "UPDATE audit SET operator = 'mallory' WHERE seq = 2"
    if isinstance(db_path, str):  # a superuser with every trigger off, as a replica runs
        rows(db_path, f"SET session_replication_role = replica; {edit}")
    else:
        conn = _untrigger(db_path)
        conn.execute(edit)
        conn.close()
    err = mdm("audit", "verify", code=1).stderr
    assert "broken at row 2" in err
    log = mdm.json("audit", "log")
    assert [r["action"] for r in log] == ["operators.add", "officers.import", "devices.import"]


@pytest.mark.backends  # the others here test the SQLite log's own machinery
def test_log_filters_by_operator_action_time_and_subject(mdm, inventory, db_path) -> None:
    serial = inventory["delivery"][0]["serial_number"]
    officer = inventory["roster"][0]["officer_id"]
    mdm("operators", "add", "hd.smith", "--role", "helpdesk")
    mdm("assign", serial, officer, operator="hd.smith")
    mdm("unassign", serial, "--reason", "returned", operator="hd.smith")
    actions = lambda *a: [r["action"] for r in mdm.json("audit", "log", *a)]  # noqa: E731
    assert actions("--operator", "HD.Smith") == ["custody.assign", "custody.unassign"]
    assert actions("--action", "custody") == ["custody.assign", "custody.unassign"]
    assert actions("--action", "custody.unassign", "--subject", serial) == ["custody.unassign"]
    assert actions("--operator", "admin", "--action", "operators.add") == ["operators.add"] * 2
    first, last = (rows(db_path, f"SELECT at FROM audit WHERE seq = {n}")[0][0] for n in (5, 6))
    assert actions("--since", last) == ["custody.unassign"]
    assert actions("--since", first, "--until", first) == ["custody.assign"]
    today = first[:10]
    assert len(actions("--since", today, "--until", today)) == 6  # a date: the whole day
    assert actions("--until", "2015-01-01") == []
    err = mdm("audit", "log", "--operator", "nobody", code=2).stderr
    assert "'nobody'" in err and "admin, hd.smith" in err
    err = mdm("audit", "log", "--action", "custody.asign", code=2).stderr
    assert "custody.assign" in err and "officers.import" in err
    assert "not a date" in mdm("audit", "log", "--since", "2015-02-30", code=2).stderr
    assert "not a date" in mdm("audit", "log", "--until", "yesterday", code=2).stderr
    assert "is after --until" in mdm("audit", "log", "--since", "2016-01-01", "--until",
                                     "2015-01-01", code=2).stderr
