"""The inventory connection: a thin layer over sqlite3, with sqlite-utils on demand.

Commands a helpdesk runs many times a day should start fast, and sqlite-utils costs
~70 ms to import. Day-to-day queries need only sqlite3; `utils` wraps the same
connection in `sqlite_utils.Database` for the migrations, imported only when needed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite_utils

Params = Sequence[Any] | dict[str, Any]


class Database:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        """Run one statement."""
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Params]) -> sqlite3.Cursor:
        """Run one statement for many rows (inside the caller's transaction)."""
        return self.conn.executemany(sql, rows)

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        """Return every row of a query as a dict."""
        cursor = self.conn.execute(sql, params)
        cols = [c[0] for c in cursor.description]
        return [dict(zip(cols, row, strict=True)) for row in cursor]

    def iter_query(self, sql: str, params: Params = ()) -> Iterator[dict[str, Any]]:
        """Run a query now and yield its rows as dicts, one at a time, from the cursor.

        For lists that may run to tens of thousands of rows: nothing is held beyond the
        rows being written, and a reader that stops early (a page, a closed pipe) stops
        the query.
        """
        return _rows(self.conn.execute(sql, params))

    def scalar(self, sql: str, params: Params = ()) -> Any:
        """Return the first column of the first row, or None."""
        row = self.conn.execute(sql, params).fetchone()
        return row[0] if row else None

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
