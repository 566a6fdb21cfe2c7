"""State proofs: the audit log vouches for the rows that matter as evidence.

A hash chain proves the log unbroken, but not that the inventory still says what the log
says it did: custody rows, a device's status and pinned host key, an operator's role can
be edited with any SQLite tool without touching the log. So every change to an
evidential row is sealed into the audit row of its own transaction:

- triggers (migration m008) note the (table, key) of each inserted, updated or deleted
  evidential row in `audit_pending`, inside the writer's transaction;
- `seal()`, called by `audit.record`, hashes each noted row's evidential columns into
  `audit_state (seq, tbl, key, row_hash)` (a deleted row gets a NULL hash), and returns a
  digest of those rows that the audit row's own hash covers; then it empties the scratch
  table. One import of 50,000 devices makes 50,000 small state rows, not one huge row;
- `store.transaction()` refuses to commit while `audit_pending` holds anything, so a
  change made through mdm without its audit row can't be committed at all;
- `audit.verify` recomputes every current evidential row's hash and compares it with the
  newest hash recorded for its key.

The column lists below are part of the proof: adding one changes every row's hash, so a
later migration that adds one must re-seal every row (as m008 seals the rows it found).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from mdm.errors import MdmError
from mdm.store.db import Database

# table -> (primary key, evidential columns in hashing order). Contact times, facts and
# the last applied policy change on every refresh and are recorded elsewhere.
EVIDENCE: dict[str, tuple[str, tuple[str, ...]]] = {
    "operators": ("name", ("name", "role", "active", "created_at", "created_by")),
    "devices": ("id", ("id", "serial", "imei1", "imei2", "manufacturer", "model",
                       "marketing_name", "order_number", "status", "status_changed_at",
                       "supplier", "created_at", "address", "host_key",
                       "host_key_fingerprint", "enrolled_at")),
    "assignments": ("id", ("id", "device_id", "officer_id", "opened_at", "opened_by",
                           "open_reason", "closed_at", "closed_by", "close_reason")),
}


def _plain(value: Any) -> Any:
    """Make a column value JSON-safe without losing its type (a BLOB is not its text)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"blob": bytes(value).hex()}
    return value


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                      default=_plain).encode()


def row_hash(table: str, values: Sequence[Any]) -> bytes:
    """Return the sha256 of one row's evidential columns (its key among them)."""
    return hashlib.sha256(_dumps([table, [_plain(v) for v in values]])).digest()


def state_line(table: Any, key: Any, digest: Any) -> bytes:
    """Encode one state row for the digest an audit row carries."""
    shown = bytes(digest).hex() if isinstance(digest, bytes | bytearray | memoryview) else digest
    return _dumps([_plain(table), _plain(key), _plain(shown)]) + b"\n"


def state_digest(lines: Iterable[bytes]) -> tuple[int, str]:
    """Return (count, sha256) over a set of encoded state rows, in a fixed order."""
    ordered = sorted(lines)
    return len(ordered), hashlib.sha256(b"".join(ordered)).hexdigest()


def seal(db: Database, seq: int) -> str | None:
    """Record the hash of every evidential row changed in this transaction under `seq`.

    Return "COUNT:SHA256" of the recorded rows for the audit row to carry, or None when
    the transaction changed no evidential row.
    """
    pending = db.execute("SELECT tbl, key FROM audit_pending").fetchall()
    if not pending:
        return None
    keys: dict[str, list[Any]] = {}
    for table, key in pending:
        keys.setdefault(table, []).append(key)
    recorded: list[tuple[int, str, Any, bytes | None]] = []
    for table, wanted in keys.items():
        if table not in EVIDENCE:
            raise RuntimeError(f"audit_pending names an unknown table {table!r}")
        pk, cols = EVIDENCE[table]
        found = {}
        sql = (f"SELECT {', '.join(cols)} FROM {table} WHERE {pk} IN"
               f" (SELECT key FROM audit_pending WHERE tbl = ?)")
        index = cols.index(pk)
        for values in db.execute(sql, [table]):
            found[values[index]] = row_hash(table, values)
        recorded += [(seq, table, key, found.get(key)) for key in wanted]
    db.executemany("INSERT INTO audit_state (seq, tbl, key, row_hash) VALUES (?, ?, ?, ?)",
                   recorded)
    db.execute("DELETE FROM audit_pending")
    count, digest = state_digest(state_line(t, k, h) for _, t, k, h in recorded)
    return f"{count}:{digest}"


def unsealed(db: Database) -> list[tuple[str, Any]]:
    """Return evidential rows changed in this transaction that no audit row has sealed."""
    return [(t, k) for t, k in db.execute("SELECT tbl, key FROM audit_pending LIMIT 5")]


def current_rows(db: Database, table: str) -> Iterable[tuple[Any, bytes]]:
    """Yield (key, hash) for every row of an evidential table, in key order."""
    pk, cols = EVIDENCE[table]
    index = cols.index(pk)
    for values in db.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY {pk}"):
        yield values[index], row_hash(table, values)


def describe(db: Database, table: str, key: Any) -> str:
    """Name an evidential row the way an operator knows it (a serial, not only an id)."""
    shown = key if isinstance(key, int | str) else repr(key)
    try:
        if table == "devices":
            serial = db.scalar("SELECT serial FROM devices WHERE id = ?", [key])
            return f"{serial} (id {shown})" if serial else f"id {shown}"
        if table == "assignments":
            row = db.execute("SELECT d.serial, a.officer_id FROM assignments a LEFT JOIN"
                             " devices d ON d.id = a.device_id WHERE a.id = ?",
                             [key]).fetchone()
            if row:
                return f"{shown} (device {row[0]}, officer {row[1]})"
    except (sqlite3.Error, MdmError):  # a label must never hide the finding it labels
        pass
    return f"{shown}"
