"""Copy an inventory from one backend to another, for an admin of the source.

A force that grows from one control machine to several sites moves its embedded SQLite
inventory to PostgreSQL (and back, to hand one file over). The store does the copy and
proves it (mdm/store/transfer.py); this checks who may ask for it.
"""

from __future__ import annotations

from typing import Any

from mdm.operators import roles
from mdm.store import resolve_path
from mdm.store.db import Database


def copy_inventory(source: str, target: str, operator: str, *, replace: bool = False,
                   wait: float = 30.0) -> dict[str, Any]:
    """Copy the inventory SOURCE to TARGET (a file or a postgresql:// URL), proven exact."""
    from mdm.store import transfer

    def authorise(db: Database) -> None:
        roles.require(db, operator, "inventory.copy")

    return transfer.copy(resolve_path(source), resolve_path(target), replace=replace,
                         wait=wait, authorise=authorise)
