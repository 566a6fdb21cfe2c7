"""Lists: one streamed path for every list, in the format asked for, sized to the terminal.

Piped, a list is every row as TSV (or CSV, JSON, JSONL); on a terminal it is a page of a
table whose key columns (ids, serials, dates) are never cut, with the total on stderr.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mdm import ui
from mdm.officers import service as officers
from mdm.store import connect

pytestmark = pytest.mark.backends


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make stdout and stderr look like a terminal COLUMNS wide (80 unless changed)."""
    monkeypatch.setattr(ui, "_is_terminal", lambda stream: True)
    monkeypatch.setenv("COLUMNS", "80")
    return monkeypatch


def _ids(people: list[dict[str, Any]]) -> list[str]:
    return [p["officer_id"] for p in people]


def test_piped_lists_are_every_row_as_tsv_and_formats_agree(mdm, inventory) -> None:
    people = inventory["roster"]
    piped = mdm("officers", "list")
    lines = piped.stdout.splitlines()
    assert lines[0].split("\t") == list(officers.LIST_COLUMNS)
    assert len(lines) == 1 + len(people) and piped.stderr == ""
    assert all(len(line.split("\t")) == len(officers.LIST_COLUMNS) for line in lines)
    as_json = json.loads(mdm("officers", "list", "--format", "json").stdout)
    assert sorted(_ids(as_json)) == sorted(_ids(people))
    assert {type(o["is_detective"]) for o in as_json} == {bool}  # every field, exact
    assert mdm.json("officers", "list") == as_json  # --json is --format json
    jsonl = [json.loads(line) for line in
             mdm("officers", "list", "--format", "jsonl").stdout.splitlines()]
    assert jsonl == as_json
    tsv_ids = [line.split("\t")[0] for line in lines[1:]]
    assert tsv_ids == _ids(as_json)  # the same order in every format
    rows = list(csv.DictReader(io.StringIO(mdm("officers", "list", "--format", "CSV").stdout)))
    assert [r["officer_id"] for r in rows] == tsv_ids
    assert {r["device"] for r in rows} == {""}
    holder = next(p for p in people if p["status"] == "ACTIVE")
    serial = inventory["delivery"][0]["serial_number"]
    mdm("assign", serial, holder["officer_id"], "--reason", "test")
    for extra in ([], ["--station", holder["station"]]):  # the whole roster, and a part
        listed = [dict(zip(officers.LIST_COLUMNS, line.split("\t"), strict=True))
                  for line in mdm("officers", "list", *extra).stdout.splitlines()[1:]]
        as_json = mdm.json("officers", "list", *extra)
        assert [r["officer_id"] for r in listed] == _ids(as_json)
        assert {r["officer_id"]: r["device"] for r in listed if r["device"]} == \
            {o["officer_id"]: o["device"] for o in as_json if o["device"]} == \
            {holder["officer_id"]: serial}


def test_limit_all_and_the_total_on_stderr(mdm, inventory) -> None:
    limited = mdm("officers", "list", "--format", "jsonl", "--limit", "7")
    assert len(limited.stdout.splitlines()) == 7
    assert "showing 7 of 60 officers; --all for every row" in limited.stderr
    assert json.loads(limited.stdout.splitlines()[0]) == mdm.json("officers", "list")[0]
    assert mdm("-q", "officers", "list", "--limit", "7").stderr == ""
    pcsos = mdm("officers", "list", "--worker-type", "pcso", "--limit", "1")
    count = sum(p["worker_type"] == "PCSO" for p in inventory["roster"])
    assert f"showing 1 of {count} officers" in pcsos.stderr  # the total counts the filter
    exact = mdm("officers", "list", "--limit", "60")
    assert len(exact.stdout.splitlines()) == 61 and exact.stderr == ""
    assert "--all and --limit" in mdm("officers", "list", "--all", "--limit", "3",
                                      code=2).stderr
    assert "--json and --format tsv" in mdm("officers", "list", "--json", "--format", "tsv",
                                            code=2).stderr
    assert "Invalid value" in mdm("officers", "list", "--format", "xml", code=2).stderr


def test_a_terminal_gets_a_page_with_the_total_and_all_on_request(mdm, inventory,
                                                                  terminal) -> None:
    people = inventory["roster"]
    page = mdm("officers", "list")
    assert sum(oid in page.stdout for oid in _ids(people)) == ui.PAGE
    assert f"showing {ui.PAGE} of 60 officers; --all for every row" in page.stderr
    everyone = mdm("officers", "list", "--all")
    assert all(oid in everyone.stdout for oid in _ids(people))
    assert "showing" not in everyone.stderr
    piped_format = mdm("officers", "list", "--format", "tsv")  # a chosen format: every row
    assert len(piped_format.stdout.splitlines()) == 61
    nobody = mdm("officers", "list", "--name", "Zzyzxq")  # a search may find no one
    assert "no officers" in nobody.stderr


def test_key_columns_are_never_cut_on_a_narrow_terminal(mdm, inventory, terminal) -> None:
    serial = inventory["delivery"][0]["serial_number"]
    holder = inventory["roster"][0]["officer_id"]
    mdm("assign", serial, holder)
    for width in ("50", "80", "200"):
        terminal.setenv("COLUMNS", width)
        result = mdm("officers", "list", "--all")
        for person in inventory["roster"]:  # a 36-character id, never folded nor cut
            assert person["officer_id"] in result.stdout
            if person["collar_number"]:
                assert f" {person['collar_number']} " in result.stdout
        assert serial in result.stdout and "…" not in result.stdout
        if width == "50":
            assert "not shown, to fit the terminal:" in result.stderr
            assert "surname" in result.stderr
        if width == "200":
            assert "not shown" not in result.stderr


def test_custody_tables_of_show_keep_serials_ids_and_dates_whole(mdm, inventory,
                                                                 terminal) -> None:
    serial = inventory["delivery"][0]["serial_number"]
    first, second = [p for p in inventory["roster"] if p["status"] == "ACTIVE"][:2]
    mdm("assign", serial, first["officer_id"], "--reason", "issued for the night turn")
    mdm("reassign", serial, second["officer_id"], "--reason", "swapped: cracked screen")
    terminal.setenv("COLUMNS", "60")
    held = mdm.json("officers", "show", first["officer_id"])["custody"]
    shown = mdm("officers", "show", first["officer_id"])
    assert serial in shown.stdout and "…" not in shown.stdout
    for row in held:
        assert row["opened_at"] in shown.stdout and row["closed_at"] in shown.stdout
    chain = mdm.json("devices", "show", serial)["custody"]
    shown = mdm("devices", "show", serial)
    assert "…" not in shown.stdout
    for row in chain:
        assert row["officer_id"] in shown.stdout and row["opened_at"] in shown.stdout
        assert row["closed_at"] is None or row["closed_at"] in shown.stdout
    assert "(--json shows every column)" in shown.stderr


def _render(rows: list[dict[str, Any]], width: int, monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str], **kwargs: Any) -> tuple[str, str]:
    monkeypatch.setenv("COLUMNS", str(width))
    ui.listing(rows, ["serial", "opened_at", "note", "model"], fmt="table", limit=ui.ALL,
               key_columns=("serial", "opened_at"), **kwargs)
    out = capsys.readouterr()
    return out.out, out.err


ROWS = [{"serial": f"R58F4LONGSERIAL{i:05d}", "opened_at": f"2026-11-29T23:29:0{i}.295635Z",
         "note": "returned by the officer at the front desk, screen cracked, " * 2,
         "model": "SM-N910F"} for i in range(5)]


def test_a_table_folds_or_drops_other_columns_and_keeps_keys_whole(monkeypatch,
                                                                   capsys) -> None:
    out, err = _render(ROWS, 70, monkeypatch, capsys)
    for row in ROWS:
        assert row["serial"] in out and row["opened_at"] in out
    assert max(len(line) for line in out.splitlines()) <= 70
    assert "…" not in out and "front desk" in out  # the note is folded, not cut
    assert "SM-N910F" not in out and "model" in err  # no room for it: left out, and named
    narrow, err = _render(ROWS, 30, monkeypatch, capsys)  # keys alone are wider
    for row in ROWS:
        assert row["serial"] in narrow and row["opened_at"] in narrow
    assert "note" in err and "model" in err and "front desk" not in narrow


def test_a_listing_reads_rows_lazily_and_writes_as_it_goes(monkeypatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    pulled = []

    def rows(n: int) -> Iterator[dict[str, Any]]:
        for i in range(n):
            pulled.append(i)
            if i == 1500:  # earlier rows already written: nothing waits for the end
                assert out.getvalue().count("\n") > 1000
            yield {"id": i, "name": f"n{i}"}

    assert ui.listing(rows(10**9), ["id", "name"], fmt="tsv", limit=5) == 5
    assert len(pulled) == 6  # five shown, one to learn that there are more
    for fmt in ("tsv", "csv", "json", "jsonl"):
        pulled.clear()
        ui.listing(rows(3000), ["id", "name"], fmt=fmt)
        assert len(pulled) == 3000


def test_a_tail_listing_keeps_the_last_rows_and_counts_them_all(monkeypatch, capsys) -> None:
    rows = ({"seq": i} for i in range(1, 121))
    assert ui.listing(rows, ["seq"], fmt="jsonl", limit=50, tail=True, noun="audit rows") == 50
    out = capsys.readouterr()
    assert [json.loads(line)["seq"] for line in out.out.splitlines()] == list(range(71, 121))
    assert "showing 50 of 120 audit rows" in out.err


def test_tsv_and_csv_escape_tabs_line_ends_and_controls_visibly(capsys) -> None:
    rows = [{"id": "A1", "text": "tab\there\nnew line\r\x1b[2J\u202e", "ok": True, "n": None},
            {"id": "A2", "text": "=HYPERLINK(\"x\")", "ok": False, "n": 3}]
    ui.listing(rows, ["id", "text", "ok", "n"], fmt="tsv")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3  # one line a row, whatever the values hold
    assert lines[1].split("\t") == ["A1", r"tab\there\nnew line\r\x1b[2J\u202e", "true", ""]
    assert lines[2].split("\t") == ["A2", "=HYPERLINK(\"x\")", "false", "3"]
    ui.listing(rows, ["id", "text", "ok"], fmt="csv")
    text = capsys.readouterr().out
    assert "\x1b" not in text and "\t" not in text
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[1] == ["A1", r"tab\there\nnew line\r\x1b[2J\u202e", "true"]
    assert parsed[2][1] == "'=HYPERLINK(\"x\")"  # a spreadsheet will not run it
    ui.listing(rows, ["id"], fmt="json")
    assert json.loads(capsys.readouterr().out) == rows  # JSON: the exact values


def test_tuple_rows_print_as_the_same_rows_as_mappings_do(capsys) -> None:
    columns = ["id", "name", "ok", "n"]
    rows = [{"id": f"A{i}", "name": "Siân Ó Briain", "ok": i % 2 == 0, "n": None}
            for i in range(1200)]  # more than one chunk
    rows[700]["name"] = "tab\there\nnew line\x1b[2J"
    rows[900]["n"] = 3
    for fmt in ("tsv", "csv", "json", "jsonl"):
        ui.listing(rows, columns, fmt=fmt)
        as_mappings = capsys.readouterr().out
        ui.listing((tuple(r[c] for c in columns) for r in rows), columns, fmt=fmt)
        assert capsys.readouterr().out == as_mappings, fmt
    lines = as_mappings.splitlines()
    assert len(lines) == 1200


def test_a_closed_pipe_ends_a_listing_quietly(monkeypatch) -> None:
    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    monkeypatch.setattr(sys, "stdout", Closed())
    assert ui.listing(({"id": i} for i in range(10)), ["id"], fmt="tsv") == 0


def test_filters_ignore_case_and_name_search_finds_people_as_typed(mdm, inventory) -> None:
    people = inventory["roster"]
    station = people[0]["station"]
    at_station = sorted(p["officer_id"] for p in people if p["station"] == station)
    for spelling in (station, station.upper(), station.lower()):
        assert sorted(_ids(mdm.json("officers", "list", "--station", spelling))) == at_station
    area = people[0]["area"]
    assert len(mdm.json("officers", "list", "--area", area.lower())) == \
        sum(p["area"] == area for p in people)
    someone = next(p for p in people if p["collar_number"])
    surname = someone["surname"]
    by_prefix = mdm.json("officers", "list", "--name", surname[:3].lower())
    assert someone["officer_id"] in _ids(by_prefix)
    assert all(o["surname"].lower().startswith(surname[:3].lower()) for o in by_prefix)
    full = mdm.json("officers", "list", "--name", f"{someone['forename']} {surname}".upper())
    assert someone["officer_id"] in _ids(full)
    assert all(o["forename"] == someone["forename"] for o in full)
    reverse = mdm.json("officers", "list", "--name", f"{surname}, {someone['forename'][:2]}")
    assert someone["officer_id"] in _ids(reverse)
    by_collar = mdm.json("officers", "list", "--name", someone["collar_number"].lower())
    assert _ids(by_collar) == [someone["officer_id"]]
    assert mdm.json("officers", "list", "--name", "%") == []  # wildcards are literal
    assert mdm.json("officers", "list", "--name", "_") == []


def test_unknown_filter_values_are_refused_naming_the_allowed_ones(mdm, inventory) -> None:
    refused = mdm("officers", "list", "--worker-type", "PCSOs", code=2)
    assert "OFFICER, PCSO, SPECIAL, STAFF" in refused.stderr
    assert "CONSTABLE" in mdm("officers", "list", "--rank", "Constabel", code=2).stderr
    assert "LEAVER" in mdm("officers", "list", "--status", "gone", code=2).stderr
    assert mdm.json("officers", "list", "--rank", "pc", "--status", "active")


# SQLite's query planner.
@pytest.mark.backends("sqlite")
def test_station_and_name_filters_are_served_by_indexes(inventory, db_path: Path) -> None:
    db = connect(db_path)
    for filters in ({"station": "kendal"}, {"name": "fell"}, {"name": "jo fell"},
                    {"name": "1033"}, {"area": "south"}):
        where, args = officers._where(db, filters)
        plan = " ".join(r[-1] for r in db.execute(
            f"EXPLAIN QUERY PLAN SELECT * FROM officers o {where}", args))
        assert "USING INDEX" in plan and "SCAN o" not in plan, (filters, plan)
    db.conn.close()
    assert ("officers_station_nocase",) in sqlite3.connect(db_path).execute(
        "SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()


def test_groups_operators_audit_and_custody_list_the_same_way(mdm, inventory) -> None:
    people = inventory["roster"]
    mdm("groups", "create", "pilot", "--description", "first users")
    mdm("groups", "add", "pilot", *_ids(people[:12]))
    members = mdm("groups", "show", "pilot", "--format", "jsonl", "--limit", "5")
    assert len(members.stdout.splitlines()) == 5 and "showing 5 of 12 members" in members.stderr
    assert {json.loads(line)["officer_id"] for line in members.stdout.splitlines()} <= \
        set(_ids(people[:12]))
    assert len(mdm.json("groups", "show", "pilot")["members"]) == 12  # JSON: the group
    tsv = mdm("groups", "list").stdout.splitlines()
    assert tsv[0].split("\t")[:2] == ["name", "members"] and tsv[1].split("\t")[:2] == \
        ["pilot", "12"]
    assert mdm("operators", "list", "--format", "csv").stdout.splitlines()[1].startswith(
        "admin,admin,true,")
    log = mdm("audit", "log", "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line)["action"] for line in log][-1] == "groups.add"
    newest = mdm("audit", "log", "--format", "tsv", "--limit", "2").stdout.splitlines()
    assert len(newest) == 3 and newest[-1].split("\t")[3] == "groups.add"
    serial = inventory["delivery"][0]["serial_number"]
    mdm("assign", serial, people[0]["officer_id"])
    held = mdm("custody", "--officer", people[0]["officer_id"]).stdout.splitlines()
    assert held[0].startswith("serial\topened_at") and held[1].startswith(serial + "\t")


def test_imports_and_exports_report_their_progress(mdm, files, db_path) -> None:
    from mdm import examples
    from mdm.devices import service as devices
    from mdm.enrol import manifest

    class Recorder:
        def __init__(self) -> None:
            self.phases: list[tuple[str, int, int]] = []

        def start(self, total: int, phase: str = "") -> None:
            self.phases.append((phase, total, 0))

        def advance(self, steps: int = 1) -> None:
            phase, total, done = self.phases[-1]
            self.phases[-1] = (phase, total, done + steps)

    mdm("operators", "add", "admin")
    db = connect(db_path)
    bar = Recorder()
    roster = examples.generate_roster(1200, seed=3)
    officers.import_roster(db, "admin", files("r.csv", roster, examples.ROSTER_COLUMNS), bar)
    assert bar.phases == [("checking rows", 1200, 1200), ("writing changes", 1200, 1200)]
    bar = Recorder()
    delivery = examples.generate_manifest(1100, seed=12)
    manifest.import_manifest(db, "admin", files("m.csv", delivery, examples.MANIFEST_COLUMNS),
                             bar)
    assert bar.phases == [("checking rows", 1100, 1100), ("writing devices", 1100, 1100)]
    for export in (officers.export, devices.export):
        bar = Recorder()
        export(db, "admin", "csv", None, progress=bar)
        assert bar.phases[0][1] == bar.phases[0][2] > 1000
    db.conn.close()


def test_a_progress_bar_shows_only_on_a_terminal_after_its_delay(monkeypatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(ui.time, "monotonic", lambda: clock[0])
    with ui.progress("piped") as bar:
        bar.start(10)
        clock[0] += 5
        bar.advance(5)
        assert bar._bar is None  # stderr is not a terminal
    monkeypatch.setattr(ui, "_is_terminal", lambda stream: True)
    with ui.progress("quick") as bar:
        bar.start(10)
        bar.advance(9)
        assert bar._bar is None  # under a second: nothing drawn
        clock[0] += 1.5
        bar.advance(1)
        assert bar._bar is not None
    ui.configure(quiet=True)
    try:
        with ui.progress("quiet") as bar:
            bar.start(10)
            clock[0] += 5
            bar.advance(1)
            assert bar._bar is None
    finally:
        ui.configure(quiet=False)
