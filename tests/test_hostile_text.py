"""Text is data: markup and terminal control in a roster, a device or the inventory is shown.

A surname of `[/x]`, a device that answers `ESC ] 0 ; pwned BEL` or a reason typed with a
right-to-left override must reach the operator as visible text, in every table, message
and failure table, and never crash the command, style the output or drive the terminal.
`--json` keeps the exact value. Control characters go into the inventory directly (as an
older version or another tool could have left them); markup arrives through a roster.
"""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mdm import examples, ui
from mdm.cli import app
from mdm.errors import PartialFailure, Problem

MARKUP = "[/x][bold]B[/bold][link=https://e.vil]L[/link]"
CONTROLS = "\x1b[2J\x1b]0;pwned\x07\r\x01\x7f\x85\x9b\u202e"
HOSTILE = f"Smith{MARKUP}{CONTROLS}Z"
# How HOSTILE must look on a terminal: the markup as typed, each control as an escape.
SHOWN = "Smith" + MARKUP + r"\x1b[2J\x1b]0;pwned\x07\r\x01\x7f\x85\x9b\u202eZ"
RAW = ("\x1b", "\x07", "\r", "\x01", "\x7f", "\x85", "\x9b", "\u202e")
SHIPPED = Path(__file__).resolve().parent.parent / "playbooks" / "policies"


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """A terminal wide enough that no cell wraps, so a value can be found in one piece."""
    monkeypatch.setenv("COLUMNS", "4000")


@pytest.fixture
def roster() -> list[dict[str, Any]]:
    """The usual roster, with markup in one officer's surname and station (as HR sent it)."""
    people = examples.generate_roster(60, seed=7)
    people[0].update(surname=f"Smith{MARKUP}", station=f"Kendal{MARKUP}")
    return people


def run(mdm: Any, *args: str, code: int | tuple[int, ...] = 0) -> Any:
    """Run mdm; check the exit code, that nothing escaped the error boundary, and no raw control."""
    result = mdm.runner.invoke(app, [str(a) for a in args])
    codes = code if isinstance(code, tuple) else (code,)
    assert result.exit_code in codes, (
        f"mdm {' '.join(map(str, args))} exited {result.exit_code}\nstdout: {result.stdout}\n"
        f"stderr: {result.stderr}\nexc: {result.exception!r}")
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    for raw in RAW:
        assert raw not in result.stdout and raw not in result.stderr, repr(raw)
    return result


@pytest.fixture
def hostile(mdm: Any, inventory: dict[str, Any], db_path: Path,
            tmp_path: Path) -> dict[str, Any]:
    """One officer and one enrolled device whose every free-text field is hostile."""
    person = inventory["roster"][0]
    serial = inventory["delivery"][0]["serial_number"]
    assert person["status"] == "ACTIVE"
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE officers SET surname = ?, station = ? WHERE officer_id = ?",
                     (HOSTILE, HOSTILE, person["officer_id"]))
        conn.execute("UPDATE devices SET model = ?, marketing_name = ?, status = 'enrolled',"
                     " last_contact_error = ?, supplier = ? WHERE serial = ?",
                     (HOSTILE, HOSTILE, HOSTILE, json.dumps({"carrier": HOSTILE}), serial))
        device_id = conn.execute("SELECT id FROM devices WHERE serial = ?", (serial,)).fetchone()[0]
        conn.execute("INSERT INTO device_facts (device_id, collected_at, os_release, sdk,"
                     " security_patch, crypto_state, packages, dpc_status, props)"
                     " VALUES (?, '2015-04-01T09:00:00.000000Z', ?, 23, '2015-03-01', ?, '{}',"
                     " NULL, '{}')", (device_id, HOSTILE, HOSTILE))
    conn.close()
    assigned = mdm("assign", serial, person["officer_id"], "--reason", HOSTILE)
    return {"person": person, "serial": serial, "assigned": assigned}


def test_officers_list_and_show_print_hostile_names_literally(mdm, hostile) -> None:
    listed = run(mdm, "officers", "list").stdout
    assert SHOWN in listed and f"Kendal{MARKUP}" not in listed  # the inventory's value won
    shown = run(mdm, "officers", "show", hostile["person"]["officer_id"]).stdout
    assert SHOWN in shown
    exact = json.loads(run(mdm, "officers", "show", hostile["person"]["officer_id"],
                           "--json").stdout)
    assert exact["surname"] == HOSTILE and exact["station"] == HOSTILE
    assert [o for o in json.loads(run(mdm, "--json", "officers", "list").stdout)
            if o["surname"] == HOSTILE]


def test_a_roster_with_markup_imports_and_lists(mdm, inventory) -> None:
    listed = run(mdm, "officers", "list", "--station", f"Kendal{MARKUP}").stdout
    assert f"Smith{MARKUP}" in listed and f"Kendal{MARKUP}" in listed


def test_devices_show_and_find_print_the_device_and_its_facts_literally(mdm, hostile) -> None:
    shown = run(mdm, "devices", "show", hostile["serial"])
    assert shown.stdout.count(SHOWN) >= 6  # model, name, last error, holder, facts, custody
    assert f"carrier={SHOWN}" in shown.stdout
    found = run(mdm, "devices", "find", hostile["serial"]).stdout
    assert SHOWN in found
    by_name = run(mdm, "devices", "find", HOSTILE).stdout
    assert hostile["serial"] in by_name
    exact = json.loads(run(mdm, "devices", "show", hostile["serial"], "--json").stdout)
    assert exact["model"] == HOSTILE and exact["facts"]["os_release"] == HOSTILE


def test_exports_are_exact_data_piped_and_visible_on_a_terminal(mdm, hostile, tmp_path,
                                                                monkeypatch) -> None:
    out = tmp_path / "devices.csv"
    done = run(mdm, "devices", "export", "-o", out)
    assert str(out) in done.stderr
    with out.open(encoding="utf-8", newline="") as fh:
        exported = list(csv.DictReader(fh))
    assert next(r for r in exported if r["serial"] == hostile["serial"])["model"] == HOSTILE
    piped = mdm.runner.invoke(app, ["devices", "export"])
    assert piped.exit_code == 0 and HOSTILE in piped.stdout  # a pipe gets the data as it is
    monkeypatch.setattr(ui, "_is_terminal", lambda stream: True)
    on_terminal = run(mdm, "devices", "export").stdout
    assert SHOWN in on_terminal and on_terminal.count("\n") == 21  # its own line ends stay


def test_custody_views_and_messages_print_names_and_reasons_literally(mdm, hostile,
                                                                      inventory) -> None:
    assigned = hostile["assigned"].stderr
    assert SHOWN in assigned and not any(raw in assigned for raw in RAW)  # names the holder
    officer = hostile["person"]["officer_id"]
    at = run(mdm, "custody", hostile["serial"]).stdout
    assert SHOWN in at
    held = run(mdm, "custody", "--officer", officer).stdout
    assert held.count(SHOWN) >= 2  # the title (the holder's name) and the reason
    other = inventory["delivery"][1]["serial_number"]
    refused = run(mdm, "assign", other, officer, code=2).stderr
    assert SHOWN in refused and "already holds" in refused
    moved = run(mdm, "unassign", hostile["serial"], "--reason", "returned").stderr
    assert SHOWN in moved


def test_groups_print_descriptions_and_members_literally(mdm, hostile) -> None:
    run(mdm, "groups", "create", "crew", "--description", HOSTILE)
    run(mdm, "groups", "add", "crew", hostile["person"]["officer_id"])
    assert SHOWN in run(mdm, "groups", "list").stdout
    assert SHOWN in run(mdm, "groups", "show", "crew").stdout


def test_the_audit_log_prints_hostile_reasons_literally(mdm, hostile) -> None:
    log = run(mdm, "audit", "log", "--subject", f"device:{hostile['serial']}").stdout
    assert MARKUP in log and r"\u001b[2J" in log and r"\u202e" in log
    exact = json.loads(run(mdm, "audit", "log", "--json").stdout)
    assert any(r["after"] and r["after"].get("reason") == HOSTILE for r in exact)


def test_policy_show_prints_a_hostile_setting_literally(mdm, hostile, tmp_path,
                                                       monkeypatch) -> None:
    folder = tmp_path / "policies"
    shutil.copytree(SHIPPED, folder)
    baseline = folder / "00-baseline.yaml"
    text = baseline.read_text()
    assert "If found, call 101." in text
    hostile_yaml = r'"Smith' + MARKUP + r'\e[2J\e]0;pwned\a\r\x01\x7f\x85\x9b\u202eZ"'
    baseline.write_text(text.replace(
        '"Property of Cumbria Constabulary. If found, call 101."', hostile_yaml))
    monkeypatch.setenv("MDM_POLICIES", str(folder))
    shown = run(mdm, "policy", "show", "--officer", hostile["person"]["officer_id"]).stdout
    assert SHOWN in shown
    exact = json.loads(run(mdm, "policy", "show", "--device", hostile["serial"],
                           "--json").stdout)
    assert {"setting": "lock.message", "value": HOSTILE, "layer": "force-baseline"} \
        in exact["settings"]


def test_the_compliance_report_prints_holders_stations_and_reasons_literally(
        mdm, hostile, monkeypatch) -> None:
    monkeypatch.setenv("MDM_POLICIES", str(SHIPPED))
    report = run(mdm, "compliance", "report", code=(0, 1)).stdout
    assert report.count(SHOWN) >= 3  # holder, station, the encryption reason; by station
    exact = json.loads(run(mdm, "compliance", "report", "--json", code=(0, 1)).stdout)
    mine = next(d for d in exact["devices"] if d["serial"] == hostile["serial"])
    assert mine["station"] == HOSTILE


def test_a_failure_table_shows_device_stderr_literally(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "4000")
    failed = PartialFailure("1 of 2 device(s) were not reached", [
        Problem(f"device R58F{MARKUP}", f"reading facts failed (exit 1): {HOSTILE}",
                f"look at {HOSTILE}", "step_failed")])
    ui.error(failed)
    err = capsys.readouterr().err
    assert f"R58F{MARKUP}" in err and err.count(SHOWN) == 2
    assert not any(raw in err for raw in RAW)
    ui.error(failed, as_json=True)
    err = capsys.readouterr().err
    assert not any(raw in err for raw in RAW)
    assert json.loads(err)["problems"][0]["message"].endswith(HOSTILE)


@given(st.text())
def test_literal_leaves_nothing_a_terminal_would_obey(text: str) -> None:
    shown = ui.literal(text)
    assert shown.isprintable()
    if text.isprintable():
        assert shown == text
    lines = ui._literal_lines(text)  # CSV on a terminal: line ends and tabs stay
    assert lines.replace("\r\n", "").replace("\n", "").replace("\t", "").isprintable()
    assert lines.count("\n") == text.count("\n")


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)))
def test_json_keeps_exact_values_and_prints_no_control(data: Any) -> None:
    text = ui.json_text(data)
    assert json.loads(text) == data
    assert text.replace("\n", "").isprintable()


# -- hostile lab devices: what a device says crosses real SSH ----------------------------

def _set_prop(device: Any, key: str, value: str) -> None:
    """Change one getprop value on a lab device (the pool restores props after the test)."""
    path = device.path / "props"
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith(key + "=")]
    path.write_text("\n".join(lines + [f"{key}={value}"]) + "\n")


# What a device can put in a prop: no line breaks (getprop prints one prop a line).
DEVICE_SAYS = f"6.0.1{MARKUP}\x1b[2J\x1b]0;pwned\x07\u202e"
DEVICE_SHOWN = "6.0.1" + MARKUP + r"\x1b[2J\x1b]0;pwned\x07\u202e"


@pytest.mark.lab
def test_a_device_reporting_a_hostile_serial_cannot_break_the_failure_table(
        mdm, lab, delivered) -> None:
    device = delivered(1)[0]
    _set_prop(device, "ro.serialno", DEVICE_SAYS)
    result = run(mdm, "enrol", "device", device.serial, "--address", device.address,
                 "--trust-on-first-use", code=1)
    # the device's words are quoted (cut to a readable length), as typed, never as markup
    assert device.serial in result.stderr and "[/x][bold]B[/bold][link=" in result.stderr


@pytest.mark.lab
def test_hostile_facts_from_a_device_are_shown_literally(mdm, lab, enrolled) -> None:
    device = enrolled(1)[0]
    _set_prop(device, "ro.build.version.release", DEVICE_SAYS)
    run(mdm, "devices", "refresh")
    assert DEVICE_SHOWN in run(mdm, "devices", "show", device.serial).stdout
    exact = json.loads(run(mdm, "devices", "show", device.serial, "--json").stdout)
    assert exact["facts"]["os_release"] == DEVICE_SAYS

