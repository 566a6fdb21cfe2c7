"""Selectors never succeed silently; devices list and export take them; filters are checked."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from tests.helpers import db_fingerprint, rows

pytestmark = pytest.mark.backends


@pytest.fixture
def held(mdm: Any, inventory: dict[str, Any], files: Any) -> dict[str, Any]:
    """Ten delivered devices allocated: serial → the holder's roster row."""
    people = [p for p in inventory["roster"]
              if p["status"] == "ACTIVE" and p["device_eligible"] == "true"]
    serials = [d["serial_number"] for d in inventory["delivery"]]
    path = files("ten.csv", "serial_number,officer\n" + "".join(
        f"{s},{p['officer_id']}\n" for s, p in zip(serials, people[:10], strict=False)))
    mdm("assign", "--from", path)
    _pilot(mdm, people[-1])
    return dict(zip(serials, people[:10], strict=False))


def _pilot(mdm: Any, person: dict[str, Any]) -> None:
    """The shipped policy tree has a pilot layer: give it a member so the tree validates."""
    mdm("groups", "create", "pilot")
    mdm("groups", "add", "pilot", person["officer_id"])


def test_devices_list_by_holder_and_device_terms(mdm, inventory, held) -> None:
    station = next(iter(held.values()))["station"]
    at_station = sorted(s for s, p in held.items() if p["station"] == station)
    listed = mdm.json("devices", "list", f"station={station.upper()}")  # any case
    assert [d["serial"] for d in listed] == at_station
    assert {d["holder_station"] for d in listed} == {station}
    everyone = mdm.json("devices", "list")
    assert len(everyone) == len(inventory["delivery"])  # --json lists all by default
    assert [d["serial"] for d in mdm.json("devices", "list", "status=DELIVERED", "--limit", "3")] \
        == sorted(d["serial_number"] for d in inventory["delivery"])[:3]
    pcsos = sorted(s for s, p in held.items() if p["worker_type"] == "PCSO")
    if pcsos:
        assert [d["serial"] for d in mdm.json("devices", "list", "worker-type=pcso")] == pcsos
    serial, person = next((s, p) for s, p in held.items() if p["collar_number"])
    by_collar = mdm.json("devices", "list", f"officer={person['collar_number']}")
    assert [(d["serial"], d["holder_id"]) for d in by_collar] == [(serial, person["officer_id"])]
    two = sorted(held)[:2]
    assert [d["serial"] for d in mdm.json("devices", "list", two[0].lower(), two[1])] == two
    table = mdm("devices", "list", "--limit", "2")
    assert f"showing 2 of {len(inventory['delivery'])}" in table.stderr


def test_group_selector_picks_the_members_devices(mdm, held) -> None:
    members = sorted(held)[:3]
    mdm("groups", "create", "wave-1")
    mdm("groups", "add", "wave-1", *(held[s]["officer_id"] for s in members))
    assert [d["serial"] for d in mdm.json("devices", "list", "group=WAVE-1")] == members
    assert [d["serial"] for d in mdm.json("devices", "list", "group=wave-1,status=delivered",
                                          f"officer={held[sorted(held)[5]]['officer_id']}")] \
        == sorted([*members, sorted(held)[5]])


@pytest.mark.parametrize(("selector", "says"), [
    ("station=Kendall", "station 'Kendall' is not in the inventory"),
    ("R58TYPO0000", "no serial or IMEI 'R58TYPO0000'"),
    ("group=pilto", "group 'pilto' is not in the inventory"),
    ("officer=nobody", "no officer with id, payroll or collar number 'nobody'"),
    ("status=lost", "no device with status lost"),
    ("model=SM-N910F,status=retired", "no device with status retired"),
])
def test_a_selector_that_matches_no_device_is_exit_2_naming_it(mdm, inventory, held, db_path,
                                                              selector, says) -> None:
    before = db_fingerprint(db_path)
    for command in (["devices", "list"], ["devices", "export"]):
        err = mdm(*command, selector, code=2).stderr
        assert f"selector {selector!r}" in err and "nothing was done" in err, (command, err)
        assert says in err, err
    assert db_fingerprint(db_path) == before  # not even an export audit row


def test_policy_reads_refuse_a_selector_that_matches_no_device(mdm, inventory, held,
                                                              db_path) -> None:
    before = db_fingerprint(db_path)
    for command in (["policy", "diff"], ["policy", "push", "--check"], ["compliance", "report"]):
        for selector in ("station=Kendall", "R58TYPO0000"):
            err = mdm(*command, selector, code=2).stderr
            assert f"selector {selector!r} matches no device" in err, (command, err)
    assert db_fingerprint(db_path) == before


def test_a_typo_is_met_with_what_there_is(mdm, inventory, held) -> None:
    station = next(iter(held.values()))["station"]
    err = mdm("devices", "list", f"station={station}x", code=2).stderr
    assert f"did you mean {station}?" in err
    a, b = sorted(held)[:2]
    err = mdm("devices", "list", f"{a},officer={held[b]['officer_id']}", code=2).stderr
    assert "no device matches all of its terms together" in err
    err = mdm("devices", "list", "station=Nowhere", "R58NOPE", code=2).stderr
    assert "2 selectors select no device" in err
    assert "'station=Nowhere'" in err and "'R58NOPE'" in err


@pytest.mark.parametrize(("selector", "allowed"), [
    ("status=enroled", "did you mean enrolled?"),
    ("worker_type=PCSOs", "OFFICER, PCSO, SPECIAL, STAFF"),
    ("rank=captain", "CONSTABLE, SERGEANT"),
    ("colour=blue", "key one of:"),
    ("station=", "key one of:"),
    ("status=enrolled,,model=x", "has an empty term"),
])
def test_unknown_values_and_keys_are_refused_with_the_allowed_ones(mdm, inventory, selector,
                                                                   allowed) -> None:
    for command in (["devices", "list"], ["policy", "diff"]):
        err = mdm(*command, selector, code=2).stderr
        assert allowed in err, (command, err)


def test_fleet_reads_refuse_an_empty_fleet(mdm, inventory) -> None:
    # Only delivered devices: there is nothing to push to, diff or judge.
    _pilot(mdm, inventory["roster"][0])
    for command in (["policy", "diff"], ["policy", "push", "--check"], ["compliance", "report"]):
        err = mdm(*command, code=2).stderr
        assert "no device is enrolled, provisioned" in err or \
            "no device is enrolled or provisioned" in err
        assert "(the inventory has 20 delivered)" in err
    err = mdm("policy", "push", "--check", inventory["delivery"][0]["serial_number"],
              code=2).stderr
    assert "selects no enrolled or provisioned device (it selects 1 delivered)" in err
    assert mdm.json("devices", "list")  # listing is fine: it does not act on anything


def test_export_takes_selectors_and_logs_them(mdm, inventory, held, db_path) -> None:
    station = next(iter(held.values()))["station"]
    at_station = sorted(s for s, p in held.items() if p["station"] == station)
    body = mdm("devices", "export", f"station={station}").stdout
    exported = list(csv.DictReader(io.StringIO(body)))
    assert [r["serial"] for r in exported] == at_station
    as_json = json.loads(mdm("devices", "export", f"station={station}", "--format",
                             "json").stdout)
    assert [r["serial"] for r in as_json] == at_station
    logged = json.loads(rows(db_path, "SELECT after FROM audit WHERE action ="
                                      " 'devices.export' ORDER BY seq DESC LIMIT 1")[0][0])
    assert logged["selectors"] == [f"station={station}"] and logged["rows"] == len(at_station)


def test_officer_filters_refuse_unknown_values_and_ignore_case(mdm, inventory) -> None:
    err = mdm("officers", "list", "--worker-type", "PCSOs", code=2).stderr
    assert "OFFICER, PCSO, SPECIAL, STAFF" in err
    assert "CONSTABLE" in mdm("officers", "list", "--rank", "captain", code=2).stderr
    assert "ACTIVE, ABSENT, LEAVER" in mdm("officers", "list", "--status", "gone",
                                           code=2).stderr
    pcsos = [p["officer_id"] for p in inventory["roster"] if p["worker_type"] == "PCSO"]
    assert sorted(o["officer_id"] for o in mdm.json("officers", "list", "--worker-type",
                                                    "pcso")) == sorted(pcsos)
    sergeants = [p["officer_id"] for p in inventory["roster"] if p["rank"] == "SERGEANT"]
    assert sorted(o["officer_id"] for o in mdm.json("officers", "list", "--rank", "sgt")) \
        == sorted(sergeants)


# -- fleet commands against the lab: a typo reaches no device and says so -----------------

@pytest.mark.lab
def test_fleet_commands_refuse_a_selector_that_picks_nothing_before_contacting_anyone(
        mdm, lab, enrolled, delivered, db_path) -> None:
    devices = enrolled(2)
    spare = delivered(1)[0]
    logs = [(d.path / "log" / "commands").read_text() for d in devices]
    before = db_fingerprint(db_path)
    for command in (["devices", "refresh"], ["policy", "push"]):
        err = mdm(*command, "station=Kendall", code=2).stderr
        assert "selector 'station=Kendall'" in err, err
        err = mdm(*command, devices[0].serial, "R58F4TYPO99", code=2).stderr
        assert "'R58F4TYPO99'" in err and "no serial or IMEI" in err
        err = mdm(*command, spare.serial, code=2).stderr
        assert "selects no enrolled or provisioned device (it selects 1 delivered)" in err
    assert "did you mean enrolled?" in mdm("devices", "refresh", "status=Enroled",
                                           code=2).stderr
    assert [(d.path / "log" / "commands").read_text() for d in devices] == logs
    assert db_fingerprint(db_path) == before
    reached = mdm.json("devices", "refresh", "STATUS=Enrolled")  # any case
    assert sorted(r["serial"] for r in reached["done"]) == sorted(d.serial for d in devices)
