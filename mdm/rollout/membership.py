"""Who falls in which wave: the plan's cohorts read against the roster and the groups.

Every device-eligible person must fall in exactly one wave. Hand-picked cohorts (a group
such as `pilot`, or explicit officer ids) take their people first, earliest wave first:
the pilot draws from every area by design, and its members are not counted again in
their area's wave. Filter cohorts (area, station, team, …) must not overlap one another:
a person two of them match is a mistake in the plan, and is named. Leavers and people
who are not device-eligible are set aside and reported, never silently dropped.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mdm.errors import Problem
from mdm.rollout.plan import Plan, Wave
from mdm.store.db import Database

PEOPLE_SQL = ("SELECT officer_id, payroll_no, collar_number, forename, surname, worker_type,"
              " rank, area, district, station, team, status, device_eligible, pnb_required"
              " FROM officers")


def eligible(person: dict[str, Any]) -> bool:
    """Say whether the roster makes this person device-eligible (not counting leavers)."""
    flag = person.get("device_eligible")
    if flag is None:
        flag = person.get("pnb_required")
    if flag is None:
        flag = person.get("worker_type") != "STAFF"
    return bool(flag)


@dataclass
class Membership:
    """The waves' people, and what the plan got wrong or set aside."""

    wave_of: dict[str, str] = field(default_factory=dict)  # officer_id → wave name
    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    leavers: list[dict[str, Any]] = field(default_factory=list)
    not_eligible: list[dict[str, Any]] = field(default_factory=list)

    def cohort(self, wave: str) -> list[str]:
        """Return the officer ids of one wave."""
        return [oid for oid, name in self.wave_of.items() if name == wave]


def _matcher(filters: dict[str, tuple[str, ...]],
             groups: dict[str, set[str]]) -> Callable[[dict[str, Any]], bool]:
    """Return a test of one person against one cohort filter (keys AND-ed, values OR-ed)."""
    tests: list[tuple[str, set[str]]] = []
    for key, values in filters.items():
        if key == "group":
            members: set[str] = set().union(*(groups.get(v, set()) for v in values))
            tests.append(("officer_id", members))
        elif key == "officers":
            tests.append(("officer_id", set(values)))
        else:
            tests.append((key, {v.upper() for v in values}))

    def test(person: dict[str, Any]) -> bool:
        for key, wanted in tests:
            value = person.get(key) or ""
            if (value if key == "officer_id" else value.upper()) not in wanted:
                return False
        return True

    return test


def _describe(filters: dict[str, tuple[str, ...]]) -> str:
    return ", ".join(f"{k}={'|'.join(v)}" for k, v in filters.items())


def compute(db: Database, plan: Plan, people: list[dict[str, Any]] | None = None) -> Membership:
    """Place every device-eligible person in a wave; collect every problem with its line."""
    rows = people if people is not None else db.query(PEOPLE_SQL)
    groups: dict[str, set[str]] = {}
    for name, oid in db.execute("SELECT group_name, officer_id FROM group_members"):
        groups.setdefault(name, set()).add(oid)
    known_groups = {r[0] for r in db.execute("SELECT name FROM groups")}
    out = Membership()
    where = {w.name: f"{plan.path}, line {w.line}" if w.line else str(plan.path)
             for w in plan.waves}
    tests = [(w, [(f, _matcher(f, groups)) for f in w.cohort]) for w in plan.waves]
    hits: dict[tuple[str, int], int] = {}
    candidates: list[dict[str, Any]] = []
    for person in rows:
        if person["status"] == "LEAVER":
            out.leavers.append(person)
        elif not eligible(person):
            out.not_eligible.append(person)
        else:
            candidates.append(person)
    picks = [(w, t) for w, t in tests if w.picks]
    filters = [(w, t) for w, t in tests if not w.picks]
    overlaps: dict[tuple[str, str], list[str]] = {}
    unplaced: list[dict[str, Any]] = []
    for person in candidates:
        oid = person["officer_id"]
        out.people[oid] = person
        placed = None
        for wave, matchers in picks:
            for i, (_f, test) in enumerate(matchers):
                if test(person):
                    hits[(wave.name, i)] = hits.get((wave.name, i), 0) + 1
                    placed = placed or wave.name
        matched: list[str] = []
        for wave, matchers in filters:
            for i, (_f, test) in enumerate(matchers):
                if test(person):
                    hits[(wave.name, i)] = hits.get((wave.name, i), 0) + 1
                    if wave.name not in matched:
                        matched.append(wave.name)
        if placed is None and len(matched) > 1:
            overlaps.setdefault((matched[0], matched[1]), []).append(oid)
        placed = placed or (matched[0] if matched else None)
        if placed is None:
            unplaced.append(person)
        else:
            out.wave_of[oid] = placed
    for (first, second), ids in overlaps.items():
        out.problems.append(Problem(
            where[second], f"the cohorts of waves {first} and {second} overlap:"
            f" {len(ids)} person(s) fall in both, e.g. {', '.join(ids[:3])}",
            "narrow one of them so each person falls in exactly one wave", "cohort"))
    if unplaced:
        kinds: dict[str, int] = {}
        for p in unplaced:
            key = f"{p['area'] or '-'}/{p['station'] or '-'}/{p['worker_type']}"
            kinds[key] = kinds.get(key, 0) + 1
        top = ", ".join(f"{k} ({n})" for k, n in sorted(kinds.items(), key=lambda x: -x[1])[:6])
        out.problems.append(Problem(
            str(plan.path), f"{len(unplaced)} device-eligible person(s) fall in no wave"
            f" (area/station/worker type: {top}); e.g."
            f" {', '.join(p['officer_id'] for p in unplaced[:3])}",
            "add them to a wave's cohort (or mark them not device-eligible in the roster)",
            "waves"))
    _empty_cohorts(out, plan, where, hits, known_groups, candidates)
    return out


def _empty_cohorts(out: Membership, plan: Plan, where: dict[str, str],
                   hits: dict[tuple[str, int], int], known_groups: set[str],
                   people: list[dict[str, Any]]) -> None:
    """Name every cohort filter that matches nobody, with a near-miss suggestion."""
    for wave in plan.waves:
        for i, filters in enumerate(wave.cohort):
            if hits.get((wave.name, i)):
                continue
            hint = "check the spelling against the roster (mdm officers list)"
            for key, values in filters.items():
                if key == "group":
                    missing = [v for v in values if v not in known_groups]
                    if missing:
                        hint = (f"there is no group {missing[0]!r}: create and fill it (mdm"
                                " rollout pilot-select --apply, or mdm groups create)")
                    else:
                        hint = "the group is empty: add its members first"
                elif key not in ("officers",):
                    known = {(p.get(key) or "").upper() for p in people} - {""}
                    for value in values:
                        if value.upper() not in known:
                            close = difflib.get_close_matches(value.upper(), sorted(known), 1)
                            hint = (f"nobody has {key} {value!r}"
                                    + (f"; did you mean {close[0]}?" if close else ""))
            out.problems.append(Problem(where[wave.name], f"wave {wave.name}'s cohort"
                                        f" ({_describe(filters)}) matches nobody eligible",
                                        hint, "cohort"))


def wave_people(out: Membership, wave: Wave) -> list[dict[str, Any]]:
    """Return the people of one wave."""
    return [out.people[oid] for oid in out.cohort(wave.name)]
