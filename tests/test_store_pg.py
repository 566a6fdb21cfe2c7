"""PostgreSQL as the inventory: selecting it, its schema versions, its errors, its write lock.

Several sites write one inventory: eight processes at once must leave one unbroken audit
chain with nothing lost, and a process killed in the middle of a 45,000-row import must
leave the inventory as it was before, or as it is after, never in between.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mdm import config, examples
from mdm.errors import MdmError
from mdm.store import SCHEMA_VERSION, audit, connect, pg_migrations, transaction
from mdm.store.failures import NoInventory, StoreError
from tests.helpers import db_fingerprint, progress_drift, rows

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def open_db() -> Any:
    """Open inventories for one test, and close them after it."""
    opened: list[Any] = []

    def open_(*args: Any, **kwargs: Any) -> Any:
        opened.append(connect(*args, **kwargs))
        return opened[-1]

    yield open_
    for db in opened:
        db.conn.close()


def test_every_sqlite_migration_has_its_postgresql_twin() -> None:
    from mdm.store.migrations import migrations

    sqlite_names = [m.name for m in migrations._migrations]
    assert pg_migrations.NAMES == sqlite_names
    assert len(pg_migrations.NAMES) == SCHEMA_VERSION


def test_a_newer_schema_is_refused(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO mdm_migrations (name, applied_at) VALUES ('m999_x', 'now')")
    with pytest.raises(MdmError, match=f"this mdm knows {SCHEMA_VERSION}") as caught:
        connect(pg_url)
    assert "upgrade mdm" in caught.value.hint


def test_an_inventory_at_this_schema_opens_without_the_migrations_text(pg_url: str) -> None:
    # Every command checks the schema; only a change of it needs the migrations' text.
    said = subprocess.run(
        [sys.executable, "-c", "import sys; from mdm.store import connect;"
         " db = connect(sys.argv[1], create=False);"
         " print(sorted(m for m in sys.modules if m.startswith('mdm.store.')))", pg_url],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=True)
    loaded = said.stdout
    assert "'mdm.store.pg'" in loaded
    assert "mdm.store.pg_migrations" not in loaded and "mdm.store.progress_sql" not in loaded


def test_people_added_and_assignments_opened_get_their_progress_in_one_statement(
        pg_url: str, open_db: Any) -> None:
    """m021: a roster import's new people (one COPY), and assignments opened in one
    statement, have their rollout progress computed once for the statement, not once per
    row; the rows are those of the base tables, and a person added alone or deleted is
    kept as before."""
    from mdm.store import officers

    db = open_db(pg_url)
    db.execute("SET track_functions = 'pl'")  # counted in pg_stat_xact_user_functions
    people: list[dict[str, Any]] = [
        {"officer_id": f"P{n:04d}", "payroll_no": f"9{n:05d}", "forename": "Sam",
         "surname": f"Lee{n}", "worker_type": ("OFFICER", "STAFF")[n % 2],
         "station": ("Penrith", "Carlisle")[n % 3 == 0], "area": "North",
         "device_eligible": (None, 0, 1)[n % 3], "status": ("ACTIVE", "LEAVER")[n % 7 == 0],
         "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
        for n in range(200)]
    with transaction(db):
        officers.insert(db, people)
        calls = dict(db.execute("SELECT funcname, calls FROM pg_stat_xact_user_functions"))
    assert calls.get("mdm_rollout_progress_of", 0) == 0  # was once per person
    assert calls["mdm_rollout_progress_added"] == 1
    assert rows(pg_url, "SELECT COUNT(*) FROM rollout_progress") == [(200,)]
    assert rows(pg_url, "SELECT COUNT(*) FROM rollout_progress WHERE eligible = 1") == [(
        sum(p["status"] != "LEAVER" and (p["device_eligible"] if p["device_eligible"] is not None
                                         else p["worker_type"] != "STAFF") for p in people),)]
    assert progress_drift(pg_url) == []
    # Assignments opened in one statement (assign --from): their holders, once.
    from mdm.store import custody

    for n in range(3):
        rows(pg_url, "INSERT INTO devices (id, serial, imei1, manufacturer, model, status,"
             " status_changed_at, created_at) VALUES (?, ?, ?, 'Samsung', 'SM-G525F',"
             " 'enrolled', 'now', 'now')", (n + 1, f"SER{n}", f"35000000000000{n}"))

    class Undone(Exception):
        pass

    with pytest.raises(Undone), transaction(db):
        before = dict(db.execute("SELECT funcname, calls FROM pg_stat_xact_user_functions"))
        custody.open_many(db, [(n + 1, f"P{n * 3 + 2:04d}", "now", "admin", "bench")
                               for n in range(3)])
        calls = dict(db.execute("SELECT funcname, calls FROM pg_stat_xact_user_functions"))
        assert calls.get("mdm_rollout_progress_person", 0) == before.get(
            "mdm_rollout_progress_person", 0)  # was once per assignment
        assert calls["mdm_rollout_progress_added"] == before["mdm_rollout_progress_added"] + 1
        assert db.query("SELECT officer_id, device_id, allocated, enrolled FROM"
                        " rollout_progress WHERE allocated = 1 ORDER BY officer_id") == [
            {"officer_id": f"P{n * 3 + 2:04d}", "device_id": n + 1, "allocated": 1,
             "enrolled": 1} for n in range(3)]
        raise Undone  # (the devices' rows were written without their audit row)
    rows(pg_url, "INSERT INTO officers (officer_id, payroll_no, forename, surname, worker_type,"
         " status, created_at, updated_at) VALUES ('P9999', '999999', 'Kim', 'Ray', 'PCSO',"
         " 'ACTIVE', 'now', 'now')")
    rows(pg_url, "DELETE FROM officers WHERE officer_id = 'P0001'")
    assert rows(pg_url, "SELECT officer_id FROM rollout_progress WHERE officer_id IN"
                " ('P0001', 'P9999')") == [("P9999",)]
    assert progress_drift(pg_url) == []


def test_a_delivery_goes_to_postgresql_in_one_statement_per_batch(pg_url: str,
                                                                    open_db: Any) -> None:
    """A manifest's devices and IMEIs go in by COPY, one statement per batch of 5,000, not
    an INSERT per row (each cost psycopg ~50 µs of Python and the server a statement)."""
    from mdm.store import enrolment

    db = open_db(pg_url)
    devices = [(n, f"SER{n:05d}", f"35{n:013d}", None, "Samsung", "SM-G525F", "Galaxy XCover 5",
                "PO-1", "delivered", "2026-01-01T00:00:00Z", '{"supplier": "X"}',
                "2026-01-01T00:00:00Z") for n in range(1, 31)]

    class Undone(Exception):
        pass

    with pytest.raises(Undone), transaction(db):  # the counting trigger goes with it
        db.execute("CREATE TABLE statements_seen (tbl TEXT)")
        db.execute("CREATE FUNCTION statement_seen() RETURNS trigger LANGUAGE plpgsql AS $$"
                   " BEGIN INSERT INTO statements_seen VALUES (TG_TABLE_NAME); RETURN NULL;"
                   " END $$")
        for table in ("devices", "device_imeis"):
            db.execute(f"CREATE TRIGGER statement_seen AFTER INSERT ON {table}"
                       " FOR EACH STATEMENT EXECUTE FUNCTION statement_seen()")
        enrolment.insert_delivered(db, devices, [(d[2], d[0]) for d in devices])
        assert sorted(db.execute("SELECT tbl FROM statements_seen")) == [
            ("device_imeis",), ("devices",)]  # was one per row
        assert db.query("SELECT serial, imei1, supplier FROM devices WHERE id = 7") == [
            {"serial": "SER00007", "imei1": "350000000000007", "supplier": '{"supplier": "X"}'}]
        assert db.scalar("SELECT COUNT(*) FROM device_imeis") == 30
        raise Undone  # (devices written without their audit row)


def test_a_database_holding_something_else_is_refused(pg_server: str) -> None:
    url = _fresh_database(pg_server)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE payroll (id int)")
    with pytest.raises(MdmError, match="not an mdm inventory"):
        connect(url)


def test_a_read_command_does_not_make_an_inventory(pg_server: str, mdm: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    url = _fresh_database(pg_server)
    with pytest.raises(NoInventory):
        connect(url, create=False)
    monkeypatch.setenv("MDM_DB", url)
    err = json.loads(mdm("devices", "list", "--json", code=2).stderr)
    assert "no inventory" in err["error"]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM information_schema.tables WHERE"
                            " table_schema = 'public'").fetchone() == (0,)


def _fresh_database(pg_server: str) -> str:
    import uuid

    name = f"mdm_blank_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return pg_server.rsplit("/", 1)[0] + "/" + name


def test_a_password_in_the_url_is_refused(mdm: Any) -> None:
    err = json.loads(mdm("--db", "postgresql://mdm:secret@127.0.0.1:5432/mdm", "devices",
                         "list", "--json", code=2).stderr)
    assert "password" in err["error"] and "PGPASSFILE" in err["what_to_do"]
    assert "secret" not in json.dumps(err)


def test_an_unreachable_server_is_named(mdm: Any) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err = json.loads(mdm("--db", f"postgresql://mdm@127.0.0.1:{port}/mdm", "devices", "list",
                         "--json", code=1).stderr)
    assert f"127.0.0.1:{port}/mdm" in err["error"] and "server is running" in err["what_to_do"]
    assert "\n" not in err["error"] and "\t" not in err["error"]  # libpq's lines, as one


def test_a_missing_database_says_how_to_create_it(pg_server: str) -> None:
    with pytest.raises(StoreError) as caught:
        connect(pg_server.rsplit("/", 1)[0] + "/no_such_inventory")
    assert "does not exist" in caught.value.message
    assert "createdb --locale=C" in caught.value.hint  # as README's "Several sites" says


def test_the_project_file_names_a_postgresql_inventory(tmp_path: Path, pg_url: str,
                                                       mdm: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "site" / "mdm.toml"
    project.parent.mkdir()
    project.write_text(f'inventory = "{pg_url}"\n')
    monkeypatch.setenv("MDM_CONFIG", str(project))
    monkeypatch.delenv("MDM_DB")
    assert config.load().inventory == pg_url
    mdm("operators", "add", "admin", "--role", "admin")
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT name, role FROM operators").fetchall() == [("admin",
                                                                                 "admin")]
    assert mdm.json("audit", "verify")["ok"] is True


def test_sqlite_commands_do_not_import_psycopg(tmp_path: Path) -> None:
    code = ("import sys\nfrom mdm.cli import main\nsys.argv = ['mdm', 'operators', 'add',"
            " 'admin', '--role', 'admin']\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('psycopg' in sys.modules, file=sys.stderr)")
    env = {**os.environ, "MDM_DB": str(tmp_path / "mdm.db")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.stderr.strip().endswith("False"), done.stderr
    assert (tmp_path / "mdm.db").exists()


def test_truncate_cannot_empty_the_log(pg_url: str, open_db: Any) -> None:
    db = open_db(pg_url)
    for table in ("audit", "audit_state", "assignments"):
        with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
            db.execute(f"TRUNCATE {table} CASCADE")


def test_a_statement_of_too_many_values_is_named_as_mdms_fault_not_a_lost_server(
        pg_url: str, open_db: Any) -> None:
    from mdm.errors import ExitCode, MdmError

    db = open_db(pg_url)
    values = list(range(70_000))  # libpq takes at most 65,535 in one statement
    with pytest.raises(MdmError) as refused:
        db.execute(f"SELECT 1 WHERE 0 IN ({', '.join('?' for _ in values)})", values)
    assert refused.value.code == ExitCode.INTERNAL
    assert "more values than PostgreSQL takes in one" in refused.value.message
    assert "lost the connection" not in refused.value.message
    assert db.scalar("SELECT 1") == 1  # the connection is fine


def test_a_write_waits_for_another_and_says_so(pg_url: str, open_db: Any) -> None:
    holder = open_db(pg_url)
    told: list[int | None] = []
    waiter = open_db(pg_url, wait=10, on_wait=told.append)
    holder.begin()
    release = threading.Timer(1.6, holder.commit)  # type: ignore[attr-defined]
    release.start()
    started = time.monotonic()
    with transaction(waiter):
        audit.record(waiter, "admin", "test.write", "inventory")
    release.join()
    assert told == [os.getpid()]  # the holder's process, named by its application name
    assert 1.5 < time.monotonic() - started < 8


def test_a_writer_in_another_inventory_on_the_cluster_is_not_named(
        pg_server: str, pg_url: str, pg_template: str, open_db: Any) -> None:
    import uuid

    import psycopg

    other = f"mdm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {other} TEMPLATE {pg_template}")
    try:
        elsewhere = open_db(pg_server.rsplit("/", 1)[0] + "/" + other)
        elsewhere.begin()  # type: ignore[attr-defined]  # holds that inventory's lock
        try:
            assert open_db(pg_url).lock_holder() is None  # type: ignore[attr-defined]
        finally:
            elsewhere.rollback()  # type: ignore[attr-defined]
            elsewhere.close()
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {other} WITH (FORCE)")


def test_a_write_that_waits_too_long_is_named_busy(pg_url: str, open_db: Any) -> None:
    holder = open_db(pg_url)
    waiter = open_db(pg_url, wait=0.5)
    holder.begin()  # type: ignore[attr-defined]
    try:
        with pytest.raises(StoreError, match="is busy") as caught:
            with transaction(waiter):
                audit.record(waiter, "admin", "test.write", "inventory")
        assert "127.0.0.1" in caught.value.message and "--wait" in caught.value.hint
    finally:
        holder.rollback()  # type: ignore[attr-defined]
    assert audit.head(waiter)[0] == 0


WRITER = """
import sys
from mdm.store import audit, connect, transaction
url, site, worker, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
db = connect(url, wait=120)
for n in range(count):
    with transaction(db):
        name = f"{site}-{worker}-{n}"
        db.execute("INSERT INTO devices (serial, imei1, manufacturer, model,"
                   " status_changed_at, created_at) VALUES (?, ?, 'M', 'X', 'now', 'now')",
                   [name, name])
        audit.record(db, f"{site}-{worker}", "devices.add", f"device:{name}")
"""


def test_two_sites_writing_at_once_keep_one_chain(pg_url: str, open_db: Any) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, pg_url, site, str(w), "100"],
                              stderr=subprocess.PIPE, text=True)
             for site in ("north", "south") for w in range(4)]
    try:
        errors = [p.communicate(timeout=240)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()
    assert [p.returncode for p in procs] == [0] * 8, errors
    db = open_db(pg_url)
    assert db.scalar("SELECT COUNT(*) FROM devices") == 800  # nothing lost
    seqs = [s for (s,) in db.execute("SELECT seq FROM audit ORDER BY seq")]
    assert seqs == list(range(1, 801))  # one chain: no gap, no fork
    prevs = db.scalar("SELECT COUNT(DISTINCT prev_hash) FROM audit")
    assert prevs == 800  # no two rows continue the same row
    result = audit.verify(db)
    assert result.ok, result.as_dict()
    assert result.state_rows == 800


def _import(backend: str, roster: Path) -> subprocess.Popen[str]:
    """Start the real `mdm officers import` of `roster` on the backend's inventory."""
    env = {**os.environ, "MDM_DB": backend, "MDM_OPERATOR": "admin"}
    return subprocess.Popen([sys.executable, "-m", "mdm", "officers", "import", str(roster),
                             "--json"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen[str], timeout: float = 240) -> tuple[str, str]:
    """Wait for a process (bounded); kill it by PID if it outlives the wait."""
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _writing(backend: str, pid: int) -> bool:
    """Say whether process `pid` is inside its write transaction (on PostgreSQL: having
    written rows; on SQLite, which takes the write lock up front: holding it)."""
    if backend.startswith("postgresql://"):
        with psycopg.connect(backend, autocommit=True) as conn:
            return conn.execute(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = %s"
                " AND backend_xid IS NOT NULL", [f"mdm {pid}"]).fetchone() == (1,)
    import sqlite3

    probe = sqlite3.connect(backend, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")  # free: nobody is writing
        probe.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as e:
        if "locked" not in str(e) and "busy" not in str(e):
            raise
        return True
    finally:
        probe.close()


def _state(backend: str) -> tuple[dict[str, int], bool, int]:
    """Return every table's row count, whether the audit chain verifies, and its rows."""
    pg = backend.startswith("postgresql://")
    counts = db_fingerprint(backend if pg else Path(backend))[1]
    db = connect(backend, create=False)
    try:
        result = audit.verify(db)
    finally:
        db.conn.close()
    return counts, result.ok, result.rows


@pytest.fixture(scope="module")
def large_rosters(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 2,000-person roster and the same with 43,000 joiners (45,000 rows), written once
    for both backends (the files are only read)."""
    folder = tmp_path_factory.mktemp("rosters")
    old, new = folder / "old.csv", folder / "new.csv"
    serving = examples.generate_roster(2000, seed=1)
    joiners = [{**p, "payroll_no": "N" + p["payroll_no"]}
               for p in examples.generate_roster(43000, seed=2)]
    examples.write_csv(old, serving, examples.ROSTER_COLUMNS)
    examples.write_csv(new, serving + joiners, examples.ROSTER_COLUMNS)  # 45,000 rows
    return old, new


def test_kill_9_during_a_large_import_leaves_old_or_new(
        backend: str, large_rosters: tuple[Path, Path]) -> None:
    """kill -9 the real CLI midway through a 45,000-row roster import: the inventory is the
    old one or the new one, never in between, and the import then runs to the end."""
    old, new = large_rosters
    env = {**os.environ, "MDM_DB": backend}
    subprocess.run([sys.executable, "-m", "mdm", "operators", "add", "admin"], env=env,
                   capture_output=True, check=True, timeout=60)
    first = _import(backend, old)
    assert _finish(first)[1] == "" and first.returncode == 0
    before = _state(backend)
    assert before[0]["officers"] == 2000 and before[1]

    killed = _import(backend, new)
    try:
        deadline = time.monotonic() + 120
        while not _writing(backend, killed.pid):
            assert killed.poll() is None, "the import ended before it was seen writing"
            assert time.monotonic() < deadline, "the import never started writing"
            time.sleep(0.05)
        time.sleep(0.3)  # into its rows
        assert killed.poll() is None, "the import ended before the kill"
        os.kill(killed.pid, signal.SIGKILL)
    finally:
        _finish(killed)
    assert killed.returncode == -signal.SIGKILL
    after_kill = _state(backend)

    done = _import(backend, new)
    out, err = _finish(done)
    assert done.returncode == 0, err
    after = _state(backend)
    assert after[0]["officers"] == 45000 and after[1] and after[2] == before[2] + 1
    assert after_kill in (before, after)  # row counts and the audit chain: old or new


