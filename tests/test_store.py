"""The inventory file: connection settings, migrations, and two operators at once."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from mdm import examples
from mdm.errors import MdmError
from mdm.store import SCHEMA_VERSION, connect, transaction
from mdm.store.migrations import migrations
from tests.helpers import rows


def test_every_connection_is_durable_and_strict(tmp_path: Path) -> None:
    db = connect(tmp_path / "x.db")
    pragma = {name: db.execute(f"PRAGMA {name}").fetchone()[0]
              for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")}
    assert pragma == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1,
                      "busy_timeout": 30_000}


def test_blank_inventory_gets_every_migration_once(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    connect(path).conn.close()
    connect(path).conn.close()
    applied = [r[0] for r in rows(path, "SELECT name FROM _sqlite_migrations ORDER BY id")]
    assert applied == [m.name for m in migrations._migrations]
    assert rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)] == [(len(applied),)]


def test_an_inventory_from_a_newer_mdm_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    connect(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(MdmError, match="this mdm knows"):
        connect(path)


def test_an_older_inventory_is_upgraded_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = Database(path)
    migrations.apply(old, stop_before="m004_assignments")
    old.execute("INSERT INTO devices (serial, imei1, manufacturer, model, status,"
                " status_changed_at, created_at) VALUES ('R58F4OLD0001', '352549060000015',"
                " 'samsung', 'SM-N910F', 'delivered', 't', 't')")
    old.conn.commit()
    old.conn.close()
    db = connect(path)
    assert not migrations.pending(db.utils)
    assert db.execute("SELECT serial FROM devices").fetchall() == [("R58F4OLD0001",)]
    assert db.utils["assignments"].exists() and db.utils["audit"].exists()


def _mdm(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "mdm", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_two_operators_importing_at_once(tmp_path: Path) -> None:
    env = {**os.environ, "MDM_DB": str(tmp_path / "shared.db"), "MDM_OPERATOR": "admin"}
    subprocess.run([sys.executable, "-m", "mdm", "operators", "add", "admin"], env=env,
                   check=True, capture_output=True, timeout=60)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    examples.write_csv(a, examples.generate_manifest(3000, seed=1, first_snr=1),
                       examples.MANIFEST_COLUMNS)
    examples.write_csv(b, examples.generate_manifest(3000, seed=2, first_snr=50_000),
                       examples.MANIFEST_COLUMNS)
    procs = [_mdm("enrol", "import", str(p), env=env) for p in (a, b, a)]
    outcomes = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        outcomes.append((p.returncode, err))
    assert [c for c, _ in outcomes] == [0, 0, 0], outcomes
    again = [e for _, e in outcomes if "already imported" in e]  # a.csv, the second time
    assert len(again) == 1 and "nothing changed" in again[0] and "locked" not in again[0]
    assert rows(tmp_path / "shared.db", "SELECT COUNT(*) FROM devices") == [(6000,)]
    check = subprocess.run([sys.executable, "-m", "mdm", "audit", "verify", "--json"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and '"rows": 3' in check.stdout


def test_a_file_that_is_not_an_inventory_is_refused_cleanly(mdm, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("this is not a database\n" * 100)
    err = mdm("--db", str(bogus), "devices", "find", "x", code=2).stderr
    assert "is not a usable inventory" in err
    err = mdm("--db", str(tmp_path / "missing" / "x.db"), "devices", "find", "x", code=2).stderr
    assert "no inventory at" in err and not (tmp_path / "missing").exists()


# -- a read command never creates an inventory -------------------------------------------

@pytest.mark.parametrize("command", [("audit", "verify"), ("audit", "log"),
                                     ("devices", "find", "x"), ("operators", "list")])
def test_read_commands_refuse_a_missing_or_empty_inventory(mdm, tmp_path: Path,
                                                           command: tuple[str, ...]) -> None:
    typo = tmp_path / "typo.db"
    err = mdm("--db", str(typo), *command, code=2).stderr
    assert f"no inventory at {typo}" in err and "mdm operators add" in err
    assert not typo.exists()
    empty = tmp_path / "empty.db"
    empty.touch()
    err = mdm("--db", str(empty), *command, code=2).stderr
    assert "no inventory at" in err and "empty" in err
    assert empty.stat().st_size == 0
    made = sorted(p.name for p in tmp_path.iterdir() if p.name != "mdm.toml")  # the fixture's
    assert made == ["empty.db"]


def test_operators_add_creates_the_inventory_but_not_inside_another_database(
        mdm, tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (x)")
    conn.close()
    assert "not an mdm inventory" in mdm("--db", str(other), "operators", "add", "a",
                                         code=2).stderr
    assert rows(other, "SELECT name FROM sqlite_master") == [("notes",)]
    empty = tmp_path / "empty.db"
    empty.touch()
    mdm("--db", str(empty), "operators", "add", "admin")
    assert mdm.json("--db", str(empty), "audit", "verify")["state_rows"] == 1


@pytest.mark.parametrize("mask", [0o022, 0o000])
def test_the_inventory_and_its_folders_are_private_whatever_the_umask(
        mdm, tmp_path: Path, mask: int) -> None:
    path = tmp_path / "force" / "inventory" / "mdm.db"
    old = os.umask(mask)
    try:
        mdm("--db", str(path), "operators", "add", "admin")
        db = connect(path)  # while it is open, the WAL and shared-memory files exist
        with transaction(db):
            db.execute("INSERT INTO groups VALUES ('g', NULL, 't', 'admin')")
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()}
        db.conn.close()
    finally:
        os.umask(old)
    assert modes == {"mdm.db": 0o600, "mdm.db-wal": 0o600, "mdm.db-shm": 0o600}
    for folder in (path.parent, path.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


# -- the disk, and other operators ---------------------------------------------------------

def test_a_full_disk_says_so_and_changes_nothing(mdm, files, db_path, monkeypatch) -> None:
    import mdm.store as store

    mdm("operators", "add", "admin")
    real = store.connect

    def small_disk(*args: Any, **kwargs: Any) -> Any:
        db = real(*args, **kwargs)
        pages = db.scalar("PRAGMA page_count")
        db.execute(f"PRAGMA max_page_count = {pages + 20}")  # SQLITE_FULL, as on a full disk
        return db

    monkeypatch.setattr(store, "connect", small_disk)
    delivery = examples.generate_manifest(3000, seed=3)
    err = mdm("enrol", "import", files("m.csv", delivery, examples.MANIFEST_COLUMNS),
              code=1).stderr
    assert "the disk holding the inventory is full" in err and "long write" not in err
    monkeypatch.setattr(store, "connect", real)
    assert rows(db_path, "SELECT COUNT(*) FROM devices") == [(0,)]
    assert mdm.json("audit", "verify")["rows"] == 1


_HOLD = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


@contextmanager
def _write_lock_held(path: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """Hold the inventory's write lock from another process; stop it by its pid after."""
    with subprocess.Popen([sys.executable, "-c", _HOLD, str(path), str(seconds)],
                          stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            yield holder
        finally:
            holder.kill()
            holder.wait(timeout=10)


def test_a_write_that_waits_says_for_whom_and_gives_up_at_wait(tmp_path: Path) -> None:
    env = {**os.environ, "MDM_DB": str(tmp_path / "shared.db"), "MDM_OPERATOR": "admin"}
    subprocess.run([sys.executable, "-m", "mdm", "operators", "add", "admin"], env=env,
                   check=True, capture_output=True, timeout=60)
    with _write_lock_held(tmp_path / "shared.db", 3) as holder:
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "mdm", "--wait", "20", "operators", "add",
                               "b"], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert f"waiting for another mdm write (pid {holder.pid})" in done.stderr
        assert 2 < time.monotonic() - started < 15
    with _write_lock_held(tmp_path / "shared.db", 30) as holder:
        started = time.monotonic()
        gave_up = subprocess.run([sys.executable, "-m", "mdm", "--wait", "1.5", "operators",
                                  "add", "c"], env=env, capture_output=True, text=True,
                                 timeout=60)
        assert gave_up.returncode == 1
        assert f"another mdm write (pid {holder.pid}) held it for more than 1.5 s" \
            in gave_up.stderr
        assert "--wait" in gave_up.stderr and time.monotonic() - started < 10


# -- an inventory made before state proofs -------------------------------------------------

def test_an_inventory_from_before_state_proofs_is_sealed_on_upgrade(mdm, tmp_path: Path,
                                                                    monkeypatch) -> None:
    from mdm.store import audit

    path = tmp_path / "v7.db"
    old = Database(path)
    migrations.apply(old, stop_before="m008_audit_state")
    old.execute("PRAGMA user_version = 7")
    old.execute("INSERT INTO operators VALUES ('admin', 'admin', 1, 't', 'admin')")
    old.execute("INSERT INTO devices (serial, imei1, manufacturer, model, status,"
                " status_changed_at, created_at) VALUES ('R58F4OLD0001', '352549060000015',"
                " 'samsung', 'SM-N910F', 'delivered', 't', 't')")
    prev = audit.GENESIS
    for seq, action in ((1, "operators.add"), (2, "devices.import")):
        row = {"seq": seq, "at": f"2015-04-0{seq}T00:00:00.000000Z", "operator": "admin",
               "action": action, "subject": "s", "before": None, "after": None}
        digest = audit.row_hash(prev, row)
        old.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [*row.values(), prev, digest])
        prev = digest
    old.conn.commit()
    old.conn.close()
    monkeypatch.setenv("MDM_DB", str(path))
    result = mdm.json("audit", "verify")
    assert result["rows"] == 3 and result["state_rows"] == 2
    backfill = mdm.json("audit", "log")[-1]
    assert (backfill["operator"], backfill["action"]) == ("mdm", "audit.backfill")
    assert backfill["after"]["rows"] == {"operators": 1, "devices": 1, "assignments": 0}
    conn = sqlite3.connect(path)
    conn.execute("UPDATE devices SET status = 'retired'")
    conn.commit()
    conn.close()
    assert "state mismatch: devices R58F4OLD0001" in mdm("audit", "verify", code=1).stderr
