"""The officer queries: the roster's rows, lookups by any reference, and the list's SQL.

The roster runs to 45,000 people, so the list reads what the indexes serve: exact matches
on stored upper-case values, case-insensitive ones through `db.dialect` (the NOCASE
indexes on SQLite), and the whole roster from one index with each holder's device read
in one scan beside it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any

from mdm.store.db import Database
from mdm.store.dialect import Dialect

_JOIN = (" FROM officers o"
         " LEFT JOIN assignments a ON a.officer_id = o.officer_id AND a.closed_at IS NULL"
         " LEFT JOIN devices d ON d.id = a.device_id")
_ORDER = " ORDER BY o.area, o.station, o.surname, o.forename, o.officer_id"
# Who holds which device now: read whole to list the whole roster (one scan, then a
# lookup per person, is several times cheaper than SQLite's two index searches per person).
_HELD = ("SELECT a.officer_id, d.serial FROM assignments a JOIN devices d ON d.id = a.device_id"
         " WHERE a.closed_at IS NULL")


def _marks(n: int) -> str:
    return ", ".join("?" * n)


# -- the roster's rows ---------------------------------------------------------------------

def all_by_id(db: Database) -> dict[str, dict[str, Any]]:
    """Every officer's row, by officer id."""
    return {r["officer_id"]: r for r in db.query("SELECT * FROM officers")}


def insert(db: Database, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert officers (all with the same keys, the first row's): on PostgreSQL in one
    statement (COPY), so their progress rows are computed once for all (m021)."""
    if not rows:
        return
    cols = list(rows[0])
    db.copy_rows("officers", cols, map(itemgetter(*cols), rows))


def update(db: Database, officer_id: str, changes: Mapping[str, Any], at: str) -> None:
    """Set some columns of one officer, stamping `updated_at`."""
    sets = ", ".join(f"{c} = ?" for c in changes)
    db.execute(f"UPDATE officers SET {sets}, updated_at = ? WHERE officer_id = ?",
               [*changes.values(), at, officer_id])


def holders(db: Database, officer_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Each of these people who holds a device now, with the device, by surname."""
    if not officer_ids:
        return []
    among, args = db.dialect.in_("a.officer_id", officer_ids)
    return db.query(
        "SELECT a.officer_id, o.forename || ' ' || o.surname AS name, o.collar_number,"
        " o.payroll_no, o.station, d.serial FROM assignments a"
        " JOIN devices d ON d.id = a.device_id JOIN officers o ON o.officer_id = a.officer_id"
        f" WHERE a.closed_at IS NULL AND {among} ORDER BY o.surname", args)


# -- lookups -------------------------------------------------------------------------------

def by_ref(db: Database, ref: str) -> dict[str, Any] | None:
    """One officer by officer id, payroll number, or collar number (a serving holder of it
    first, else its latest holder); `ref` as typed, the collar upper-cased here."""
    for sql, arg in (("SELECT * FROM officers WHERE officer_id = ?", ref),
                     ("SELECT * FROM officers WHERE payroll_no = ?", ref),
                     ("SELECT * FROM officers WHERE collar_number = ? AND status != 'LEAVER'",
                      ref.upper())):
        found = db.query(sql, [arg])
        if len(found) == 1:
            return found[0]
    found = db.query("SELECT * FROM officers WHERE collar_number = ? ORDER BY updated_at DESC",
                     [ref.upper()])
    return found[0] if found else None


def by_refs(db: Database, refs: Sequence[str]) -> list[dict[str, Any]]:
    """Every officer whose id, payroll or (upper-cased) collar number is one of these (≤ 300)."""
    if db.dialect.name == "postgresql":
        # One index search per column, each list one array: PostgreSQL's planner reads
        # the three-way OR of long lists as a scan of the whole roster.
        return db.query("SELECT * FROM officers WHERE officer_id = ANY(?) UNION SELECT *"
                        " FROM officers WHERE payroll_no = ANY(?) UNION SELECT * FROM"
                        " officers WHERE collar_number = ANY(?)",
                        [list(refs), list(refs), [c.upper() for c in refs]])
    marks = _marks(len(refs))
    return db.query(f"SELECT * FROM officers WHERE officer_id IN ({marks}) OR payroll_no"
                    f" IN ({marks}) OR collar_number IN ({marks})",
                    [*refs, *refs, *(c.upper() for c in refs)])


def ids_matching(db: Database, q: str) -> list[str]:
    """The officers whose id, payroll, collar number (upper-cased) or surname (any case) is q."""
    return [r["officer_id"] for r in db.query(
        "SELECT officer_id FROM officers WHERE officer_id = ? OR payroll_no = ?"
        f" OR collar_number = ? OR {db.dialect.ieq('surname')}", [q, q, q.upper(), q])]


def name_by_ref(db: Database, ref: str) -> dict[str, Any] | None:
    """Name and collar number of one officer by id, payroll or collar number (any case)."""
    found = db.query("SELECT forename || ' ' || surname AS name, collar_number"
                     " FROM officers WHERE officer_id = ? OR payroll_no = ? OR"
                     f" {db.dialect.ieq('collar_number')} LIMIT 1", [ref, ref, ref])
    return found[0] if found else None


def places(db: Database, column: str) -> list[str]:
    """Every non-empty value of one place column (area, station, district, team)."""
    if column not in ("area", "station", "district", "team"):
        raise ValueError(f"not a place column: {column}")
    return [r[0] for r in db.execute(f"SELECT DISTINCT {column} FROM officers"
                                     f" WHERE {column} IS NOT NULL AND {column} != ''")]


# -- the list ------------------------------------------------------------------------------

def name_clause(dialect: Dialect, ref: str, names: Sequence[tuple[str, str]]
                ) -> tuple[str, list[str]]:
    """People whose collar (upper-cased), payroll or id is `ref`, or whose surname starts
    with one of the (forename, surname) pairs' surname and forename with its forename."""
    clauses: list[tuple[str, list[str]]] = [
        ("(o.collar_number = ? OR o.payroll_no = ? OR o.officer_id = ?)",
         [ref.upper(), ref, ref])]
    for forename, surname in names:
        sql, args = dialect.iprefix("o.surname", surname)
        if forename:
            first, more = dialect.iprefix("o.forename", forename)
            sql, args = f"({sql} AND {first})", args + more
        clauses.append((sql, args))
    return "(" + " OR ".join(c for c, _ in clauses) + ")", [a for _, x in clauses for a in x]


def where(dialect: Dialect, exact: Mapping[str, str], anycase: Mapping[str, str],
          name: tuple[str, list[str]] | None = None) -> tuple[str, list[str]]:
    """The list's WHERE (with the word, or empty): columns equal to `exact` values, equal
    ignoring case to `anycase` ones, and a name clause (from `name_clause`)."""
    clauses, args = [], []
    for key, value in exact.items():
        clauses.append(f"o.{key} = ?")
        args.append(value)
    for key, value in anycase.items():
        clauses.append(dialect.ieq(f"o.{key}"))
        args.append(value)
    if name is not None:
        clauses.append(name[0])
        args += name[1]
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", args


def iter_with_device(db: Database, where_sql: str, args: Sequence[Any]
                     ) -> Iterator[dict[str, Any]]:
    """Officers (every column) matching a `where`, with the device each holds, in list order."""
    return db.iter_query(f"SELECT o.*, d.serial AS device {_JOIN} {where_sql} {_ORDER}",
                         list(args))


def iter_fields(db: Database, where_sql: str, args: Sequence[Any], columns: Sequence[str],
                device: bool) -> Iterator[tuple[Any, ...]]:
    """These columns of the officers matching a `where`, as tuples in list order, and (if
    `device`) last the serial each holds now."""
    chosen = ", ".join(f"o.{c}" for c in columns)
    if not device:
        return iter(db.execute(f"SELECT {chosen} FROM officers o {where_sql} {_ORDER}", args))
    if where_sql:  # a part of the roster: look up each one's device
        return iter(db.execute(f"SELECT {chosen}, d.serial {_JOIN} {where_sql} {_ORDER}",
                               args))
    held = dict(db.execute(_HELD))
    key = list(columns).index("officer_id")
    rows = db.execute(f"SELECT {chosen} FROM officers o {_ORDER}")
    return (row + (held.get(row[key]),) for row in rows)


def count(db: Database, where_sql: str, args: Sequence[Any]) -> int:
    """How many officers match a `where`."""
    return int(db.scalar(f"SELECT COUNT(*) FROM officers o {where_sql}", list(args)))
