"""Register operators; the first operator of a new inventory becomes admin."""

from __future__ import annotations

import re
from typing import Any

from mdm.errors import InputError, NotFound
from mdm.operators import roles
from mdm.store import audit, ca, operators, transaction
from mdm.store.db import Database
from mdm.timeutil import now

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def add(db: Database, operator: str, name: str, role: str) -> dict[str, Any]:
    """Register an operator with a role (admin only, except for the very first)."""
    roles.check_role_name(role)
    if not _NAME.match(name):
        raise InputError(f"operator name {name!r} is not allowed",
                         "use letters, digits and . _ @ - (up to 64 characters)")
    with transaction(db):
        first = not operators.any_registered(db)
        if first:
            role = "admin"
        else:
            roles.require(db, operator, "operators.add")
        if operators.exists(db, name):
            raise InputError(f"operator {name!r} already exists", "choose another name")
        at = now()
        operators.insert(db, name, role, at, operator)
        row = {"name": name, "role": role, "active": 1, "created_at": at, "created_by": operator}
        audit.record(db, operator, "operators.add", f"operator:{name}", None,
                     {"role": role, "first_operator": first})
    return {**row, "active": True, "first_operator": first}


def remove(db: Database, operator: str, name: str, reason: str) -> dict[str, Any]:
    """Deactivate an operator (admin only): no more commands, no more certificates."""
    if not reason.strip():
        raise InputError("removing an operator needs a reason",
                         "give --reason \"…\" (it is audited)")
    with transaction(db):
        roles.require(db, operator, "operators.remove")
        row = operators.role_and_active(db, name)
        if row is None:
            raise NotFound(f"no operator {name!r}", "list them with: mdm operators list")
        if not row[1]:
            raise InputError(f"operator {name!r} was already removed",
                             "see: mdm operators list")
        if row[0] == "admin" and operators.active_admins(db) <= 1:
            raise InputError(f"{name!r} is the last admin of this inventory",
                             "add another admin first: mdm operators add NAME --role admin")
        operators.deactivate(db, name)
        # Certificates still valid are listed so the admin can revoke them at once.
        live = ca.unexpired_serials(db, name, now())
        audit.record(db, operator, "operators.remove", f"operator:{name}",
                     {"role": row[0], "active": True},
                     {"active": False, "reason": reason})
    return {"name": name, "role": row[0], "active": False, "reason": reason,
            "unexpired_certificates": live}


def list_all(db: Database) -> list[dict[str, Any]]:
    """List every operator with their role."""
    return [{**r, "active": bool(r["active"])}
            for r in operators.every(db)]
