"""Provisioning: the explicit, role-checked move of compliant devices, enrolled → provisioned.

A compliance report only reads; this is the step that changes status, so it names who
did it and why. Devices are judged from their latest facts (as `mdm compliance report`
judges them); the compliant enrolled ones move in one transaction with one audit row,
and every enrolled device that is not compliant is named with its reasons (exit 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mdm.devices.lifecycle import Status, check_transition
from mdm.errors import PartialFailure, Problem
from mdm.operators import roles
from mdm.store import audit, devices, transaction
from mdm.store.db import Database
from mdm.timeutil import now

SCOPE = (Status.ENROLLED.value, Status.PROVISIONED.value)


def provision(db: Database, operator: str, folder: Path, selectors: list[str],
              check: bool = False) -> dict[str, Any]:
    """Move compliant enrolled devices to provisioned; `check` only says which would move."""
    from mdm.policies.report import judge_devices

    if not check:
        roles.require(db, operator, "devices.provision")
    judged = judge_devices(db, folder, selectors, SCOPE)
    ready = [e for e in judged if e["status"] == Status.ENROLLED and e["compliant"]]
    blocked = [e for e in judged if e["status"] == Status.ENROLLED and not e["compliant"]]
    moved = [e["serial"] for e in ready]
    if not check and ready:
        moved = _move(db, operator, ready, selectors)
    result = {"check": check, "selected": len(judged), "provisioned": moved,
              "already_provisioned": [e["serial"] for e in judged
                                      if e["status"] == Status.PROVISIONED],
              "not_compliant": [{"serial": e["serial"], "holder": e["holder"],
                                 "collar_number": e["collar_number"], "station": e["station"],
                                 "reasons": e["reasons"]} for e in blocked]}
    if blocked:
        done, verb = ("would be ", "would stay") if check else ("", "stay")
        raise PartialFailure(
            f"{len(moved)} device(s) {done}provisioned; {len(blocked)} of"
            f" {len(ready) + len(blocked)} enrolled device(s) are not compliant and {verb}"
            " enrolled",
            [Problem(f"device {e['serial']}", "; ".join(r["detail"] for r in e["reasons"]),
                     "fix it, run mdm devices refresh, then provision again", "not_compliant")
             for e in blocked], result)
    return result


def _move(db: Database, operator: str, ready: list[dict[str, Any]],
          selectors: list[str]) -> list[str]:
    """Provision the judged devices still enrolled, in one transaction with one audit row."""
    serials = [e["serial"] for e in ready]
    policy = {e["serial"]: e["policy"] for e in ready}
    with transaction(db):
        roles.require(db, operator, "devices.provision")
        wanted = set(serials)  # still enrolled: nobody moved them since they were judged
        still = [r for r in devices.in_status(db, Status.ENROLLED.value)
                 if r["serial"] in wanted]
        for row in still:
            check_transition(row["serial"], row["status"], Status.PROVISIONED)
        at = now()
        devices.set_status(db, [r["id"] for r in still], Status.PROVISIONED.value, at)
        moved = sorted(r["serial"] for r in still)
        if moved:
            audit.record(db, operator, "devices.provision", "devices",
                         {"status": Status.ENROLLED.value},
                         {"status": Status.PROVISIONED.value, "reason": "compliant",
                          "selectors": selectors or ["all"],
                          "devices": [{"serial": s, "policy": policy[s]} for s in moved]})
    return moved
