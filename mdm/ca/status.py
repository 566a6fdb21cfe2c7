"""Per device: does its sshd trust the inventory's CA, is the plain key gone, which
revocation list does it hold against the current one. Read from the inventory (what each
device last answered), so it touches no device."""

from __future__ import annotations

from typing import Any

from mdm.ca import held as trust
from mdm.store import ca
from mdm.store.db import Database

# Devices mdm has reached and may reach again; a delivered or wiped one trusts nothing yet.
REACHED = ("enrolled", "provisioned", "quarantined", "lost", "stolen", "in_repair")
COLUMNS = ["serial", "status", "ca_trusted", "plain_keys", "krl_version", "krl_current",
           "krl_up_to_date", "updated_at"]


def status(db: Database, selectors: list[str]) -> list[dict[str, Any]]:
    """Return each selected enrolled (or since lost, quarantined…) device's trust as last
    seen, against the inventory's CA and revocation list."""
    from mdm.devices import selector

    line = trust.ca_public_line(db)
    wanted = trust.fingerprint_of(line) if line else None
    current = trust.current_krl(db)
    latest = current[0] if current else None
    where, args = selector.select(db, selectors, REACHED)
    held = trust.by_device(db)
    out = []
    for row in ca.selected_status(db, where, args):
        h = held.get(row["id"], {})
        version = h.get("krl_version")
        out.append({"serial": row["serial"], "status": row["status"],
                    "ca_trusted": wanted is not None and h.get("ca_fingerprint") == wanted,
                    "ca_fingerprint": h.get("ca_fingerprint"), "plain_keys": h.get("plain_keys"),
                    "krl_version": version, "krl_current": latest,
                    "krl_up_to_date": latest is None or version == latest,
                    "updated_at": h.get("updated_at")})
    return out
