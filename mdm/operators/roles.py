"""Which roles may run which command: one table, checked inside each write.

A project's `mdm.toml` may replace the roles of any action (`[roles]`, see mdm/config.py).

This is accountability on a shared inventory (every change names a registered operator
with a role fit for it), not a security boundary: anyone who can write the inventory
file can change it. The audit chain and its external checkpoints are what detect that.
On devices the boundary is the certificate (mdm/ca): its principal is the role, and the
device enforces what each principal may do.
"""

from __future__ import annotations

from mdm.errors import InputError, PermissionDenied
from mdm.operators.permissions import PERMISSIONS, ROLES
from mdm.store import operators
from mdm.store.db import Database

__all__ = ["PERMISSIONS", "ROLES", "check_role_name", "require", "role_of"]

def role_of(db: Database, operator: str) -> str | None:
    """Return the operator's role, or None if the operator is not registered and active."""
    return operators.active_role(db, operator)


def require(db: Database, operator: str, action: str) -> str:
    """Refuse the action unless the operator is registered with a role that may run it."""
    from mdm import config  # the project's [roles] rules, if any, replace the table's

    allowed = frozenset(config.load().roles.get(action, PERMISSIONS[action]))
    role = role_of(db, operator)
    if role is None:
        if not operators.any_registered(db):
            raise PermissionDenied(
                "this inventory has no operators yet",
                f"register yourself first: mdm operators add {operator}"
                " (the first operator becomes admin)")
        raise PermissionDenied(
            f"operator {operator!r} is not registered in this inventory",
            f"ask an admin to run: mdm operators add {operator} --role ROLE"
            " (or pass --operator / set MDM_OPERATOR)")
    if role not in allowed:
        needs = " or ".join(sorted(allowed))
        raise PermissionDenied(f"{action} needs the {needs} role; {operator!r} is {role}",
                               "ask an admin, or an operator with that role, to run it")
    return role


def check_role_name(role: str) -> str:
    """Validate a role name given on the command line."""
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}", "use one of: " + ", ".join(ROLES))
    return role
