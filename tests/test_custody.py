"""The chain of custody: one holder per device, one device per officer, history kept."""

from __future__ import annotations

import sqlite3

import pytest

from tests.helpers import rows

pytestmark = pytest.mark.backends


def _ids(inventory):
    serials = [d["serial_number"] for d in inventory["delivery"]]
    people = [p for p in inventory["roster"] if p["status"] == "ACTIVE"]
    return serials, people


def test_assign_reassign_unassign_and_ask_who_held_it_when(mdm, inventory, db_path) -> None:
    serials, people = _ids(inventory)
    a, b = people[0], people[1]
    t_assign = mdm.json("assign", serials[0], a["officer_id"])["at"]
    t_move = mdm.json("reassign", serials[0], b["payroll_no"], "--reason", "swap")["at"]
    t_back = mdm.json("unassign", serials[0], "--reason", "returned to stores")["at"]
    shown = mdm.json("devices", "show", serials[0])
    assert [(h["officer_id"], h["open_reason"], h["close_reason"]) for h in shown["custody"]] == [
        (a["officer_id"], "allocated", "swap"), (b["officer_id"], "swap", "returned to stores")]
    assert shown["holder"] is None

    def holder(at: str):
        h = mdm.json("custody", serials[0], "--at", at)["holder"]
        return h and h["officer_id"]

    assert holder("2015-01-01T00:00") is None
    assert holder(t_assign) == a["officer_id"]
    assert holder(t_move) == b["officer_id"]  # the handover instant belongs to the new holder
    assert holder(t_back) is None
    held = mdm.json("custody", "--officer", b["officer_id"])["custody"]
    assert [(h["serial"], h["closed_at"]) for h in held] == [(serials[0], t_back)]
    as_csv = mdm("custody", "--officer", b["officer_id"], "--format", "csv").stdout
    assert as_csv.splitlines() == ["serial,opened_at,open_reason,closed_at,close_reason",
                                   f"{serials[0]},{t_move},swap,{t_back},returned to stores"]
    assert mdm("custody", serials[0], "--limit", "1", code=2).stderr
    assert rows(db_path, "SELECT COUNT(*) FROM audit WHERE subject = ?",
                (f"device:{serials[0]}",)) == [(3,)]


def test_one_holder_per_device_and_one_device_per_officer(mdm, inventory) -> None:
    serials, people = _ids(inventory)
    mdm("assign", serials[0], people[0]["officer_id"])
    err = mdm("assign", serials[0], people[1]["officer_id"], code=2).stderr
    assert "is held by" in err and people[0]["surname"] in err and "reassign" in err
    err = mdm("assign", serials[1], people[0]["officer_id"], code=2).stderr
    assert "already holds device" in err and serials[0] in err
    err = mdm("reassign", serials[1], people[0]["officer_id"], "--reason", "x", code=2).stderr
    assert "already holds device" in err
    assert "--reason is required" in mdm("unassign", serials[0], code=2).stderr
    assert "not allocated" in mdm("unassign", serials[1], "--reason", "x", code=2).stderr


def test_leavers_unknown_officers_and_devices_are_refused(mdm, inventory, files) -> None:
    serials, people = _ids(inventory)
    assert "no officer" in mdm("assign", serials[0], "nobody-here", code=2).stderr
    assert "no device" in mdm("assign", "NOSUCHSERIAL", people[0]["officer_id"], code=2).stderr
    assert "no device" in mdm("devices", "show", "NOSUCHSERIAL", code=2).stderr


# SQLite's triggers (tests/test_store_contract.py proves PostgreSQL's on both backends).
@pytest.mark.backends("sqlite")
def test_custody_rows_cannot_be_rewritten_or_deleted(mdm, inventory, db_path) -> None:
    serials, people = _ids(inventory)
    mdm("assign", serials[0], people[0]["officer_id"])
    mdm("unassign", serials[0], "--reason", "done")
    conn = sqlite3.connect(db_path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE assignments SET officer_id = ?", (people[1]["officer_id"],))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE assignments SET closed_at = '2099-01-01'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM assignments")
    conn.close()


def test_find_by_everything_the_helpdesk_is_told(mdm, inventory) -> None:
    serials, people = _ids(inventory)
    officer = next(p for p in people if p["collar_number"])
    mdm("assign", serials[2], officer["officer_id"])
    imei = inventory["delivery"][2]["imei1"]
    for query in (serials[2], serials[2].lower(), imei, officer["officer_id"],
                  officer["collar_number"], officer["surname"].upper(), officer["payroll_no"]):
        found = mdm.json("devices", "find", query)
        assert serials[2] in [f["serial"] for f in found], query
    assert mdm.json("devices", "find", "no-such-thing") == []


def test_local_times_are_uk_time(mdm) -> None:
    from mdm.timeutil import parse_instant

    assert parse_instant("2015-07-01T14:32") == "2015-07-01T13:32:00.000000Z"  # BST
    assert parse_instant("2015-01-05T14:32") == "2015-01-05T14:32:00.000000Z"  # GMT
    assert parse_instant("2015-01-05T14:32Z") == "2015-01-05T14:32:00.000000Z"
    mdm("operators", "add", "admin")
    assert "not a date" in mdm("custody", "X", "--at", "yesterday", code=2).stderr


def test_device_export_is_spreadsheet_safe_and_logged(mdm, inventory) -> None:
    import csv
    import io
    import json

    serials, people = _ids(inventory)
    mdm("assign", serials[0], people[0]["officer_id"])
    exported = list(csv.DictReader(io.StringIO(mdm("devices", "export").stdout)))
    assert len(exported) == 20
    held = next(r for r in exported if r["serial"] == serials[0])
    assert held["holder_id"] == people[0]["officer_id"]
    as_json = json.loads(mdm("devices", "export", "--format", "json").stdout)
    assert {d["serial"] for d in as_json} == set(serials)
    assert "not supported" in mdm("devices", "export", "--format", "xlsx", code=2).stderr
    assert [r["action"] for r in mdm.json("audit", "log", "--subject", "devices")] == [
        "devices.export", "devices.export"]
