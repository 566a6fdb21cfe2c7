"""Act on a loss in one step, and take devices back: each change one transaction.

`lost` opens an incident and, in the same transaction, moves the device to lost or
stolen, closes its custody with that reason, queues a lock (due at once) and a wipe
(stolen: once approved; lost: after the grace period, unless recovered), and records
the data-protection deadline (72 hours from when the loss was known) and how many
e-notebook entries the device last reported as not yet synced — what the disclosure
officer needs. `recovered`, `approve_wipe`, `replace` and `give_back` (mdm return)
follow the same pattern. The queue (mdm/queue) delivers what is queued.
"""

from __future__ import annotations

import json
from typing import Any

from mdm.custody import service as custody
from mdm.devices import service as devices
from mdm.devices.lifecycle import Status, check_transition
from mdm.errors import InputError, NotFound
from mdm.officers import service as officers
from mdm.operators import roles
from mdm.queue import service as queue
from mdm.runs import record as runs
from mdm.store import audit, incidents, transaction
from mdm.store import devices as device_rows
from mdm.store.db import Database
from mdm.timeutil import now, parse_instant

DP_HOURS = 72
RETURN_REASONS = ("leaver", "transfer", "fault", "end-of-life")
# Where a returned device goes once its wipe is confirmed.
AFTER_RETURN = {"leaver": Status.WIPED, "transfer": Status.WIPED, "fault": Status.IN_REPAIR,
                "end-of-life": Status.RETIRED}
REACHABLE = (Status.ENROLLED, Status.PROVISIONED)


def _settings() -> Any:
    from mdm import config

    return config.load()


def _unsynced(db: Database, device_id: int) -> tuple[int | None, str | None]:
    """Return the unsynced notebook entries the device last reported, and when."""
    status, collected_at = device_rows.dpc_status(db, device_id)
    if not status:
        return None, None
    count = json.loads(status).get("unsyncedNotebookEntries")
    return (count, collected_at) if isinstance(count, int) else (None, None)


def lost(db: Database, operator: str, serial: str, stolen: bool, reported_by: str,
         where: str, crime_ref: str | None = None, when: str | None = None) -> dict[str, Any]:
    """Report a device lost or stolen: incident, status, custody, lock and wipe, at once."""
    kind = Status.STOLEN if stolen else Status.LOST
    if not where.strip():
        raise InputError("--where is required", "say where it went missing, e.g. --where"
                         " 'Kendal bus station'")
    known_at = parse_instant(when, "--when") if when else now()
    if known_at > now():
        raise InputError(f"--when {when!r} is in the future",
                         "give when the loss became known, or leave --when out for now")
    settings = _settings()
    with transaction(db):
        roles.require(db, operator, "helpdesk.report")
        device = devices.get(db, serial)
        if device["status"] in (Status.LOST, Status.STOLEN):
            raise InputError(f"device {device['serial']} is already {device['status']}",
                             f"see it with: mdm incidents --open; if found: mdm recovered"
                             f" {device['serial']} --note …")
        check_transition(device["serial"], device["status"], kind)
        if when and known_at < device["created_at"]:
            raise InputError(f"--when {when!r} is before device {device['serial']} was"
                             f" delivered ({device['created_at']})",
                             "give when the loss became known (a date since it was issued)")
        reporter = officers.resolve(db, reported_by)
        at = now()
        holder = custody.close_holder(db, operator, device["id"], f"reported {kind.value}", at)
        last = holder or custody.last_holder(db, device["id"])
        unsynced, counted_at = _unsynced(db, device["id"])
        deadline = queue.plus(known_at, DP_HOURS * 3600)
        incident = incidents.insert(db, {
            "device_id": device["id"], "kind": kind.value,
            "holder_officer_id": last and last["officer_id"],
            "reported_by_officer": reporter["officer_id"], "place": where.strip(),
            "crime_ref": crime_ref, "known_at": known_at, "dp_deadline": deadline,
            "unsynced_entries": unsynced, "unsynced_reported_at": counted_at,
            "opened_at": at, "opened_by": operator})
        runs.set_status(db, operator, device, kind, f"devices.{kind.value}",
                        {"incident": incident})
        result = {"incident": incident, "serial": device["serial"], "kind": kind.value,
                  "holder": holder, "known_at": known_at, "dp_deadline": deadline,
                  "unsynced_entries": unsynced, "unsynced_reported_at": counted_at,
                  "lock": None, "wipe": None, "wipe_not_before": None,
                  "wipe_needs_approval": None, "wipe_held": None}
        if device.get("host_key"):  # never enrolled: no DPC of ours to lock or wipe it
            lock = queue.enqueue(db, operator, device, "lock", incident_id=incident, at=at,
                                 settings=settings, why=f"incident {incident}")
            grace = int(settings.get("helpdesk.lost_wipe_after"))
            wipe = queue.enqueue(db, operator, device, "wipe", incident_id=incident, at=at,
                                 not_before=None if stolen else queue.plus(at, grace),
                                 needs_approval=bool(settings.get("helpdesk.wipe_approval")),
                                 settings=settings, why=f"incident {incident}")
            result |= {"lock": lock["id"], "wipe": wipe["id"],
                       "wipe_not_before": wipe["not_before"],
                       "wipe_needs_approval": wipe["needs_approval"],
                       "wipe_held": wipe["held_reason"]}
        audit.record(db, operator, f"incidents.{kind.value}", f"device:{device['serial']}",
                     None, {**result, "reported_by": reporter["officer_id"],
                            "where": where.strip(), "crime_ref": crime_ref})
    return result


def _incident(db: Database, ref: str) -> dict[str, Any]:
    text = ref.strip().lstrip("#")
    row = incidents.get(db, int(text)) if text.isdigit() else None
    if row is None:
        raise NotFound(f"no incident {ref!r}", "list them with: mdm incidents")
    return row


def _wipe_of(db: Database, incident: int) -> dict[str, Any] | None:
    return incidents.latest_wipe(db, incident)


def approve_wipe(db: Database, operator: str, ref: str) -> dict[str, Any]:
    """Approve an incident's wipe; the operator who asked for it may not."""
    with transaction(db):
        roles.require(db, operator, "helpdesk.approve_wipe")
        incident = _incident(db, ref)
        wipe = _wipe_of(db, incident["id"])
        if wipe is None:
            raise InputError(f"incident {incident['id']} has no wipe", "nothing to approve")
        if not wipe["needs_approval"]:
            raise InputError(f"the wipe of incident {incident['id']} needs no approval",
                             "it is sent when due (mdm queue run)")
        at = queue.approve(db, operator, wipe)
        audit.record(db, operator, "incidents.approve_wipe", f"device:{incident['serial']}",
                     {"command": wipe["id"], "requested_by": wipe["requested_by"]},
                     {"approved_by": operator, "at": at, "incident": incident["id"]})
    return {"incident": incident["id"], "serial": incident["serial"], "wipe": wipe["id"],
            "approved_by": operator, "approved_at": at,
            "held": wipe["held_reason"] if not wipe["released_by"] else None}


def recovered(db: Database, operator: str, serial: str, note: str) -> dict[str, Any]:
    """Record a lost or stolen device found: cancel what is queued, send it to IT."""
    if not note.strip():
        raise InputError("a --note is required", "say where and how it was found")
    with transaction(db):
        roles.require(db, operator, "helpdesk.report")
        device = devices.get(db, serial)
        case = incidents.latest_loss(db, device["id"], ("open", "wiped"))
        if case is None:
            recovered = incidents.latest_loss(db, device["id"], ("recovered",))
            earlier = recovered["id"] if recovered else None
            if earlier is not None:
                raise InputError(f"device {device['serial']} was already recovered (incident"
                                 f" {earlier}; it is {device['status']})",
                                 "nothing to recover: mdm incidents shows it")
            raise InputError(f"device {device['serial']} was never reported lost or stolen"
                             f" (it is {device['status']})", "nothing to recover")
        incident = case
        at = now()
        cancelled = queue.cancel_for_device(db, device["id"], f"recovered: {note.strip()}", at)
        key_changed = (device.get("last_contact_error") or "").startswith("host_key")
        if not device.get("host_key"):
            then, next_step = Status.DELIVERED, "never enrolled: back with the deliveries"
        elif device["status"] == Status.WIPED:
            then, next_step = Status.WIPED, "re-enrol it (mdm enrol device): it was wiped"
        elif key_changed:
            then, next_step = Status.QUARANTINED, ("re-enrol it (mdm enrol device): it offers"
                                                    " another host key")
        else:
            then, next_step = Status.ENROLLED, "back to stock: allocate it again when ready"
        if device["status"] != then:
            runs.set_status(db, operator, device, then, "devices.recovered",
                            {"incident": incident["id"]})
        incidents.close_recovered(db, incident["id"], at, operator, f"recovered: {next_step}",
                                  note.strip())
        result = {"incident": incident["id"], "serial": device["serial"],
                  "status": then.value, "next": next_step, "cancelled": cancelled}
        audit.record(db, operator, "incidents.recovered", f"device:{device['serial']}",
                     {"status": incident["kind"]}, {**result, "note": note.strip()})
    return result


def replace(db: Database, operator: str, serial: str, new_serial: str,
            reason: str) -> dict[str, Any]:
    """Hand a provisioned spare to the officer who held a device, at one instant."""
    if not reason.strip():
        raise InputError("a --reason is required", "e.g. --reason 'screen broken'")
    with transaction(db):
        roles.require(db, operator, "helpdesk.report")
        old = devices.get(db, serial)
        new = devices.get(db, new_serial)
        if old["id"] == new["id"]:
            raise InputError("a device cannot replace itself", "name the spare after --with")
        if new["status"] != Status.PROVISIONED:
            raise InputError(f"the replacement {new['serial']} is {new['status']}, not"
                             " provisioned", "provision a spare first (mdm devices provision)")
        if new.get("holder_id"):
            raise InputError(f"the replacement {new['serial']} is held by"
                             f" {new['holder_name']} (collar {new['holder_collar']})",
                             "choose a spare nobody holds")
        last = custody.open_holder(db, old["id"]) or custody.last_holder(db, old["id"])
        if last is None:
            raise InputError(f"device {old['serial']} was never held by anyone",
                             "allocate the spare with: mdm assign")
        incident = incidents.latest_id(db, old["id"])
        why = reason.strip() + (f" (incident {incident})" if incident else "")
        at = now()
        closed = custody.close_holder(db, operator, old["id"],
                                      f"replaced by {new['serial']}: {why}", at)
        officer = officers.resolve(db, last["officer_id"])
        holder = custody.hand_over(db, operator, new["id"], officer,
                                   f"replacement for {old['serial']}: {why}", at)
        result = {"serial": old["serial"], "replacement": new["serial"], "holder": holder,
                  "closed": closed is not None, "at": at, "incident": incident,
                  "reason": reason.strip()}
        audit.record(db, operator, "custody.replace", f"device:{new['serial']}",
                     {"replaces": old["serial"]}, result)
        queue.follow_holder(db, operator, [new["id"]], "replacement handed over")
        open_case = incidents.open_id(db, old["id"])
        if old["status"] in REACHABLE and open_case is None:
            # A swap for a fault: the old device is not left in stock as it was, held by
            # nobody and never wiped; it goes back as a fault (wiped, then to repair).
            result["return"] = _open_return(db, operator, old, "fault", last, at, _settings())
    return result


def give_back(db: Database, operator: str, serial: str, reason: str) -> dict[str, Any]:
    """Take a device back: close custody, queue a wipe; its status moves once it is wiped."""
    if reason not in RETURN_REASONS:
        raise InputError(f"--reason {reason!r} is not a return reason",
                         "use one of: " + ", ".join(RETURN_REASONS))
    settings = _settings()
    with transaction(db):
        roles.require(db, operator, "helpdesk.report")
        device = devices.get(db, serial)
        if device["status"] not in REACHABLE:
            raise InputError(f"device {device['serial']} is {device['status']}: only an"
                             " enrolled or provisioned device can be returned and wiped",
                             "a lost or stolen one: mdm recovered first; one never"
                             " enrolled holds no data to wipe: mdm unassign SERIAL"
                             " --reason …")
        pending = incidents.open_id(db, device["id"], "return")
        if pending:
            raise InputError(f"device {device['serial']} is already being returned"
                             f" (incident {pending})", "see it with: mdm incidents --open")
        at = now()
        holder = custody.close_holder(db, operator, device["id"], f"returned: {reason}", at)
        result = _open_return(db, operator, device, reason, holder, at, settings)
    return result


def _open_return(db: Database, operator: str, device: dict[str, Any], reason: str,
                 holder: dict[str, Any] | None, at: str,
                 settings: dict[str, Any]) -> dict[str, Any]:
    """Open a return incident and queue its wipe (inside the caller's transaction)."""
    incident = incidents.insert(db, {
        "device_id": device["id"], "kind": "return",
        "holder_officer_id": holder and holder["officer_id"], "return_reason": reason,
        "known_at": at, "opened_at": at, "opened_by": operator})
    then = AFTER_RETURN[reason]
    wipe = queue.enqueue(db, operator, device, "wipe", incident_id=incident, at=at,
                         needs_approval=bool(settings.get("helpdesk.wipe_approval")),
                         then_status=then.value, settings=settings,
                         why=f"returned: {reason}")
    result = {"incident": incident, "serial": device["serial"], "reason": reason,
              "previous_holder": holder, "wipe": wipe["id"], "then": then.value,
              "wipe_needs_approval": wipe["needs_approval"],
              "wipe_held": wipe["held_reason"]}
    audit.record(db, operator, "incidents.return", f"device:{device['serial']}",
                 {"holder": holder}, result)
    return result
