"""Finding people as the helpdesk types them, and naming people in every message."""

from __future__ import annotations

from typing import Any

import pytest

from mdm import examples

pytestmark = pytest.mark.backends


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(r["officer_id"] for r in rows)


def test_officers_list_name_finds_people_as_the_helpdesk_types_them(mdm, inventory) -> None:
    people = inventory["roster"]
    person = next(p for p in people if p["collar_number"])
    surname, forename = person["surname"], person["forename"]
    same_surname = _ids([p for p in people if p["surname"] == surname])
    starts = _ids([p for p in people if p["surname"].lower().startswith(surname[:3].lower())])
    both = _ids([p for p in people if p["surname"] == surname and p["forename"] == forename])

    assert _ids(mdm.json("officers", "list", "--name", surname.upper())) == same_surname
    assert _ids(mdm.json("officers", "list", "--name", surname[:3].lower())) == starts
    for typed in (f"{forename} {surname}", f"{forename.lower()} {surname[:4]}",
                  f"{surname}, {forename}", f"{surname} {forename}"):
        assert _ids(mdm.json("officers", "list", "--name", typed)) == both, typed
    assert person["officer_id"] in _ids(mdm.json("officers", "list", "--name",
                                                 person["collar_number"]))
    assert person["officer_id"] in _ids(mdm.json("officers", "list", "--name",
                                                 person["payroll_no"]))
    station = _ids(mdm.json("officers", "list", "--name", surname, "--station",
                            person["station"]))
    assert station == _ids([p for p in people if p["surname"] == surname
                            and p["station"] == person["station"]])
    assert mdm.json("officers", "list", "--name", "Zzyzx") == []
    assert "--name is empty" in mdm("officers", "list", "--name", " ", code=2).stderr


def test_the_leaver_report_names_the_person(mdm, inventory, files) -> None:
    people = [dict(p) for p in inventory["roster"]]
    leaver = next(p for p in people if p["collar_number"] and p["device_eligible"] == "true")
    serial = inventory["delivery"][0]["serial_number"]
    mdm("assign", serial, leaver["officer_id"])
    leaver["status"] = "LEAVER"
    err = mdm("officers", "import", files("r2.csv", people, examples.ROSTER_COLUMNS)).stderr
    assert (f"leaver {leaver['forename']} {leaver['surname']} (collar"
            f" {leaver['collar_number']}, {leaver['station']}) still holds device {serial}") \
        in " ".join(err.split())


def test_custody_messages_name_people_by_name_collar_and_station(mdm, inventory) -> None:
    people = [p for p in inventory["roster"] if p["collar_number"]
              and p["device_eligible"] == "true"]
    serials = [d["serial_number"] for d in inventory["delivery"]]
    a, b = people[0], people[1]
    named = f"{a['forename']} {a['surname']} (collar {a['collar_number']}, {a['station']})"
    out = mdm("assign", serials[0], a["officer_id"])
    assert named in " ".join(out.stderr.split())
    err = mdm("assign", serials[0], b["officer_id"], code=2).stderr
    assert f"is held by {named}" in " ".join(err.split())
    err = mdm("assign", serials[1], a["collar_number"], code=2).stderr
    assert f"{named} already holds device {serials[0]}" in " ".join(err.split())
    holder = mdm.json("devices", "show", serials[0])["holder"]
    assert (holder["name"], holder["collar_number"], holder["station"]) == (
        f"{a['forename']} {a['surname']}", a["collar_number"], a["station"])
