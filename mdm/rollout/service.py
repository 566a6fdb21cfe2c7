"""Check the rollout plan against the inventory, and open waves through their gates.

`validate` reads only. `advance` is the explicit, role-checked step that opens a wave: it
holds unless the previous wave's gate holds, and an override needs the admin role and a
reason, both kept in the audit row, so nobody finds out afterwards that a gate was waved
through.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mdm.errors import ExitCode, InputError, MdmError, Problem
from mdm.operators import roles
from mdm.rollout import membership
from mdm.rollout.plan import Plan, load
from mdm.store import audit, transaction
from mdm.store import rollout as store
from mdm.store.db import Database
from mdm.timeutil import now


def validate(db: Database, path: Path) -> dict[str, Any]:
    """Check the plan file and its cohorts against the roster; exit 2 naming every problem."""
    plan = load(path)
    members = membership.compute(db, plan, details=True)
    result = summary(plan, members)
    if members.problems:
        raise InputError(f"the rollout plan {path} does not fit the inventory:"
                         f" {len(members.problems)} problem(s)",
                         "fix each one, then run mdm rollout validate again",
                         problems=members.problems)
    return result


def summary(plan: Plan, members: membership.Membership) -> dict[str, Any]:
    """Return each wave's size, and who was set aside (leavers, not device-eligible)."""
    sizes: dict[str, int] = {w.name: 0 for w in plan.waves}
    for name in members.wave_of.values():
        sizes[name] += 1

    def brief(p: dict[str, Any]) -> dict[str, Any]:
        return {"officer_id": p["officer_id"], "collar_number": p["collar_number"],
                "name": f"{p['forename']} {p['surname']}", "worker_type": p["worker_type"],
                "rank": p["rank"], "station": p["station"], "status": p["status"],
                "pnb_required": None if p["pnb_required"] is None else bool(p["pnb_required"])}

    return {"plan": str(plan.path),
            "waves": [{"name": w.name, "start": w.start.isoformat(), "end": w.end.isoformat(),
                       "people": sizes[w.name]} for w in plan.waves],
            "in_waves": len(members.wave_of),
            "leavers": [brief(p) for p in members.leavers],
            "not_eligible": [brief(p) for p in members.not_eligible],
            "not_pnb_required_in_waves": members.not_pnb_required}


def opened(db: Database) -> dict[str, dict[str, Any]]:
    """Return the waves opened so far, by name."""
    return store.opened_waves(db)


def advance(db: Database, operator: str, path: Path, wave_name: str, override: bool,
            reason: str | None, check: bool = False) -> dict[str, Any]:
    """Open a wave if the previous wave's gate holds (or, admin only, override it).

    With `check`, every refusal is the same, and a wave that would open is not opened:
    nothing is written.
    """
    from mdm.rollout import status as funnel

    plan = load(path)
    wave = plan.wave(wave_name)
    if override and not reason:
        raise InputError("--override needs a --reason", "say why the gate is overridden")
    roles.require(db, operator, "rollout.override" if override else "rollout.manage")
    if wave.name in opened(db):
        raise InputError(f"wave {wave.name} is already open")
    previous = plan.previous(wave.name)
    gate: dict[str, Any] | None = None
    if previous is not None:
        if previous.name not in opened(db):
            raise InputError(f"wave {wave.name} cannot open before wave {previous.name}",
                             f"open {previous.name} first: mdm rollout advance {previous.name}")
        gate = funnel.gate_state(db, plan, previous)
        if not gate["holds"] and not override:
            unmet = [c for c in gate["conditions"] if not c["met"]]
            raise MdmError(
                f"wave {previous.name}'s gate does not hold: {len(unmet)} condition(s) unmet;"
                f" wave {wave.name} stays closed", "meet them, or (admin) --override --reason",
                ExitCode.PARTIAL,
                [Problem(f"wave {previous.name}", c["text"], "", c["condition"])
                 for c in unmet])
    overridden = bool(override and gate is not None and not gate["holds"])
    if check:
        return {"wave": wave.name, "check": True, "opened_at": None, "gate": gate,
                "overridden": overridden}
    with transaction(db):
        roles.require(db, operator, "rollout.override" if override else "rollout.manage")
        if store.wave_opened(db, wave.name):
            raise InputError(f"wave {wave.name} is already open")
        at = now()
        store.open_wave(db, wave.name, at, operator, json.dumps(gate) if gate else None,
                        reason if override else None)
        audit.record(db, operator, "rollout.override" if overridden else "rollout.advance",
                     f"wave:{wave.name}", None,
                     {"opened_at": at, "gate_of": previous.name if previous else None,
                      "gate_holds": gate["holds"] if gate else None,
                      "unmet": [c["text"] for c in gate["conditions"] if not c["met"]]
                      if gate else [], "override": override, "reason": reason})
    return {"wave": wave.name, "check": False, "opened_at": at, "gate": gate,
            "overridden": overridden}
