"""Allocate or take back many devices from one CSV file: all pairs, or none.

A rollout allocates hundreds of devices at a time. The file is checked whole, against
the inventory, under the write lock: every problem is named by file, row and field, and
nothing changes unless every row is good. Then every pair lands in one transaction with
one audit row that lists them all.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from mdm import csvio
from mdm.custody.service import need_reason
from mdm.devices import service as devices
from mdm.devices.lifecycle import ASSIGNABLE
from mdm.errors import InputError, Problem
from mdm.officers import service as officers
from mdm.officers.models import describe
from mdm.operators import roles
from mdm.queue import service as queue
from mdm.store import audit, custody, transaction
from mdm.store.db import Database
from mdm.timeutil import now

ALIASES = {"serial": "serial_number", "serial_no": "serial_number", "device": "serial_number",
           "officer_id": "officer", "collar": "officer", "collar_number": "officer",
           "collar_no": "officer", "payroll": "officer", "payroll_no": "officer",
           "payroll_number": "officer"}


class _Rows:
    """Problems found in a file, each named by file, row and field."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def bad(self, row: csvio.Row, field: str, message: str, hint: str = "") -> None:
        self.problems.append(Problem(f"{self.path}, row {row.line}", message, hint, field))

    def refuse_if_any(self) -> None:
        if self.problems:
            raise InputError(f"{self.path}: {len(self.problems)} problem(s); nothing was"
                             " changed", "fix the rows listed and run the command again",
                             problems=self.problems)


def _devices(db: Database, rows: list[csvio.Row], found: _Rows) -> dict[int, dict[str, Any]]:
    """Find each row's device; name rows whose device is missing or already on a row."""
    refs = [r.values.get("serial_number", "") for r in rows]
    known = devices.get_many(db, refs)
    out: dict[int, dict[str, Any]] = {}
    first: dict[int, int] = {}
    for row, ref in zip(rows, refs, strict=True):
        device = known.get(ref.strip())
        if not ref:
            found.bad(row, "serial_number", "is empty", "give the device's serial number")
        elif device is None:
            found.bad(row, "serial_number", f"no device with serial or IMEI {ref!r}",
                      "check the serial (mdm devices find …)")
        elif device["id"] in first:
            found.bad(row, "serial_number", f"device {device['serial']} is also on row"
                      f" {first[device['id']]}", "list each device once")
        else:
            first[device["id"]] = row.line
            out[row.line] = device
    return out


def _file_facts(path: Path, count: int) -> dict[str, Any]:
    return {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "rows": count}


def assign_file(db: Database, operator: str, path: Path, reason: str | None) -> dict[str, Any]:
    """Allocate every (device, officer) pair in a CSV file, or change nothing."""
    rows = csvio.read_rows(path, ["serial_number", "officer"], ALIASES)
    found = _Rows(path)
    reason = reason.strip() if reason and reason.strip() else None
    with transaction(db):
        roles.require(db, operator, "custody.assign")
        by_line = _devices(db, rows, found)
        people = officers.resolve_many(db, [r.values.get("officer", "") for r in rows])
        ids = [p["officer_id"] for p in people.values()]
        held_by = _open_by_officer(db, ids)
        pairs: list[tuple[csvio.Row, dict[str, Any], dict[str, Any], str]] = []
        warned: list[str] = []
        first_holder: dict[str, int] = {}
        for row in rows:
            device = by_line.get(row.line)
            ref = row.values.get("officer", "").strip()
            person = people.get(ref)
            problem = _person_problem(ref, person, first_holder, held_by, reason)
            if problem:
                found.bad(row, "officer", *problem)
            if person is not None:
                first_holder.setdefault(person["officer_id"], row.line)
            problem = _device_problem(device) if device is not None else None
            if problem:
                found.bad(row, "serial_number", *problem)
            if device is None or person is None:
                continue
            if person.get("device_eligible") == 0:
                warned.append(f"{path}, row {row.line}: {describe(person)} is marked not"
                              f" device-eligible in the roster (allocated: {reason})")
            pairs.append((row, device, person, row.values.get("reason") or reason
                          or "allocated"))
        found.refuse_if_any()
        at = now()
        custody.open_many(db, [(d["id"], p["officer_id"], at, operator, why)
                               for _, d, p, why in pairs])
        listed = [{"row": row.line, "serial": d["serial"], "officer_id": p["officer_id"],
                   "collar_number": p["collar_number"],
                   "name": f"{p['forename']} {p['surname']}", "station": p["station"],
                   "reason": why} | ({"not_device_eligible": True}
                                     if p.get("device_eligible") == 0 else {})
                  for row, d, p, why in pairs]
        facts = _file_facts(path, len(rows))
        audit.record(db, operator, "custody.assign", f"file:{path.name}", None,
                     {**facts, "at": at, "pairs": listed})
        queue.follow_holder(db, operator, [d["id"] for _, d, _, _ in pairs], "holder changed")
    return {**facts, "at": at, "allocated": listed, "warnings": warned}


def unassign_file(db: Database, operator: str, path: Path,
                  reason: str | None) -> dict[str, Any]:
    """Take back every device listed in a CSV file from its holder, or change nothing."""
    rows = csvio.read_rows(path, ["serial_number"], ALIASES)
    found = _Rows(path)
    if reason is not None or not any(r.values.get("reason") for r in rows):
        reason = need_reason(reason)  # no reason anywhere: one error, not one per row
    with transaction(db):
        roles.require(db, operator, "custody.unassign")
        by_line = _devices(db, rows, found)
        taken = []
        for row in rows:
            device = by_line.get(row.line)
            why = row.values.get("reason") or reason
            if not why:
                found.bad(row, "reason", "no reason for taking this device back",
                          "add a reason column, or give --reason for every row")
            if device is not None and not device["holder_id"]:
                found.bad(row, "serial_number", f"device {device['serial']} is not allocated"
                          " to anyone", "nothing to take back: drop the row")
            elif device is not None and why:
                taken.append((row, device, why))
        found.refuse_if_any()
        at = now()
        custody.close_open_many(db, [(at, operator, why, d["id"]) for _, d, why in taken])
        listed = [{"row": row.line, "serial": d["serial"], "previous_holder": _holder(d),
                   "reason": why} for row, d, why in taken]
        facts = _file_facts(path, len(rows))
        audit.record(db, operator, "custody.unassign", f"file:{path.name}", None,
                     {**facts, "at": at, "returned": listed})
        queue.follow_holder(db, operator, [d["id"] for _, d, _ in taken], "holder changed")
    return {**facts, "at": at, "returned": listed}


def _person_problem(ref: str, person: dict[str, Any] | None, first_holder: dict[str, int],
                    held_by: dict[str, str], reason: str | None) -> tuple[str, str] | None:
    """Say what stops this row's person being given a device, if anything."""
    if not ref:
        return "is empty", "give an officer id, payroll or collar number"
    if person is None:
        return (f"no officer with id, payroll or collar number {ref!r}",
                "find them with: mdm officers list --name NAME")
    if person["status"] == "LEAVER":
        return f"{describe(person)} is a leaver", "allocate to a serving officer"
    if person["officer_id"] in first_holder:
        return (f"{describe(person)} is also on row {first_holder[person['officer_id']]}",
                "an officer holds one device at a time")
    if person["officer_id"] in held_by:
        serial = held_by[person["officer_id"]]
        return (f"{describe(person)} already holds device {serial}",
                f"take it back first (mdm unassign {serial} --reason …)")
    if person.get("device_eligible") == 0 and not reason:
        return (f"{describe(person)} is marked not device-eligible in the roster",
                "check with the rollout manager; to allocate anyway, run again with"
                " --reason '…'")
    return None


def _device_problem(device: dict[str, Any]) -> tuple[str, str] | None:
    """Say what stops this row's device being allocated, if anything."""
    if device["status"] not in ASSIGNABLE:
        return (f"device {device['serial']} is {device['status']}",
                "only delivered, enrolled or provisioned devices can be allocated")
    if device["holder_id"]:
        return (f"device {device['serial']} is held by {describe(_holder(device))}",
                f"use: mdm reassign {device['serial']} OFFICER --reason …")
    return None


def _holder(device: dict[str, Any]) -> dict[str, Any]:
    return {"officer_id": device["holder_id"], "collar_number": device["holder_collar"],
            "payroll_no": device["holder_payroll"], "name": device["holder_name"],
            "station": device["holder_station"]}


def _open_by_officer(db: Database, officer_ids: list[str]) -> dict[str, str]:
    """Map each officer who holds a device now to its serial."""
    out: dict[str, str] = {}
    for i in range(0, len(officer_ids), 500):
        chunk = officer_ids[i:i + 500]
        out.update(custody.serials_held_by(db, chunk))
    return out
