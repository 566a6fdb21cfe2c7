"""The device queries: finding devices with their holders, selections, facts and status.

Devices are found by serial (exact, then ignoring case), by IMEI, or by a selection: a
WHERE clause over `SELECTED` (a device, its open assignment and its holder) that the
selector terms here build and `mdm.devices.selector` combines. Features never write this
SQL; they pass a selection's clause and arguments back to these functions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mdm.store.db import Database
from mdm.store.dialect import Dialect

# A device, its open assignment and its holder: what a selection's WHERE clause reads.
SELECTED = ("FROM devices d LEFT JOIN assignments a ON a.device_id = d.id AND a.closed_at IS NULL"
            " LEFT JOIN officers o ON o.officer_id = a.officer_id")
EVERY = "1 = 1"  # the clause that selects every device

_HOLDER_SELECT = (
    "SELECT d.*, o.officer_id AS holder_id, o.collar_number AS holder_collar,"
    " o.forename || ' ' || o.surname AS holder_name, o.station AS holder_station,"
    " o.payroll_no AS holder_payroll, a.opened_at AS held_since"
    " FROM devices d"
    " LEFT JOIN assignments a ON a.device_id = d.id AND a.closed_at IS NULL"
    " LEFT JOIN officers o ON o.officer_id = a.officer_id")

# Selector keys naming a column of the device or of its holder.
DEVICE_COLUMNS = {"serial": "d.serial", "status": "d.status", "model": "d.model",
                  "order": "d.order_number", "manufacturer": "d.manufacturer"}
HOLDER_COLUMNS = {"station": "o.station", "area": "o.area", "district": "o.district",
                  "team": "o.team", "worker_type": "o.worker_type", "rank": "o.rank"}


def _marks(n: int) -> str:
    return ", ".join("?" * n)


# -- selector terms ----------------------------------------------------------------------

def term_clause(dialect: Dialect, key: str, value: str) -> tuple[str, tuple[str, ...]]:
    """The WHERE fragment (over SELECTED) and arguments for one selector term, any case.

    `key` is "serial" (a serial or an IMEI), "officer" (the holder's id, payroll or collar
    number), "group" (the holder is a member) or a key of DEVICE_COLUMNS / HOLDER_COLUMNS.
    """
    if key == "serial":
        return (f"({dialect.ieq('d.serial')} OR d.id IN"
                " (SELECT device_id FROM device_imeis WHERE imei = ?))", (value, value))
    if key == "officer":
        return ("(o.officer_id = ? OR o.payroll_no = ? OR"
                f" {dialect.ieq('o.collar_number')})", (value, value, value))
    if key == "group":
        return ("o.officer_id IN (SELECT officer_id FROM group_members"
                f" WHERE {dialect.ieq('group_name')})", (value,))
    column = DEVICE_COLUMNS.get(key) or HOLDER_COLUMNS[key]
    return dialect.ieq(column), (value,)


def status_clause(statuses: Sequence[str] | None) -> tuple[str, list[str]]:
    """The WHERE fragment for devices in these statuses (every device if none)."""
    if not statuses:
        return EVERY, []
    return f"d.status IN ({_marks(len(statuses))})", list(statuses)


def any_device(db: Database, where: str, args: Sequence[Any]) -> bool:
    """Say whether any device matches a clause over the device alone (`d`)."""
    return bool(db.scalar(f"SELECT 1 FROM devices d WHERE {where} LIMIT 1", list(args)))


def any_selected(db: Database, where: str, args: Sequence[Any]) -> bool:
    """Say whether a selection (a clause over SELECTED) picks any device."""
    return bool(db.scalar(f"SELECT 1 {SELECTED} WHERE {where} LIMIT 1", list(args)))


def status_counts(db: Database) -> list[dict[str, Any]]:
    """How many devices are in each status, by status."""
    return db.query("SELECT status, COUNT(*) AS n FROM devices GROUP BY status ORDER BY status")


def selected_status_counts(db: Database, where: str, args: Sequence[Any]
                           ) -> list[dict[str, Any]]:
    """How many devices of a selection are in each status, by status."""
    return db.query(f"SELECT d.status, COUNT(*) AS n {SELECTED} WHERE {where}"
                    " GROUP BY d.status ORDER BY d.status", list(args))


def known_values(db: Database, key: str) -> list[str]:
    """Every value a selector key has in the inventory, sorted (none for serial/officer)."""
    if key == "group":
        return [r[0] for r in db.execute("SELECT name FROM groups ORDER BY name")]
    column = DEVICE_COLUMNS.get(key) or HOLDER_COLUMNS.get(key)
    if column is None or key == "serial":
        return []
    table = "devices" if column.startswith("d.") else "officers"
    return [r[0] for r in db.execute(f"SELECT DISTINCT {column[2:]} FROM {table}"
                                     f" WHERE {column[2:]} IS NOT NULL ORDER BY 1")]


# -- finding devices with their holders --------------------------------------------------

def get_by_ref(db: Database, ref: str) -> dict[str, Any] | None:
    """One device with its holder, by serial (exact, then any case) or either IMEI."""
    for where in ("d.serial = ?", db.dialect.ieq("d.serial"),
                  "d.id = (SELECT device_id FROM device_imeis WHERE imei = ?)"):
        found = db.query(f"{_HOLDER_SELECT} WHERE {where}", [ref])
        if len(found) == 1:
            return found[0]
    return None


def with_serial(db: Database, serial: str) -> list[dict[str, Any]]:
    """The devices (with holders) whose serial is `serial` in any case."""
    return db.query(f"{_HOLDER_SELECT} WHERE {db.dialect.ieq('d.serial')}", [serial])


def with_imei(db: Database, imei: str) -> list[dict[str, Any]]:
    """The device (with holder) that has this IMEI, if any."""
    return db.query(f"{_HOLDER_SELECT} WHERE d.id IN (SELECT device_id FROM device_imeis"
                    " WHERE imei = ?)", [imei])


def held_by(db: Database, officer_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The devices (with holders) these officers hold now."""
    if not officer_ids:
        return []
    among, args = db.dialect.in_("a.officer_id", officer_ids)
    return db.query(f"{_HOLDER_SELECT} WHERE {among}", args)


def with_serials(db: Database, serials: Sequence[str]) -> list[dict[str, Any]]:
    """The devices (with holders) whose serial is one of these, in any case (≤ 500)."""
    if not serials:
        return []
    among, args = db.dialect.iin_values("d.serial", serials)
    return db.query(f"{_HOLDER_SELECT} WHERE {among}", args)


def imei_owners(db: Database, imeis: Sequence[str]) -> dict[str, int]:
    """Which device id has each of these IMEIs (those known; ≤ 500)."""
    if not imeis:
        return {}
    among, args = db.dialect.in_("imei", imeis)
    return dict(db.execute(f"SELECT imei, device_id FROM device_imeis WHERE {among}",
                           args).fetchall())


def with_ids(db: Database, ids: Sequence[int]) -> list[dict[str, Any]]:
    """The devices (with holders) with these ids (≤ 500)."""
    if not ids:
        return []
    among, args = db.dialect.in_("d.id", ids)
    return db.query(f"{_HOLDER_SELECT} WHERE {among}", args)


def selected_with_holders(db: Database, where: str, args: Sequence[Any]
                          ) -> list[dict[str, Any]]:
    """Every selected device with its holder, by serial."""
    return db.query(f"{_HOLDER_SELECT} WHERE {where} ORDER BY d.serial", list(args))


def facts(db: Database, device_id: int) -> dict[str, Any] | None:
    """The device's latest facts as stored (JSON columns still text), or None."""
    found = db.query("SELECT collected_at, os_release, sdk, security_patch, crypto_state,"
                     " packages, dpc_status FROM device_facts WHERE device_id = ?", [device_id])
    return found[0] if found else None


def iter_listing(db: Database, where: str, args: Sequence[Any]) -> Iterator[dict[str, Any]]:
    """The selected devices for `devices list`, by serial, streamed."""
    return db.iter_query(
        "SELECT d.serial, d.imei1, d.manufacturer, d.model, d.order_number, d.status,"
        " d.last_seen, d.applied_policy, o.officer_id AS holder_id,"
        " o.collar_number AS holder_collar, o.forename || ' ' || o.surname AS holder_name,"
        " o.payroll_no AS holder_payroll, o.station AS holder_station,"
        " o.area AS holder_area, a.opened_at AS held_since"
        f" {SELECTED} WHERE {where} ORDER BY d.serial", list(args))


def count_selected(db: Database, where: str, args: Sequence[Any]) -> int:
    """How many devices a selection picks."""
    return int(db.scalar(f"SELECT COUNT(*) {SELECTED} WHERE {where}", list(args)))


def reachable_selected(db: Database, where: str, args: Sequence[Any]) -> list[dict[str, Any]]:
    """The selected devices mdm can reach (a pinned host key or a station), by serial."""
    return db.query(f"SELECT d.* {SELECTED} WHERE {where}"
                    " AND (d.host_key IS NOT NULL OR d.station IS NOT NULL)"
                    " ORDER BY d.serial", list(args))


# -- status --------------------------------------------------------------------------------

def in_status(db: Database, status: str) -> list[dict[str, Any]]:
    """Every device (id, serial, status) in one status."""
    return db.query("SELECT id, serial, status FROM devices WHERE status = ?", [status])


def set_status(db: Database, device_ids: Sequence[int], status: str, at: str) -> None:
    """Move these devices to a status at `at` (inside the caller's transaction)."""
    db.executemany("UPDATE devices SET status = ?, status_changed_at = ? WHERE id = ?",
                   [(status, at, i) for i in device_ids])


# -- one device by serial or id, and its route ----------------------------------------------

def by_serial(db: Database, serial: str) -> dict[str, Any] | None:
    """One device's row by its exact serial, or None."""
    found = db.query("SELECT * FROM devices WHERE serial = ?", [serial])
    return found[0] if found else None


def route_of_serial(db: Database, serial: str) -> dict[str, Any] | None:
    """Serial, status, station and address of one device by its exact serial, or None."""
    found = db.query("SELECT serial, status, station, address FROM devices"
                     " WHERE serial = ?", [serial])
    return found[0] if found else None


def status_of(db: Database, device_id: int) -> str | None:
    """One device's status now."""
    status: str | None = db.scalar("SELECT status FROM devices WHERE id = ?", [device_id])
    return status


def enrolled_via_station(db: Database, device_id: int, station: str, at: str,
                         status: str) -> None:
    """Record a device enrolled at `at` through a station (its status and route)."""
    db.execute("UPDATE devices SET status = ?, status_changed_at = ?, station = ?,"
               " enrolled_at = ? WHERE id = ?", [status, at, station, at, device_id])


def serial_pinning(db: Database, fingerprint: str, other_than: int) -> str | None:
    """The serial of another device that has this host key pinned, if any."""
    serial: str | None = db.scalar("SELECT serial FROM devices WHERE host_key_fingerprint = ?"
                                   " AND id != ?", [fingerprint, other_than])
    return serial


def route_via_station(db: Database, device_id: int, station: str) -> None:
    """Reach a device through a station from now on."""
    db.execute("UPDATE devices SET station = ? WHERE id = ?", [station, device_id])


def route_direct(db: Database, device_id: int, address: str | None, host_key: str | None,
                 fingerprint: str) -> None:
    """Reach a device directly over SSH at `address` with this pinned key from now on."""
    db.execute("UPDATE devices SET station = NULL, address = ?, host_key = ?,"
               " host_key_fingerprint = ? WHERE id = ?",
               [address, host_key, fingerprint, device_id])


def dpc_status(db: Database, device_id: int) -> tuple[str | None, str | None]:
    """The device policy controller's last status (JSON text) and when it was collected."""
    row = db.execute("SELECT dpc_status, collected_at FROM device_facts WHERE device_id = ?",
                     [device_id]).fetchone()
    return (row[0], row[1]) if row else (None, None)


# -- contact: facts, last seen, status ------------------------------------------------------

def save_facts(db: Database, device_id: int, at: str, values: Mapping[str, Any]) -> None:
    """Store a device's latest facts (os_release, sdk, security_patch, crypto_state and the
    JSON texts packages, dpc_status, props, settings, and policy_file_sha256), replacing
    the previous ones."""
    cols = ("os_release", "sdk", "security_patch", "crypto_state", "packages", "dpc_status",
            "props", "settings", "policy_file_sha256")
    db.execute(
        "INSERT INTO device_facts (device_id, collected_at, os_release, sdk, security_patch,"
        " crypto_state, packages, dpc_status, props, settings, policy_file_sha256)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (device_id) DO UPDATE SET collected_at = excluded.collected_at,"
        " os_release = excluded.os_release, sdk = excluded.sdk,"
        " security_patch = excluded.security_patch, crypto_state = excluded.crypto_state,"
        " packages = excluded.packages, dpc_status = excluded.dpc_status,"
        " props = excluded.props, settings = excluded.settings,"
        " policy_file_sha256 = excluded.policy_file_sha256",
        [device_id, at, *(values[c] for c in cols)])


def reached(db: Database, device_id: int, at: str) -> None:
    """Record a good contact with a device at `at` (seen, no error)."""
    db.execute("UPDATE devices SET last_seen = ?, last_contact_at = ?, last_contact_error = NULL"
               " WHERE id = ?", [at, at, device_id])


def not_reached(db: Database, device_id: int, at: str, error: str) -> None:
    """Record a failed contact with a device at `at`, and why."""
    db.execute("UPDATE devices SET last_contact_at = ?, last_contact_error = ? WHERE id = ?",
               [at, error, device_id])
