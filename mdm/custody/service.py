"""The chain of custody: allocate, take back, reallocate, and answer "who held it when".

Each change closes one assignment row and/or opens another, in one transaction with its
audit row. Rows are never edited otherwise or deleted (triggers enforce it), because the
e-notebook's entries are evidence and court may ask who held the device at 14:32.
"""

from __future__ import annotations

from typing import Any

from mdm.devices import service as devices
from mdm.devices.lifecycle import ASSIGNABLE
from mdm.errors import InputError
from mdm.officers import service as officers
from mdm.officers.models import describe
from mdm.operators import roles
from mdm.store import audit, custody, transaction
from mdm.store.custody import officer_history
from mdm.store.db import Database
from mdm.timeutil import now


def _describe(holder: dict[str, Any]) -> str:
    return f"{describe(holder)}, since {holder['opened_at']}"


def _open_row(db: Database, column: str, value: object) -> dict[str, Any] | None:
    return custody.open_of(db, column, value)


def _check_officer_free(db: Database, officer: dict[str, Any]) -> None:
    if officer["status"] == "LEAVER":
        raise InputError(f"{describe(officer)} is a leaver", "allocate to a serving officer")
    held = _open_row(db, "officer_id", officer["officer_id"])
    if held:
        raise InputError(f"{describe(officer)} already holds device {held['serial']}"
                         f" (since {held['opened_at']})",
                         f"take it back first (mdm unassign {held['serial']} --reason …)"
                         " or reassign that device")


def eligibility_warning(officer: dict[str, Any], reason: str | None) -> str | None:
    """Warn about a person the roster marks not device-eligible; refuse without a reason."""
    if officer.get("device_eligible") != 0:
        return None
    if not reason or not reason.strip():
        raise InputError(f"{describe(officer)} is marked not device-eligible in the roster",
                         "check with the rollout manager; to allocate anyway, say why with"
                         " --reason '…'")
    return f"{describe(officer)} is marked not device-eligible in the roster (allocated: {reason})"


def _open(db: Database, device_id: int, officer_id: str, operator: str, reason: str,
          at: str) -> None:
    custody.open_many(db, [(device_id, officer_id, at, operator, reason)])


def _close(db: Database, assignment_id: int, operator: str, reason: str, at: str) -> None:
    custody.close(db, assignment_id, operator, reason, at)


def _holder_summary(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"officer_id": row["officer_id"], "collar_number": row["collar_number"],
            "payroll_no": row["payroll_no"], "name": row["name"], "station": row["station"]}


def open_holder(db: Database, device_id: int) -> dict[str, Any] | None:
    """Return the device's open assignment (with its officer), if anyone holds it."""
    return _open_row(db, "device_id", device_id)


def last_holder(db: Database, device_id: int) -> dict[str, Any] | None:
    """Return the device's newest assignment, open or closed, if it was ever held."""
    return custody.latest_of_device(db, device_id)


def close_holder(db: Database, operator: str, device_id: int, reason: str,
                 at: str) -> dict[str, Any] | None:
    """Close the device's open assignment, if any (inside the caller's transaction).

    The officer's history keeps the row and its reason; the caller writes the audit row.
    """
    held = _open_row(db, "device_id", device_id)
    if held:
        _close(db, held["id"], operator, reason, at)
    return _holder_summary(held)


def hand_over(db: Database, operator: str, device_id: int, officer: dict[str, Any],
              reason: str, at: str) -> dict[str, Any] | None:
    """Open an assignment for an officer who must hold nothing else (caller's transaction)."""
    _check_officer_free(db, officer)
    _open(db, device_id, officer["officer_id"], operator, reason, at)
    return _holder_summary(_open_row(db, "device_id", device_id))


def _follow(db: Database, operator: str, device_id: int, why: str) -> None:
    """Queue the push of the policy the device's new holder is due (mdm queue run sends it)."""
    from mdm.queue import service as queue

    queue.follow_holder(db, operator, [device_id], why)


def need_reason(reason: str | None) -> str:
    """Return the stripped reason, or refuse a missing one."""
    if not reason or not reason.strip():
        raise InputError("a --reason is required", "say why, e.g. --reason 'returned: leaver'")
    return reason.strip()


def assign(db: Database, operator: str, serial: str, officer_ref: str,
           reason: str | None = None) -> dict[str, Any]:
    """Allocate a device that nobody holds to an officer who holds none."""
    with transaction(db):
        roles.require(db, operator, "custody.assign")
        device = devices.get(db, serial)
        officer = officers.resolve(db, officer_ref)
        if device["status"] not in ASSIGNABLE:
            raise InputError(f"device {device['serial']} is {device['status']}",
                             "only delivered, enrolled or provisioned devices can be allocated")
        held = _open_row(db, "device_id", device["id"])
        if held:
            raise InputError(f"device {device['serial']} is held by {_describe(held)}",
                             f"use: mdm reassign {device['serial']} OFFICER --reason …")
        _check_officer_free(db, officer)
        warning = eligibility_warning(officer, reason)
        at = now()
        _open(db, device["id"], officer["officer_id"], operator, reason or "allocated", at)
        after = _holder_summary(_open_row(db, "device_id", device["id"]))
        audit.record(db, operator, "custody.assign", f"device:{device['serial']}", None,
                     {"holder": after, "reason": reason or "allocated", "at": at}
                     | ({"not_device_eligible": True} if warning else {}))
        _follow(db, operator, device["id"], "holder changed")
    return {"serial": device["serial"], "holder": after, "at": at,
            "warnings": [warning] if warning else []}


def unassign(db: Database, operator: str, serial: str, reason: str | None) -> dict[str, Any]:
    """Take a device back from its holder; the device is then held by nobody."""
    why = need_reason(reason)
    with transaction(db):
        roles.require(db, operator, "custody.unassign")
        device = devices.get(db, serial)
        held = _open_row(db, "device_id", device["id"])
        if not held:
            raise InputError(f"device {device['serial']} is not allocated to anyone",
                             "nothing to take back")
        at = now()
        _close(db, held["id"], operator, why, at)
        audit.record(db, operator, "custody.unassign", f"device:{device['serial']}",
                     {"holder": _holder_summary(held)}, {"holder": None, "reason": why, "at": at})
        _follow(db, operator, device["id"], "holder changed")
    return {"serial": device["serial"], "previous_holder": _holder_summary(held), "holder": None,
            "at": at}


def reassign(db: Database, operator: str, serial: str, officer_ref: str,
             reason: str | None) -> dict[str, Any]:
    """Move a device from its holder (if any) to another officer, at one instant."""
    why = need_reason(reason)
    with transaction(db):
        roles.require(db, operator, "custody.reassign")
        device = devices.get(db, serial)
        officer = officers.resolve(db, officer_ref)
        if device["status"] not in ASSIGNABLE:
            raise InputError(f"device {device['serial']} is {device['status']}",
                             "only delivered, enrolled or provisioned devices can be allocated")
        held = _open_row(db, "device_id", device["id"])
        if held and held["officer_id"] == officer["officer_id"]:
            raise InputError(f"device {device['serial']} is already held by {_describe(held)}",
                             "nothing to change")
        _check_officer_free(db, officer)
        warning = eligibility_warning(officer, why)
        at = now()
        if held:
            _close(db, held["id"], operator, why, at)
        _open(db, device["id"], officer["officer_id"], operator, why, at)
        after = _holder_summary(_open_row(db, "device_id", device["id"]))
        audit.record(db, operator, "custody.reassign", f"device:{device['serial']}",
                     {"holder": _holder_summary(held)}, {"holder": after, "reason": why, "at": at}
                     | ({"not_device_eligible": True} if warning else {}))
        _follow(db, operator, device["id"], "holder changed")
    return {"serial": device["serial"], "previous_holder": _holder_summary(held),
            "holder": after, "at": at, "warnings": [warning] if warning else []}


def holder_at(db: Database, serial: str, at: str) -> dict[str, Any]:
    """Say who held a device at an instant (UTC text), with the assignment that covers it."""
    if at > now():  # both are the inventory's fixed-width UTC text
        raise InputError(f"{at} is in the future: custody is a record of what happened",
                         "give a past instant, or leave --at out for now")
    device = devices.get(db, serial)
    return {"serial": device["serial"], "at": at,
            "holder": custody.held_at(db, device["id"], at)}


def officer_devices(db: Database, officer_ref: str) -> dict[str, Any]:
    """List the devices an officer has held, and when."""
    officer = officers.resolve(db, officer_ref)
    return {"officer_id": officer["officer_id"], "collar_number": officer["collar_number"],
            "name": f"{officer['forename']} {officer['surname']}",
            "station": officer["station"],
            "custody": officer_history(db, officer["officer_id"])}
