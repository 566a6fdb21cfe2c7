"""Output conventions: results on stdout, the rest on stderr, `-q`, JSON errors, booleans."""

from __future__ import annotations

import csv
import io
import json
import sys

import pytest

from mdm import cli, csvio, examples
from mdm.officers.models import BOOLEAN


def _pick(inventory):
    person = next(p for p in inventory["roster"] if p["status"] == "ACTIVE")
    return inventory["delivery"][0]["serial_number"], person["officer_id"]


def test_an_error_under_json_is_one_object_on_stderr(mdm, inventory) -> None:
    for argv in (["--json", "officers", "show", "nobody"],
                 ["officers", "show", "nobody", "--json"]):
        result = mdm(*argv, code=2)
        assert result.stdout == ""
        error = json.loads(result.stderr)
        assert error["error"] == "no officer with id, payroll or collar number 'nobody'"
        assert "mdm officers list" in error["what_to_do"]
        assert "where" in error and error["exit_code"] == 2
    human = mdm("officers", "show", "nobody", code=2).stderr
    assert human.startswith("error: no officer") and "what to do:" in human


def test_a_json_error_names_where_each_problem_is(mdm, inventory, files) -> None:
    people = [dict(p) for p in inventory["roster"]]
    people[4]["status"] = "RETIRED"
    path = files("bad.csv", people, examples.ROSTER_COLUMNS)
    error = json.loads(mdm("--json", "officers", "import", path, code=2).stderr)
    assert str(path) in error["where"] and "row" in error["where"]
    assert [p["field"] for p in error["problems"]] == ["status"]
    assert "LEAVER" in error["problems"][0]["hint"] and error["what_to_do"]


def test_a_usage_error_under_json_is_json_too(mdm) -> None:
    error = json.loads(mdm("officers", "show", "--json", code=2).stderr)
    assert "Missing argument" in error["error"] and error["where"] == "the command line"
    assert "mdm officers show --help" in error["what_to_do"]
    assert "Usage:" in mdm("officers", "show", code=2).stderr  # people get click's usage


def test_results_go_to_stdout_the_rest_to_stderr_and_quiet_keeps_errors(mdm,
                                                                         inventory) -> None:
    serial, officer = _pick(inventory)
    quiet = mdm("-q", "assign", serial, officer)
    assert quiet.stdout == "" and quiet.stderr == ""
    refused = mdm("--quiet", "assign", serial, officer, code=2)
    assert refused.stderr.startswith("error:") and "is held by" in refused.stderr
    held = json.loads(mdm("-q", "custody", serial, "--json").stdout)
    assert held["holder"]["officer_id"] == officer
    returned = mdm("unassign", serial, "--reason", "returned")
    assert returned.stdout == "" and "taken back" in returned.stderr
    listed = mdm("-q", "officers", "list", "--limit", "3")
    assert listed.stderr == "" and "officer_id" in listed.stdout
    checkpoint = mdm("audit", "checkpoint")
    assert checkpoint.stdout.count("\n") == 1 and ":" in checkpoint.stdout
    assert "record this line" in checkpoint.stderr


def test_booleans_are_true_and_false_in_json_and_in_csv(mdm, inventory, files) -> None:
    officers = mdm.json("officers", "list")
    assert all(type(o[c]) is bool or (o[c] is None and c != "is_detective")
               for o in officers for c in BOOLEAN)
    assert {o["is_detective"] for o in officers} == {True, False}
    someone = officers[0]
    shown = mdm.json("officers", "show", someone["officer_id"])
    assert {c: shown[c] for c in BOOLEAN} == {c: someone[c] for c in BOOLEAN}
    assert [o["active"] for o in mdm.json("operators", "list")] == [True]
    exported = mdm("officers", "export").stdout
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert {r[c] for r in rows for c in BOOLEAN} <= {"true", "false", ""}
    assert {r["is_detective"] for r in rows} == {"true", "false"}
    as_json = json.loads(mdm("officers", "export", "--format", "json").stdout)
    assert {type(r["is_detective"]) for r in as_json} == {bool}
    again = mdm.json("officers", "import", files("exported.csv", exported))
    assert (again["inserted"], again["updated"]) == (0, 0)  # the export reads back as it is
    assert csvio.write_csv([{"a": True, "b": False, "c": None}], ["a", "b", "c"]) == \
        "a,b,c\r\ntrue,false,\r\n"


def test_an_internal_error_is_one_literal_line_or_a_json_object(monkeypatch, capsys) -> None:
    def broken() -> None:
        raise ValueError("[/x]\x1b]0;pwned\x07")

    monkeypatch.setattr(cli, "app", broken)
    for argv, as_json in ((["mdm", "officers", "list"], False),
                          (["mdm", "--json", "officers", "list"], True)):
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as exited:
            cli.main()
        assert exited.value.code == 70
        err = capsys.readouterr().err
        assert "\x1b" not in err and "Traceback" not in err
        if as_json:
            assert json.loads(err)["error"] == "internal error: ValueError: [/x]\x1b]0;pwned\x07"
        else:
            assert "internal error: ValueError: [/x]\\x1b]0;pwned\\x07" in err and "-v" in err
