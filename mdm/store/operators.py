"""The operator queries: who is registered, with which role, and whether still active."""

from __future__ import annotations

from typing import Any

from mdm.store.db import Database


def any_registered(db: Database) -> bool:
    """Whether the inventory has any operator at all (active or removed)."""
    return db.execute("SELECT 1 FROM operators LIMIT 1").fetchone() is not None


def exists(db: Database, name: str) -> bool:
    """Whether an operator of this name was ever registered (active or removed)."""
    return db.execute("SELECT 1 FROM operators WHERE name = ?", [name]).fetchone() is not None


def active_role(db: Database, name: str) -> str | None:
    """The role of an active operator of this name, or None."""
    row = db.execute("SELECT role FROM operators WHERE name = ? AND active = 1",
                     [name]).fetchone()
    return str(row[0]) if row else None


def role_and_active(db: Database, name: str) -> tuple[str, bool] | None:
    """An operator's role and whether still active, or None if never registered."""
    row = db.execute("SELECT role, active FROM operators WHERE name = ?", [name]).fetchone()
    return (str(row[0]), bool(row[1])) if row else None


def active_admins(db: Database) -> int:
    """How many active admins the inventory has."""
    return int(db.execute("SELECT COUNT(*) FROM operators WHERE role = 'admin'"
                          " AND active = 1").fetchone()[0])


def insert(db: Database, name: str, role: str, at: str, by: str) -> None:
    """Register an active operator."""
    db.execute("INSERT INTO operators (name, role, active, created_at, created_by)"
               " VALUES (?, ?, 1, ?, ?)", [name, role, at, by])


def deactivate(db: Database, name: str) -> None:
    """Remove an operator: the row stays (the log names it), inactive."""
    db.execute("UPDATE operators SET active = 0 WHERE name = ?", [name])


def every(db: Database) -> list[dict[str, Any]]:
    """Every operator's row, by name."""
    return db.query("SELECT * FROM operators ORDER BY name")
