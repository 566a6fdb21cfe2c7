"""Roster import, re-import (transfers, promotions, leavers), lookups and export."""

from __future__ import annotations

import csv
import io
import json

import pytest

from mdm import examples
from tests.helpers import db_fingerprint, rows

pytestmark = pytest.mark.backends


def test_import_then_list_and_show(mdm, inventory, db_path) -> None:
    people = inventory["roster"]
    assert rows(db_path, "SELECT COUNT(*) FROM officers") == [(60,)]
    listed = mdm.json("officers", "list", "--worker-type", "PCSO")
    assert listed and all(o["worker_type"] == "PCSO" for o in listed)
    assert len(listed) == sum(p["worker_type"] == "PCSO" for p in people)
    someone = next(p for p in people if p["collar_number"])
    shown = mdm.json("officers", "show", someone["collar_number"])
    assert shown["officer_id"] == someone["officer_id"]
    assert shown["device"] is None and shown["custody"] == []
    by_rank = mdm.json("officers", "list", "--rank", "Sergeant", "--area",
                       someone["area"].lower())
    assert all(o["rank"] == "SERGEANT" and o["area"] == someone["area"] for o in by_rank)


def test_reimport_updates_in_place_and_never_deletes(mdm, inventory, files, db_path) -> None:
    people = [dict(p) for p in inventory["roster"]]
    moved, promoted, leaver = people[0], people[1], people[2]
    moved["station"], moved["area"] = "Kendal", "SOUTH"
    promoted["rank"] = "INSPECTOR" if promoted["worker_type"] == "OFFICER" else promoted["rank"]
    promoted["surname"] = "Newname"
    leaver["status"], leaver["leave_date"] = "LEAVER", "2015-05-01"
    dropped = people.pop()  # missing from the later export: kept, and counted
    new = examples.generate_roster(61, seed=99)[0]
    new["payroll_no"], new["collar_number"] = "P999999", "9999"
    people.append(new)
    result = mdm.json("officers", "import",
                      files("later.csv", people, examples.ROSTER_COLUMNS))
    assert (result["inserted"], result["updated"], result["not_in_file"]) == (1, 3, 1)
    assert rows(db_path, "SELECT COUNT(*) FROM officers") == [(61,)]
    assert rows(db_path, "SELECT station, area FROM officers WHERE officer_id = ?",
                (moved["officer_id"],)) == [("Kendal", "SOUTH")]
    assert rows(db_path, "SELECT status FROM officers WHERE officer_id = ?",
                (leaver["officer_id"],)) == [("LEAVER",)]
    assert rows(db_path, "SELECT COUNT(*) FROM officers WHERE officer_id = ?",
                (dropped["officer_id"],)) == [(1,)]
    log = mdm.json("audit", "log", "--subject", "roster:later.csv")
    assert log[-1]["after"]["changes"][leaver["officer_id"]]["status"] == ["ACTIVE", "LEAVER"]
    again = mdm.json("officers", "import", files("again.csv", people[::-1],
                                                 examples.ROSTER_COLUMNS))
    assert (again["inserted"], again["updated"]) == (0, 0)
    same = mdm.json("officers", "import", files("later.csv", people, examples.ROSTER_COLUMNS))
    assert same["already_imported"]["operator"] == "admin"


def test_leaver_still_holding_a_device_is_reported(mdm, inventory, files) -> None:
    people = [dict(p) for p in inventory["roster"]]
    serial = inventory["delivery"][0]["serial_number"]
    mdm("assign", serial, people[0]["officer_id"])
    people[0]["status"] = "LEAVER"
    result = mdm.json("officers", "import", files("r2.csv", people, examples.ROSTER_COLUMNS))
    assert result["leavers_holding_devices"] == [
        {"officer_id": people[0]["officer_id"], "serial": serial,
         "name": f"{people[0]['forename']} {people[0]['surname']}",
         "collar_number": people[0]["collar_number"] or None,
         "payroll_no": people[0]["payroll_no"], "station": people[0]["station"]}]


def test_every_bad_row_is_listed_and_nothing_changes(mdm, inventory, files, db_path) -> None:
    people = [dict(p) for p in inventory["roster"][:5]]
    people[0]["worker_type"] = "CONSTABULARY"
    people[1]["collar_number"] = "12-34"
    people[2]["status"] = ""
    people[3]["payroll_no"] = people[4]["payroll_no"]
    people[4]["start_date"] = "31/13/2015"
    before = db_fingerprint(db_path)
    result = mdm("officers", "import", files("bad.csv", people, examples.ROSTER_COLUMNS), code=2)
    err = result.stderr
    for line, column in ((2, "worker_type"), (3, "collar_number"), (4, "status"),
                         (6, "payroll_no"), (6, "start_date")):
        assert f"row {line}, {column}" in err, err
    assert db_fingerprint(db_path) == before


def test_a_bad_worker_type_is_the_only_problem_named_not_the_rank(mdm, inventory,
                                                                   files) -> None:
    people = [dict(p) for p in inventory["roster"][:3]]
    people[0].update(worker_type="Specials", rank="special sergeant")  # a Special's rank
    people[1].update(worker_type="PCSOs", rank="")
    people[2].update(worker_type="Officers", rank="Sergeant")
    result = mdm("--json", "officers", "import",
                 files("bad.csv", people, examples.ROSTER_COLUMNS), code=2)
    problems = json.loads(result.stderr)["problems"]
    assert [(p["where"].rsplit(" ", 1)[-1], p["field"]) for p in problems] == [
        ("2", "worker_type"), ("3", "worker_type"), ("4", "worker_type")], problems


def test_collar_clash_with_a_serving_officer_is_refused(mdm, inventory, files) -> None:
    people = inventory["roster"]
    holder = next(p for p in people if p["collar_number"])
    newcomer = dict(examples.generate_roster(61, seed=5)[0])
    newcomer.update(collar_number=holder["collar_number"], payroll_no="P777777")
    result = mdm("officers", "import",
                 files("new.csv", [newcomer], examples.ROSTER_COLUMNS), code=2)
    assert "collar number" in result.stderr and holder["officer_id"] in result.stderr


def test_export_csv_is_spreadsheet_safe_and_logged(mdm, inventory, files) -> None:
    people = [dict(p) for p in inventory["roster"]]
    people[0]["surname"] = "=HYPERLINK(\"http://x\")"
    mdm("officers", "import", files("r.csv", people, examples.ROSTER_COLUMNS))
    out = mdm("officers", "export", "--reason", "audit request 12").stdout
    exported = list(csv.DictReader(io.StringIO(out)))
    assert len(exported) == 60
    hit = next(r for r in exported if r["officer_id"] == people[0]["officer_id"])
    assert hit["surname"] == "'=HYPERLINK(\"http://x\")"
    log = mdm.json("audit", "log", "--subject", "officers")
    assert log[-1]["action"] == "officers.export"
    assert log[-1]["after"]["reason"] == "audit request 12"


def test_a_place_no_one_has_is_refused_with_a_suggestion(mdm, inventory) -> None:
    station = inventory["roster"][0]["station"]
    typo = station + "x"
    err = mdm("officers", "list", "--station", typo, code=2).stderr
    assert f"no one in the roster has station '{typo}'" in err and station in err
    assert "did you mean" in mdm("officers", "list", "--area", "Nroth", code=2).stderr
    assert mdm.json("officers", "list", "--station", station.upper())  # any case still finds


def test_a_near_miss_worker_type_is_suggested(mdm, inventory) -> None:
    err = mdm("officers", "list", "--worker-type", "PCSOs", code=2).stderr
    assert "did you mean PCSO?" in err


@pytest.mark.backends("sqlite")
def test_a_generated_roster_past_3000_people_imports(mdm, files) -> None:
    people = examples.generate_roster(3000, seed=45)
    collars = [p["collar_number"] for p in people if p["collar_number"]]
    assert len(collars) == len(set(collars))  # the bands no longer run into each other
    mdm("operators", "add", "admin")
    done = mdm.json("officers", "import", files("roster.csv", people, examples.ROSTER_COLUMNS))
    assert done["inserted"] == 3000
