"""Property: whatever the roster, a plan of a hand-picked pilot and disjoint filter waves
puts every device-eligible person in exactly one wave, and nobody else in any."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mdm.rollout import membership
from mdm.rollout.plan import Gate, Plan, Wave
from mdm.store.db import Database

AREAS = ("NORTH", "WEST", "SOUTH", "HQ")
person = st.fixed_dictionaries({
    "area": st.sampled_from(AREAS), "worker_type": st.sampled_from(("OFFICER", "PCSO",
                                                                    "SPECIAL", "STAFF")),
    "status": st.sampled_from(("ACTIVE", "ACTIVE", "ABSENT", "LEAVER")),
    "device_eligible": st.sampled_from((1, 1, 0, None)),
    "pnb_required": st.sampled_from((1, 0, None)),
    "pilot": st.booleans()})


def _db(people: list[dict[str, object]]) -> Database:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE officers (officer_id, payroll_no, collar_number, forename,"
                  " surname, worker_type, rank, area, district, station, team, status,"
                  " device_eligible, pnb_required)")
    conn.execute("CREATE TABLE groups (name)")
    conn.execute("CREATE TABLE group_members (group_name, officer_id)")
    conn.execute("INSERT INTO groups VALUES ('pilot')")
    for i, p in enumerate(people):
        conn.execute("INSERT INTO officers VALUES (?, ?, '', 'A', 'B', ?, '', ?, '', '', '',"
                     " ?, ?, ?)", (f"o{i}", f"P{i}", p["worker_type"], p["area"], p["status"],
                                   p["device_eligible"], p["pnb_required"]))
        if p["pilot"]:
            conn.execute("INSERT INTO group_members VALUES ('pilot', ?)", (f"o{i}",))
    return Database(conn)


def _plan(areas_per_wave: list[tuple[str, ...]]) -> Plan:
    start = date(2015, 3, 30)
    waves = [Wave("pilot", start, start + timedelta(days=27), ({"group": ("pilot",)},),
                  Gate(), (), 1)]
    for i, areas in enumerate(areas_per_wave):
        first = start + timedelta(days=28 * (i + 1))
        waves.append(Wave(f"w{i}", first, first + timedelta(days=20), ({"area": areas},),
                          Gate(), (), 10 + i))
    return Plan(Path("plan.yaml"), waves, {})


@settings(max_examples=40, deadline=None)
@given(st.lists(person, min_size=1, max_size=40), st.permutations(AREAS),
       st.integers(1, 3))
def test_every_eligible_person_falls_in_exactly_one_wave(
        people: list[dict[str, object]], order: list[str], cut: int) -> None:
    db = _db(people)
    plan = _plan([tuple(order[:cut]), tuple(order[cut:])])
    found = membership.compute(db, plan, details=True)
    eligible = {f"o{i}" for i, p in enumerate(people)
                if p["status"] != "LEAVER" and membership.eligible(p)}
    assert set(found.wave_of) == eligible
    for i, p in enumerate(people):
        oid = f"o{i}"
        if oid in eligible:
            wanted = "pilot" if p["pilot"] else ("w0" if p["area"] in order[:cut] else "w1")
            assert found.wave_of[oid] == wanted
    assert {p["officer_id"] for p in found.leavers} == {
        f"o{i}" for i, p in enumerate(people) if p["status"] == "LEAVER"}
    assert not [p for p in found.problems if "overlap" in p.message or "no wave" in p.message]


@settings(max_examples=20, deadline=None)
@given(st.lists(person, min_size=1, max_size=30), st.sampled_from(AREAS))
def test_two_filter_waves_sharing_an_area_are_named_as_an_overlap(
        people: list[dict[str, object]], shared: str) -> None:
    db = _db(people)
    others = tuple(a for a in AREAS if a != shared)
    found = membership.compute(db, _plan([(shared, *others[:1]), (shared, *others[1:])]))
    clash = [p for i, p in enumerate(people) if p["area"] == shared and not p["pilot"]
             and p["status"] != "LEAVER" and membership.eligible(p)]
    overlaps = [p for p in found.problems if "overlap" in p.message]
    assert bool(overlaps) == bool(clash)
    if clash:
        assert f"{len(clash)} person(s) fall in both" in overlaps[0].message


# Each cohort filter is matched in Python, once per distinct roster combination: it must
# pick exactly whom SQL's `upper(column) IN (…)` picks (ASCII-only upper-casing), with
# groups and explicit officer ids AND-ed in, for any spelling of the values.
SPELLINGS = ("north", "North", "NORTH", "Nörth", "NÖRTH", "west", "", None)
roster_row = st.fixed_dictionaries({
    "area": st.sampled_from(SPELLINGS), "station": st.sampled_from(SPELLINGS),
    "worker_type": st.sampled_from(("OFFICER", "PCSO", "STAFF")),
    "status": st.sampled_from(("ACTIVE", "LEAVER")),
    "device_eligible": st.sampled_from((1, 0, None)), "pnb_required": st.just(None),
    "pilot": st.booleans()})
cohort_filter = st.dictionaries(
    st.sampled_from(("area", "station", "worker_type", "group", "officers")),
    st.lists(st.sampled_from(("north", "NORTH", "Nörth", "nÖrth", "west", "PCSO", "pilot",
                              "o0", "o1", "o2")), min_size=1, max_size=3).map(tuple),
    max_size=3)


def _sql_truth(db: Database, filters: dict[str, tuple[str, ...]]) -> set[str]:
    clauses, args = [membership.ELIGIBLE_SQL], []
    for key, values in filters.items():
        marks = ", ".join("?" for _ in values)
        if key == "group":
            clauses.append("officer_id IN (SELECT officer_id FROM group_members"
                           f" WHERE group_name IN ({marks}))")
            args += list(values)
        elif key == "officers":
            clauses.append(f"officer_id IN ({marks})")
            args += list(values)
        else:
            clauses.append(f"upper({key}) IN ({marks})")
            args += [v.upper() for v in values]
    return {r[0] for r in db.execute(f"SELECT officer_id FROM officers WHERE"
                                     f" {' AND '.join(clauses)}", args)}


@settings(max_examples=60, deadline=None)
@given(st.lists(roster_row, max_size=25), st.lists(cohort_filter, min_size=1, max_size=4))
@example([{"area": "Nörth", "station": "west", "worker_type": "PCSO", "status": "ACTIVE",
           "device_eligible": 1, "pnb_required": None, "pilot": True}],
         [{"area": ("Nörth",)}, {"area": ("north",), "group": ("pilot",)}])
def test_cohorts_matched_in_python_are_those_sql_matches(people: list[dict[str, object]],
                                                         cohorts: list[dict[str, tuple[str, ...]]]
                                                         ) -> None:
    db = _db(people)
    for i, p in enumerate(people):  # _db leaves station blank: set this one's
        db.execute("UPDATE officers SET station = ? WHERE officer_id = ?", (p["station"], f"o{i}"))
    found, eligible = membership._matches(db, cohorts)
    assert found == [_sql_truth(db, f) for f in cohorts]
    assert eligible == db.scalar(f"SELECT COUNT(*) FROM officers WHERE {membership.ELIGIBLE_SQL}")
