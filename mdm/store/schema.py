"""What a migrated embedded (SQLite) inventory holds, for the generated schema reference.

These read SQLite's own catalogue (`sqlite_master`, the migrations table sqlite-utils
keeps), so they are for the embedded inventory only: docs/schema.md documents its schema.
"""

from __future__ import annotations

from mdm.store.db import Database


def objects(db: Database) -> list[tuple[str, str, str]]:
    """(type, name, SQL) of every table, index and trigger, in the order they were made."""
    return [(r[0], r[1], r[2]) for r in db.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"
        " AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]


def migrations(db: Database) -> list[str]:
    """The names of the applied migrations, in order."""
    return [m for (m,) in db.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
