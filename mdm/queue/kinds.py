"""The kinds of queued command: a registry, so a new kind needs no migration.

Data only (imported by the project settings' checks): each kind's default expiry, its
order within one device's session, and whether it follows the device's holder. How each
kind is delivered and recorded lives in `deliver.py`, which `register` fills in.
"""

from __future__ import annotations

from dataclasses import dataclass

DAY = 86400


@dataclass(frozen=True)
class Kind:
    name: str
    expiry: int  # seconds a queued command may wait before it expires (mdm.toml overrides)
    order: int  # delivery order within one device's session: lower first
    about: str


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Add a command kind (another feature may add its own, such as app installs)."""
    KINDS[kind.name] = kind
    return kind


LOCK = register(Kind("lock", 7 * DAY, 0, "lock the screen (the DPC's lock action)"))
WIPE = register(Kind("wipe", 30 * DAY, 9, "factory-reset the device (the DPC's wipe action)"))
POLICY = register(Kind("policy", 30 * DAY, 5, "push the policy due to the device's holder"))
CA_TRUST = register(Kind("ca-trust", 30 * DAY, 1,
                         "trust the force's user CA (its sshd: CA key and principals)"))
KRL = register(Kind("krl", 30 * DAY, 2, "install the current SSH key revocation list"))
