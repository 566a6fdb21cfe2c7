"""State proofs: the audit log vouches for the rows that matter as evidence.

A hash chain proves the log unbroken, but not that the inventory still says what the log
says it did: custody rows, a device's status and pinned host key, an operator's role can
be edited with any SQLite tool without touching the log. So every change to an
evidential row is sealed into the audit row of its own transaction:

- triggers (migration m008) note the (table, key) of each updated or deleted evidential
  row, and each new operator, in `audit_pending`, inside the writer's transaction; rows
  appended to devices and assignments are found by key, above the highest key the
  transaction began with (a trigger per row, ~10 µs, would slow a large import);
- `seal()`, called by `audit.record`, hashes each noted row's evidential columns into
  `audit_state (seq, tbl, key, row_hash)` (a deleted row gets a NULL hash), and returns a
  digest of those rows that the audit row's own hash covers; then it empties the scratch
  table. One import of 50,000 devices makes 50,000 small state rows, not one huge row;
- `store.transaction()` refuses to commit a change it has not sealed, so a change made
  through mdm without its audit row can't be committed at all. Changes found noted when a
  transaction begins were made outside mdm: they are never sealed as its own;
- `audit.verify` recomputes every current evidential row's hash and compares it with the
  newest hash recorded for its key.

The column lists below are part of the proof: adding one changes every row's hash, so a
later migration that adds one must re-seal every row (as m008 seals the rows it found).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from mdm.store.db import Database

# Tables whose rows mdm only appends, with an integer key (new rows are found by key).
APPENDED = ("devices", "assignments")
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


def _row_hash(table: str, *values: Any) -> bytes:
    # repr() of a tuple of SQLite values (str, int, float, None, bytes) is exact: it
    # tells 1 from '1' and a BLOB from text, and is the cheapest exact encoding to hand.
    return hashlib.sha256(repr((table, values)).encode("utf-8", "backslashreplace")).digest()


def register(conn: sqlite3.Connection) -> None:
    """Give a connection `mdm_row_hash(table, col, …)`, the hash of an evidential row."""
    conn.create_function("mdm_row_hash", -1, _row_hash, deterministic=True)


def typed_key(db: Database, table: Any, key: Any) -> Any:
    """Return a state row's key as its table's own key type.

    SQLite keeps each key as it was written (an integer id, a text name); PostgreSQL's
    key column is text, so an integer-keyed table's keys are read back as integers there.
    """
    if db.dialect.name == "postgresql" and table in APPENDED and isinstance(key, str) \
            and key.lstrip("-").isdigit():
        return int(key)
    return key


def stored_key(db: Database, key: Any) -> Any:
    """Return a key as the state tables store it (text on PostgreSQL)."""
    return str(key) if db.dialect.name == "postgresql" else key


def hashed(db: Database, table: str, where: str = "",
           params: Sequence[Any] = ()) -> Iterator[tuple[Any, bytes]]:
    """Yield (key, hash) of an evidential table's rows matching `where`, in key order.

    SQLite hashes inside the query (`mdm_row_hash`); PostgreSQL sends the columns and
    they are hashed here, with the same function, so both give the same hashes.
    """
    pk, cols = EVIDENCE[table]
    if db.dialect.name != "postgresql":
        yield from db.execute(f"SELECT {pk}, {hash_sql(table)} FROM {table} {where}"
                              f" ORDER BY {pk}", params)
        return
    for row in db.execute(f"SELECT {', '.join(cols)} FROM {table} {where} ORDER BY {pk}",
                          params):
        yield row[cols.index(pk)], _row_hash(table, *row)


def hash_sql(table: str) -> str:
    """Return the SQL for the hash of a row of an evidential table.

    Hashing inside the query spares a Python row per value: a 50,000-device import is
    sealed with one INSERT … SELECT.
    """
    _, cols = EVIDENCE[table]
    return f"mdm_row_hash('{table}', {', '.join(cols)})"


def state_entry(table: Any, key: Any, digest: Any) -> bytes:
    """Return what one state row adds to its audit row's digest.

    A row's hash already names its table and key; a deleted row (no hash) is named here.
    """
    if isinstance(digest, bytes) and len(digest) == 32:
        return digest
    return hashlib.sha256(repr((table, key, digest)).encode("utf-8", "backslashreplace")
                          ).digest()


def state_digest(entries: Iterable[bytes]) -> tuple[int, str]:
    """Return (count, sha256) over a set of state rows, in a fixed order."""
    ordered = sorted(entries)
    return len(ordered), hashlib.sha256(b"".join(ordered)).hexdigest()


@dataclass
class _Mark:
    """What a transaction found when it began: changes it must not seal as its own."""

    stale: set[tuple[Any, Any]]  # evidential changes already noted (made outside mdm)
    tops: dict[str, int]  # the highest key of each append-only table (later ones are new)
    # PostgreSQL: the chain head this transaction's last audit row made, and the count of
    # the connection's statements then (db.statements): while it holds, nothing since
    # can have changed an evidential row, and the next audit row need read nothing.
    head: tuple[Any, Any, Any] | None = None  # (None: the log is empty)
    sealed_at: int = -1  # (-1: not known)


SMALL_SEAL = 50  # state rows up to this many go in one INSERT; more by COPY (PostgreSQL)
_marks: dict[int, _Mark] = {}  # by id() of the connection in a transaction


def begin(db: Database, read: Sequence[Any] | None = None) -> None:
    """Note where this transaction starts (called by store.transaction after BEGIN).

    On PostgreSQL `read` is the row of BEGIN_SQL that the BEGIN's own round trip read
    (read here if not given): with it the chain head is known, so the transaction's first
    audit row need read nothing if nothing evidential has changed by then.
    """
    if db.dialect.name == "postgresql":  # migrated before any transaction: no table missing
        head, pending, highest = _head_row(read if read is not None
                                           else db.execute(BEGIN_SQL).fetchone())
        stale = {(t, typed_key(db, t, k)) for t, k in pending}
        _marks[id(db.conn)] = _Mark(stale, {t: top or 0 for t, top in zip(APPENDED, highest,
                                                                           strict=True)},
                                    head, db.statements)
        return
    conn = db.conn  # raw: a missing table is expected here, not a damaged file
    try:
        stale = {(t, k) for t, k in conn.execute("SELECT tbl, key FROM audit_pending")}
    except sqlite3.OperationalError:
        stale = set()  # an inventory older than state proofs, about to be migrated
    tops = {}
    for table in APPENDED:
        try:
            tops[table] = conn.execute(f"SELECT MAX(id) FROM {table}").fetchone()[0] or 0
        except sqlite3.OperationalError:
            tops[table] = 0  # a blank inventory: the table is about to be made
    _marks[id(db.conn)] = _Mark(stale, tops)


def end(db: Database) -> None:
    """Forget the transaction's mark."""
    _marks.pop(id(db.conn), None)


def _mark(db: Database) -> _Mark:
    mark = _marks.get(id(db.conn))
    if mark is None:
        raise RuntimeError("audit.record must run inside store.transaction()")
    return mark


def _noted(db: Database, mark: _Mark) -> dict[str, list[Any]]:
    """Return keys the triggers noted in this transaction (not rows appended by it)."""
    keys: dict[str, list[Any]] = {}
    for table, key in db.execute("SELECT tbl, key FROM audit_pending"):
        key = typed_key(db, table, key)
        appended = table in mark.tops and isinstance(key, int) and key > mark.tops[table]
        if (table, key) not in mark.stale and not appended:
            keys.setdefault(table, []).append(key)
    return keys


_PENDING_SQL = ("(SELECT COALESCE(json_agg(json_build_array(tbl, key)), '[]') FROM"
                " audit_pending)")
_TOPS_SQL = ", ".join(f"(SELECT MAX(id) FROM {t})" for t in APPENDED)


def _pending_and_tops(db: Database) -> tuple[list[tuple[Any, Any]], tuple[Any, ...]]:
    """On PostgreSQL, in one round trip: the noted changes [(tbl, key), ...] and the
    highest key of each append-only table."""
    pending, *highest = db.execute(f"SELECT {_PENDING_SQL}, {_TOPS_SQL}").fetchone()
    return [tuple(p) for p in pending], tuple(highest)


def known_head(db: Database) -> tuple[bool, tuple[Any, Any, Any] | None]:
    """On PostgreSQL, (True, the chain head as seq, hash, at; None for an empty log) when
    this transaction knows it (read at BEGIN, or made by its last audit row) and no
    statement since could have changed an evidential row; else (False, None)."""
    mark = _marks.get(id(db.conn))
    if mark is None or mark.sealed_at < 0 or mark.sealed_at != db.statements:
        return False, None
    return True, mark.head


def unchanged(db: Database) -> tuple[list[tuple[Any, Any]], tuple[Any, ...]]:
    """What chain_head_and_changes() would read after known_head(): no change noted, and
    the append-only tables' highest keys as the last seal left them."""
    mark = _mark(db)
    return [], tuple(mark.tops[t] for t in APPENDED)


def sealed(db: Database, head: tuple[Any, Any, Any]) -> None:
    """Note the head an audit row has just made (its writes deferred, none evidential)."""
    mark = _marks.get(id(db.conn))
    if mark is not None and db.dialect.name == "postgresql":
        mark.head, mark.sealed_at = head, db.statements


# The chain head, the noted changes and the append-only tables' highest keys, in one row.
BEGIN_SQL = (f"SELECT h.seq, h.hash, h.at, {_PENDING_SQL}, {_TOPS_SQL} FROM (SELECT 1) one"
             " LEFT JOIN (SELECT seq, hash, at FROM audit ORDER BY seq DESC LIMIT 1) h ON true")


def _head_row(row: Sequence[Any]) -> tuple[Any, list[tuple[Any, Any]], tuple[Any, ...]]:
    head_seq, head_hash, head_at, pending, *highest = row
    head = (head_seq, head_hash, head_at) if head_seq is not None else None
    return head, [tuple(p) for p in pending], tuple(highest)


def chain_head_and_changes(db: Database) -> tuple[Any, Any, Any]:
    """On PostgreSQL, read in one round trip what an audit row needs before it is sealed:
    the chain head (seq, hash, at, or None), the noted changes ([[tbl, key], ...]) and the
    highest key of each append-only table. Call it holding the write lock."""
    return _head_row(db.execute(BEGIN_SQL).fetchone())


def seal(db: Database, seq: int, read: tuple[Any, Any] | None = None) -> str | None:
    """Record the hash of every evidential row changed in this transaction under `seq`.

    Return "COUNT:SHA256" of the recorded rows for the audit row to carry, or None when
    the transaction changed no evidential row. Rows changed before the transaction began
    (outside mdm) are left unsealed, for `audit verify` to report.
    """
    mark = _mark(db)
    if db.dialect.name == "postgresql":
        return _seal_pg(db, seq, mark, read)
    noted = _noted(db, mark)  # before the appended rows move the marks on
    for table in APPENDED:  # appended rows: hashed and recorded inside SQLite, in bulk
        pk, _ = EVIDENCE[table]
        db.execute(f"INSERT INTO audit_state (seq, tbl, key, row_hash) SELECT ?, ?,"
                   f" {pk}, {hash_sql(table)} FROM {table} WHERE {pk} > ?",
                   [seq, table, mark.tops[table]])
        mark.tops[table] = db.scalar(f"SELECT MAX({pk}) FROM {table}") or 0
    recorded: list[tuple[int, str, Any, bytes | None]] = []
    for table, wanted in sorted(noted.items()):
        if table not in EVIDENCE:
            raise RuntimeError(f"audit_pending names an unknown table {table!r}")
        pk, _ = EVIDENCE[table]
        found = dict(db.execute(f"SELECT {pk}, {hash_sql(table)} FROM {table} WHERE {pk} IN"
                                " (SELECT key FROM audit_pending WHERE tbl = ?)", [table]))
        recorded += [(seq, table, key, found.get(key)) for key in wanted]
    db.executemany("INSERT INTO audit_state (seq, tbl, key, row_hash) VALUES (?, ?, ?, ?)",
                   recorded)
    if mark.stale:
        db.executemany("DELETE FROM audit_pending WHERE tbl = ? AND key = ?",
                       [(t, k) for t, k in db.execute("SELECT tbl, key FROM audit_pending")
                        if (t, typed_key(db, t, k)) not in mark.stale])
    else:
        db.execute("DELETE FROM audit_pending")
    entries = [state_entry(t, typed_key(db, t, k), h) for t, k, h in db.execute(
        "SELECT tbl, key, row_hash FROM audit_state WHERE seq = ?", [seq])]
    if not entries:
        return None
    count, digest = state_digest(entries)
    return f"{count}:{digest}"


def _seal_pg(db: Database, seq: int, mark: _Mark,
             read: tuple[Any, Any] | None) -> str | None:
    """seal() on PostgreSQL: the same state rows, in as few round trips to the server.

    Rows are hashed here (not in the server), so what was recorded is known without
    reading it back. `read` is the noted changes and the append-only tables' highest keys
    as chain_head_and_changes() read them; a write that changed no evidential row then
    costs no query here at all.
    """
    if read is None:
        read = chain_head_and_changes(db)[1:]
    pending, highest = read
    noted: dict[str, list[Any]] = {}
    for table, raw in pending:
        key = typed_key(db, table, raw)
        appended = table in mark.tops and isinstance(key, int) and key > mark.tops[table]
        if (table, key) not in mark.stale and not appended:
            noted.setdefault(table, []).append(key)
    rows: list[tuple[str, Any, bytes | None]] = []
    for table, top in zip(APPENDED, highest, strict=True):  # appended rows, found by key
        pk, _ = EVIDENCE[table]
        if (top or 0) <= mark.tops[table] and table not in noted:
            continue  # nothing appended: spare the query
        new = list(hashed(db, table, f"WHERE {pk} > ?", [mark.tops[table]]))
        rows += [(table, key, digest) for key, digest in new]
        mark.tops[table] = top or 0
    for table, wanted in sorted(noted.items()):
        if table not in EVIDENCE:
            raise RuntimeError(f"audit_pending names an unknown table {table!r}")
        pk, _ = EVIDENCE[table]
        found = dict(hashed(db, table, f"WHERE CAST({pk} AS TEXT) IN (SELECT key FROM"
                                       " audit_pending WHERE tbl = ?)", [table]))
        rows += [(table, key, found.get(key)) for key in wanted]
    state = [(seq, table, str(key), digest) for table, key, digest in rows]
    if len(state) > SMALL_SEAL:  # an import's thousands: COPY
        db.copy_rows("audit_state", ("seq", "tbl", "key", "row_hash"), state)
    elif state:  # a device's few: sent with the next statement, no round trip of its own
        db.defer("INSERT INTO audit_state (seq, tbl, key, row_hash) VALUES "
                 + ", ".join(["(?, ?, ?, ?)"] * len(state)), [v for r in state for v in r],
                 evidential=False)
    if pending and mark.stale:
        for t, k in pending:
            if (t, typed_key(db, t, k)) not in mark.stale:
                db.defer("DELETE FROM audit_pending WHERE tbl = ? AND key = ?", [t, k],
                         evidential=False)
    elif pending:
        db.defer("DELETE FROM audit_pending", evidential=False)
    if not rows:
        return None
    count, digest = state_digest(state_entry(t, k, h) for t, k, h in rows)
    return f"{count}:{digest}"


def unsealed(db: Database) -> list[tuple[str, Any]]:
    """Return evidential rows this transaction changed that no audit row has sealed."""
    mark = _marks.get(id(db.conn))
    if mark is None:
        return []
    if db.dialect.name == "postgresql":  # one round trip
        pending, highest = _pending_and_tops(db)
        found = [(t, k) for t, k in ((t, typed_key(db, t, raw)) for t, raw in pending)
                 if (t, k) not in mark.stale and not (
                     t in mark.tops and isinstance(k, int) and k > mark.tops[t])]
        found += [(t, top) for t, top in zip(APPENDED, highest, strict=True)
                  if (top or 0) > mark.tops[t]]
        return found[:5]
    found = [(t, k) for t, ks in _noted(db, mark).items() for k in ks]
    for table in APPENDED:
        top = db.scalar(f"SELECT MAX(id) FROM {table}") or 0
        if top > mark.tops[table]:
            found.append((table, top))
    return found[:5]


def current_rows(db: Database, table: str) -> Iterable[tuple[Any, bytes]]:
    """Yield (key, hash) for every row of an evidential table, in key order."""
    yield from hashed(db, table)


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
    except Exception:  # a label must never hide the finding it labels
        pass
    return f"{shown}"
