"""The rollout's reads of the roster and groups: who the plan's cohorts can match.

Kept here so that the rollout's features say what they mean (the eligible people, a
group's members) and the SQL stays in the store.
"""

from __future__ import annotations

from typing import Any

from mdm.store.db import Database

# Roster columns a cohort may filter on (the plan checks the keys before they get here).
COLUMNS = ("area", "district", "station", "team", "worker_type", "rank")


def eligible_people(db: Database, eligible: str, columns: list[str]) -> list[Any]:
    """Return (officer id, *columns) for each person the `eligible` condition admits."""
    unknown = set(columns) - set(COLUMNS)
    if unknown:
        raise ValueError(f"not a cohort column: {sorted(unknown)}")
    return db.execute(f"SELECT officer_id{''.join(', ' + c for c in columns)}"
                      f" FROM officers WHERE {eligible}").fetchall()


def group_members(db: Database, names: list[str]) -> dict[str, set[str]]:
    """Return the members of these groups, by group name."""
    out: dict[str, set[str]] = {}
    if not names:
        return out
    marks = ", ".join("?" for _ in names)
    for group, officer in db.execute("SELECT group_name, officer_id FROM group_members"
                                     f" WHERE group_name IN ({marks})", names):
        out.setdefault(group, set()).add(officer)
    return out
