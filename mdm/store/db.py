"""The inventory connection: a thin layer over sqlite3, with sqlite-utils on demand.

Commands a helpdesk runs many times a day should start fast, and sqlite-utils costs
~70 ms to import. Day-to-day queries need only sqlite3; `utils` wraps the same
connection in `sqlite_utils.Database` for the migrations, imported only when needed.
A full disk, a damaged file or a write that waited too long comes out of every query
as an `MdmError` that says so (see `failures`), never as a bare sqlite3 exception.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mdm.store.dialect as dialects
import mdm.store.failures as failures

if TYPE_CHECKING:
    import sqlite_utils

Params = Sequence[Any] | dict[str, Any]
DEFAULT_WAIT = 30.0  # seconds a write waits for another operator's write


@dataclass(frozen=True)
class Rows:
    """A kind of write that PostgreSQL sends for many rows at once (`defer_rows`): `sql`
    takes one `?` per column, each an array of that column's values (cast in the text,
    e.g. `unnest(?::bigint[], ?::text[])`); `key`, the column no value of which may come
    twice in one statement (an UPDATE ... FROM would take one of the two at random)."""

    sql: str
    key: int | None = None


class Database:
    dialect: dialects.Dialect = dialects.SQLITE  # the SQL fragments this engine speaks

    def __init__(self, conn: sqlite3.Connection, path: Path | None = None,
                 wait: float = DEFAULT_WAIT,
                 on_wait: Callable[[int | None], None] | None = None) -> None:
        self.conn = conn
        self.path = path or Path(":memory:")
        self.wait = wait  # the longest a write waits for the lock, in seconds
        self.on_wait = on_wait  # told (with the holder's pid) when a write has to wait

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def failed(self, exc: sqlite3.Error) -> Exception:
        """Return the error to raise for a sqlite3 failure (itself if it is not the file's)."""
        return failures.translate(exc, self.path, self.wait) or exc

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        """Run one statement."""
        try:
            return self.conn.execute(sql, params)
        except sqlite3.DatabaseError as exc:
            raise self.failed(exc) from None

    # Statements that could have changed an evidential row, counted by PgDatabase (whose
    # audit rows use it to spare a read; SQLite's reads cost no round trip).
    statements = 0

    def defer(self, sql: str, params: Params = (), evidential: bool = True) -> None:
        """Run a write whose result nobody reads (now, on SQLite; PostgreSQL sends it with
        the next statement, to spare a round trip: see PgDatabase.defer). `evidential`
        False: it changes no evidential row (see store.evidence), whatever its triggers do."""
        self.execute(sql, params)

    def defer_rows(self, rows: Rows, values: Sequence[Any], evidential: bool = True) -> None:
        """Write one row of a kind PostgreSQL batches (see PgDatabase.defer_rows); SQLite's
        statements cost no round trip, so its callers write each row in their own."""
        raise NotImplementedError("defer_rows is PostgreSQL's: write the row itself")

    def executemany(self, sql: str, rows: Iterable[Params]) -> sqlite3.Cursor:
        """Run one statement for many rows (inside the caller's transaction)."""
        try:
            return self.conn.executemany(sql, rows)
        except sqlite3.DatabaseError as exc:
            raise self.failed(exc) from None

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        """Return every row of a query as a dict."""
        try:
            cursor = self.conn.execute(sql, params)
            cols = [c[0] for c in cursor.description]
            return [dict(zip(cols, row, strict=True)) for row in cursor]
        except sqlite3.DatabaseError as exc:
            raise self.failed(exc) from None

    def iter_query(self, sql: str, params: Params = ()) -> Iterator[dict[str, Any]]:
        """Run a query now and yield its rows as dicts, one at a time, from the cursor.

        For lists that may run to tens of thousands of rows: nothing is held beyond the
        rows being written, and a reader that stops early (a page, a closed pipe) stops
        the query.
        """
        try:
            cursor = self.conn.execute(sql, params)
        except sqlite3.DatabaseError as exc:
            raise self.failed(exc) from None
        return _rows(cursor)

    def scalar(self, sql: str, params: Params = ()) -> Any:
        """Return the first column of the first row, or None."""
        try:
            row = self.conn.execute(sql, params).fetchone()
        except sqlite3.DatabaseError as exc:
            raise self.failed(exc) from None
        return row[0] if row else None

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Append many rows to one table (inside the caller's transaction); return how many."""
        count = 0
        sql = (f"INSERT INTO {table} ({', '.join(columns)})"
               f" VALUES ({', '.join('?' for _ in columns)})")
        batch: list[Sequence[Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= 5000:
                self.executemany(sql, batch)
                count, batch = count + len(batch), []
        if batch:
            self.executemany(sql, batch)
        return count + len(batch)

    @cached_property
    def utils(self) -> sqlite_utils.Database:
        """The same connection as a sqlite_utils.Database (for migrations)."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)


def _rows(cursor: sqlite3.Cursor) -> Iterator[dict[str, Any]]:
    cols = [c[0] for c in cursor.description]
    try:
        while batch := cursor.fetchmany(500):
            for row in batch:
                yield dict(zip(cols, row, strict=True))
    finally:
        cursor.close()
