"""Read, verify and checkpoint the hash-chained audit log."""

from __future__ import annotations

import json
import re
from typing import Any

from mdm.errors import ExitCode, InputError, MdmError
from mdm.store import audit
from mdm.store.db import Database

_CHECKPOINT = re.compile(r"^(\d+):([0-9a-f]{64})$")


def log(db: Database, subject: str | None, limit: int | None) -> list[dict[str, Any]]:
    """Return audit rows, oldest first, optionally for one subject (e.g. device:SERIAL)."""
    clauses, args = [], []
    if subject:  # "R58F…" matches "device:R58F…"; "device:R58F…" matches itself
        clauses.append("(subject = ? OR substr(subject, instr(subject, ':') + 1) = ?)")
        args += [subject, subject]
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    sql = f"SELECT * FROM audit {where} ORDER BY seq"
    if limit:
        sql = f"SELECT * FROM ({sql} DESC LIMIT {int(limit)}) ORDER BY seq"
    rows = db.query(sql, args)
    for r in rows:
        for k in ("before", "after"):
            r[k] = json.loads(r[k]) if r[k] else None
    return rows


def parse_checkpoint(text: str) -> tuple[int, str]:
    """Parse SEQ:HASH as printed by `mdm audit checkpoint`."""
    match = _CHECKPOINT.match(text.strip())
    if not match:
        raise InputError(f"--checkpoint {text!r} is not SEQ:HASH",
                         "use the value printed by `mdm audit checkpoint`, e.g. 42:3fa9…")
    return int(match.group(1)), match.group(2)


def verify(db: Database, checkpoint: str | None) -> dict[str, Any]:
    """Prove the chain unbroken (and unchanged up to a checkpoint), or name the first bad row."""
    cp = parse_checkpoint(checkpoint) if checkpoint else None
    result = audit.verify(db, cp)
    if not result.ok:
        raise ChainBroken(result.as_dict())
    return result.as_dict()


class ChainBroken(MdmError):
    """The audit chain does not verify: exit 1 and say where."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(f"the audit chain is broken at row {result['first_bad_seq']}:"
                         f" {result['reason']}",
                         "treat the inventory as tampered with; compare with a backup and"
                         " your recorded checkpoints", ExitCode.PARTIAL)
        self.result = result


def checkpoint(db: Database) -> dict[str, Any]:
    """Return the head of the chain, to record outside the inventory."""
    seq, digest = audit.head(db)
    row = db.execute("SELECT at FROM audit WHERE seq = ?", [seq]).fetchone()
    return {"checkpoint": f"{seq}:{digest}", "seq": seq, "hash": digest,
            "at": row[0] if row else None}
