"""What waits in the command queue for one device: the read `devices show` needs.

The queue feature (mdm/queue) writes commands; this read lives here so that showing a
device does not import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mdm.store.db import Database


def live_commands(db: Database, device_id: int) -> list[dict[str, Any]]:
    """Return the device's queued and sent commands, oldest first."""
    return db.query("SELECT id, kind, state, created_at, requested_by, not_before, expires_at,"
                    " attempts, last_answer, needs_approval, approved_by, held_reason,"
                    " released_by, incident_id FROM commands WHERE device_id = ? AND state IN"
                    " ('queued', 'sent') ORDER BY created_at", [device_id])


def _marks(n: int) -> str:
    return ", ".join("?" * n)


# -- writing the queue -------------------------------------------------------------------

def insert_command(db: Database, row: dict[str, Any]) -> None:
    """Add one command: id, device_id, kind, payload, created_at, requested_by, not_before,
    expires_at, needs_approval (0/1), held_reason, incident_id, then_status."""
    cols = ("id", "device_id", "kind", "payload", "created_at", "requested_by", "not_before",
            "expires_at", "needs_approval", "held_reason", "incident_id", "then_status")
    db.execute(f"INSERT INTO commands ({', '.join(cols)}) VALUES ({_marks(len(cols))})",
               [row[c] for c in cols])


def queued_of_kind(db: Database, device_id: int, kind: str, but: str | None = None
                   ) -> list[str]:
    """The ids of a device's queued commands of one kind (other than `but`)."""
    if but is None:
        return [r[0] for r in db.execute("SELECT id FROM commands WHERE device_id = ?"
                                         " AND kind = ? AND state = 'queued'",
                                         [device_id, kind])]
    return [r[0] for r in db.execute(
        "SELECT id FROM commands WHERE device_id = ? AND kind = ? AND state = 'queued'"
        " AND id != ?", [device_id, kind, but])]


def with_queued(db: Database, device_ids: Sequence[int], kind: str) -> set[int]:
    """Those of these devices with a queued command of one kind (one query for a batch)."""
    if not device_ids:
        return set()
    among, args = db.dialect.in_("device_id", device_ids)
    return {r[0] for r in db.execute(f"SELECT DISTINCT device_id FROM commands WHERE {among}"
                                     " AND kind = ? AND state = 'queued'", [*args, kind])}


def queued_before_wipe(db: Database, device_id: int, wipe_id: str, incident_id: int | None
                       ) -> list[str]:
    """The ids of a device's queued commands a new wipe cancels: all but the wipe itself
    and a lock of the same incident (the lock goes first)."""
    # SQLite's `incident_id IS ?`, spelled so that both engines read it (never NULL).
    same = ("incident_id IS NULL" if incident_id is None
            else "(incident_id IS NOT NULL AND incident_id = ?)")
    args: list[Any] = [device_id, wipe_id] + ([] if incident_id is None else [incident_id])
    return [r[0] for r in db.execute(
        "SELECT id FROM commands WHERE device_id = ? AND state = 'queued' AND id != ?"
        f" AND NOT (kind = 'lock' AND {same})", args)]


def live_ids(db: Database, device_id: int) -> list[str]:
    """The ids of a device's queued and sent commands."""
    return [r[0] for r in db.execute("SELECT id FROM commands WHERE device_id = ? AND state IN"
                                     " ('queued', 'sent')", [device_id])]


def wipes_since(db: Database, since: str) -> int:
    """How many wipes were asked for after `since`."""
    return int(db.scalar("SELECT COUNT(*) FROM commands WHERE kind = 'wipe'"
                         " AND created_at > ?", [since]))


def close(db: Database, ids: list[str], state: str, at: str, reason: str,
          superseded_by: str | None = None) -> None:
    """Close commands in a final state, with why (and by which command, if superseded)."""
    db.executemany("UPDATE commands SET state = ?, done_at = ?, closed_reason = ?,"
                   " superseded_by = ? WHERE id = ?",
                   [(state, at, reason, superseded_by, i) for i in ids])


def by_id_prefix(db: Database, prefix: str) -> list[dict[str, Any]]:
    """Up to two commands (with the device's serial) whose id starts with a lower-case,
    alphanumeric prefix, oldest first."""
    return db.query("SELECT c.*, d.serial FROM commands c JOIN devices d ON d.id = c.device_id"
                    " WHERE c.id LIKE ? ORDER BY c.created_at LIMIT 2", [prefix + "%"])


def set_released(db: Database, command_id: str, by: str, at: str) -> None:
    """Record an admin's release of a held wipe."""
    db.execute("UPDATE commands SET released_by = ?, released_at = ? WHERE id = ?",
               [by, at, command_id])


def set_approved(db: Database, command_id: str, by: str, at: str) -> None:
    """Record a second operator's approval of a wipe."""
    db.execute("UPDATE commands SET approved_by = ?, approved_at = ? WHERE id = ?",
               [by, at, command_id])


def live_past(db: Database, at: str) -> list[dict[str, Any]]:
    """Live commands (id, kind, state, serial) whose expiry is at or before `at`."""
    return db.query("SELECT c.id, c.kind, c.state, d.serial FROM commands c JOIN devices d"
                    " ON d.id = c.device_id WHERE c.state IN ('queued', 'sent')"
                    " AND c.expires_at <= ?", [at])


def listing(db: Database, device_id: int | None, states: list[str]) -> list[dict[str, Any]]:
    """Commands with their device's serial, newest first: of one device (if given), in
    these states (any if none)."""
    where: list[str] = ["1 = 1"]
    args: list[Any] = []
    if device_id is not None:
        where.append("c.device_id = ?")
        args.append(device_id)
    if states:
        where.append(f"c.state IN ({_marks(len(states))})")
        args += states
    return db.query("SELECT c.*, d.serial FROM commands c JOIN devices d ON d.id = c.device_id"
                    f" WHERE {' AND '.join(where)} ORDER BY c.created_at DESC, c.id", args)


def managed_without_wipe(db: Database, device_ids: list[int]) -> list[dict[str, Any]]:
    """Of these devices (≤ 500), the enrolled or provisioned ones with no wipe on the way
    (id, serial, status), by serial."""
    if not device_ids:
        return []
    among, args = db.dialect.in_("id", device_ids)
    return db.query(f"SELECT id, serial, status FROM devices WHERE {among}"
                    " AND status IN ('enrolled', 'provisioned') AND id NOT IN"
                    " (SELECT device_id FROM commands WHERE kind = 'wipe' AND state IN"
                    " ('queued', 'sent')) ORDER BY serial", args)


def selected_managed_ids(db: Database, where: str, args: list[Any]) -> list[int]:
    """The ids of the enrolled or provisioned devices a selection (over devices.SELECTED)
    picks."""
    return [r[0] for r in db.execute(
        "SELECT d.id FROM devices d LEFT JOIN assignments a ON a.device_id = d.id"
        " AND a.closed_at IS NULL LEFT JOIN officers o ON o.officer_id = a.officer_id"
        f" WHERE {where} AND d.status IN ('enrolled', 'provisioned')", args)]


# -- running the queue ---------------------------------------------------------------------

# Due: live, its time come, not expired, approved if it needs it, released if held.
_DUE = ("c.state IN ('queued', 'sent') AND (c.not_before IS NULL OR c.not_before <= ?)"
        " AND c.expires_at > ? AND (c.needs_approval = 0 OR c.approved_by IS NOT NULL)"
        " AND (c.held_reason IS NULL OR c.released_by IS NOT NULL)")


def any_due(db: Database, at: str) -> bool:
    """Say whether any command is due at `at`."""
    return bool(db.scalar(f"SELECT 1 FROM commands c WHERE {_DUE} LIMIT 1", [at, at]))


def due(db: Database, at: str) -> list[dict[str, Any]]:
    """Every command due at `at`, by device then age."""
    return db.query(f"SELECT c.* FROM commands c WHERE {_DUE}"
                    " ORDER BY c.device_id, c.created_at", [at, at])


def mark_failed(db: Database, command_id: str, at: str, answer: str) -> None:
    """Close a command as failed, with the answer (or refusal) that says why."""
    db.execute("UPDATE commands SET state = 'failed', done_at = ?, last_answer = ?"
               " WHERE id = ?", [at, answer, command_id])


def mark_sent(db: Database, command_ids: list[str], at: str) -> None:
    """Mark commands sent (one more attempt) at `at`."""
    db.executemany("UPDATE commands SET state = 'sent', attempts = attempts + 1,"
                   " sent_at = ? WHERE id = ?", [(at, i) for i in command_ids])


def mark_done(db: Database, command_id: str, at: str, answer: str) -> None:
    """Close a command as done, with the device's answer."""
    db.execute("UPDATE commands SET state = 'done', done_at = ?, last_answer = ?"
               " WHERE id = ?", [at, answer, command_id])


def mark_answered(db: Database, command_id: str, state: str, at: str | None,
                  answer: str) -> None:
    """Record a failed delivery: closed as failed (at `at`), or queued again (at None)."""
    db.execute("UPDATE commands SET state = ?, done_at = ?, last_answer = ?"
               " WHERE id = ?", [state, at, answer, command_id])


def requeue(db: Database, command_ids: list[str], why: str) -> None:
    """Put sent commands back in the queue (unless closed meanwhile), saying why."""
    db.executemany("UPDATE commands SET state = 'queued', last_answer = ? WHERE id = ?"
                   " AND state = 'sent'", [(why, i) for i in command_ids])


def devices_by_id(db: Database, device_ids: list[int]) -> list[dict[str, Any]]:
    """The rows of these devices."""
    if not device_ids:
        return []
    among, args = db.dialect.in_("id", device_ids)
    return db.query(f"SELECT * FROM devices WHERE {among}", args)


def serial_of(db: Database, device_id: int) -> str:
    """One device's serial."""
    return str(db.scalar("SELECT serial FROM devices WHERE id = ?", [device_id]))


def set_contact_error(db: Database, device_id: int, error: str) -> None:
    """Record what went wrong (or must be done) the last time mdm reached a device."""
    db.execute("UPDATE devices SET last_contact_error = ? WHERE id = ?", [error, device_id])


def close_incident_wiped(db: Database, incident_id: int, at: str, by: str, status: str) -> None:
    """Close an open incident whose device was wiped: a return closes, a loss is 'wiped'."""
    db.execute("UPDATE incidents SET state = CASE kind WHEN 'return' THEN 'closed'"
               " ELSE 'wiped' END, closed_at = ?, closed_by = ?,"
               " outcome = 'wiped: ' || ? WHERE id = ? AND state = 'open'",
               [at, by, status, incident_id])
