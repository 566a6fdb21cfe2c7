"""The audit log's reading queries: its rows filtered, the names it holds, one row's time,
and the embedded file's own page check. (Appending and verifying the chain is audit.py's.)
"""

from __future__ import annotations

from typing import Any

from mdm.store.db import Database

_ROWS = "SELECT seq, at, operator, action, subject, before, after FROM audit"


def operator_names(db: Database) -> list[str]:
    """Every registered operator's name and every name the log holds, sorted."""
    return [r["name"] for r in db.query("SELECT name FROM operators UNION"
                                        " SELECT operator FROM audit ORDER BY 1")]


def actions(db: Database) -> list[str]:
    """Every action the log holds, sorted."""
    return [r["action"] for r in db.query("SELECT DISTINCT action FROM audit ORDER BY 1")]


def rows(db: Database, *, subject: str | None = None, operator: str | None = None,
         action: str | None = None, family: str | None = None, since: str | None = None,
         until: str | None = None, until_exclusive: bool = False,
         limit: int | None = None) -> list[dict[str, Any]]:
    """The log's rows, oldest first (with `limit`, the latest few), filtered by: subject
    as written ("device:R58F…") or by what follows its first colon ("R58F…"); operator;
    action, or a family of actions ("custody" for custody.assign, custody.unassign …);
    and time (ISO instants; `until` included unless `until_exclusive`)."""
    clauses: list[str] = []
    args: list[Any] = []
    if subject:
        clauses.append(f"(subject = ? OR {db.dialect.after_first('subject', ':')} = ?)")
        args += [subject, subject]
    if operator is not None:
        clauses.append("operator = ?")
        args.append(operator)
    if action is not None:
        clauses.append("action = ?")
        args.append(action)
    if family is not None:
        sql, more = db.dialect.prefix("action", family + ".")
        clauses.append(sql)
        args += more
    if since:
        clauses.append("at >= ?")
        args.append(since)
    if until:
        clauses.append("at < ?" if until_exclusive else "at <= ?")
        args.append(until)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    sql = f"{_ROWS}{where} ORDER BY seq"
    if limit:
        sql = f"SELECT * FROM ({sql} DESC LIMIT {int(limit)}) AS latest ORDER BY seq"
    return db.query(sql, args)


def at_of(db: Database, seq: int) -> str | None:
    """When the log's row `seq` was written, or None."""
    at: str | None = db.scalar("SELECT at FROM audit WHERE seq = ?", [seq])
    return at

