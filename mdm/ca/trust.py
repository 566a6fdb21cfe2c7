"""What the inventory records of device trust: the CA line devices trust, and per device
what its sshd holds (CA fingerprint, plain keys, revocation list version).

Small and import-light: enrolment, provisioning and the command queue read it.
"""

from __future__ import annotations

import importlib
from typing import Any

from mdm.driver import Trust
from mdm.store.db import Database
from mdm.timeutil import now

# One principal per operator role (mdm.operators ROLES); a device runs each with its role.
PRINCIPALS = ("mdm-admin", "mdm-it", "mdm-rollout", "mdm-helpdesk")


def ca_public_line(db: Database) -> str | None:
    """Return the public line of the inventory's user CA, or None if there is none."""
    if not db.scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ca'"):
        return None
    rows = db.query("SELECT public_line FROM ca ORDER BY rowid DESC LIMIT 1")
    return str(rows[0]["public_line"]) if rows else None


def ca_fingerprint(line: str) -> str:
    """Return the SHA256 fingerprint of a CA public line."""
    from mdm.fleet.keys import fingerprint_of_line

    return fingerprint_of_line(line)


def current_krl(db: Database) -> tuple[int, bytes] | None:
    """Return the current revocation list (version, OpenSSH KRL bytes), or None."""
    try:
        module: Any = importlib.import_module("mdm.ca.krl")
    except ModuleNotFoundError:
        return None
    found = module.current(db)
    return (int(found[0]), bytes(found[1])) if found else None


def record(db: Database, device_id: int, trust: Trust) -> None:
    """Record what a device's sshd trusts now (inside the caller's transaction)."""
    db.execute("INSERT INTO device_trust (device_id, ca_fingerprint, principals, plain_keys,"
               " krl_version, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
               " ON CONFLICT (device_id) DO UPDATE SET ca_fingerprint = excluded.ca_fingerprint,"
               " principals = excluded.principals, plain_keys = excluded.plain_keys,"
               " krl_version = excluded.krl_version, updated_at = excluded.updated_at",
               [device_id, ca_fingerprint(trust.ca) if trust.ca else None,
                " ".join(trust.principals), trust.plain_keys, trust.krl_version, now()])


def held(db: Database) -> dict[int, dict[str, Any]]:
    """Return device id → what the inventory last saw its sshd trust."""
    return {r["device_id"]: r for r in db.query("SELECT * FROM device_trust")}
