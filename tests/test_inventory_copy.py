"""`mdm inventory copy`: SQLite → PostgreSQL and back, the same evidence on both sides."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mdm.store import audit, connect


@pytest.fixture
def lived_in(mdm: Any, inventory: dict[str, Any], db_path: Path) -> Path:
    """An SQLite inventory with custody history, a group and a few audit rows."""
    people = [p for p in inventory["roster"] if p["status"] == "ACTIVE"]
    serials = [d["serial_number"] for d in inventory["delivery"]]
    mdm("assign", serials[0], people[0]["officer_id"])
    mdm("assign", serials[1], people[1]["officer_id"])
    mdm("unassign", serials[0], "--reason", "returned")
    mdm("operators", "add", "helen", "--role", "helpdesk")
    return db_path


def _table_counts(db: Any) -> dict[str, int]:
    tables = ("officers", "devices", "device_imeis", "assignments", "audit", "audit_state",
              "operators")
    return {t: db.scalar(f"SELECT COUNT(*) FROM {t}") for t in tables}


def test_copy_to_postgresql_and_back_keeps_the_same_evidence(mdm: Any, lived_in: Path,
                                                             pg_url: str,
                                                             tmp_path: Path) -> None:
    there = mdm.json("inventory", "copy", str(lived_in), pg_url)
    assert there["verified"] is True
    source = connect(lived_in)
    target = connect(pg_url)
    try:
        assert there["audit_head"] == "{}:{}".format(*audit.head(source))
        assert audit.head(target) == audit.head(source)
        assert _table_counts(target) == _table_counts(source)
        assert there["tables"]["assignments"]["rows"] == 2
        verified = audit.verify(target)
        assert verified.ok and verified.as_dict() == audit.verify(source).as_dict()
        # The copy is a working inventory: the next write continues the same chain.
        mdm("--db", pg_url, "operators", "add", "ivan", "--role", "it")
        assert audit.head(target)[0] == audit.head(source)[0] + 1
        back = tmp_path / "back" / "mdm.db"
        back.parent.mkdir()
        dead = subprocess.Popen(["true"])
        dead.wait(timeout=30)
        left = [back.with_name(f".mdm.db.copy-{dead.pid}{end}") for end in ("", "-wal")]
        running = back.with_name(f".mdm.db.copy-{os.getppid()}-wal")  # a live process
        for file in (*left, running):
            file.write_bytes(b"from a copy killed with -9")
        again = mdm.json("inventory", "copy", pg_url, str(back))
        assert again["target"] == str(back)  # the file asked for, not the temporary one
        assert sorted(back.parent.iterdir()) == sorted([back, running])
        assert again["audit_head"] == "{}:{}".format(*audit.head(target))
        assert again["tables"]["assignments"] == there["tables"]["assignments"]
        copied = connect(back)
        try:
            assert audit.verify(copied).ok
            assert _table_counts(copied)["operators"] == _table_counts(source)["operators"] + 1
        finally:
            copied.conn.close()
    finally:
        source.conn.close()
        target.conn.close()
    verify = mdm.json("--db", str(back), "audit", "verify")
    assert verify["ok"] is True and verify["head"] == again["audit_head"]


def test_a_target_holding_an_inventory_is_refused_unless_replaced(mdm: Any, lived_in: Path,
                                                                  pg_url: str) -> None:
    mdm("--db", pg_url, "operators", "add", "someone", "--role", "admin")
    err = json.loads(mdm("inventory", "copy", str(lived_in), pg_url, "--json",
                         code=2).stderr)
    assert "already holds an inventory" in err["error"] and "--replace" in err["what_to_do"]
    with psycopg.connect(pg_url) as conn:  # untouched
        assert conn.execute("SELECT name FROM operators").fetchall() == [("someone",)]
    done = mdm.json("inventory", "copy", str(lived_in), pg_url, "--replace")
    assert done["verified"] is True
    with psycopg.connect(pg_url) as conn:
        names = {n for (n,) in conn.execute("SELECT name FROM operators")}
    assert names == {"admin", "helen"}


def test_a_failed_copy_leaves_the_target_as_it_was(mdm: Any, lived_in: Path, pg_url: str,
                                                   tmp_path: Path) -> None:
    # A value PostgreSQL's integer column can't take: the copy fails half-way, whole.
    conn = sqlite3.connect(lived_in)
    conn.execute("DROP TRIGGER policy_events_append_only")
    conn.execute("INSERT INTO policy_events (device_id, event, at) VALUES (1, 'sent', 'x')")
    conn.execute("UPDATE policy_events SET device_id = 'one'")
    conn.commit()
    conn.close()
    err = mdm("inventory", "copy", str(lived_in), pg_url, code=1).stderr
    assert "nothing was copied" in err and "policy_events" in err
    with psycopg.connect(pg_url) as pg:
        assert pg.execute("SELECT COUNT(*) FROM officers").fetchone() == (0,)
        assert pg.execute("SELECT COUNT(*) FROM audit").fetchone() == (0,)
    # Into a file: SQLite takes the text, but not the broken reference, at commit.
    target = tmp_path / "new.db"
    err = mdm("inventory", "copy", str(lived_in), str(target), code=1).stderr
    assert "nothing was copied" in err
    assert not target.exists() and not list(tmp_path.glob(".new.db*"))


def test_only_an_admin_copies(mdm: Any, lived_in: Path, pg_url: str) -> None:
    err = json.loads(mdm("--operator", "helen", "inventory", "copy", str(lived_in), pg_url,
                         "--json", code=2).stderr)
    assert "inventory.copy" in err["error"] or "admin" in err["error"]
