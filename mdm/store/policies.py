"""The policy queries: whom policies are for, the stored versions and each device's events.

A push plans over every managed device with its holder; at 50,000 devices the whole
fleet is read as three plain scans joined in Python (`fleet`), which is several times
cheaper than the join through two indexes that a selection needs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from operator import itemgetter
from typing import Any

from mdm.store.db import Database, Rows

# `via`: the provisioning station the device is reached through (`station` is its holder's).
_DEVICE_COLUMNS = ("d.id, d.serial, d.status, d.address, d.host_key, d.applied_policy,"
                   " d.last_seen, d.last_contact_error, d.model, d.station AS via")
_HOLDER_COLUMNS = ("o.officer_id, o.collar_number, o.forename || ' ' || o.surname AS holder,"
                   " o.worker_type, o.rank, o.area, o.station")
_SUBJECT_SQL = f"SELECT {_DEVICE_COLUMNS}, {_HOLDER_COLUMNS}"
# A device, its open assignment and its holder (as mdm.store.devices.SELECTED).
_SELECTED = ("FROM devices d LEFT JOIN assignments a ON a.device_id = d.id"
             " AND a.closed_at IS NULL LEFT JOIN officers o ON o.officer_id = a.officer_id")


# -- whom policies are for -------------------------------------------------------------------

def subjects(db: Database, where: str, args: Sequence[Any]) -> list[dict[str, Any]]:
    """The selected devices (a clause over devices.SELECTED) with their holders, by serial."""
    return db.query(f"{_SUBJECT_SQL} {_SELECTED} WHERE {where} ORDER BY d.serial", list(args))


def subject_of(db: Database, serial: str) -> dict[str, Any]:
    """One device (by its exact serial, which must exist) with its holder."""
    return db.query(f"{_SUBJECT_SQL} {_SELECTED} WHERE d.serial = ?", [serial])[0]


def fleet(db: Database, statuses: Sequence[str]) -> list[dict[str, Any]]:
    """Every device in these statuses with its holder, as `subjects` gives them, by serial.

    Three plain scans (people, open assignments, devices) joined in Python: for the whole
    fleet several times cheaper than the join through two indexes.
    """
    marks = ", ".join("?" for _ in statuses)
    people = db.execute(f"SELECT {_HOLDER_COLUMNS} FROM officers o")
    columns = [c[0] for c in people.description]
    holders = {r[0]: r for r in people}
    held = dict(db.execute("SELECT device_id, officer_id FROM assignments"
                           " WHERE closed_at IS NULL"))
    found = db.execute(f"SELECT {_DEVICE_COLUMNS} FROM devices d WHERE d.status IN ({marks})",
                       list(statuses))
    columns = [c[0] for c in found.description] + columns
    nobody = (None,) * (len(columns) - len(found.description))
    return [dict(zip(columns, device + holders.get(held.get(device[0]), nobody), strict=False))
            for device in sorted(found, key=itemgetter(1))]  # by serial


def serving_kinds(db: Database) -> Iterator[tuple[str, str, str, str, str]]:
    """(officer id, worker type, rank, area, station) of every serving officer, streamed."""
    return iter(db.execute("SELECT officer_id, worker_type, rank, area, station FROM officers"
                           " WHERE status != 'LEAVER'"))


def known_serials(db: Database, serials: Sequence[str]) -> set[str]:
    """Those of these serials (exact) that a device in the inventory has."""
    return {r[0] for i in range(0, len(serials), 500) for r in db.execute(
        f"SELECT serial FROM devices WHERE serial IN ({', '.join('?' * len(serials[i:i + 500]))})",
        list(serials[i:i + 500]))}


# -- versions and events ---------------------------------------------------------------------

def version_body(db: Database, sha256: str) -> str | None:
    """The stored body of a policy version, or None if it was never stored."""
    body: str | None = db.scalar("SELECT body FROM policy_versions WHERE sha256 = ?", [sha256])
    return body


def has_version(db: Database, sha256: str) -> bool:
    """Say whether a policy version is stored."""
    return bool(db.scalar("SELECT 1 FROM policy_versions WHERE sha256 = ?", [sha256]))


def store_version(db: Database, sha256: str, body: str, layers: str, at: str, by: str) -> None:
    """Store a policy version (its body, the layers it was compiled from)."""
    db.execute("INSERT INTO policy_versions (sha256, body, layers, created_at,"
               " created_by) VALUES (?, ?, ?, ?, ?)", [sha256, body, layers, at, by])


def events_of(db: Database, device_id: int) -> list[dict[str, Any]]:
    """Every policy event of one device with its version's layers, oldest first."""
    return db.query("SELECT e.at, e.event, e.sha256, e.detail, v.layers FROM policy_events e"
                    " LEFT JOIN policy_versions v ON v.sha256 = e.sha256"
                    " WHERE e.device_id = ? ORDER BY e.id", [device_id])


def add_event(db: Database, device_id: int, sha256: str, event: str, at: str,
              detail: str | None) -> None:
    """Record one policy event of a device (detail as JSON text, or None)."""
    db.execute("INSERT INTO policy_events (device_id, sha256, event, at, detail)"
               " VALUES (?, ?, ?, ?, ?)", [device_id, sha256, event, at, detail])


def set_applied(db: Database, device_id: int, sha256: str, at: str) -> None:
    """Record the policy a device runs, as it reported."""
    db.execute("UPDATE devices SET applied_policy = ?, applied_policy_at = ?"
               " WHERE id = ?", [sha256, at, device_id])


def applied_on_contact(db: Database, device_id: int, sha256: str, at: str) -> None:
    """Record a policy a device applied when mdm reached it (a good contact at `at`)."""
    db.execute("UPDATE devices SET applied_policy = ?, applied_policy_at = ?, last_seen = ?,"
               " last_contact_at = ?, last_contact_error = NULL WHERE id = ?",
               [sha256, at, at, at, device_id])


def set_dpc_status(db: Database, device_id: int, status: str, policy_file: str | None) -> None:
    """Record the device policy controller's status (JSON text) and the policy file's hash."""
    db.execute("UPDATE device_facts SET dpc_status = ?, policy_file_sha256 = ? WHERE"
               " device_id = ?", [status, policy_file, device_id])


# A push's writes on PostgreSQL, many devices' in one statement each (Database.defer_rows):
# the policy events, keyed here as the insert trigger would (it is not fired), in the
# order they came; and each device's contact, policy and controller's status.
EVENTS = Rows("INSERT INTO policy_events (id, device_id, sha256, event, at, detail)"
              " SELECT top.id + v.n, v.device_id, v.sha256, v.event, v.at, v.detail"
              " FROM (SELECT COALESCE(MAX(id), 0) AS id FROM policy_events) top,"
              " unnest(?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[])"
              " WITH ORDINALITY AS v (device_id, sha256, event, at, detail, n)")
CONTACTS = Rows("WITH v AS (SELECT * FROM unnest(?::bigint[], ?::text[], ?::text[], ?::text[],"
                " ?::text[]) AS v (device_id, sha256, at, status, policy_file)),"
                " d AS (UPDATE devices SET applied_policy = v.sha256, applied_policy_at = v.at,"
                " last_seen = v.at, last_contact_at = v.at, last_contact_error = NULL FROM v"
                " WHERE devices.id = v.device_id) UPDATE device_facts SET dpc_status = v.status,"
                " policy_file_sha256 = v.policy_file FROM v"
                " WHERE device_facts.device_id = v.device_id", key=0)


def record_push(db: Database, device_id: int, sha256: str, at: str,
                events: Sequence[tuple[str, str | None]], status: str,
                policy_file: str | None) -> None:
    """Record a push a device took: its events, the policy it runs since a good contact
    at `at`, and its controller's status (add_event, applied_on_contact, set_dpc_status).

    PostgreSQL gets the events and the device's row as rows of two kinds (`EVENTS`,
    `CONTACTS`), sent with the next statement and written with the other devices' of the
    same transaction in one statement each: no round trip of their own. None of them
    changes an evidential row (a device's contact and policy are not proved columns), so
    the audit row after it need not look for one.
    """
    if db.dialect.name == "postgresql":
        for event, detail in events:
            db.defer_rows(EVENTS, (device_id, sha256, event, at, detail), evidential=False)
        db.defer_rows(CONTACTS, (device_id, sha256, at, status, policy_file),
                      evidential=False)
        return
    marks = ", ".join(["(?, ?, ?, ?, ?)"] * len(events))
    insert = f"INSERT INTO policy_events (device_id, sha256, event, at, detail) VALUES {marks}"
    values = [v for event, detail in events for v in (device_id, sha256, event, at, detail)]
    contact = ("UPDATE devices SET applied_policy = ?, applied_policy_at = ?, last_seen = ?,"
               " last_contact_at = ?, last_contact_error = NULL WHERE id = ?")
    facts = "UPDATE device_facts SET dpc_status = ?, policy_file_sha256 = ? WHERE device_id = ?"
    contact_args = [sha256, at, at, at, device_id]
    facts_args = [status, policy_file, device_id]
    db.execute(insert, values)
    db.execute(contact, contact_args)
    db.execute(facts, facts_args)


def last_reported(db: Database, device_id: int) -> str | None:
    """The policy (sha256) the device last reported or applied, by its events."""
    sha: str | None = db.scalar("SELECT sha256 FROM policy_events WHERE device_id = ? AND event"
                                " IN ('reported', 'applied') ORDER BY id DESC LIMIT 1",
                                [device_id])
    return sha


# -- the compliance report: the fleet's facts and holders, read whole ----------------------

def facts_by_device(db: Database, columns: Sequence[str]) -> dict[int, tuple[Any, ...]]:
    """Device id → these columns of its latest facts, for every device with facts."""
    return {r[0]: r[1:] for r in db.execute(
        f"SELECT device_id, {', '.join(columns)} FROM device_facts")}


def holders_by_officer(db: Database) -> dict[str, tuple[Any, ...]]:
    """Officer id → (officer id, worker type, rank, area, station), for everyone."""
    return {r[0]: r for r in db.execute(
        "SELECT officer_id, worker_type, rank, area, station FROM officers")}


def open_holders(db: Database) -> dict[int, str]:
    """Device id → the officer id of its open assignment."""
    return dict(db.execute("SELECT device_id, officer_id FROM assignments"
                           " WHERE closed_at IS NULL"))


def devices_with_facts(db: Database, where: str, args: Sequence[Any],
                       columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """The devices a clause over the device `d` alone picks (a selection by status), as
    (id, serial, status, last seen, last contact error, facts' device id or None, these
    columns of its facts…), each device's facts read through their key in the same scan."""
    found: list[tuple[Any, ...]] = db.execute(
        "SELECT d.id, d.serial, d.status, d.last_seen, d.last_contact_error,"
        f" f.device_id, {', '.join('f.' + c for c in columns)} FROM devices d"
        f" LEFT JOIN device_facts f ON f.device_id = d.id WHERE {where}", list(args)
    ).fetchall()
    return found
