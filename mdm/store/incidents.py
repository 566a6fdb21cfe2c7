"""The helpdesk's queries: incidents (lost, stolen, returned devices) and their wipes.

A new incident's id comes back through `RETURNING`, which both engines speak (a cursor's
`lastrowid` is SQLite's alone).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mdm.store.db import Database


def insert(db: Database, row: Mapping[str, Any]) -> int:
    """Open an incident (its columns as keys) and return its id."""
    cols = list(row)
    found = db.query(f"INSERT INTO incidents ({', '.join(cols)})"
                     f" VALUES ({', '.join('?' * len(cols))}) RETURNING id",
                     [row[c] for c in cols])
    return int(found[0]["id"])


def get(db: Database, incident_id: int) -> dict[str, Any] | None:
    """One incident with its device's serial, or None."""
    rows = db.query("SELECT i.*, d.serial FROM incidents i JOIN devices d ON d.id = i.device_id"
                    " WHERE i.id = ?", [incident_id])
    return rows[0] if rows else None


def latest_wipe(db: Database, incident_id: int) -> dict[str, Any] | None:
    """The newest wipe command queued for an incident, or None."""
    rows = db.query("SELECT * FROM commands WHERE incident_id = ? AND kind = 'wipe'"
                    " ORDER BY created_at DESC LIMIT 1", [incident_id])
    return rows[0] if rows else None


def latest_loss(db: Database, device_id: int, states: Sequence[str]) -> dict[str, Any] | None:
    """The device's newest lost or stolen incident in one of these states, or None."""
    rows = db.query("SELECT * FROM incidents WHERE device_id = ? AND kind IN ('lost',"
                    f" 'stolen') AND state IN ({', '.join('?' * len(states))})"
                    " ORDER BY id DESC LIMIT 1", [device_id, *states])
    return rows[0] if rows else None


def latest_id(db: Database, device_id: int) -> int | None:
    """The id of the device's newest incident of any kind, or None."""
    found: int | None = db.scalar("SELECT id FROM incidents WHERE device_id = ? ORDER BY id DESC"
                                  " LIMIT 1", [device_id])
    return found


def open_id(db: Database, device_id: int, kind: str | None = None) -> int | None:
    """The id of an open incident of the device (of one kind, if given), or None."""
    if kind is None:
        found: int | None = db.scalar("SELECT id FROM incidents WHERE device_id = ?"
                                      " AND state = 'open'", [device_id])
    else:
        found = db.scalar("SELECT id FROM incidents WHERE device_id = ? AND kind = ?"
                          " AND state = 'open'", [device_id, kind])
    return found


def close_recovered(db: Database, incident_id: int, at: str, by: str, outcome: str,
                    note: str) -> None:
    """Close an incident whose device was found."""
    db.execute("UPDATE incidents SET state = 'recovered', closed_at = ?, closed_by = ?,"
               " outcome = ?, note = ? WHERE id = ?", [at, by, outcome, note, incident_id])


def listing(db: Database, open_only: bool) -> list[dict[str, Any]]:
    """Incidents with device serial and holder's collar and name, newest first."""
    return db.query(
        "SELECT i.*, d.serial, o.collar_number AS holder_collar,"
        " o.forename || ' ' || o.surname AS holder_name FROM incidents i"
        " JOIN devices d ON d.id = i.device_id"
        " LEFT JOIN officers o ON o.officer_id = i.holder_officer_id"
        + (" WHERE i.state = 'open'" if open_only else "") + " ORDER BY i.id DESC")


def commands_of(db: Database, incident_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Every command of these incidents, oldest first."""
    if not incident_ids:
        return []
    return db.query("SELECT * FROM commands WHERE incident_id IN"
                    f" ({', '.join('?' * len(incident_ids))}) ORDER BY created_at",
                    list(incident_ids))
