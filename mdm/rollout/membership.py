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
from dataclasses import dataclass, field
from typing import Any

from mdm.errors import Problem
from mdm.rollout.plan import Plan, Wave
from mdm.store import rollout as store
from mdm.store.db import Database

ELIGIBLE_SQL = store.ELIGIBLE  # the same rule, as the store's SQL states it


def eligible(person: dict[str, Any]) -> bool:
    """Say whether the roster makes this person device-eligible (not counting leavers).

    The roster's `device_eligible` decides; without it, `pnb_required`; without either,
    everyone but police staff (as ELIGIBLE_SQL says for the database).
    """
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
    problems: list[Problem] = field(default_factory=list)
    leavers: list[dict[str, Any]] = field(default_factory=list)
    not_eligible: list[dict[str, Any]] = field(default_factory=list)
    not_pnb_required: int = 0  # people in waves the roster does not require to carry a PNB

    def cohort(self, wave: str) -> list[str]:
        """Return the officer ids of one wave."""
        return [oid for oid, name in self.wave_of.items() if name == wave]

    def cohorts(self) -> dict[str, list[str]]:
        """Return the officer ids of every wave, by wave, in one pass."""
        out: dict[str, list[str]] = {}
        for oid, name in self.wave_of.items():
            out.setdefault(name, []).append(oid)
        return out


# SQLite's upper() (without ICU) upper-cases ASCII letters only; cohorts are matched the
# same way here as `upper(column) IN (…)` matched them in SQL.
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _upper(value: str | None) -> str | None:
    return None if value is None else value.translate(_ASCII_UPPER)


def _matches(db: Database, cohorts: list[dict[str, tuple[str, ...]]]
             ) -> tuple[list[set[str]], int]:
    """Return the eligible people each cohort filter matches (keys AND-ed, values OR-ed),
    and how many people are eligible.

    One scan of the eligible people reads the roster columns the filters name; each
    distinct combination of them is matched once, and its people taken as a whole.
    """
    keys = sorted({k for f in cohorts for k in f if k not in ("group", "officers")})
    names = sorted({v for f in cohorts for v in f.get("group", ())})
    members = store.group_members(db, names)
    raw: dict[tuple[str | None, ...], list[str]] = {}
    for row in store.eligible_people(db, keys):
        raw.setdefault(row[1:], []).append(row[0])
    kinds: dict[tuple[str | None, ...], list[str]] = {}
    for kind, people in raw.items():  # upper-cased once per distinct combination
        kinds.setdefault(tuple(map(_upper, kind)), []).extend(people)
    out = []
    for filters in cohorts:
        wanted = {keys.index(k): {v.upper() for v in values}
                  for k, values in filters.items() if k in keys}
        only: set[str] | None = None  # the people the group and officers keys allow
        if "group" in filters:
            only = set().union(*(members.get(g, set()) for g in filters["group"]))
        if "officers" in filters:
            listed = set(filters["officers"])
            only = listed if only is None else only & listed
        found: set[str] = set()
        for kind, people in kinds.items():
            if all(kind[i] in values for i, values in wanted.items()):
                found.update(people if only is None else only.intersection(people))
        out.append(found)
    return out, sum(map(len, kinds.values()))


class Placement:
    """Which wave a kind of person falls in, as `compute` places them.

    A kind is the person's values of the roster columns the plan's cohorts filter on
    (`keys`), and their officer id if a group or id list of the plan hand-picks them.
    Each person falls in the first wave (hand-picked cohorts first, then the others, each
    in the plan's order) one of whose filters matches them: the wave `compute` puts them
    in. Matched once per distinct kind, so the funnel can be counted per kind in SQL.
    """

    def __init__(self, db: Database, plan: Plan) -> None:
        order = [w for w in plan.waves if w.picks] + [w for w in plan.waves if not w.picks]
        filters = [(w.name, f) for w in order for f in w.cohort]
        self.keys = sorted({k for _, f in filters for k in f if k not in ("group", "officers")})
        self.groups = sorted({v for _, f in filters for v in f.get("group", ())})
        self.listed = sorted({v for _, f in filters for v in f.get("officers", ())})
        self.members = store.group_members(db, self.groups)
        self._filters = [
            (name, [(self.keys.index(k), {v.upper() for v in values})
                    for k, values in f.items() if k in self.keys],
             f.get("group"), None if "officers" not in f else set(f["officers"]))
            for name, f in filters]
        self._waves: dict[tuple[Any, ...], str | None] = {}

    def pick(self) -> tuple[str, list[Any]]:
        """The SQL for a person's officer id if the plan hand-picks them, else NULL."""
        return store.picked(self.groups, self.listed)

    def picks(self) -> tuple[str, list[Any]]:
        """The SQL condition that the plan hand-picks a person."""
        return store.picking(self.groups, self.listed)

    def wave(self, officer: str | None, kind: tuple[str | None, ...]) -> str | None:
        """Return the wave of a kind of person (`officer`: a hand-picked person's id)."""
        key = (officer, *kind)
        if key in self._waves:
            return self._waves[key]
        upper = tuple(map(_upper, kind))
        found = None
        for name, wanted, groups, listed in self._filters:
            if groups is not None or listed is not None:
                if officer is None:
                    continue
                if groups is not None and not any(officer in self.members.get(g, ())
                                                  for g in groups):
                    continue
                if listed is not None and officer not in listed:
                    continue
            if all(upper[i] in values for i, values in wanted):
                found = name
                break
        self._waves[key] = found
        return found


def _describe(filters: dict[str, tuple[str, ...]]) -> str:
    return ", ".join(f"{k}={'|'.join(v)}" for k, v in filters.items())


def compute(db: Database, plan: Plan, details: bool = False) -> Membership:
    """Place every device-eligible person in a wave; collect every problem with its line.

    With `details`, also list the leavers and the people who are not device-eligible.
    """
    out = Membership()
    where = {w.name: f"{plan.path}, line {w.line}" if w.line else str(plan.path)
             for w in plan.waves}
    hits: dict[tuple[str, int], int] = {}
    picked: dict[str, str] = {}
    matched: dict[str, str] = {}
    overlaps: dict[tuple[str, str], list[str]] = {}
    order = [w for w in plan.waves if w.picks] + [w for w in plan.waves if not w.picks]
    matched_sets, everyone = _matches(db, [f for wave in order for f in wave.cohort])
    found = iter(matched_sets)
    for wave in order:
        mine: set[str] = set()
        for i, _ in enumerate(wave.cohort):
            ids = next(found)
            hits[(wave.name, i)] = len(ids)
            mine |= ids
        if wave.picks:
            for oid in mine:
                picked.setdefault(oid, wave.name)
            continue
        for oid in mine - picked.keys():
            first = matched.setdefault(oid, wave.name)
            if first != wave.name:
                overlaps.setdefault((first, wave.name), []).append(oid)
    out.wave_of = {**matched, **picked}
    for (first, second), both in overlaps.items():
        out.problems.append(Problem(
            where[second], f"the cohorts of waves {first} and {second} overlap:"
            f" {len(both)} person(s) fall in both, e.g. {', '.join(sorted(both)[:3])}",
            "narrow one of them so each person falls in exactly one wave", "cohort"))
    # Everyone eligible was counted in that scan; details are read only if any is left.
    unplaced = [] if everyone == len(out.wave_of) else [
        r for r in store.eligible_places(db) if r["officer_id"] not in out.wave_of]
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
    if any(not n for n in hits.values()):
        _empty_cohorts(db, out, plan, where, hits)
    if details:
        out.leavers = store.people(db, leavers=True)
        out.not_eligible = store.people(db, leavers=False)
        out.not_pnb_required = sum(1 for oid in store.not_pnb_required(db)
                                   if oid in out.wave_of)
    return out


def _empty_cohorts(db: Database, out: Membership, plan: Plan, where: dict[str, str],
                   hits: dict[tuple[str, int], int]) -> None:
    """Name every cohort filter that matches nobody, with a near-miss suggestion."""
    known_groups = store.group_names(db)
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
                    known = {v.upper() for v in store.eligible_values(db, key)} - {""}
                    for value in values:
                        if value.upper() not in known:
                            close = difflib.get_close_matches(value.upper(), sorted(known), 1)
                            hint = (f"nobody has {key} {value!r}"
                                    + (f"; did you mean {close[0]}?" if close else ""))
            out.problems.append(Problem(where[wave.name], f"wave {wave.name}'s cohort"
                                        f" ({_describe(filters)}) matches nobody eligible",
                                        hint, "cohort"))


def wave_people(db: Database, out: Membership, wave: Wave) -> list[dict[str, Any]]:
    """Return the people of one wave, with their roster details."""
    ids = set(out.cohort(wave.name))
    return [p for p in store.people(db) if p["officer_id"] in ids]

