"""Read incidents: deadlines, commands and unsynced entries; export them as a disclosure."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from mdm import csvio, exports
from mdm.queue.service import waiting_for
from mdm.store import incidents as incident_rows
from mdm.store.db import Database
from mdm.timeutil import now

EXPORT_COLUMNS = ("id", "serial", "kind", "state", "holder_officer_id", "holder_collar",
                  "holder_name", "reported_by_officer", "place", "crime_ref",
                  "return_reason", "known_at", "dp_deadline", "hours_left", "overdue",
                  "unsynced_entries", "unsynced_reported_at", "opened_at", "opened_by",
                  "closed_at", "outcome", "commands")


def _hours(later: str, earlier: str) -> float:
    def parse(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return round((parse(later) - parse(earlier)).total_seconds() / 3600, 1)


def incidents(db: Database, open_only: bool = False) -> list[dict[str, Any]]:
    """List incidents, newest first, with time left to the 72-hour deadline and commands."""
    rows = incident_rows.listing(db, open_only)
    at = now()
    commands: dict[int, list[dict[str, Any]]] = {}
    if rows:
        ids = [r["id"] for r in rows]
        for c in incident_rows.commands_of(db, ids):
            commands.setdefault(c["incident_id"], []).append(
                {"id": c["id"], "kind": c["kind"], "state": c["state"],
                 "requested_by": c["requested_by"], "approved_by": c["approved_by"],
                 "not_before": c["not_before"], "done_at": c["done_at"],
                 "last_answer": c["last_answer"], "waiting_for": waiting_for(c, at)})
    out = []
    for r in rows:
        # Time left counts only while the incident is open: a closed one has no deadline to run.
        left = _hours(r["dp_deadline"], at) if r["dp_deadline"] and r["state"] == "open" \
            else None
        out.append({**{k: r[k] for k in EXPORT_COLUMNS if k in r and k != "commands"},
                    "hours_left": left, "overdue": left is not None and left < 0
                    and r["state"] == "open", "commands": commands.get(r["id"], []),
                    "note": r["note"]})
    return out


def export(db: Database, operator: str, open_only: bool, reason: str | None,
           output: Path | None = None, force: bool = False,
           emit: Callable[[str], None] | None = None) -> tuple[str, int]:
    """Export incidents as CSV for the data-protection officer; logged as a disclosure."""
    rows = incidents(db, open_only)
    flat = [{**r, "commands": "; ".join(f"{c['kind']} {c['state']}" for c in r["commands"])}
            for r in rows]
    body = csvio.write_csv(flat, EXPORT_COLUMNS)
    exports.deliver(db, operator, "incidents.export", "incidents",
                    {"rows": len(rows), "format": "csv", "reason": reason,
                     "open_only": open_only}, body, output, force, emit)
    return body, len(rows)
