"""What each device's sshd holds of the force's CA, as the inventory last saw it.

Per device: the CA it trusts (by fingerprint), the principals its logins accept, how many
plain keys it still accepts (the enrolment key, until `ca rollout` removes it), and the
version of the revocation list it holds. Written only with what a device answered (the
driver reads its files back), so it never claims more than the device showed.
Small and import-light: enrolment, provisioning and the command queue read it.
"""

from __future__ import annotations

import importlib
from typing import Any

from mdm.ca.trust import ca_public_line
from mdm.driver import Trust
from mdm.store import ca
from mdm.store.db import Database
from mdm.timeutil import now

# One principal per operator role (mdm.operators ROLES); a device runs each with its role.
PRINCIPALS = ("mdm-admin", "mdm-it", "mdm-rollout", "mdm-helpdesk")

__all__ = ["PRINCIPALS", "by_device", "ca_public_line", "current_krl", "fingerprint_of",
           "record"]


def fingerprint_of(line: str) -> str:
    """Return the SHA256 fingerprint of a public key line."""
    from mdm.fleet.keys import fingerprint_of_line

    return fingerprint_of_line(line)


def current_krl(db: Database) -> tuple[int, bytes] | None:
    """Return the current revocation list (version, OpenSSH KRL bytes), or None."""
    try:  # the module that keeps every KRL version
        module: Any = importlib.import_module("mdm.ca.krl")
    except ModuleNotFoundError:
        return None
    found = module.current(db)
    return (int(found[0]), bytes(found[1])) if found else None


def record(db: Database, device_id: int, trust: Trust) -> None:
    """Record what a device's sshd trusts now (inside the caller's transaction)."""
    ca.record_trust(db, device_id, fingerprint_of(trust.ca) if trust.ca else None,
                    " ".join(trust.principals), trust.plain_keys, trust.krl_version, now())


def by_device(db: Database) -> dict[int, dict[str, Any]]:
    """Return device id → what the inventory last saw its sshd trust."""
    return ca.trust_by_device(db)
