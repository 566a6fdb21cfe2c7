"""The inventory file: connection settings, migrations, and two operators at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlite_utils import Database

from mdm import examples
from mdm.errors import MdmError
from mdm.store import SCHEMA_VERSION, connect
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
    assert "does not exist" in err
