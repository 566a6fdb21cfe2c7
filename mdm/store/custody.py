"""Who held a device when: the custody history queries, below every feature that shows it.

Devices show their holders and officers the devices they held; custody writes the rows.
The reads live here so that none of those features has to import another to answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from mdm.store.db import Database

# Every assignment with its device and officer; callers add WHERE and ORDER BY.
HISTORY = (
    "SELECT a.id, d.serial, a.officer_id, o.collar_number, o.forename || ' ' || o.surname AS name,"
    " o.payroll_no, o.station, a.opened_at, a.opened_by, a.open_reason, a.closed_at,"
    " a.closed_by, a.close_reason"
    " FROM assignments a JOIN devices d ON d.id = a.device_id"
    " JOIN officers o ON o.officer_id = a.officer_id")


def device_history(db: Database, device_id: int) -> list[dict[str, Any]]:
    """Every assignment of one device, oldest first."""
    return db.query(f"{HISTORY} WHERE a.device_id = ? ORDER BY a.opened_at, a.id", [device_id])


def officer_history(db: Database, officer_id: str) -> list[dict[str, Any]]:
    """Every device one officer has held, oldest first."""
    return db.query(f"{HISTORY} WHERE a.officer_id = ? ORDER BY a.opened_at, a.id",
                    [officer_id])


def open_of(db: Database, column: str, value: object) -> dict[str, Any] | None:
    """The open assignment of one device (`device_id`) or officer (`officer_id`), if any."""
    if column not in ("device_id", "officer_id"):
        raise ValueError(f"not an assignment key: {column}")
    found = db.query(f"{HISTORY} WHERE a.{column} = ? AND a.closed_at IS NULL", [value])
    return found[0] if found else None


def latest_of_device(db: Database, device_id: int) -> dict[str, Any] | None:
    """The device's newest assignment, open or closed, if it was ever held."""
    found = db.query(f"{HISTORY} WHERE a.device_id = ? ORDER BY a.opened_at DESC, a.id DESC"
                     " LIMIT 1", [device_id])
    return found[0] if found else None


def held_at(db: Database, device_id: int, at: str) -> dict[str, Any] | None:
    """The assignment of the device that was open at the instant `at`, if any."""
    rows = db.query(f"{HISTORY} WHERE a.device_id = ? AND a.opened_at <= ?"
                    " AND (a.closed_at IS NULL OR a.closed_at > ?)", [device_id, at, at])
    return rows[0] if rows else None


def open_many(db: Database, rows: Iterable[tuple[int, str, str, str, str]]) -> None:
    """Open assignments: (device_id, officer_id, opened_at, opened_by, open_reason) each.

    PostgreSQL takes them as one statement over arrays, keyed here in order from the
    highest id (as its insert trigger would key each, one query per row; writers are
    serialised, so the keys are free).
    """
    if db.dialect.name != "postgresql":
        db.executemany("INSERT INTO assignments (device_id, officer_id, opened_at, opened_by,"
                       " open_reason) VALUES (?, ?, ?, ?, ?)", rows)
        return
    columns = [list(column) for column in zip(*rows, strict=True)]
    if not columns:
        return
    db.execute("INSERT INTO assignments (id, device_id, officer_id, opened_at, opened_by,"
               " open_reason) SELECT top.id + r.n, r.device_id, r.officer_id, r.opened_at,"
               " r.opened_by, r.open_reason FROM (SELECT COALESCE(MAX(id), 0) AS id FROM"
               " assignments) top, unnest(?::bigint[], ?::text[], ?::text[], ?::text[],"
               " ?::text[]) WITH ORDINALITY AS r (device_id, officer_id, opened_at, opened_by,"
               " open_reason, n) ORDER BY r.n", columns)


def close(db: Database, assignment_id: int, operator: str, reason: str, at: str) -> None:
    """Close one assignment."""
    db.execute("UPDATE assignments SET closed_at = ?, closed_by = ?, close_reason = ?"
               " WHERE id = ?", [at, operator, reason, assignment_id])


def close_open_many(db: Database, rows: Iterable[tuple[str, str, str, int]]) -> None:
    """Close each device's open assignment: (closed_at, closed_by, close_reason, device_id)."""
    db.executemany("UPDATE assignments SET closed_at = ?, closed_by = ?, close_reason = ?"
                   " WHERE device_id = ? AND closed_at IS NULL", rows)


def serials_held_by(db: Database, officer_ids: Sequence[str]) -> dict[str, str]:
    """Map each of these officers who holds a device now to its serial (≤ 500)."""
    if not officer_ids:
        return {}
    among, args = db.dialect.in_("a.officer_id", officer_ids)
    return dict(db.execute(
        "SELECT a.officer_id, d.serial FROM assignments a JOIN devices d ON d.id ="
        f" a.device_id WHERE a.closed_at IS NULL AND {among}", args).fetchall())
