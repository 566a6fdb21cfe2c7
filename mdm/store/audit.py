"""The audit log: append-only, hash-chained, written inside the caller's transaction.

Each row's hash covers the previous row's hash and the row's own canonical JSON, so any
edit, deletion or reordering breaks every later link. Each row also carries the digest
of the state proofs it sealed (`evidence.seal`): the hashes of the custody, device and
operator rows its transaction changed, so `verify` can prove the inventory still says
what the log says. Triggers refuse UPDATE and DELETE (through SQLite, or PostgreSQL, where TRUNCATE
too), and the same code reads and verifies the chain on either backend. Someone who can
write the file and re-runs this code can still rebuild it all, which is why checkpoints
of the head are kept elsewhere (and can be signed: mdm/audit/signing.py).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import mdm.store.evidence as evidence
from mdm.store.db import Database, Rows
from mdm.store.failures import StoreError
from mdm.timeutil import now

GENESIS = "0" * 64
_TEXT = ("at", "operator", "action", "subject", "prev_hash", "hash")
_OPTIONAL_TEXT = ("before", "after", "state")
# The tables and safeguard triggers every inventory at this schema has.
TABLES = ("audit", "audit_state", "audit_pending", "audit_head")
SAFEGUARDS = ("audit_no_update", "audit_no_delete", "audit_state_no_update",
              "audit_state_no_delete", "assignments_close_only", "assignments_no_delete",
              *(f"{t}_evidence_{op}" for t in evidence.EVIDENCE
                for op in ("insert", "update", "delete")
                if not (op == "insert" and t in evidence.APPENDED)))


def _canonical(row: dict[str, Any]) -> bytes:
    fields = {k: row[k] for k in ("seq", "at", "operator", "action", "subject", "before",
                                  "after")}
    if row.get("state") is not None:  # rows from before state proofs have none
        fields["state"] = row["state"]
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


# Audit rows on PostgreSQL: those a transaction appends one after another (with only other
# kinds of rows deferred between them, such as a push's device writes) go in one statement,
# and the head follows the last of them.
_COLUMNS = ("seq", "at", "operator", "action", "subject", "before", "after", "prev_hash",
            "hash", "state")
ROWS = Rows(f"WITH a AS (INSERT INTO audit ({', '.join(_COLUMNS)}) SELECT * FROM"
            f" unnest(?::bigint[], {', '.join(['?::text[]'] * (len(_COLUMNS) - 1))})"
            " RETURNING seq, hash) INSERT INTO audit_head (id, seq, hash)"
            " SELECT 1, seq, hash FROM a ORDER BY seq DESC LIMIT 1 ON CONFLICT (id)"
            " DO UPDATE SET seq = excluded.seq, hash = excluded.hash", key=0)


def record(db: Database, operator: str, action: str, subject: str,
           before: object = None, after: object = None) -> int:
    """Append one audit row; call inside the transaction that makes the change."""
    assert db.in_transaction, "audit.record must run inside store.transaction()"
    read: tuple[Any, Any] | None = None
    if db.dialect.name == "postgresql":
        known, head = evidence.known_head(db)  # if nothing evidential changed since
        if known:
            read = evidence.unchanged(db)
        else:  # the head and the changes in one round trip
            head, *changes = evidence.chain_head_and_changes(db)
            read = (changes[0], changes[1])
    else:
        head = db.execute("SELECT seq, hash, at FROM audit ORDER BY seq DESC LIMIT 1"
                          ).fetchone()
    seq, prev, last_at = (head[0] + 1, head[1], head[2]) if head else (1, GENESIS, "")
    at = max(now(), last_at)  # never go backwards, even if the clock does
    row = {"seq": seq, "at": at, "operator": operator, "action": action, "subject": subject,
           "before": _json(before), "after": _json(after),
           "state": evidence.seal(db, seq, read)}
    row["prev_hash"] = prev
    row["hash"] = row_hash(prev, row)
    if db.dialect.name == "postgresql":  # sent with the next statement (ROWS)
        db.defer_rows(ROWS, [row[c] for c in _COLUMNS], evidential=False)
        evidence.sealed(db, (seq, row["hash"], at))
        return seq
    db.execute("INSERT INTO audit (seq, at, operator, action, subject, before, after,"
               " prev_hash, hash, state) VALUES (:seq, :at, :operator, :action, :subject,"
               " :before, :after, :prev_hash, :hash, :state)", row)
    db.execute("INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) ON CONFLICT (id)"
               " DO UPDATE SET seq = excluded.seq, hash = excluded.hash", [seq, row["hash"]])
    return seq


@dataclass(frozen=True)
class StateFinding:
    """The first evidential row that the log does not vouch for."""

    table: str
    key: Any
    label: str
    reason: str
    seq: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "key": self.key, "label": self.label,
                "reason": self.reason, "seq": self.seq}


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    rows: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    reason: str = ""
    state_rows: int = 0  # evidential rows proved against the log
    state: StateFinding | None = None
    state_problems: int = 0
    safeguards_missing: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "rows": self.rows, "head": f"{self.head_seq}:{self.head_hash}",
                "first_bad_seq": self.first_bad_seq, "reason": self.reason,
                "state_rows": self.state_rows,
                "state_mismatch": self.state.as_dict() if self.state else None,
                "state_problems": self.state_problems,
                "safeguards_missing": self.safeguards_missing}


def _type_problem(row: dict[str, Any]) -> str:
    for col in _TEXT + _OPTIONAL_TEXT:
        value = row[col]
        if not isinstance(value, str) and not (value is None and col in _OPTIONAL_TEXT):
            kind = "a BLOB" if isinstance(value, bytes) else f"a {type(value).__name__}"
            return f"its {col} holds {kind} where text belongs (the row was altered)"
    return ""


def _link_problem(row: dict[str, Any], prev: str, expected_seq: int, last_at: str) -> str:
    """Say why a row does not continue the chain, or return '' if it does."""
    if row["seq"] != expected_seq:
        return (f"expected row {expected_seq} here, found row {row['seq']}"
                " (a row was deleted, inserted or moved)")
    problem = _type_problem(row)
    if problem:
        return problem
    if row["prev_hash"] != prev:
        return "its link to the previous row does not match"
    if row_hash(prev, row) != row["hash"]:
        return "its contents do not match its hash (the row was altered)"
    if row["at"] < last_at:
        return "its time is earlier than the row before it"
    return ""


def _state_problem(row: dict[str, Any], lines: list[bytes]) -> str:
    """Say why the state proofs stored for a row don't match the digest it carries."""
    if row["state"] is None:
        return ("state proofs were added for it (audit_state was altered)" if lines else "")
    if not lines:
        return "its state proofs are missing (audit_state was altered)"
    count, digest = evidence.state_digest(lines)
    if row["state"] != f"{count}:{digest}":
        return "its state proofs do not match what it recorded (audit_state was altered)"
    return ""


class _Verifier:
    """One pass over the log and its state proofs, then over the evidential tables."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.rows = 0
        self.expected_seq = 1
        self.head_seq, self.head_hash = 0, GENESIS
        self.bad: tuple[int, str] | None = None  # (first bad seq, reason)
        self.latest: dict[tuple[Any, Any], tuple[int, Any]] = {}
        self.findings: list[StateFinding] = []
        self.found: set[tuple[Any, Any]] = set()
        self.problems = 0
        self.proved = 0
        self.reading = "the log"  # what was being read, should the file turn out damaged

    def broken(self, seq: int, reason: str) -> None:
        if self.bad is None:
            self.bad = (seq, reason)

    def finding(self, table: Any, key: Any, reason: str, seq: int | None = None) -> None:
        if (table, key) in self.found:
            return  # one finding per row is enough
        self.found.add((table, key))
        self.problems += 1
        if len(self.findings) < 1:
            label = evidence.describe(self.db, table, key) if table in evidence.EVIDENCE \
                else repr(key)
            self.findings.append(StateFinding(str(table), key, label, reason, seq))

    def run(self, checkpoint: tuple[int, str] | None) -> VerifyResult:
        names = schema_names(self.db)
        missing = [t for t in TABLES if t not in names]
        if missing:
            self.broken(1, f"the table {missing[0]} is missing (it was dropped)")
            return self.result(names)
        self.walk(checkpoint)
        self.check_head()
        self.check_state()
        return self.result(names)

    def walk(self, checkpoint: tuple[int, str] | None) -> None:
        prev, last_at, cp_found = GENESIS, "", False
        stored = self.db.execute("SELECT seq, tbl, key, row_hash FROM audit_state"
                                 " ORDER BY seq, tbl, key")
        states = ((s, t, evidence.typed_key(self.db, t, k), h) for s, t, k, h in stored)
        pending = next(states, None)
        # In SQLite seq is the rowid; the rowid is the order rows were written in.
        order = "rowid" if self.db.dialect.name == "sqlite" else "seq"
        cursor = self.db.execute("SELECT seq, at, operator, action, subject, before, after,"
                                 f" prev_hash, hash, state FROM audit ORDER BY {order}")
        cols = [c[0] for c in cursor.description]
        for values in cursor:
            row = dict(zip(cols, values, strict=True))
            seq = row["seq"]
            self.rows += 1
            lines = []
            while pending is not None and (not isinstance(pending[0], int)
                                           or pending[0] <= seq):
                if pending[0] == seq:
                    lines.append(evidence.state_entry(*pending[1:]))
                    self.latest[(pending[1], pending[2])] = (seq, pending[3])
                else:
                    self.orphan(pending)
                pending = next(states, None)
            if self.bad is None:
                problem = _link_problem(row, prev, self.expected_seq, last_at) \
                    or _state_problem(row, lines)
                if problem:
                    self.broken(self.expected_seq if seq != self.expected_seq else seq,
                                problem)
            if checkpoint and seq == checkpoint[0]:
                cp_found = True
                if row["hash"] != checkpoint[1]:
                    self.broken(seq, "the chain up to the checkpoint has changed since it"
                                     " was taken (the log was rebuilt)")
            prev, last_at = row["hash"], row["at"]
            self.expected_seq = seq + 1
            self.head_seq, self.head_hash = seq, row["hash"]
        while pending is not None:
            self.orphan(pending)
            pending = next(states, None)
        if checkpoint and not cp_found:
            self.broken(min(checkpoint[0], self.expected_seq),
                        f"checkpoint row {checkpoint[0]} is missing (the log was truncated)")

    def orphan(self, state: tuple[Any, ...]) -> None:
        self.finding(state[1], state[2], f"its proof names audit row {state[0]}, which is not"
                                         " in the log (the log was emptied or cut back)",
                     state[0] if isinstance(state[0], int) else None)

    def check_head(self) -> None:
        row = self.db.execute("SELECT seq, hash FROM audit_head").fetchone()
        if row is None:
            if self.rows:
                self.broken(1, "the record of the log's head is missing (it was deleted)")
            return
        seq, digest = row
        if not isinstance(seq, int) or seq > self.head_seq:
            self.broken(self.head_seq + 1,
                        f"the log ends at row {self.head_seq}, but row {seq} was written"
                        " (rows were removed from the end)")
        elif (seq, digest) != (self.head_seq, self.head_hash):
            self.broken(seq, f"row {seq} is not the row that was written last"
                             " (the log was rebuilt)")

    def check_state(self) -> None:
        for table in evidence.EVIDENCE:
            self.reading = f"the {table} table"
            for key, digest in evidence.current_rows(self.db, table):
                self.proved += 1
                seq, recorded = self.latest.pop((table, key), (None, None))
                if seq is None:
                    self.finding(table, key, "no audit row records this row (it was added or"
                                             " changed outside mdm)")
                elif recorded is None:
                    self.finding(table, key, f"audit row {seq} recorded it deleted, but it is"
                                             " present", seq)
                elif recorded != digest:
                    self.finding(table, key, "the row differs from what audit row"
                                             f" {seq} recorded (changed outside mdm)", seq)
        for (table, key), (seq, recorded) in self.latest.items():
            if recorded is not None:
                self.finding(table, key, f"the row is gone, but audit row {seq} recorded it"
                                         " (deleted outside mdm)", seq)
        for table, key in self.db.execute("SELECT tbl, key FROM audit_pending"):
            key = evidence.typed_key(self.db, table, key)
            self.finding(table, key, "it was changed without an audit row")

    def result(self, names: set[str]) -> VerifyResult:
        missing = [t for t in SAFEGUARDS if t not in names]
        ok = self.bad is None and not self.problems and not missing
        bad_seq, reason = self.bad or (None, "")
        return VerifyResult(ok, self.rows, self.head_seq, self.head_hash, bad_seq, reason,
                            self.proved, self.findings[0] if self.findings else None,
                            self.problems, missing)


def schema_names(db: Database) -> set[str]:
    """Return the names of the inventory's tables and triggers (to find a dropped one)."""
    if db.dialect.name == "sqlite":
        return {n for (n,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")}
    return {n for (n,) in db.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema ="
        " current_schema() UNION SELECT t.tgname FROM pg_trigger t JOIN pg_class c"
        " ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE NOT t.tgisinternal AND n.nspname = current_schema()")}


def verify(db: Database, checkpoint: tuple[int, str] | None = None) -> VerifyResult:
    """Prove the chain unbroken and the evidential rows as it recorded them.

    Name the first row that does not fit, the first evidential row the log does not vouch
    for, and any safeguard trigger that has been removed. A damaged file is a finding too.
    """
    verifier = _Verifier(db)
    try:
        return verifier.run(checkpoint)
    except (sqlite3.DatabaseError, StoreError) as exc:
        cause = exc.message if isinstance(exc, StoreError) else str(exc)
        if verifier.reading == "the log":
            verifier.broken(verifier.expected_seq, "the inventory file is damaged here, so"
                                                   f" this row can't be read ({cause})")
            bad_seq, reason = verifier.bad or (None, "")
        else:
            bad_seq, reason = None, f"the inventory file is damaged in {verifier.reading} ({cause})"
        return VerifyResult(False, verifier.rows, verifier.head_seq, verifier.head_hash,
                            bad_seq, reason)


def integrity(db: Database) -> list[str]:
    """Return ["ok"], or what the database finds damaged in its own pages (five at most).

    SQLite checks every page of the file (`quick_check`); a PostgreSQL server checks its
    pages as it reads them and reports damage as errors, so there is nothing to ask it.
    """
    if db.dialect.name != "sqlite":
        return ["ok"]
    try:
        return [str(r[0]) for r in db.execute("PRAGMA quick_check(5)").fetchall()]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]


def head(db: Database) -> tuple[int, str]:
    """Return the newest row's sequence number and hash (0 and the genesis hash if empty)."""
    row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else (0, GENESIS)
