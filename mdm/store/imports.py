"""Which file an import already read: the audit rows' sha256, looked up by action.

Only reads the audit log (mdm.store.audit writes it).
"""

from __future__ import annotations

from typing import Any

from mdm.store.db import Database


def last_with_sha256(db: Database, action: str, sha256: str) -> tuple[Any, str, str] | None:
    """(seq, at, operator) of the newest audit row of `action` whose `after` records this
    sha256, or None."""
    row = db.execute(
        "SELECT seq, at, operator FROM audit WHERE action = ? AND"
        f" {db.dialect.json_text('after', 'sha256')} = ? ORDER BY seq DESC LIMIT 1",
        [action, sha256]).fetchone()
    return (row[0], row[1], row[2]) if row else None
