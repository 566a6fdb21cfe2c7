"""The SQL fragments where SQLite and PostgreSQL differ: what each means, run on SQLite,
and that the case-insensitive lookups keep SQLite's NOCASE indexes in use."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mdm.store import connect, dialect
from mdm.store.db import Database
from mdm.store.dialect import POSTGRESQL, SQLITE


@pytest.fixture
def words() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, doc TEXT)")
    conn.executemany("INSERT INTO t (name, doc) VALUES (?, ?)", [
        ("Kendal", '{"sha256": "ab", "n": 1}'), ("KENDAL", None), ("Kendal_West", "not json"),
        ("Keswick", '{"sha256": "cd"}'), ("O'Neill", "[]"), ("100%", '{"n": 2}')])
    return conn


def _ids(conn: sqlite3.Connection, where: str, args: list[object]) -> list[int]:
    return [r[0] for r in conn.execute(f"SELECT id FROM t WHERE {where} ORDER BY id", args)]


def test_the_sqlite_fragments_match_as_they_say(words: sqlite3.Connection) -> None:
    d = SQLITE
    assert _ids(words, d.ieq("name"), ["kendal"]) == [1, 2]
    assert _ids(words, d.iin("name", 2), ["KESWICK", "o'neill"]) == [4, 5]
    assert _ids(words, d.ilike("name"), ["kendal\\_%"]) == [3]  # `_` escaped: no wildcard
    sql, args = d.iprefix("name", "kEn")
    assert _ids(words, sql, args) == [1, 2, 3]
    sql, args = d.iprefix("name", "100%")
    assert _ids(words, sql, args) == [6]
    assert words.execute(f"SELECT {d.group_concat('name', ', ')} FROM"
                         " (SELECT name FROM t WHERE id < 3 ORDER BY id)").fetchone() == \
        ("Kendal, KENDAL",)
    found = [r[0] for r in words.execute(f"SELECT {d.json_text('doc', 'sha256')} FROM t"
                                         " ORDER BY id")]
    assert found == ["ab", None, None, "cd", None, None]  # no JSON there: NULL, no error
    assert [r[0] for r in words.execute(f"SELECT name FROM t ORDER BY {d.nocase('name')}, id"
                                        " LIMIT 3")] == ["100%", "Kendal", "KENDAL"]


def test_each_engine_is_named_and_postgresql_compares_through_lower() -> None:
    assert (SQLITE.name, POSTGRESQL.name) == ("sqlite", "postgresql")
    assert Database.dialect is dialect.SQLITE
    for method, args in (("ieq", ("c",)), ("ilike", ("c",)), ("iin", ("c", 3))):
        text = getattr(POSTGRESQL, method)(*args)
        assert "COLLATE" not in text and text.count("?") == (args[1] if len(args) > 1 else 1)
    assert POSTGRESQL.ieq("o.station") == "lower(o.station) = lower(?)"
    sql, args = POSTGRESQL.iprefix("o.surname", "50%_off\\")
    assert sql.count("?") == 1 and args == ["50\\%\\_off\\\\%"]  # its own wildcards escaped
    assert "string_agg" in POSTGRESQL.group_concat("x", ",")
    assert "->>" in POSTGRESQL.json_text("after", "sha256")
    for d in (SQLITE, POSTGRESQL):  # nothing PostgreSQL could read as a placeholder
        for text in (d.ieq("c"), d.ilike("c"), d.group_concat("c", "; "), d.nocase("c"),
                     d.json_text("c", "k"), d.iin("c", 2), d.iprefix("c", "x")[0]):
            assert "%" not in text and '"' not in text


def test_case_insensitive_lookups_keep_the_nocase_indexes_on_sqlite(tmp_path: Path) -> None:
    db = connect(tmp_path / "mdm.db")
    d = db.dialect
    surname, args = d.iprefix("surname", "fell")
    for sql, params in ((f"SELECT id FROM devices WHERE {d.ieq('serial')}", ["ab1"]),
                        (f"SELECT id FROM devices WHERE {d.iin('serial', 2)}", ["a", "b"]),
                        (f"SELECT officer_id FROM officers WHERE {d.ieq('station')}", ["x"]),
                        (f"SELECT officer_id FROM officers WHERE {surname}", args)):
        plan = " ".join(r[-1] for r in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))
        assert "USING" in plan and "INDEX" in plan and "SCAN" not in plan, (sql, plan)
    db.conn.close()


def test_text_after_the_first_separator_and_the_counters_of_increasing_keys() -> None:
    conn = sqlite3.connect(":memory:")
    found = [conn.execute(f"SELECT {SQLITE.after_first('t', ':')} FROM (SELECT ? AS t)",
                          [text]).fetchone()[0]
             for text in ("device:SN1", "officer:a:b", "ca", ":x")]
    assert found == ["SN1", "a:b", "ca", "x"]
    conn.execute("CREATE TABLE c (serial INTEGER PRIMARY KEY AUTOINCREMENT, n TEXT)")
    assert conn.execute(SQLITE.next_serial("c", "serial")).fetchone()[0] == 1
    conn.executemany("INSERT INTO c (serial, n) VALUES (?, 'x')", [(1,), (2,)])
    conn.execute("DELETE FROM c WHERE serial = 2")
    assert conn.execute(SQLITE.next_serial("c", "serial")).fetchone()[0] == 3  # never reused
    conn.executemany("INSERT INTO c (n) VALUES (?)",
                     [("custody.assign",), ("custody/x",), ("custodyx",), ("Custody.a",),
                      ("custody.",)])
    sql, args = SQLITE.prefix("n", "custody.")
    assert [r[0] for r in conn.execute(f"SELECT n FROM c WHERE {sql} ORDER BY n", args)] == [
        "custody.", "custody.assign"]  # exact case, nothing past the dot's neighbour
    assert POSTGRESQL.prefix("n", "custody.") == ("starts_with(n, ?)", ["custody."])
    assert "strpos(subject, ':')" in POSTGRESQL.after_first("subject", ":")
    assert POSTGRESQL.next_serial("c", "serial") == "SELECT COALESCE(MAX(serial), 0) + 1 FROM c"
    for d in (SQLITE, POSTGRESQL):
        for text in (d.after_first("c", ":"), d.next_serial("c", "k")):
            assert "%" not in text and '"' not in text and "?" not in text
