"""The inventory database: one connection recipe, migrations on open, write transactions.

Every connection gets WAL, `synchronous=FULL` (an evidential store must not lose an
acknowledged commit to a power cut), foreign keys and a busy timeout. Every write goes
through `transaction()`, which takes the write lock up front (`BEGIN IMMEDIATE`) so a
read-check-then-write never fails with SQLITE_BUSY_SNAPSHOT when a colleague commits
in between; if it has to wait more than a second it says for whom. Only a command that
means to create an inventory may open a path that holds none: a typo'd `--db` must not
leave a new, empty inventory behind. The file holds names and payroll numbers, so it is
created 0600 (its WAL and shared-memory files inherit that) in folders made 0700,
whatever the umask. This package knows no feature.

A `postgresql://` URL instead of a path selects PostgreSQL (mdm/store/pg.py), for a force
whose several sites write one inventory; psycopg is imported only then.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, cast

from mdm.errors import MdmError
from mdm.store import evidence, failures
from mdm.store.db import DEFAULT_WAIT, Database

if TYPE_CHECKING:
    from mdm.store.pg import PgDatabase

__all__ = ["DEFAULT_WAIT", "Database", "connect", "is_url", "resolve_path", "transaction"]

SCHEMES = ("postgresql://", "postgres://")

DEFAULT_DB = Path("inventory") / "mdm.db"
NOTICE_AFTER = 1.0  # seconds a write waits before saying that it is waiting


def is_url(value: object) -> bool:
    """Say whether an inventory setting names a PostgreSQL database (else an SQLite file)."""
    return isinstance(value, str) and value.startswith(SCHEMES)


def resolve_path(cli_value: str | None) -> Path | str:
    """Resolve the inventory: --db, then MDM_DB, then inventory/mdm.db (a URL stays text)."""
    value = cli_value or os.environ.get("MDM_DB") or str(DEFAULT_DB)
    return value if is_url(value) else Path(value)


def _create_file(path: Path) -> None:
    """Create an empty inventory file 0600, making any missing folders 0700."""
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700)
        os.chmod(folder, 0o700)  # mkdir's mode is cut by the umask, and may be too little
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another operator's first run got there first
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def connect(path: Path | str, *, create: bool = True, wait: float = DEFAULT_WAIT,
            on_wait: Callable[[int | None], None] | None = None) -> Database:
    """Open the inventory with the connection settings every operator shares.

    With `create` False, a missing, empty or blank file is refused (NoInventory) and left
    as it was. `wait` is how long a write waits for another's; `on_wait` is told (with the
    holder's pid, when known) once a write has waited a second. A `postgresql://` URL
    opens PostgreSQL instead (returning a PgDatabase, with the same interface).
    """
    if is_url(path):
        import mdm.store.pg as pg

        return pg.connect(str(path), known=SCHEMA_VERSION, create=create, wait=wait,
                          on_wait=on_wait)
    path = Path(path)
    if path.is_dir():
        raise MdmError(f"{path} is a folder, not an inventory file",
                       "point --db / MDM_DB at a file, e.g. inventory/mdm.db")
    if not path.exists():
        if not create:
            raise failures.NoInventory(path)
        try:
            _create_file(path)
        except OSError as exc:
            raise MdmError(f"cannot create the inventory {path}: {exc.strerror}",
                           "check the path given by --db / MDM_DB") from None
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=wait,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={int(wait * 1000)}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            _check_blank(conn, path, create)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        evidence.register(conn)
    except sqlite3.DatabaseError as exc:
        raise MdmError(f"{path} is not a usable inventory: {exc}",
                       "check the path given by --db / MDM_DB") from None
    db = Database(conn, path, wait, on_wait)
    _migrate(db, version)
    return db


def _check_blank(conn: sqlite3.Connection, path: Path, create: bool) -> None:
    """Refuse a file with no inventory in it, unless asked to create one there."""
    names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}
    if not names:
        if not create:
            conn.close()
            raise failures.NoInventory(path, " (the file is empty)")
        os.chmod(path, 0o600)
    elif "_sqlite_migrations" not in names:
        conn.close()
        raise MdmError(f"{path} is an SQLite file but not an mdm inventory",
                       "point --db / MDM_DB at the inventory you meant")


# The number of migrations in mdm/store/migrations.py (a test keeps the two in step).
# An inventory at this version opens without importing sqlite-utils at all.
SCHEMA_VERSION = 21


def _migrate(db: Database, version: int) -> None:
    """Bring the schema up to date under the write lock, so two first runs can't race."""
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise MdmError(f"this inventory has schema version {version}; this mdm knows"
                       f" {SCHEMA_VERSION}", "upgrade mdm before using this inventory")
    from mdm.store.migrations import migrations

    with transaction(db):
        migrations.apply(db.utils)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _begin(db: Database) -> None:
    """Take the write lock; after a second of waiting, say for whom, then wait on."""
    conn, first = db.conn, min(NOTICE_AFTER, db.wait)
    if first < db.wait:
        conn.execute(f"PRAGMA busy_timeout={int(first * 1000)}")
    try:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not failures.is_busy(exc) or first >= db.wait:
                raise db.failed(exc) from None
        if db.on_wait:
            db.on_wait(failures.writer_pid(db.path))
        conn.execute(f"PRAGMA busy_timeout={int((db.wait - first) * 1000)}")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise db.failed(exc) from None
    finally:
        if first < db.wait:
            conn.execute(f"PRAGMA busy_timeout={int(db.wait * 1000)}")


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # SQLite rolls back by itself when it can't be told to


@contextmanager
def transaction(db: Database) -> Iterator[Database]:
    """Run the block as one write transaction, holding the write lock from the start.

    Refuse to commit a change to an evidential row that no audit row has sealed.
    """
    if db.dialect.name == "postgresql":
        with _pg_transaction(cast("PgDatabase", db)):
            yield db
        return
    conn = db.conn
    _begin(db)
    try:
        evidence.begin(db)
        yield db
        unsealed = evidence.unsealed(db)
        if unsealed:
            raise RuntimeError(f"evidential rows changed without an audit row: {unsealed}")
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        _rollback(conn)
        raise db.failed(exc) from None
    except BaseException:
        _rollback(conn)
        raise
    finally:
        evidence.end(db)


@contextmanager
def _pg_transaction(db: PgDatabase) -> Iterator[None]:
    """PostgreSQL's transaction(): the advisory write lock instead of BEGIN IMMEDIATE."""
    read = db.begin(evidence.BEGIN_SQL)  # the lock, and what the log's head is, at once
    try:
        evidence.begin(db, read)
        yield
        unsealed = evidence.unsealed(db)
        if unsealed:
            raise RuntimeError(f"evidential rows changed without an audit row: {unsealed}")
        db.commit()
    except BaseException:
        db.rollback()
        raise
    finally:
        evidence.end(db)
