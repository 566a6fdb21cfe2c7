"""The audit log: append-only, hash-chained, written inside the caller's transaction.

Each row's hash covers the previous row's hash and the row's own canonical JSON, so any
edit, deletion or reordering breaks every later link. Triggers refuse UPDATE and DELETE
through SQLite. A chain kept in the same file can still be rebuilt by someone who can
write the file, which is why `checkpoint()` exports the head for keeping elsewhere.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from mdm.store.db import Database
from mdm.timeutil import now

GENESIS = "0" * 64


def _canonical(row: dict[str, Any]) -> bytes:
    fields = {k: row[k] for k in ("seq", "at", "operator", "action", "subject", "before",
                                  "after")}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def row_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """Return the chain hash of one audit row given the previous row's hash."""
    return hashlib.sha256(prev_hash.encode() + b"\n" + _canonical(row)).hexdigest()


def _json(value: object) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def record(db: Database, operator: str, action: str, subject: str,
           before: object = None, after: object = None) -> int:
    """Append one audit row; call inside the transaction that makes the change."""
    assert db.conn.in_transaction, "audit.record must run inside store.transaction()"
    head = db.execute("SELECT seq, hash, at FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev, last_at = (head[0] + 1, head[1], head[2]) if head else (1, GENESIS, "")
    at = max(now(), last_at)  # never go backwards, even if the clock does
    row = {"seq": seq, "at": at, "operator": operator, "action": action, "subject": subject,
           "before": _json(before), "after": _json(after)}
    row["prev_hash"] = prev
    row["hash"] = row_hash(prev, row)
    db.execute(
        "INSERT INTO audit (seq, at, operator, action, subject, before, after, prev_hash, hash)"
        " VALUES (:seq, :at, :operator, :action, :subject, :before, :after, :prev_hash, :hash)",
        row,
    )
    return seq


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    rows: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "rows": self.rows, "head": f"{self.head_seq}:{self.head_hash}",
                "first_bad_seq": self.first_bad_seq, "reason": self.reason}


def _link_problem(row: dict[str, Any], prev: str, expected_seq: int, last_at: str) -> str:
    """Say why a row does not continue the chain, or return '' if it does."""
    if row["seq"] != expected_seq:
        return (f"expected row {expected_seq} here, found row {row['seq']}"
                " (a row was deleted, inserted or moved)")
    if row["prev_hash"] != prev:
        return "its link to the previous row does not match"
    if row_hash(prev, row) != row["hash"]:
        return "its contents do not match its hash (the row was altered)"
    if row["at"] < last_at:
        return "its time is earlier than the row before it"
    return ""


def verify(db: Database, checkpoint: tuple[int, str] | None = None) -> VerifyResult:
    """Recompute the chain from the first row; name the first row that does not fit."""
    prev, expected_seq, last_at, count = GENESIS, 1, "", 0
    seen: dict[int, str] = {}
    cursor = db.execute("SELECT seq, at, operator, action, subject, before, after, prev_hash,"
                        " hash FROM audit ORDER BY rowid")
    cols = [c[0] for c in cursor.description]
    for values in cursor:
        row = dict(zip(cols, values, strict=True))
        count += 1
        seq = row["seq"]
        problem = _link_problem(row, prev, expected_seq, last_at)
        if problem:
            bad_seq = expected_seq if seq != expected_seq else seq
            return VerifyResult(False, count, seq, row["hash"], bad_seq, problem)
        seen[seq] = row["hash"]
        prev, expected_seq, last_at = row["hash"], seq + 1, row["at"]
    head_seq = expected_seq - 1
    if checkpoint is not None:
        cp_seq, cp_hash = checkpoint
        if cp_seq not in seen:
            return VerifyResult(False, count, head_seq, prev, cp_seq,
                                f"checkpoint row {cp_seq} is missing (the log was truncated)")
        if seen[cp_seq] != cp_hash:
            return VerifyResult(False, count, head_seq, prev, cp_seq,
                                "the chain up to the checkpoint has changed since it was taken"
                                " (the log was rebuilt)")
    return VerifyResult(True, count, head_seq, prev)


def head(db: Database) -> tuple[int, str]:
    """Return the newest row's sequence number and hash (0 and the genesis hash if empty)."""
    row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else (0, GENESIS)
