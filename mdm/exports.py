"""Exports of personal data: the audit log records every export that happened, and no other.

An export is a disclosure (names, payroll and collar numbers, who holds which device), so
each one is recorded in the audit log. To a file, the order matters: the file is written
beside its target and fsynced, then, inside the transaction that records the
disclosure, renamed into place; if the record cannot be committed the file is removed.
A bad path, a full disk or a refused role therefore leaves neither a file nor a record.
To stdout the record comes first, since nothing can take back what reached a terminal.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mdm import safefile
from mdm.errors import ExitCode, MdmError
from mdm.operators import roles
from mdm.store import audit, transaction
from mdm.store.db import Database


def deliver(db: Database, operator: str, action: str, subject: str, detail: dict[str, Any],
            body: str, output: Path | None, force: bool = False,
            emit: Callable[[str], None] | None = None) -> None:
    """Record an export as a disclosure (`action` is also the permission it needs).

    To stdout, `emit` writes the body inside the transaction that records it: a write that
    fails (a closed pipe, a full disk) rolls the record back, so only what was delivered is
    recorded as disclosed.
    """
    if output is None:
        with transaction(db):
            roles.require(db, operator, action)
            audit.record(db, operator, action, subject, None, {**detail, "to": "stdout"})
            if emit is not None:
                try:
                    emit(body)
                except OSError as exc:
                    raise MdmError(f"could not write the export to standard output"
                                   f" ({exc.strerror or exc}); no disclosure was recorded",
                                   "check where the output goes (a full disk, a closed pipe),"
                                   " or write it to a file with -o FILE",
                                   ExitCode.PARTIAL) from None
        return
    roles.require(db, operator, action)  # refuse a role before anything touches the disk
    with safefile.staged(output, body.encode("utf-8"), force) as place:
        with transaction(db):
            roles.require(db, operator, action)
            place()
            audit.record(db, operator, action, subject, None,
                         {**detail, "to": os.path.abspath(output)})
