"""Has this exact file been imported before? The audit log knows, by the file's sha256.

Every import records the sha256 of the bytes it read. Importing the same bytes again
changes nothing by definition, so it is answered in one line — when, and by whom —
instead of re-checking every row (a delivery manifest would otherwise fail with two
"already in the inventory" lines per device).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mdm.store import imports
from mdm.store.db import Database


def already_imported(db: Database, action: str, path: Path,
                     sha256: str) -> dict[str, Any] | None:
    """Return the import result for a file already imported by `action`, or None."""
    row = imports.last_with_sha256(db, action, sha256)
    if row is None:
        return None
    seq, at, operator = row
    message = (f"{path.name} was already imported on {at} by {operator} (same sha256"
               f" {sha256[:12]}…, audit row {seq}); nothing changed")
    return {"file": path.name, "sha256": sha256,
            "already_imported": {"at": at, "operator": operator, "audit_seq": seq,
                                 "message": message}}
