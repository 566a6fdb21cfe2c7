"""The few places where SQLite's SQL and PostgreSQL's differ, as small string builders.

Store modules write SQL that both engines run (`?` placeholders, COALESCE, ON CONFLICT,
timestamps computed in Python); where the two truly differ they ask `db.dialect` for the
fragment. Each fragment compares against one `?` the caller passes. On SQLite the
fragments keep the NOCASE indexes in use (`column = ? COLLATE NOCASE`), so a lookup among
50,000 devices stays an index search; on PostgreSQL they use `lower()`, which the
PostgreSQL migrations index. This module builds strings only: it imports no driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Dialect:
    """SQL fragments for one engine; `name` is "sqlite" or "postgresql"."""

    name: str

    @property
    def sqlite(self) -> bool:
        return self.name == "sqlite"

    def ieq(self, column: str) -> str:
        """Case-insensitive equality of `column` with one `?`."""
        if self.sqlite:
            return f"{column} = ? COLLATE NOCASE"
        return f"lower({column}) = lower(?)"

    def ilike(self, column: str) -> str:
        """Case-insensitive LIKE of `column` against one `?` pattern (escape character `\\`)."""
        if self.sqlite:
            return f"{column} LIKE ? ESCAPE '\\'"
        return f"{column} ILIKE ? ESCAPE '\\'"

    def group_concat(self, expr: str, sep: str) -> str:
        """Aggregate the text of `expr` over a group, joined by the literal `sep`."""
        literal = "'" + sep.replace("'", "''") + "'"
        if self.sqlite:
            return f"group_concat({expr}, {literal})"
        return f"string_agg(({expr})::text, {literal})"

    def json_text(self, column: str, key: str) -> str:
        """The text of one top-level `key` of the JSON object held (as text) in `column`.

        NULL where the column holds no JSON on SQLite (which would otherwise refuse it);
        PostgreSQL reads the column as json, so it must hold JSON or NULL.
        """
        if self.sqlite:
            return f"CASE WHEN json_valid({column}) THEN json_extract({column}, '$.{key}') END"
        return f"(({column})::json ->> '{key}')"

    def nocase(self, column: str) -> str:
        """`column` for ORDER BY / DISTINCT ignoring case (COLLATE NOCASE on SQLite)."""
        if self.sqlite:
            return f"{column} COLLATE NOCASE"
        return f"lower({column})"

    def iprefix(self, column: str, value: str) -> tuple[str, list[str]]:
        """`column` starts with `value`, ignoring case, and the arguments to pass.

        On SQLite a range on the NOCASE index (LIKE could not use it); on PostgreSQL a
        LIKE on lower(), with the value's own wildcards escaped, in the parameter.
        """
        if self.sqlite:
            return (f"({column} >= ? COLLATE NOCASE AND {column} < ? COLLATE NOCASE)",
                    [value, value + "\U0010ffff"])
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"lower({column}) LIKE lower(?) ESCAPE '\\'", [escaped + "%"]

    def after_first(self, column: str, sep: str) -> str:
        """The text of `column` after the first `sep` in it (all of it when there is none)."""
        literal = "'" + sep.replace("'", "''") + "'"
        if self.sqlite:
            return f"substr({column}, instr({column}, {literal}) + 1)"
        return f"substr({column}, strpos({column}, {literal}) + 1)"

    def next_serial(self, table: str, column: str) -> str:
        """A query for the next value of `table`'s increasing, never reused key `column`, to
        insert explicitly: SQLite's AUTOINCREMENT counter (above rows since deleted too);
        on PostgreSQL the highest plus one, as its insert trigger gives (rows there are
        never deleted, and writers are serialised)."""
        if self.sqlite:
            return ("SELECT COALESCE((SELECT seq FROM sqlite_sequence"
                    f" WHERE name = '{table}'), 0) + 1")
        return f"SELECT COALESCE(MAX({column}), 0) + 1 FROM {table}"

    def prefix(self, column: str, value: str) -> tuple[str, list[str]]:
        """`column` starts with `value` (case as given), and the arguments to pass.

        On SQLite a range, which an index on the column serves; on PostgreSQL
        starts_with(), since a range there would follow the database's collation, which
        may order punctuation apart from the bytes.
        """
        if not value:
            return "1 = 1", []
        if self.sqlite:
            return (f"({column} >= ? AND {column} < ?)",
                    [value, value[:-1] + chr(ord(value[-1]) + 1)])
        return f"starts_with({column}, ?)", [value]

    def in_(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """`column` is one of `values` (at least one), and the arguments to pass.

        SQLite: `IN (?, …)`. PostgreSQL: `= ANY(?)` with the values as one array, so a
        list of hundreds is one parameter: psycopg parses and the server plans the
        statement once, not once per length of list.
        """
        if self.sqlite:
            return f"{column} IN ({', '.join('?' * len(values))})", list(values)
        return f"{column} = ANY(?)", [list(values)]

    def iin_values(self, column: str, values: Sequence[str]) -> tuple[str, list[Any]]:
        """`column` is one of `values` ignoring case, and the arguments to pass (as `iin`;
        on PostgreSQL one array parameter, lower-cased by the server, as `ieq` does)."""
        if self.sqlite:
            return self.iin(column, len(values)), list(values)
        return (f"lower({column}) = ANY(ARRAY(SELECT lower(v) FROM unnest(?::text[]) v))",
                [list(values)])

    def iin(self, column: str, count: int) -> str:
        """Case-insensitive `column IN (?, …)` against `count` parameters."""
        marks = ", ".join("?" * count)
        if self.sqlite:
            return f"{column} COLLATE NOCASE IN ({marks})"
        return f"lower({column}) IN ({', '.join(['lower(?)'] * count)})"


SQLITE = Dialect("sqlite")
POSTGRESQL = Dialect("postgresql")
