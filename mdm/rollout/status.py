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

from collections import Counter, defaultdict
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


class Facts:
    """Every wave's funnel, handover days and gate figures, counted per kind of person.

    Each person's progress is kept current by the inventory (rollout_progress, migration
    m018); it is counted in SQL per distinct combination of the roster columns the plan's
    cohorts filter on (a hand-picked person by themself), and each combination placed in
    its wave once (membership.Placement): hundreds of rows, not a row per person.
    """

    def __init__(self, db: Database, plan: Plan, folder: Path | None,
                 by: str | None = None) -> None:
        self.db, self.plan = db, plan
        self.blockers = store.open_blockers(db)
        self.opened = store.opened_waves(db)
        placement = membership.Placement(db, plan)
        keys, pick = placement.keys, placement.pick()
        width = len(keys) + 1
        # Per wave: how many reached each stage (STAGES, in order), then how many held
        # devices failed provisioning; by place; and the handovers per day.
        days: defaultdict[str, Counter[str]] = defaultdict(Counter)
        kinds: defaultdict[str, set[tuple[Any, ...]]] = defaultdict(set)
        waves: defaultdict[str, list[tuple[int, ...]]] = defaultdict(list)  # rows of counts
        places: defaultdict[tuple[str, str], list[tuple[int, ...]]] = defaultdict(list)
        at = width + (1 if by else 0)
        for row in store.funnel_counts(db, keys, placement.picks(), by):
            wave = placement.wave(row[0], row[1:width])
            if wave is None:
                continue
            kinds[wave].add(row[:width])
            counts = row[at + 1:]
            waves[wave].append(counts)
            if by:
                places[(wave, row[width] or "-")].append(counts)
            if row[at]:
                days[wave][row[at]] += counts[5]
        self.days: dict[str, Counter[str]] = dict(days)
        self.funnels = {wave: _sum(rows) for wave, rows in waves.items()}
        self.places: dict[str, dict[str, list[int]]] = {}
        for (wave, place), rows in places.items():
            self.places.setdefault(wave, {})[place] = _sum(rows)
        # Only open waves' gates can decide anything, so only their devices are judged.
        self.compliant: dict[str, int] = {}
        opened = [k for w in self.opened for k in kinds.get(w, ())]
        if folder is not None and opened:
            from mdm.policies import judgements

            where = store.scope(keys, pick, sorted({k[1:] for k in opened if k[0] is None},
                                                   key=repr),
                                sorted(k[0] for k in opened if k[0] is not None))
            found = judgements.compliant_counts(db, folder, keys, pick, where)
            for kind, n in found.items():
                wave = placement.wave(kind[0], kind[1:])
                if wave is not None:
                    self.compliant[wave] = self.compliant.get(wave, 0) + n

    def counts(self, wave: str) -> list[int]:
        """Count one wave's people who reached each stage (STAGES, in order)."""
        return self.funnels.get(wave, [0] * 7)[:6]


def _sum(rows: list[tuple[int, ...]]) -> list[int]:
    """Add up rows of counts, column by column."""
    return [sum(column) for column in zip(*rows, strict=True)]


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def _funnel(counts: list[int]) -> dict[str, Any]:
    total = counts[0]
    return {stage: {"count": n, "percent": _percent(n, total)}
            for stage, n in zip(STAGES, counts, strict=True)}


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
    cohort, allocated, live, _, _, handed, failed = facts.funnels.get(wave.name, [0] * 7)
    compliant = facts.compliant.get(wave.name, 0)
    figures = [
        ("min_handed_over_percent", _percent(handed, cohort), g.min_handed_over_percent,
         ">=", f"{handed} of {cohort} handed over"),
        ("min_compliant_percent", _percent(compliant, live), g.min_compliant_percent,
         ">=", f"{compliant} of {live} enrolled devices compliant"),
        ("max_open_blockers", facts.blockers, g.max_open_blockers, "<=",
         f"{facts.blockers} open blocker(s)"),
        ("max_failed_provisioning_percent", _percent(failed, allocated),
         g.max_failed_provisioning_percent, "<=",
         f"{failed} of {allocated} devices failed provisioning"),
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
    facts = Facts(db, plan, folder, by)
    waves = [plan.wave(wave)] if wave else plan.waves
    out = []
    for w in waves:
        days = sorted(facts.days.get(w.name, ()))
        entry: dict[str, Any] = {
            "wave": w.name, "state": "open" if w.name in facts.opened else "planned",
            "planned_start": w.start.isoformat(), "planned_end": w.end.isoformat(),
            "opened_at": facts.opened.get(w.name, {}).get("opened_at"),
            "first_handover": days[0] if days else None,
            "last_handover": days[-1] if days else None,
            "funnel": _funnel(facts.counts(w.name)), "gate": gate_state(db, plan, w, facts)}
        if by:
            places = facts.places.get(w.name, {})
            entry["by"] = by
            entry["groups"] = [{by: key, **_funnel(places[key][:6])} for key in sorted(places)]
        out.append(entry)
    return {"plan": str(plan.path), "open_blockers": facts.blockers, "waves": out,
            "burn_up": _burn_up(plan, facts) if not wave else None}


def _burn_up(plan: Plan, facts: Facts) -> list[dict[str, Any]]:
    """Per wave: planned (linear over its dates) and actual cumulative handovers by date."""
    series = []
    for w in plan.waves:
        people = facts.counts(w.name)[0]
        per_day = facts.days.get(w.name, Counter())
        actual, total = [], 0
        for day in sorted(per_day):
            total += per_day[day]
            actual.append({"date": day, "handed_over": total})
        series.append({"wave": w.name, "people": people,
                       "planned": [{"date": w.start.isoformat(), "handed_over": 0},
                                   {"date": w.end.isoformat(), "handed_over": people}],
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
