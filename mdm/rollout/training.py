"""Training before handover: records of who was trained, and a plan of sessions.

Records come one at a time (`training record`) or as a CSV from the training team
(`training import`: officer, date, trainer, session), all rows good or nothing changes.
`training plan` proposes classroom sessions per station for a wave's untrained people at
the plan's trainer ratio (Staffordshire's 1 : 6 by default), each session inside every
trainee's off-shift time by their team's rota, one session at a time per station.
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from mdm import csvio, imports
from mdm.errors import InputError, Problem
from mdm.officers import service as officers
from mdm.operators import roles
from mdm.rollout import membership
from mdm.rollout.plan import Plan, busy, clock
from mdm.store import audit, transaction
from mdm.store import rollout as store
from mdm.store.db import Database
from mdm.timeutil import now

ALIASES = {"officer_id": "officer", "collar_number": "officer", "payroll_no": "officer",
           "trained_on": "date"}
IMPORT_ACTION = "training.import"


def _day(text: str) -> date | None:
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        return None
    return day if date(1990, 1, 1) <= day <= date.today() else None


def _not_a_day(text: str) -> str:
    """Say what is wrong with a date `_day` refused: not a date, or not a past one."""
    try:
        date.fromisoformat(text.strip())
    except ValueError:
        return f"{text!r} is not a date"
    return f"{text!r} is not a past date (from 1990 to today)"


def _insert(db: Database, operator: str, rows: list[tuple[str, str, str | None, str | None]],
            ) -> None:
    at = now()
    store.record_training(db, [(*r, at, operator) for r in rows])


def record(db: Database, operator: str, ref: str, day: str, trainer: str | None,
           session: str | None) -> dict[str, Any]:
    """Record that one officer was trained on a date."""
    when = _day(day)
    if when is None:
        raise InputError(f"--date {_not_a_day(day)}", "write it as YYYY-MM-DD")
    with transaction(db):
        roles.require(db, operator, "training.record")
        person = officers.resolve(db, ref)
        row = (person["officer_id"], when.isoformat(), trainer or None, session or None)
        _insert(db, operator, [row])
        audit.record(db, operator, "training.record", f"officer:{person['officer_id']}",
                     None, {"date": row[1], "trainer": row[2], "session": row[3]})
    return {"officer_id": person["officer_id"], "date": row[1], "trainer": row[2],
            "session": row[3]}


def import_csv(db: Database, operator: str, path: Path) -> dict[str, Any]:
    """Import training records (officer, date[, trainer, session]); all rows or none."""
    raw = csvio.read_bytes(path)
    sha = hashlib.sha256(raw).hexdigest()
    rows = csvio.parse_rows(raw, path, ["officer", "date"], ALIASES)
    found = officers.resolve_many(db, [r.values.get("officer", "") for r in rows])
    problems: list[Problem] = []
    records: list[tuple[str, str, str | None, str | None]] = []
    for r in rows:
        where = f"{path}, row {r.line}"
        ref, text = r.values.get("officer", ""), r.values.get("date", "")
        person = found.get(ref.strip())
        if person is None:
            problems.append(Problem(where, f"no officer with id, payroll or collar number"
                                    f" {ref!r}", "check the roster import", "officer"))
        when = _day(text)
        if when is None:
            problems.append(Problem(where, _not_a_day(text), "YYYY-MM-DD",
                                    "date"))
        if person is not None and when is not None:
            records.append((person["officer_id"], when.isoformat(),
                            r.values.get("trainer") or None, r.values.get("session") or None))
    if problems:
        raise InputError(f"{path}: {len(problems)} problem(s); nothing was imported",
                         "fix each row, then import again", problems=problems)
    with transaction(db):
        roles.require(db, operator, "training.record")
        done = imports.already_imported(db, IMPORT_ACTION, path, sha)
        if done:
            return done
        _insert(db, operator, records)
        audit.record(db, operator, IMPORT_ACTION, "training", None,
                     {"file": path.name, "sha256": sha, "rows": len(records),
                      "officers": sorted({r[0] for r in records})})
    return {"file": path.name, "sha256": sha, "imported": len(records)}


def plan_sessions(db: Database, plan: Plan, wave_name: str, ratio: int | None = None,
                  start: date | None = None) -> dict[str, Any]:
    """Propose sessions per station for the wave's untrained people, off their shifts."""
    wave = plan.wave(wave_name)
    size = ratio or plan.trainer_ratio
    if not 1 <= size <= 100:
        raise InputError(f"--ratio {size} is not 1 to 100 trainees per trainer")
    members = membership.compute(db, plan)
    trained = store.trained(db)
    people = [p for p in membership.wave_people(db, members, wave)
              if p["officer_id"] not in trained]
    length = int(plan.session_hours * 60)
    slots = list(range(plan.training_hours.start, plan.training_hours.end - length + 1, length))
    first = start or wave.start
    days = [first + timedelta(days=i) for i in range(max((wave.end - first).days + 1, 0))]
    by_station: dict[str, list[dict[str, Any]]] = {}
    for p in sorted(people, key=lambda p: (p["team"] or "", p["surname"], p["officer_id"])):
        by_station.setdefault(p["station"] or "-", []).append(p)
    sessions, unscheduled = [], []
    for station in sorted(by_station):
        waiting = by_station[station]
        for day in days:
            for slot in slots:
                if not waiting:
                    break
                free = [p for p in waiting if not busy(plan, p["team"], day, slot, slot + length)]
                group = free[:size]
                if not group:
                    continue
                picked = {p["officer_id"] for p in group}
                waiting = [p for p in waiting if p["officer_id"] not in picked]
                sessions.append({
                    "session": f"{wave.name}-{station}-{day.isoformat()}-{clock(slot):%H%M}",
                    "station": station, "date": day.isoformat(),
                    "start": f"{clock(slot):%H:%M}", "end": f"{clock(slot + length):%H:%M}",
                    "trainees": len(group), "trainers": 1,
                    "officers": [p["officer_id"] for p in group],
                    "teams": sorted({p["team"] or "-" for p in group})})
        unscheduled += [{"officer_id": p["officer_id"], "station": station, "team": p["team"]}
                        for p in waiting]
    return {"wave": wave.name, "ratio": f"1:{size}", "session_hours": plan.session_hours,
            "untrained": len(people), "sessions": sessions,
            "scheduled": len(people) - len(unscheduled), "unscheduled": unscheduled}
