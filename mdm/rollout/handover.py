"""Handover: the officer receives the device, and the custody chain records it.

Refused unless the device is allocated to that officer, provisioned, compliant (judged
from its latest facts, as the compliance report judges it) and the officer trained; the
refusal names every condition that fails, so the desk sorts them all in one go.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mdm.errors import InputError, NotFound, Problem
from mdm.officers import service as officers
from mdm.operators import roles
from mdm.store import audit, transaction
from mdm.store import rollout as store
from mdm.store.db import Database
from mdm.timeutil import now


def _conditions(db: Database, folder: Path, device: dict[str, Any],
                person: dict[str, Any]) -> tuple[list[Problem], int | None]:
    """Return every unmet condition for this handover, and the open assignment's id."""
    from mdm.policies.report import judge_devices

    serial, oid = device["serial"], person["officer_id"]
    where = f"device {serial}"
    problems = []
    held = store.open_assignment(db, device["id"])
    assignment = held["id"] if held and held["officer_id"] == oid else None
    if not held:
        problems.append(Problem(where, "is not allocated to anyone",
                                f"allocate it first: mdm assign {serial} {oid}", "allocated"))
    elif assignment is None:
        problems.append(Problem(where, f"is allocated to {held['officer_id']}, not {oid}",
                                "hand over the device allocated to this officer",
                                "allocated"))
    elif store.handed_over_at(db, assignment):
        problems.append(Problem(where, f"was already handed over to {oid}", "", "handed_over"))
    if device["status"] != "provisioned":
        problems.append(Problem(where, f"is {device['status']}, not provisioned",
                                f"run mdm provision {serial}", "provisioned"))
    if device["status"] in ("enrolled", "provisioned", "quarantined"):
        judged = judge_devices(db, folder, [serial])
        if judged and not judged[0]["compliant"]:
            reasons = "; ".join(r["detail"] for r in judged[0]["reasons"])
            problems.append(Problem(where, f"is not compliant: {reasons}",
                                    "fix it, run mdm devices refresh, then hand over",
                                    "compliant"))
    else:
        problems.append(Problem(where, "cannot be judged compliant (not enrolled)", "",
                                "compliant"))
    if not store.is_trained(db, oid):
        problems.append(Problem(f"officer {oid}", "has no training on record",
                                f"record it: mdm training record {oid} --date YYYY-MM-DD",
                                "trained"))
    return problems, assignment


def handover(db: Database, operator: str, folder: Path, serial: str,
             ref: str) -> dict[str, Any]:
    """Record that the officer received the device, if every condition holds."""
    roles.require(db, operator, "devices.handover")
    device = _device(db, serial)
    person = officers.resolve(db, ref)
    problems, assignment = _conditions(db, folder, device, person)
    if problems:
        raise InputError(f"handover of {device['serial']} to {person['officer_id']} refused:"
                         f" {len(problems)} condition(s) unmet; nothing changed",
                         "meet each one, then hand over again", problems=problems)
    with transaction(db):
        roles.require(db, operator, "devices.handover")
        still = store.open_assignment_id(db, device["id"], person["officer_id"])
        if still != assignment or store.handed_over_at(db, assignment) is not None:
            raise InputError(f"{device['serial']} changed hands while being handed over",
                             "look again with mdm devices show")
        at = now()
        store.record_handover(db, assignment, device["id"], person["officer_id"], at, operator)
        audit.record(db, operator, "devices.handover", f"device:{device['serial']}", None,
                     {"officer_id": person["officer_id"], "assignment": assignment,
                      "handed_over_at": at})
    return {"serial": device["serial"], "officer_id": person["officer_id"],
            "handed_over_at": at}


def _device(db: Database, ref: str) -> dict[str, Any]:
    found = store.device_by_ref(db, ref.strip())
    if found is None:
        raise NotFound(f"no device with serial or IMEI {ref!r}",
                       "check it with: mdm devices list")
    return found
