"""Write the command queue: add, supersede, cancel, approve, release, expire, list.

Every write runs inside a transaction with its audit row. The rules, in one place:
- a newer command supersedes a queued older one of the same kind for the same device
  (fifty queued pushes to an offline phone collapse to one);
- a wipe cancels everything queued for the device before it, except a lock of the same
  incident (the lock goes first, then the wipe);
- every command expires (per kind, `[queue.expiry]` in mdm.toml), counted from when it
  becomes due: a lock from last month never fires today;
- a wipe may need a second operator's approval (`helpdesk.wipe_approval`), and more
  wipe requests than `helpdesk.burst_wipes` within `helpdesk.burst_minutes` are held
  for an admin's review, whoever asked: stolen credentials must not wipe the force.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from mdm.errors import InputError, NotFound
from mdm.operators import roles
from mdm.queue.kinds import KINDS
from mdm.store import audit, transaction
from mdm.store import queue as commands
from mdm.store.db import Database
from mdm.timeutil import format_utc, now

LIVE = ("queued", "sent")
STATES = ("queued", "sent", "done", "failed", "expired", "cancelled", "superseded")
COLUMNS = ("id", "kind", "state", "attempts", "last_answer", "created_at", "requested_by",
           "not_before", "expires_at", "sent_at", "done_at", "needs_approval", "approved_by",
           "approved_at", "held_reason", "released_by", "released_at", "incident_id",
           "then_status", "superseded_by", "closed_reason", "payload")


def plus(at: str, seconds: int) -> str:
    """Return the inventory's UTC text `seconds` after another."""
    return format_utc(datetime.fromisoformat(at.replace("Z", "+00:00"))
                      + timedelta(seconds=seconds))


def _settings() -> Any:
    from mdm import config

    return config.load()


def enqueue(db: Database, operator: str, device: dict[str, Any], kind: str, *,
            incident_id: int | None = None, not_before: str | None = None,
            needs_approval: bool = False, then_status: str | None = None,
            payload: str | None = None, at: str | None = None,
            why: str = "", settings: Any = None) -> dict[str, Any]:
    """Queue one command for a device, inside the caller's transaction, with its audit row."""
    if kind not in KINDS:
        raise InputError(f"unknown command kind {kind!r}", "kinds: " + ", ".join(KINDS))
    settings = settings or _settings()
    at = at or now()
    command_id = uuid.uuid4().hex
    due = max(at, not_before or at)
    expires = plus(due, settings.expiry(kind, KINDS[kind].expiry))
    held = _burst(db, settings, at) if kind == "wipe" else None
    commands.insert_command(db, {
        "id": command_id, "device_id": device["id"], "kind": kind, "payload": payload,
        "created_at": at, "requested_by": operator, "not_before": not_before,
        "expires_at": expires, "needs_approval": int(needs_approval), "held_reason": held,
        "incident_id": incident_id, "then_status": then_status})
    superseded = commands.queued_of_kind(db, device["id"], kind, but=command_id)
    _close(db, superseded, "superseded", at, f"superseded by {command_id}", command_id)
    cancelled: list[str] = []
    if kind == "wipe":
        cancelled = commands.queued_before_wipe(db, device["id"], command_id, incident_id)
        _close(db, cancelled, "cancelled", at, f"a wipe was queued after it ({command_id})")
    row = {"id": command_id, "serial": device["serial"], "kind": kind, "state": "queued",
           "not_before": not_before, "expires_at": expires, "needs_approval": needs_approval,
           "held_reason": held, "incident_id": incident_id, "superseded": superseded,
           "cancelled": cancelled}
    audit.record(db, operator, "queue.add", f"device:{device['serial']}", None,
                 {k: v for k, v in row.items() if v not in (None, [], False)}
                 | ({"why": why} if why else {}))
    return row


def _burst(db: Database, settings: Any, at: str) -> str | None:
    """Say why a new wipe is held, when it makes more than the burst allows."""
    limit = int(settings.get("helpdesk.burst_wipes"))
    minutes = int(settings.get("helpdesk.burst_minutes"))
    recent = commands.wipes_since(db, plus(at, -60 * minutes)) + 1
    if recent <= limit:
        return None
    return (f"wipe request {recent} within {minutes} minutes (more than {limit}): held for"
            " an admin's review")


def _close(db: Database, ids: list[str], state: str, at: str, reason: str,
           superseded_by: str | None = None) -> None:
    commands.close(db, ids, state, at, reason, superseded_by)


def settle(db: Database, device_id: int, kind: str, reason: str, at: str) -> list[str]:
    """Close a device's queued commands of a kind that another path has just fulfilled."""
    ids = commands.queued_of_kind(db, device_id, kind)
    _close(db, ids, "superseded", at, reason)
    return ids


def cancel_for_device(db: Database, device_id: int, reason: str, at: str) -> list[str]:
    """Cancel every live command of a device (inside the caller's transaction)."""
    ids = commands.live_ids(db, device_id)
    _close(db, ids, "cancelled", at, reason)
    return ids


def get(db: Database, command_id: str) -> dict[str, Any]:
    """Return one command with its device's serial (a unique prefix of its id will do)."""
    ref = command_id.strip().lower()
    rows = commands.by_id_prefix(db, ref) if len(ref) >= 6 and ref.isalnum() else []
    if len(rows) != 1:
        raise NotFound(f"no command {command_id!r}" if not rows else
                       f"{command_id!r} names more than one command",
                       "give the id (or its first 8 characters) as mdm queue list shows it")
    return rows[0]


def cancel(db: Database, operator: str, command_id: str, reason: str) -> dict[str, Any]:
    """Cancel a queued command; one already delivered or closed is refused."""
    if not reason.strip():
        raise InputError("a --reason is required", "say why, e.g. --reason 'device found'")
    with transaction(db):
        roles.require(db, operator, "queue.cancel")
        row = get(db, command_id)
        if row["state"] not in LIVE:
            raise InputError(f"command {row['id'][:8]} is {row['state']}; only a queued one"
                             " can be cancelled", "see it with: mdm queue list " + row["serial"])
        at = now()
        _close(db, [row["id"]], "cancelled", at, reason.strip())
        audit.record(db, operator, "queue.cancel", f"device:{row['serial']}",
                     {"command": row["id"], "state": row["state"]},
                     {"state": "cancelled", "reason": reason.strip()})
    return {"id": row["id"], "serial": row["serial"], "kind": row["kind"],
            "state": "cancelled", "was": row["state"], "reason": reason.strip()}


def release(db: Database, operator: str, command_id: str, note: str) -> dict[str, Any]:
    """Release a wipe held by the burst rule, after an admin's review."""
    with transaction(db):
        roles.require(db, operator, "queue.release")
        row = get(db, command_id)
        if not row["held_reason"] or row["released_by"]:
            raise InputError(f"command {row['id'][:8]} is not held", "nothing to release")
        if row["state"] not in LIVE:
            raise InputError(f"command {row['id'][:8]} is {row['state']}", "nothing to release")
        at = now()
        commands.set_released(db, row["id"], operator, at)
        audit.record(db, operator, "queue.release", f"device:{row['serial']}",
                     {"command": row["id"], "held": row["held_reason"]},
                     {"released": True, "note": note})
    return {"id": row["id"], "serial": row["serial"], "released_by": operator, "at": at}


def approve(db: Database, operator: str, row: dict[str, Any]) -> str:
    """Approve a wipe (inside the caller's transaction); the requester may not approve it."""
    if row["state"] not in LIVE:
        raise InputError(f"the wipe {row['id'][:8]} is {row['state']}: it cannot be approved",
                         "queue a new one if the device must still be wiped")
    if row["expires_at"] <= now():
        raise InputError(f"the wipe {row['id'][:8]} expired at {row['expires_at']}",
                         "queue a new one if the device must still be wiped")
    if row["approved_by"]:
        raise InputError(f"the wipe {row['id'][:8]} was approved by {row['approved_by']}"
                         f" at {row['approved_at']}", "nothing to approve")
    if row["requested_by"] == operator:
        raise InputError(f"{operator!r} asked for this wipe and cannot approve it",
                         "a second operator (helpdesk or admin) must approve it")
    at = now()
    commands.set_approved(db, row["id"], operator, at)
    return at


def expire(db: Database, operator: str, at: str) -> list[str]:
    """Expire every live command past its expiry (one audit row); return their ids."""
    rows = commands.live_past(db, at)
    if not rows:
        return []
    _close(db, [r["id"] for r in rows], "expired", at, "expired before it could be sent")
    audit.record(db, operator, "queue.expire", "queue", None,
                 {"expired": [{k: r[k] for k in ("id", "kind", "serial", "state")}
                              for r in rows]})
    return [r["id"] for r in rows]


def waiting_for(row: dict[str, Any], at: str) -> str | None:
    """Say what a live command waits for, or None when it is due."""
    if row["state"] not in LIVE:
        return None
    if row["held_reason"] and not row["released_by"]:
        return "held for an admin's review: " + str(row["held_reason"])
    if row["needs_approval"] and not row["approved_by"]:
        return "a second operator's approval (mdm incidents approve-wipe)"
    if row["not_before"] and row["not_before"] > at:
        return f"its time: not before {row['not_before']}"
    return "the device to answer"


def list_commands(db: Database, serial: str | None = None,
                  states: list[str] | None = None) -> list[dict[str, Any]]:
    """List commands, newest first: of one device, in some states, or all live ones."""
    for state in states or []:
        if state not in STATES:
            raise InputError(f"--state {state!r} is not a command state",
                             "use one of: " + ", ".join(STATES))
    device_id = None
    if serial:
        from mdm.devices import service as devices

        device_id = devices.get(db, serial)["id"]
    wanted = states or ([] if serial else list(LIVE))
    rows = commands.listing(db, device_id, wanted)
    at = now()
    return [{"serial": r["serial"], **{k: r[k] for k in COLUMNS},
             "needs_approval": bool(r["needs_approval"]), "waiting_for": waiting_for(r, at)}
            for r in rows]


MANAGED = ("enrolled", "provisioned")


def follow_holder(db: Database, operator: str, device_ids: list[int], why: str
                  ) -> list[str]:
    """Queue a policy push for each managed device whose holder or policy changed.

    Inside the caller's transaction. Each supersedes an older queued push; a device with
    a wipe on the way gets none. Return the serials queued.
    """
    if not device_ids:
        return []
    settings = _settings()
    at = now()
    queued = []
    for i in range(0, len(device_ids), 500):
        chunk = device_ids[i:i + 500]
        rows = commands.managed_without_wipe(db, chunk)
        for row in rows:
            enqueue(db, operator, row, "policy", at=at, why=why, settings=settings)
            queued.append(row["serial"])
    return queued


def queue_policy(db: Database, operator: str, selectors: list[str]) -> dict[str, Any]:
    """Queue a policy push for the selected devices (after a change to the policy files)."""
    from mdm.devices import selector

    with transaction(db):
        roles.require(db, operator, "policy.push")
        where, args = selector.select(db, selectors, MANAGED)
        ids = commands.selected_managed_ids(db, where, args)
        queued = follow_holder(db, operator, ids, "policy files changed")
    return {"queued": queued, "count": len(queued)}
