"""Who held a device when: the custody history queries, below every feature that shows it.

Devices show their holders and officers the devices they held; custody writes the rows.
The reads live here so that none of those features has to import another to answer.
"""

from __future__ import annotations

from typing import Any

from mdm.store.db import Database

# Every assignment with its device and officer; callers add WHERE and ORDER BY.
HISTORY = (
    "SELECT a.id, d.serial, a.officer_id, o.collar_number, o.forename || ' ' || o.surname AS name,"
    " o.payroll_no, o.station, a.opened_at, a.opened_by, a.open_reason, a.closed_at,"
    " a.closed_by, a.close_reason"
    " FROM assignments a JOIN devices d ON d.id = a.device_id"
    " JOIN officers o ON o.officer_id = a.officer_id")


def device_history(db: Database, device_id: int) -> list[dict[str, Any]]:
    """Every assignment of one device, oldest first."""
    return db.query(f"{HISTORY} WHERE a.device_id = ? ORDER BY a.opened_at, a.id", [device_id])


def officer_history(db: Database, officer_id: str) -> list[dict[str, Any]]:
    """Every device one officer has held, oldest first."""
    return db.query(f"{HISTORY} WHERE a.officer_id = ? ORDER BY a.opened_at, a.id",
                    [officer_id])
