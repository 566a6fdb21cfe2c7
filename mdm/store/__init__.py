"""The inventory database: one connection recipe, migrations on open, write transactions.

Every connection gets WAL, `synchronous=FULL` (an evidential store must not lose an
acknowledged commit to a power cut), foreign keys and a busy timeout. Every write goes
through `transaction()`, which takes the write lock up front (`BEGIN IMMEDIATE`) so a
read-check-then-write never fails with SQLITE_BUSY_SNAPSHOT when a colleague commits
in between. This package knows no feature.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mdm.errors import ExitCode, MdmError
from mdm.store.db import Database

BUSY_TIMEOUT_MS = 30_000
DEFAULT_DB = Path("inventory") / "mdm.db"


def resolve_path(cli_value: str | None) -> Path:
    """Resolve the inventory path: --db, then MDM_DB, then inventory/mdm.db."""
    return Path(cli_value or os.environ.get("MDM_DB") or DEFAULT_DB)


def connect(path: Path) -> Database:
    """Open the inventory with the connection settings every operator shares."""
    if path.parent and not path.parent.exists():
        raise MdmError(
            f"inventory folder {path.parent} does not exist",
            "create it, or point --db / MDM_DB at an existing folder",
        )
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.DatabaseError as exc:
        raise MdmError(f"{path} is not a usable inventory: {exc}",
                       "check the path given by --db / MDM_DB") from None
    db = Database(conn)
    _migrate(db)
    return db


# The number of migrations in mdm/store/migrations.py (a test keeps the two in step).
# An inventory at this version opens without importing sqlite-utils at all.
SCHEMA_VERSION = 8


def _migrate(db: Database) -> None:
    """Bring the schema up to date under the write lock, so two first runs can't race."""
    version = db.scalar("PRAGMA user_version")
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise MdmError(f"this inventory has schema version {version}; this mdm knows"
                       f" {SCHEMA_VERSION}", "upgrade mdm before using this inventory")
    from mdm.store.migrations import migrations

    with transaction(db):
        migrations.apply(db.utils)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


@contextmanager
def transaction(db: Database) -> Iterator[Database]:
    """Run the block as one write transaction, holding the write lock from the start."""
    conn = db.conn
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise MdmError(f"the inventory is busy: {exc}",
                       "another operator holds a long write; try again in a minute",
                       ExitCode.PARTIAL) from None
    try:
        yield db
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")

