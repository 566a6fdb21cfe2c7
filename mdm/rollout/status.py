"""Where each wave stands: the funnel from cohort to handover, planned against actual
dates, and the gate's conditions with their figures. Reads only.

The funnel counts people: in the cohort → holding a device (allocated) → whose device is
enrolled (or further) → provisioned → trained → handed over. The gate's compliance
figure is judged live from each device's latest facts, as `mdm compliance report` does,
so `rollout status` and `rollout advance` never disagree about a gate. A wave's gate is
judged once the wave is open (only then can it decide anything); before, it is shown as
not yet judged.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from mdm.rollout import membership
from mdm.rollout.plan import Plan, Wave
from mdm.store import rollout as store
from mdm.store.db import Database

STAGES = ("cohort", "allocated", "enrolled", "provisioned", "trained", "handed_over")
BY = ("station", "area", "team")
GATE_NAMES = ("min_handed_over_percent", "min_compliant_percent", "max_open_blockers",
              "max_failed_provisioning_percent")


LIVE = ("enrolled", "provisioned")


class Facts:
    """Everything the funnel needs, each read in one scan of its table.

    Each stage after the cohort is kept as the set of people who reached it, so a wave's
    (or a station's) funnel is a few set intersections, not a walk over its people.
    """

    def __init__(self, db: Database, plan: Plan, folder: Path | None) -> None:
        self.db, self.plan = db, plan
        self.members = membership.compute(db, plan)
        self.cohorts = self.members.cohorts()
        self.holding: dict[str, int] = {}
        self.status: dict[int, str] = {}  # the held devices' statuses
        self.trained = store.trained(db)
        self.failed = store.failed_provisioning(db)
        self.blockers = store.open_blockers(db)
        self.opened = store.opened_waves(db)
        enrolled, provisioned, handed_over = set(), set(), set()
        self.handover_dates: dict[str, str] = {}  # the day each holder was handed theirs
        # One scan of the open assignments, each with its device's status and handover.
        for oid, device, state, handed, at in store.holders(db):
            self.holding[oid] = device
            self.status[device] = state
            if state in LIVE:
                enrolled.add(oid)
                if state == "provisioned":
                    provisioned.add(oid)
            if handed:
                handed_over.add(oid)
                if at:
                    self.handover_dates[oid] = at[:10]
        # Who reached each stage after the cohort (STAGES, in order).
        self.reached = (set(self.holding), enrolled, provisioned, self.trained, handed_over)
        # Only open waves' gates can decide anything, so only their devices are judged:
        # at force scale, judging the whole fleet on every look would cost seconds.
        live = {self.holding[o] for w in self.opened for o in self.cohorts.get(w, ())
                if o in enrolled}
        self.compliant = _compliance(db, folder, live) if folder is not None else {}

    def people(self, wave: str) -> list[str]:
        """Return the officer ids of one wave."""
        return self.cohorts.get(wave, [])

    def stages(self, oid: str) -> dict[str, bool]:
        """Return which funnel stages one person has reached."""
        return dict(zip(STAGES, (True, *(oid in s for s in self.reached)), strict=True))

    def counts(self, people: list[str]) -> list[int]:
        """Count the people who reached each stage (STAGES, in order)."""
        group = set(people)  # set & set walks the smaller of the two
        return [len(people), *(len(s & group) for s in self.reached)]


def _compliance(db: Database, folder: Path, wanted: set[int]) -> dict[int, bool]:
    """Say which of the wanted enrolled or provisioned devices are compliant.

    Each device's stored judgement where it still holds, else judged live from its latest
    facts (mdm/policies/judgements.py).
    """
    from mdm.policies import judgements

    return judgements.compliant(db, folder, wanted)


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def _funnel(facts: Facts, people: list[str]) -> dict[str, Any]:
    counts = dict(zip(STAGES, facts.counts(people), strict=True))
    total = counts["cohort"]
    return {stage: {"count": counts[stage], "percent": _percent(counts[stage], total)}
            for stage in STAGES}


def gate_state(db: Database, plan: Plan, wave: Wave, facts: Facts | None = None,
               folder: Path | None = None) -> dict[str, Any]:
    """Judge one wave's gate: each condition with its figure, and whether all hold."""
    if facts is None:
        facts = Facts(db, plan, folder if folder is not None else _policies())
    g = wave.gate
    if wave.name not in facts.opened:  # nothing to count: its figures are not shown
        return {"wave": wave.name, "holds": False, "judged": False, "conditions": [
            {"condition": name, "figure": None, "limit": getattr(g, name), "met": False,
             "text": "not judged: the wave is not open"} for name in GATE_NAMES]}
    people = facts.people(wave.name)
    holding, status = facts.holding, facts.status
    devices = [holding[o] for o in people if o in holding]
    live = [d for d in devices if status.get(d) in LIVE]
    handed = len(facts.reached[-1].intersection(people))  # handed over
    compliant = sum(facts.compliant.get(d, False) for d in live)
    failed = sum(1 for d in devices if d in facts.failed and status.get(d) != "provisioned")
    figures = [
        ("min_handed_over_percent", _percent(handed, len(people)), g.min_handed_over_percent,
         ">=", f"{handed} of {len(people)} handed over"),
        ("min_compliant_percent", _percent(compliant, len(live)), g.min_compliant_percent,
         ">=", f"{compliant} of {len(live)} enrolled devices compliant"),
        ("max_open_blockers", facts.blockers, g.max_open_blockers, "<=",
         f"{facts.blockers} open blocker(s)"),
        ("max_failed_provisioning_percent", _percent(failed, len(devices)),
         g.max_failed_provisioning_percent, "<=",
         f"{failed} of {len(devices)} devices failed provisioning"),
    ]
    conditions = []
    for name, figure, limit, op, words in figures:
        met = figure >= limit if op == ">=" else figure <= limit
        unit = "" if name == "max_open_blockers" else " %"
        conditions.append({"condition": name, "figure": figure, "limit": limit, "met": met,
                           "text": f"{words}: {figure:g}{unit}, needs {op} {limit:g}{unit}"})
    return {"wave": wave.name, "holds": all(c["met"] for c in conditions), "judged": True,
            "conditions": conditions}


def _policies() -> Path:
    from mdm import config

    return config.load().policies


def status(db: Database, plan: Plan, folder: Path | None, wave: str | None = None,
           by: str | None = None) -> dict[str, Any]:
    """Return every wave's funnel, dates and gate (or one wave's, optionally by place)."""
    facts = Facts(db, plan, folder)
    waves = [plan.wave(wave)] if wave else plan.waves
    out = []
    handovers = _handover_dates(db, facts)
    place: dict[str, Any] = {}
    for w in waves:
        people = facts.people(w.name)
        dates = sorted(handovers[o] for o in people if o in handovers)
        entry: dict[str, Any] = {
            "wave": w.name, "state": "open" if w.name in facts.opened else "planned",
            "planned_start": w.start.isoformat(), "planned_end": w.end.isoformat(),
            "opened_at": facts.opened.get(w.name, {}).get("opened_at"),
            "first_handover": dates[0] if dates else None,
            "last_handover": dates[-1] if dates else None,
            "funnel": _funnel(facts, people), "gate": gate_state(db, plan, w, facts)}
        if by:
            place = place or membership.column_of(db, by)
            groups: dict[str, list[str]] = {}
            for oid in people:
                groups.setdefault(place.get(oid) or "-", []).append(oid)
            entry["by"] = by
            entry["groups"] = [{by: key, **_funnel(facts, groups[key])}
                               for key in sorted(groups)]
        out.append(entry)
    return {"plan": str(plan.path), "open_blockers": facts.blockers, "waves": out,
            "burn_up": _burn_up(plan, facts, handovers) if not wave else None}


def _handover_dates(db: Database, facts: Facts) -> dict[str, str]:
    """Return the date each person of the current custody was handed their device."""
    return facts.handover_dates


def _burn_up(plan: Plan, facts: Facts, handovers: dict[str, str]) -> list[dict[str, Any]]:
    """Per wave: planned (linear over its dates) and actual cumulative handovers by date."""
    series = []
    for w in plan.waves:
        people = facts.people(w.name)
        per_day = Counter(handovers[o] for o in people if o in handovers)
        actual, total = [], 0
        for day in sorted(per_day):
            total += per_day[day]
            actual.append({"date": day, "handed_over": total})
        series.append({"wave": w.name, "people": len(people),
                       "planned": [{"date": w.start.isoformat(), "handed_over": 0},
                                   {"date": w.end.isoformat(), "handed_over": len(people)}],
                       "actual": actual})
    return series


def flat_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten a status result to one row per wave (or per wave and place) for CSV."""
    rows = []
    for w in result["waves"]:
        groups = w.get("groups") or [{"": "", **w["funnel"]}]
        for g in groups:
            key = w.get("by") or ""
            row: dict[str, Any] = {"wave": w["wave"], "state": w["state"]}
            if key:
                row[key] = g[key]
            for stage in STAGES:
                row[stage] = g[stage]["count"]
                if stage != "cohort":
                    row[f"{stage}_percent"] = g[stage]["percent"]
            row["gate_holds"] = w["gate"]["holds"]
            rows.append(row)
    return rows
