"""Copy a whole inventory between backends (SQLite ↔ PostgreSQL), proving the copy exact.

A force that outgrows one control machine moves its embedded inventory to PostgreSQL; a
force that must hand an inventory over moves it back to one file. Every table is copied
as it stands — the audit chain with its state proofs and head, not re-written: the copy
is the same evidence, so it verifies, with the same head. Before the copy is committed,
both sides are compared: the audit chain's head, and each table's row count and a
content hash (a sum of per-row hashes, so it does not depend on either side's sort
order). The target is written in one transaction (PostgreSQL) or built in a temporary
file that replaces the target only when proven (SQLite): it is the old target or the
new copy, never half of one.
"""

from __future__ import annotations

import glob
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mdm.errors import InputError, MdmError
from mdm.store import audit, connect, evidence, is_url
from mdm.store.db import Database
from mdm.store.failures import StoreError

MIGRATION_TABLES = ("_sqlite_migrations", "mdm_migrations")
KEYED = ("audit_state", "audit_pending")  # their `key` column is typed per row's table
# Kept by the inventory's triggers from other tables (compared after the copy all the same).
DERIVED = ("rollout_progress",)


def _reference_schema() -> tuple[list[str], dict[str, list[str]], dict[str, list[str]]]:
    """Return the tables in an order that satisfies their foreign keys, and their columns.

    Read from a blank SQLite inventory made by this mdm: both sides are at its schema.
    Also return, per table, the columns that refer to the table itself (copied as NULL
    first and set once every row is in).
    """
    with tempfile.TemporaryDirectory() as folder:
        db = connect(Path(folder) / "schema.db")
        try:
            names = [n for (n,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE"
                " 'sqlite_%' ORDER BY name") if n not in MIGRATION_TABLES]
            columns = {t: [r[1] for r in db.execute(f"PRAGMA table_info({t})")] for t in names}
            refs = {t: [(r[2], r[3]) for r in db.execute(f"PRAGMA foreign_key_list({t})")]
                    for t in names}
        finally:
            db.conn.close()
    order: list[str] = []
    while len(order) < len(names):
        ready = [t for t in names if t not in order
                 and all(other in order or other == t for other, _ in refs[t])]
        if not ready:
            raise RuntimeError("the inventory's foreign keys form a circle")
        order += ready
    selfref = {t: [col for other, col in refs[t] if other == t] for t in names}
    return order, columns, selfref


def _normal(db: Database, table: str, row: tuple[Any, ...], cols: list[str]) -> tuple[Any, ...]:
    """Return a row as both backends must agree on it (state keys in their table's type)."""
    if table not in KEYED:
        return tuple(row)
    values = list(row)
    tbl, key = cols.index("tbl"), cols.index("key")
    values[key] = evidence.typed_key(db, values[tbl], values[key])
    return tuple(values)


def fingerprint(db: Database, table: str, cols: list[str]) -> tuple[int, str]:
    """Return a table's row count and a hash of its content that ignores row order."""
    total, count = 0, 0
    for row in db.execute(f"SELECT {', '.join(cols)} FROM {table}"):
        digest = hashlib.sha256(repr(_normal(db, table, row, cols)).encode(
            "utf-8", "backslashreplace")).digest()
        total = (total + int.from_bytes(digest, "big")) % (1 << 256)
        count += 1
    return count, f"{total:064x}"


def _rows(source: Database, target: Database, table: str, cols: list[str],
          nulled: list[str]) -> Iterator[tuple[Any, ...]]:
    for row in source.execute(f"SELECT {', '.join(cols)} FROM {table}"):
        values = list(_normal(source, table, row, cols))
        if table in KEYED:
            key = cols.index("key")
            values[key] = evidence.stored_key(target, values[key])
        for col in nulled:
            values[cols.index(col)] = None
        yield tuple(values)


def _holds_rows(db: Database, tables: list[str]) -> bool:
    return any(db.scalar(f"SELECT 1 FROM {t} LIMIT 1") is not None for t in tables)


def copy(source_name: Path | str, target_name: Path | str, *, replace: bool = False,
         wait: float = 30.0,
         authorise: Callable[[Database], object] | None = None) -> dict[str, Any]:
    """Copy the inventory at `source_name` to `target_name` and prove the copy exact.

    Refuse a target that holds an inventory with rows in it, unless `replace`.
    `authorise` is called with the open source first (the caller's role check).
    """
    if str(source_name) == str(target_name):
        raise InputError("the source and the target are the same inventory",
                         "name another target")
    order, columns, selfref = _reference_schema()
    source = connect(source_name, create=False, wait=wait)
    try:
        if authorise:
            authorise(source)
        checked = audit.verify(source)
        if not checked.ok:
            raise MdmError(f"the source inventory {source.path} does not verify; nothing"
                           " was copied", "run `mdm audit verify` on it and resolve that first")
        try:
            with _target(target_name, replace, order, wait) as target:
                _copy_tables(source, target, order, columns, selfref)
                result = _prove(source, target, order, columns)
            if not is_url(target_name):  # proven in a temporary file, now renamed
                result["target"] = str(Path(target_name))
        except MdmError:
            raise
        except Exception as exc:  # the target refused a row: its transaction is undone
            raise StoreError(f"the target refused the copy ({type(exc).__name__}:"
                             f" {str(exc).strip()[:300]}); nothing was copied, the target is"
                             " as it was", "correct the row it names in the source (see"
                             " `mdm audit verify`), then copy again") from None
        return result
    finally:
        source.conn.close()


@contextmanager
def _target(name: Path | str, replace: bool, order: list[str],
            wait: float) -> Iterator[Database]:
    """Yield the target inside its one transaction; commit (or rename) only on success."""
    if is_url(name):
        from mdm.store import pg

        db = connect(name, create=True, wait=wait)
        try:
            db.begin()  # type: ignore[attr-defined]
            try:
                if _holds_rows(db, order):
                    if not replace:
                        raise _not_empty(db.path)
                    pg.drop_inventory(db)  # type: ignore[arg-type]
                    pg.apply_migrations(db)  # type: ignore[arg-type]
                yield db
                db.commit()  # type: ignore[attr-defined]
            except BaseException:
                db.rollback()  # type: ignore[attr-defined]
                raise
        finally:
            db.conn.close()
        return
    path = Path(name)
    if path.exists() and path.stat().st_size:
        old = connect(path, create=False, wait=wait)
        try:
            if _holds_rows(old, order) and not replace:
                raise _not_empty(path)
            old.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # nothing left to replay
        finally:
            old.conn.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.copy-{os.getpid()}")
    _remove_dead_copies(path)
    for stale in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        stale.unlink(missing_ok=True)
    try:
        db = connect(tmp, create=True, wait=wait)
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("PRAGMA defer_foreign_keys = ON")
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
            raise
        finally:
            db.conn.close()
        os.replace(tmp, path)
    finally:
        for stale in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            stale.unlink(missing_ok=True)


def _remove_dead_copies(path: Path) -> None:
    """Remove the temporary files of earlier copies to `path` whose process is gone (a
    copy killed before it could clean up); a copy still running keeps its own."""
    prefix = f".{path.name}.copy-"
    for found in path.parent.glob(f"{glob.escape(prefix)}*"):
        pid = found.name[len(prefix):].split("-", 1)[0]
        if not (pid.isascii() and pid.isdigit()) or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            found.unlink(missing_ok=True)
        except (PermissionError, OverflowError):
            continue  # alive as another user, or no such process id: left alone


def _not_empty(where: object) -> InputError:
    return InputError(f"the target {where} already holds an inventory; nothing was copied",
                      "copy into an empty database or a new file, or give --replace to"
                      " replace what it holds")


def _copy_tables(source: Database, target: Database, order: list[str],
                 columns: dict[str, list[str]], selfref: dict[str, list[str]]) -> None:
    for table in order:
        if table == "audit_pending":
            continue  # last: the target's own triggers note rows as they are copied
        if table in DERIVED:
            continue  # the target's own triggers fill it as the rows it derives from come
        cols = columns[table]
        target.copy_rows(table, cols, _rows(source, target, table, cols, selfref[table]))
        for col in selfref[table]:  # a row that names a row of its own table
            target.executemany(f"UPDATE {table} SET {col} = ? WHERE id = ?",
                               [(v, k) for k, v in source.execute(
                                   f"SELECT id, {col} FROM {table} WHERE {col} IS NOT NULL")])
    target.execute("DELETE FROM audit_pending")
    cols = columns["audit_pending"]
    target.copy_rows("audit_pending", cols, _rows(source, target, "audit_pending", cols, []))


def _prove(source: Database, target: Database, order: list[str],
           columns: dict[str, list[str]]) -> dict[str, Any]:
    """Compare both sides table by table and the chain's head; refuse a copy that differs."""
    tables: dict[str, dict[str, Any]] = {}
    for table in order:
        mine = fingerprint(source, table, columns[table])
        theirs = fingerprint(target, table, columns[table])
        if mine != theirs:
            raise StoreError(f"the copy of table {table} differs from the source ({mine[0]}"
                             f" rows, {theirs[0]} copied); nothing was copied",
                             "report it: the two backends disagree about a value")
        tables[table] = {"rows": mine[0], "sha256": mine[1]}
    head, copied_head = audit.head(source), audit.head(target)
    checked = audit.verify(target)
    if head != copied_head or not checked.ok:
        raise StoreError("the copy's audit chain does not verify as the source's does"
                         f" ({checked.reason or 'another head'}); nothing was copied",
                         "report it: the two backends disagree about a value")
    return {"source": str(source.path), "target": str(target.path),
            "audit_head": f"{head[0]}:{head[1]}", "verified": True, "tables": tables}
