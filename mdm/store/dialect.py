"""The few SQL differences between SQLite and PostgreSQL, as string builders.

Store modules write one SQL text for both backends; where the two truly differ (folding
case, joining strings, reading JSON) they ask `db.dialect` for the fragment. This module
imports no driver: it only builds strings.
"""

from __future__ import annotations


class Dialect:
    """One backend's SQL fragments (a plain class: a dataclass costs start-up time)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name  # "sqlite" | "postgresql"

    def __repr__(self) -> str:
        return f"Dialect({self.name!r})"

    def ieq(self, column: str) -> str:
        """Compare `column` with one `?` without regard to case (SQLite keeps its index)."""
        if self.name == "sqlite":
            return f"{column} = ? COLLATE NOCASE"
        return f"lower({column}) = lower(?)"

    def ilike(self, column: str) -> str:
        """Match `column` against one `?` LIKE pattern without regard to case."""
        if self.name == "sqlite":
            return f"{column} LIKE ?"
        return f"{column} ILIKE ?"

    def group_concat(self, expr: str, sep: str) -> str:
        """Join the group's values of `expr` with the literal separator `sep`."""
        quoted = "'" + sep.replace("'", "''") + "'"
        if self.name == "sqlite":
            return f"group_concat({expr}, {quoted})"
        return f"string_agg(CAST({expr} AS TEXT), {quoted})"

    def json_text(self, column: str, key: str) -> str:
        """Read the text at top-level `key` of the JSON object in `column`."""
        quoted = "'" + key.replace("'", "''") + "'"
        if self.name == "sqlite":
            return f"json_extract({column}, '$.' || {quoted})"
        return f"(CAST({column} AS jsonb) ->> {quoted})"


SQLITE = Dialect("sqlite")
POSTGRESQL = Dialect("postgresql")
