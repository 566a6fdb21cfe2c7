"""assign/unassign --from FILE: every pair or none, one audit row, every problem by row."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mdm import examples
from mdm.devices import service as devices
from mdm.officers import service as officers
from mdm.store import connect
from tests.helpers import db_fingerprint, rows

pytestmark = pytest.mark.backends


def _people(inventory: dict[str, Any], eligible: bool = True) -> list[dict[str, Any]]:
    want = "true" if eligible else "false"
    return [p for p in inventory["roster"]
            if p["status"] == "ACTIVE" and p["device_eligible"] == want]


def _serials(inventory: dict[str, Any]) -> list[str]:
    return [d["serial_number"] for d in inventory["delivery"]]


def test_a_file_of_pairs_lands_whole_with_one_audit_row(mdm, inventory, files,
                                                        db_path) -> None:
    serials, people = _serials(inventory), _people(inventory)
    imei = inventory["delivery"][3]["imei1"]
    with_collar = [p for p in people if p["collar_number"]]
    text = ("Serial Number,Collar,Reason\r\n"  # spreadsheet header, aliases, CRLF
            f"{serials[0].lower()},{with_collar[0]['collar_number']},\r\n"
            f"{serials[1]},{with_collar[1]['collar_number']},swap for a cracked screen\r\n"
            f"{imei},{with_collar[2]['collar_number']},\r\n")
    path = files("wave.csv", text)
    audit_before = rows(db_path, "SELECT COUNT(*) FROM audit")[0][0]
    result = mdm.json("assign", "--from", path, "--reason", "wave 1")
    assert [(a["row"], a["serial"], a["officer_id"], a["reason"]) for a in result["allocated"]] \
        == [(2, serials[0], with_collar[0]["officer_id"], "wave 1"),
            (3, serials[1], with_collar[1]["officer_id"], "swap for a cracked screen"),
            (4, serials[3], with_collar[2]["officer_id"], "wave 1")]
    held = rows(db_path, "SELECT d.serial, a.officer_id, a.open_reason FROM assignments a"
                " JOIN devices d ON d.id = a.device_id WHERE a.closed_at IS NULL ORDER BY a.id")
    assert held == [(serials[0], with_collar[0]["officer_id"], "wave 1"),
                    (serials[1], with_collar[1]["officer_id"], "swap for a cracked screen"),
                    (serials[3], with_collar[2]["officer_id"], "wave 1")]
    audit = rows(db_path, "SELECT action, subject, after FROM audit WHERE seq > ?",
                 (audit_before,))
    assert len(audit) == 1 and audit[0][:2] == ("custody.assign", "file:wave.csv")
    listed = json.loads(audit[0][2])
    assert [p["serial"] for p in listed["pairs"]] == [serials[0], serials[1], serials[3]]
    assert listed["sha256"] == result["sha256"] and listed["rows"] == 3
    assert mdm.json("audit", "log", "--subject", "file:wave.csv")[0]["action"] == \
        "custody.assign"


def test_every_bad_row_is_named_and_nothing_changes(mdm, inventory, files, db_path) -> None:
    serials, people = _serials(inventory), _people(inventory)
    mdm("assign", serials[5], people[5]["officer_id"])  # serials[5] held; people[5] holds one
    leaver = dict(inventory["roster"][10])
    leaver["status"] = "LEAVER"
    roster = [leaver if p["officer_id"] == leaver["officer_id"] else p
              for p in inventory["roster"]]
    mdm("officers", "import", files("leavers.csv", roster, examples.ROSTER_COLUMNS))
    lines = [
        f"{serials[0]},{people[0]['officer_id']}",      # 2: fine
        f"NOSUCHSERIAL,{people[1]['officer_id']}",      # 3: unknown device
        f"{serials[2]},nobody-here",                    # 4: unknown officer
        f"{serials[3]},{leaver['officer_id']}",         # 5: a leaver
        f"{serials[0]},{people[4]['officer_id']}",      # 6: device also on row 2
        f"{serials[6]},{people[0]['payroll_no']}",      # 7: officer also on row 2 (by payroll)
        f"{serials[5]},{people[7]['officer_id']}",      # 8: device already held
        f"{serials[8]},{people[5]['officer_id']}",      # 9: officer already holds a device
        f"{serials[9]},",                               # 10: officer empty
    ]
    path = files("bad.csv", "serial_number,officer_id\n" + "\n".join(lines) + "\n")
    before = db_fingerprint(db_path)
    err = mdm("assign", "--from", path, code=2).stderr
    assert "8 problem(s); nothing was changed" in err
    expected = [("row 3, serial_number", "no device with serial or IMEI 'NOSUCHSERIAL'"),
                ("row 4, officer", "no officer with id, payroll or collar number"),
                ("row 5, officer", "is a leaver"),
                ("row 6, serial_number", "is also on row 2"),
                ("row 7, officer", "is also on row 2"),
                ("row 8, serial_number", f"device {serials[5]} is held by"),
                ("row 9, officer", f"already holds device {serials[5]}"),
                ("row 10, officer", "is empty")]
    for where, what in expected:
        assert any(f"bad.csv, {where}: " in line and what in line for line in err.splitlines()), \
            (where, what, err)
    assert f"{people[5]['forename']} {people[5]['surname']}" in err  # people are named
    assert db_fingerprint(db_path) == before


def test_not_device_eligible_people_need_a_reason_and_are_warned_about(
        mdm, inventory, files, db_path) -> None:
    serials = _serials(inventory)
    eligible, ineligible = _people(inventory), _people(inventory, eligible=False)
    path = files("mixed.csv", "serial_number,officer\n"
                 f"{serials[0]},{eligible[0]['officer_id']}\n"
                 f"{serials[1]},{ineligible[0]['payroll_no']}\n")
    before = db_fingerprint(db_path)
    err = mdm("assign", "--from", path, code=2).stderr
    assert "mixed.csv, row 3, officer: " in err and "not device-eligible" in err
    assert ineligible[0]["surname"] in err
    assert db_fingerprint(db_path) == before
    result = mdm("assign", "--from", path, "--reason", "chief officer's request")
    assert "warning:" in result.stderr and ineligible[0]["surname"] in result.stderr
    after = json.loads(rows(db_path, "SELECT after FROM audit ORDER BY seq DESC LIMIT 1")[0][0])
    assert [p.get("not_device_eligible", False) for p in after["pairs"]] == [False, True]

    # One at a time, the same rule.
    err = mdm("assign", serials[2], ineligible[1]["officer_id"], code=2).stderr
    assert "not device-eligible" in err and "--reason" in err
    out = mdm("assign", serials[2], ineligible[1]["officer_id"], "--reason", "cover")
    assert "warning:" in out.stderr
    assert rows(db_path, "SELECT COUNT(*) FROM assignments WHERE officer_id = ?",
                (ineligible[1]["officer_id"],)) == [(1,)]


def test_unassign_from_a_file_takes_back_every_device_or_none(mdm, inventory, files,
                                                            db_path) -> None:
    serials, people = _serials(inventory), _people(inventory)
    pairs = files("pairs.csv", "serial_number,officer\n" + "".join(
        f"{serials[i]},{people[i]['officer_id']}\n" for i in range(4)))
    mdm("assign", "--from", pairs)
    returns = files("returns.csv", "serial_number,reason\n"
                    f"{serials[0]},screen cracked\n{serials[1]},\n{serials[2]},\n")
    before = db_fingerprint(db_path)
    assert "a --reason is required" in mdm("unassign", "--from",
                                           files("bare.csv", f"serial\n{serials[0]}\n"),
                                           code=2).stderr
    err = mdm("unassign", "--from", returns, code=2).stderr  # rows 3 and 4 have no reason
    assert "returns.csv, row 3, reason" in err and "returns.csv, row 4, reason" in err
    not_held = files("not-held.csv", f"serial_number\n{serials[0]}\n{serials[9]}\n")
    err = mdm("unassign", "--from", not_held, "--reason", "x", code=2).stderr
    assert f"row 3, serial_number: device {serials[9]} is not allocated" in err
    assert db_fingerprint(db_path) == before

    result = mdm.json("unassign", "--from", returns, "--reason", "end of pilot")
    assert [(r["serial"], r["previous_holder"]["officer_id"], r["reason"])
            for r in result["returned"]] == [
        (serials[0], people[0]["officer_id"], "screen cracked"),
        (serials[1], people[1]["officer_id"], "end of pilot"),
        (serials[2], people[2]["officer_id"], "end of pilot")]
    assert rows(db_path, "SELECT d.serial FROM assignments a JOIN devices d ON d.id ="
                " a.device_id WHERE a.closed_at IS NULL") == [(serials[3],)]
    assert rows(db_path, "SELECT COUNT(*) FROM audit WHERE subject = 'file:returns.csv'") == \
        [(1,)]


def test_assign_usage_is_one_pair_or_one_file(mdm, inventory, files) -> None:
    serials, people = _serials(inventory), _people(inventory)
    path = files("p.csv", f"serial_number,officer\n{serials[0]},{people[0]['officer_id']}\n")
    assert "--from FILE (not both)" in mdm("assign", code=2).stderr
    assert "not both" in mdm("assign", serials[0], "--from", path, code=2).stderr
    assert "give the officer" in mdm("assign", serials[0], code=2).stderr
    assert "required column 'officer' is missing" in mdm(
        "assign", "--from", files("q.csv", f"serial_number\n{serials[0]}\n"), code=2).stderr


def test_bulk_lookups_find_what_single_lookups_find(mdm, inventory, db_path) -> None:
    db = connect(db_path)
    people = inventory["roster"]
    refs = ([p["officer_id"] for p in people[:5]] + [p["payroll_no"] for p in people[5:10]]
            + [p["collar_number"].lower() for p in people[10:20] if p["collar_number"]]
            + ["nobody", ""])
    found = officers.resolve_many(db, refs)
    for ref in refs:
        try:
            single = officers.resolve(db, ref)["officer_id"] if ref.strip() else None
        except Exception:
            single = None
        assert (found[ref]["officer_id"] if ref in found else None) == single, ref
    delivery = inventory["delivery"]
    device_refs = ([d["serial_number"] for d in delivery[:3]]
                   + [d["serial_number"].lower() for d in delivery[3:6]]
                   + [d["imei1"] for d in delivery[6:9]] + ["NOPE"])
    many = devices.get_many(db, device_refs)
    for ref in device_refs:
        try:
            single = devices.get(db, ref)["serial"]
        except Exception:
            single = None
        assert (many[ref]["serial"] if ref in many else None) == single, ref
    db.conn.close()
