"""What waits in the command queue for one device: the read `devices show` needs.

The queue feature (mdm/queue) writes commands; this read lives here so that showing a
device does not import it.
"""

from __future__ import annotations

from typing import Any

from mdm.store.db import Database


def live_commands(db: Database, device_id: int) -> list[dict[str, Any]]:
    """Return the device's queued and sent commands, oldest first."""
    return db.query("SELECT id, kind, state, created_at, requested_by, not_before, expires_at,"
                    " attempts, last_answer, needs_approval, approved_by, held_reason,"
                    " released_by, incident_id FROM commands WHERE device_id = ? AND state IN"
                    " ('queued', 'sent') ORDER BY created_at", [device_id])
