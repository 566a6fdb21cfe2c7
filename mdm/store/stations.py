"""The provisioning-station queries: the registered stations and what each routes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mdm.store.db import Database

_COLUMNS = ("name", "address", "host_key", "host_key_fingerprint", "concurrency", "added_at",
            "added_by")


def get(db: Database, name: str) -> dict[str, Any] | None:
    """One registered station's row, or None."""
    rows = db.query("SELECT * FROM stations WHERE name = ?", [name])
    return rows[0] if rows else None


def names(db: Database) -> list[str]:
    """The names of every registered station, sorted."""
    return [r["name"] for r in db.query("SELECT name FROM stations ORDER BY name")]


def every(db: Database) -> list[dict[str, Any]]:
    """Every registered station's row."""
    return db.query("SELECT * FROM stations")


def others(db: Database, name: str) -> list[dict[str, Any]]:
    """Every registered station but one, by name."""
    return db.query("SELECT * FROM stations WHERE name != ? ORDER BY name", [name])


def insert(db: Database, row: Mapping[str, Any]) -> None:
    """Register a station (a row with every column)."""
    db.execute(f"INSERT INTO stations ({', '.join(_COLUMNS)})"
               f" VALUES ({', '.join('?' * len(_COLUMNS))})", [row[k] for k in _COLUMNS])


def delete(db: Database, name: str) -> None:
    """Forget a station."""
    db.execute("DELETE FROM stations WHERE name = ?", [name])


def with_device_counts(db: Database) -> list[dict[str, Any]]:
    """Every station, with how many devices are routed through it, by name."""
    return db.query("SELECT s.name, s.address, s.host_key_fingerprint AS host_key,"
                    " s.concurrency, s.added_at, s.added_by,"
                    " (SELECT count(*) FROM devices d WHERE d.station = s.name) AS devices"
                    " FROM stations s ORDER BY s.name")


def routed_serials(db: Database, name: str) -> list[str]:
    """The serials of the devices routed through one station, sorted."""
    return [r["serial"] for r in db.query(
        "SELECT serial FROM devices WHERE station = ? ORDER BY serial", [name])]
