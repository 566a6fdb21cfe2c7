"""What the inventory says devices should trust: the CA's public line, read in one place.

Enrolment, provisioning and the local certificate check all ask this, so a command that
only needs the line does not import the signing code.
"""

from __future__ import annotations

from mdm.store import ca
from mdm.store.db import Database


def ca_public_line(db: Database) -> str | None:
    """Return the inventory's CA public key line (`ssh-ed25519 AAAA… comment`), or None."""
    return ca.public_line(db)


def ca_fingerprint(db: Database) -> str | None:
    """Return the SHA256 fingerprint of the inventory's CA key, or None if there is none."""
    return ca.fingerprint(db)
