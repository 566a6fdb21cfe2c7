"""The enrolment queries: a delivery manifest's devices checked and written whole, the
devices that hold an address or a pinned key, and a device's pin recorded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mdm.store.db import Database

_BATCH = 5000  # rows per statement when a delivery is written
_DEVICE_COLUMNS = ("id", "serial", "imei1", "imei2", "manufacturer", "model", "marketing_name",
                   "order_number", "status", "status_changed_at", "supplier", "created_at")


def serials(db: Database) -> set[str]:
    """Every serial in the inventory."""
    return {r[0] for r in db.execute("SELECT serial FROM devices").fetchall()}


def imei_holders(db: Database) -> dict[str, str]:
    """Every recorded IMEI, with the serial of the device it belongs to."""
    return {str(r[0]): str(r[1]) for r in db.execute(
        "SELECT di.imei, d.serial FROM device_imeis di"
        " JOIN devices d ON d.id = di.device_id").fetchall()}


def next_device_id(db: Database) -> int:
    """The id the next device written takes (one more than the highest): a delivery's
    devices are written with their ids, so their IMEIs go in the same batch."""
    return int(db.execute("SELECT COALESCE(MAX(id), 0) FROM devices").fetchone()[0]) + 1


def insert_delivered(db: Database, devices: Sequence[tuple[Any, ...]],
                     imeis: Sequence[tuple[str, int]],
                     advance: Any = None) -> None:
    """Write a delivery: devices as (id, serial, imei1, imei2, manufacturer, model,
    marketing_name, order_number, status, status_changed_at, supplier, created_at), then
    their IMEIs as (imei, device_id); `advance(n)` is told after each batch. (On
    PostgreSQL each batch is one COPY: an INSERT per row cost psycopg ~50 µs of Python.)"""
    for start in range(0, len(devices), _BATCH):
        batch = devices[start:start + _BATCH]
        db.copy_rows("devices", _DEVICE_COLUMNS, batch)
        if advance:
            advance(len(batch))
    db.copy_rows("device_imeis", ("imei", "device_id"), imeis)


def bound(db: Database, retired: str) -> list[dict[str, Any]]:
    """Every device not `retired` that holds an address or a pinned host key."""
    return db.query("SELECT id, serial, status, address, host_key_fingerprint"
                    " FROM devices WHERE status != ? AND (address IS NOT NULL"
                    " OR host_key_fingerprint IS NOT NULL)", [retired])


def serial_in_other_case(db: Database, serial: str) -> str | None:
    """A serial that equals `serial` but for case (the NOCASE index on SQLite), or None."""
    near: str | None = db.scalar(
        f"SELECT serial FROM devices WHERE {db.dialect.ieq('serial')} LIMIT 1", [serial])
    return near


def pin(db: Database, device_id: int, status: str, at: str, address: str, host_key: str,
        fingerprint: str) -> None:
    """Record a device enrolled at `at`: its status, address and pinned host key."""
    db.execute("UPDATE devices SET status = ?, status_changed_at = ?, address = ?,"
               " host_key = ?, host_key_fingerprint = ?, enrolled_at = ?"
               " WHERE id = ?", [status, at, address, host_key, fingerprint, at, device_id])
