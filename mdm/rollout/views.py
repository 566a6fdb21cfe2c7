"""Render rollout results for people: funnel tables, gate lines, CSV per station."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mdm import ui
from mdm.errors import InputError
from mdm.rollout import status as funnel
from mdm.rollout.plan import load
from mdm.store.db import Database


def status(db: Database, path: Path, folder: Path, wave: str | None,
           by: str | None) -> dict[str, Any]:
    """Load the plan and return the status of its waves (reads only)."""
    if by is not None and by not in funnel.BY:
        raise InputError(f"--by {by!r} is not supported", "use station, area or team")
    return funnel.status(db, load(path), folder, wave, by)


def status_csv(result: dict[str, Any], fmt: str) -> tuple[str, int]:
    """Return the status as CSV, one row per wave (and place)."""
    if fmt.lower() != "csv":
        raise InputError(f"--format {fmt!r} is not supported", "use csv (or --json)")
    from mdm import csvio

    rows = funnel.flat_rows(result)
    columns = list(rows[0]) if rows else ["wave"]
    return csvio.write_csv(rows, columns), len(rows)


def render_status(result: dict[str, Any]) -> None:
    """Print each wave's funnel and gate as tables."""
    for w in result["waves"]:
        dates = (f"planned {w['planned_start']} → {w['planned_end']}; "
                 f"opened {w['opened_at'] or '—'}; handovers {w['first_handover'] or '—'}"
                 f" → {w['last_handover'] or '—'}")
        ui.heading(f"wave {w['wave']} ({w['state']})", dates)
        rows = [{"stage": s, "people": w["funnel"][s]["count"],
                 "percent": w["funnel"][s]["percent"]} for s in funnel.STAGES]
        ui.table(rows, ["stage", "people", "percent"])
        if w.get("groups"):
            key = w["by"]
            ui.table([{key: g[key], **{s: g[s]["count"] for s in funnel.STAGES}}
                      for g in w["groups"]], [key, *funnel.STAGES])
        gate = w["gate"]
        ui.table([{"condition": c["condition"], "met": "yes" if c["met"] else "NO",
                   "figure": c["text"]} for c in gate["conditions"]],
                 ["condition", "met", "figure"],
                 title="gate: " + ("holds" if gate["holds"] else "does not hold"
                                   if gate["judged"] else "not judged until the wave opens"))
