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
from mdm.store import rollout as store
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
        fid = store.add_feedback(db, person["officer_id"], severity, text.strip(),
                                 minutes_saved, at, operator)
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
        row = store.feedback_item(db, fid)
        if row is None:
            raise NotFound(f"no feedback item {fid}", "list them with: mdm feedback list")
        if row["resolved_at"]:
            raise InputError(f"feedback {fid} was already resolved on {row['resolved_at']}"
                             f" by {row['resolved_by']}")
        at = now()
        store.resolve_feedback(db, fid, at, operator, note.strip())
        audit.record(db, operator, "feedback.resolve", f"feedback:{fid}",
                     {"resolved_at": None}, {"resolved_at": at, "note": note.strip()})
    return {"id": fid, "resolved_at": at}


def iter_items(db: Database, open_only: bool, severity: str | None) -> Iterator[dict[str, Any]]:
    """Yield feedback items, newest first (only open ones, or one severity, if asked)."""
    if severity and severity.lower() not in SEVERITIES:
        raise InputError(f"--severity {severity!r} is not known", "use blocker, major or minor")
    return store.iter_feedback(db, open_only, severity.lower() if severity else None)


def benefit(db: Database) -> dict[str, Any]:
    """Summarise minutes saved per shift from feedback (mean, and hours per 100 shifts)."""
    values = store.minutes_saved(db)
    mean = sum(values) / len(values) if values else 0.0
    return {"responses": len(values), "mean_minutes_saved_per_shift": round(mean, 1),
            "hours_saved_per_100_shifts": round(mean * 100 / 60, 1)}
