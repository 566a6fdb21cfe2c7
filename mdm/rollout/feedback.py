"""Feedback from the people using the devices: the pilot's voice, a gate input, evidence.

Each item names who raised it, how severe it is (an open `blocker` holds every gate that
allows none) and, where they say, how many minutes a shift the device saves them — the
measure the forces in the domain reference published. Items are resolved with a note,
never deleted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mdm.errors import InputError, NotFound
from mdm.officers import service as officers
from mdm.operators import roles
from mdm.store import audit, transaction
from mdm.store.db import Database
from mdm.timeutil import now

SEVERITIES = ("blocker", "major", "minor")
COLUMNS = ("id", "severity", "officer_id", "collar_number", "station", "text",
           "minutes_saved", "raised_at", "resolved_at", "resolution")
KEY_COLUMNS = ("id", "severity", "text", "resolved_at")


def add(db: Database, operator: str, ref: str, severity: str, text: str,
        minutes_saved: int | None) -> dict[str, Any]:
    """Record one piece of feedback from an officer."""
    severity = severity.lower()
    if severity not in SEVERITIES:
        raise InputError(f"--severity {severity!r} is not known", "use blocker, major or minor")
    if not text.strip():
        raise InputError("--text is empty", "say what the officer reported")
    if minutes_saved is not None and not 0 <= minutes_saved <= 720:
        raise InputError(f"--minutes-saved {minutes_saved} is not 0 to 720 minutes a shift")
    with transaction(db):
        roles.require(db, operator, "feedback.manage")
        person = officers.resolve(db, ref)
        at = now()
        cursor = db.execute("INSERT INTO feedback (officer_id, severity, text, minutes_saved,"
                            " raised_at, raised_by) VALUES (?, ?, ?, ?, ?, ?)",
                            [person["officer_id"], severity, text.strip(), minutes_saved, at,
                             operator])
        fid = cursor.lastrowid
        audit.record(db, operator, "feedback.add", f"feedback:{fid}", None,
                     {"officer_id": person["officer_id"], "severity": severity,
                      "text": text.strip(), "minutes_saved": minutes_saved})
    return {"id": fid, "officer_id": person["officer_id"], "severity": severity,
            "raised_at": at}


def resolve(db: Database, operator: str, fid: int, note: str) -> dict[str, Any]:
    """Mark one feedback item resolved, with a note saying how."""
    if not note.strip():
        raise InputError("--note is empty", "say how it was resolved")
    with transaction(db):
        roles.require(db, operator, "feedback.manage")
        row = db.query("SELECT * FROM feedback WHERE id = ?", [fid])
        if not row:
            raise NotFound(f"no feedback item {fid}", "list them with: mdm feedback list")
        if row[0]["resolved_at"]:
            raise InputError(f"feedback {fid} was already resolved on {row[0]['resolved_at']}"
                             f" by {row[0]['resolved_by']}")
        at = now()
        db.execute("UPDATE feedback SET resolved_at = ?, resolved_by = ?, resolution = ?"
                   " WHERE id = ?", [at, operator, note.strip(), fid])
        audit.record(db, operator, "feedback.resolve", f"feedback:{fid}",
                     {"resolved_at": None}, {"resolved_at": at, "note": note.strip()})
    return {"id": fid, "resolved_at": at}


def iter_items(db: Database, open_only: bool, severity: str | None) -> Iterator[dict[str, Any]]:
    """Yield feedback items, newest first (only open ones, or one severity, if asked)."""
    where, args = ["1 = 1"], []
    if open_only:
        where.append("f.resolved_at IS NULL")
    if severity:
        if severity.lower() not in SEVERITIES:
            raise InputError(f"--severity {severity!r} is not known",
                             "use blocker, major or minor")
        where.append("f.severity = ?")
        args.append(severity.lower())
    return db.iter_query(
        "SELECT f.id, f.severity, f.officer_id, o.collar_number, o.station, f.text,"
        " f.minutes_saved, f.raised_at, f.raised_by, f.resolved_at, f.resolved_by,"
        " f.resolution FROM feedback f JOIN officers o ON o.officer_id = f.officer_id"
        f" WHERE {' AND '.join(where)} ORDER BY f.id DESC", args)


def benefit(db: Database) -> dict[str, Any]:
    """Summarise minutes saved per shift from feedback (mean, and hours per 100 shifts)."""
    values = [r[0] for r in db.execute("SELECT minutes_saved FROM feedback"
                                       " WHERE minutes_saved IS NOT NULL")]
    mean = sum(values) / len(values) if values else 0.0
    return {"responses": len(values), "mean_minutes_saved_per_shift": round(mean, 1),
            "hours_saved_per_100_shifts": round(mean * 100 / 60, 1)}
