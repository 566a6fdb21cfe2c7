"""The rollout plan: read strictly, checked against the roster, a pilot that mirrors the force."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import rows

pytestmark = pytest.mark.backends

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "playbooks" / "rollout.yaml"
ROSTER = ROOT / "inventory" / "examples" / "roster.csv"


@pytest.fixture
def force(mdm: Any) -> None:
    """The README's Cumbria-sized roster (1,480 people)."""
    mdm("operators", "add", "admin")
    mdm("officers", "import", ROSTER)


def _error(result: Any) -> dict[str, Any]:
    return json.loads(result.stderr.strip().splitlines()[-1])


def test_the_shipped_plan_places_every_eligible_person_in_exactly_one_wave(
        mdm: Any, force: None, db_path: Path) -> None:
    # Before the pilot is picked, its cohort matches nobody: named with file and line.
    err = _error(mdm("rollout", "validate", "--plan", SHIPPED, "--json", code=2))
    assert len(err["problems"]) == 1
    assert "group=pilot" in err["problems"][0]["message"]
    assert err["problems"][0]["where"].endswith("line 43")
    mdm("rollout", "pilot-select", "--seed", "30", "--apply")
    result = mdm.json("rollout", "validate", "--plan", SHIPPED)
    sizes = {w["name"]: w["people"] for w in result["waves"]}
    assert list(sizes) == ["pilot", "north", "west", "south", "hq_and_staff"]
    assert sizes["pilot"] == 55
    eligible = rows(db_path, "SELECT COUNT(*) FROM officers WHERE device_eligible = 1"
                             " AND status != 'LEAVER'")[0][0]
    assert sum(sizes.values()) == result["in_waves"] == eligible == 1395
    assert len(result["not_eligible"]) == 85  # reported, not dropped
    assert result["not_pnb_required_in_waves"] > 0


def test_leavers_are_reported_and_a_person_in_no_wave_is_named(
        mdm: Any, force: None, db_path: Path, tmp_path: Path) -> None:
    mdm("rollout", "pilot-select", "--seed", "1", "--apply")
    leaver = rows(db_path, "SELECT officer_id FROM officers WHERE area = 'NORTH'"
                           " AND device_eligible = 1 AND status != 'LEAVER'"
                           " ORDER BY officer_id LIMIT 1 OFFSET 50")[0][0]
    rows(db_path, "UPDATE officers SET status = 'LEAVER' WHERE officer_id = ?", (leaver,))
    result = mdm.json("rollout", "validate", "--plan", SHIPPED)
    assert [p["officer_id"] for p in result["leavers"]] == [leaver]
    plan = tmp_path / "plan.yaml"
    plan.write_text(SHIPPED.read_text().replace("cohort: {area: WEST,",
                                                "cohort: {area: WEST, rank: CONSTABLE,"))
    err = _error(mdm("rollout", "validate", "--plan", plan, "--json", code=2))
    assert any("fall in no wave" in p["message"] and "WEST" in p["message"]
               for p in err["problems"])


BAD = """\
shifts:
  patterns:
    response:
      start: 2015-03-30
      cycle: E E L X
      shifts: {E: "07:00-15:00", L: "25:00-07:00"}
  teams:
    RESPONSE_A: {pattern: response}
waves:
  - name: pilot
    start: 2015-03-30
    end: 2015-04-26
    cohort: {area: NORTH}
    gate: {min_handed_over_percent: 120}
  - name: north
    start: 2015-04-20
    end: 2015-04-10
    cohort: {area: NROTH}
"""


def test_a_bad_plan_names_every_problem_with_its_line_and_changes_nothing(
        mdm: Any, force: None, tmp_path: Path, db_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(BAD)
    err = _error(mdm("rollout", "validate", "--plan", plan, "--json", code=2))
    found = {(p["where"].rsplit(" ", 1)[-1], p["message"].split(" ")[0]) for p in err["problems"]}
    messages = " | ".join(p["message"] for p in err["problems"])
    assert "'25:00-07:00' does not parse" in messages  # line 6
    assert "uses 'X', which is not a shift" in messages  # line 5
    assert "120 % is outside 0–100 %" in messages  # line 14
    assert "ends (2015-04-10) before it starts" in messages  # line 17
    assert "overlaps wave pilot" in messages  # line 16
    lines = {p["message"][:20]: p["where"].rsplit(" ", 1)[-1] for p in err["problems"]}
    assert set(lines.values()) == {"5", "6", "14", "16", "17"}, found
    # The file parses; now its cohorts: NROTH matches nobody, with a suggestion.
    plan.write_text(BAD.replace("X", "R").replace("25:00", "23:00").replace("120", "90")
                    .replace("2015-04-20", "2015-04-27").replace("2015-04-10", "2015-05-10"))
    err = _error(mdm("rollout", "validate", "--plan", plan, "--json", code=2))
    nobody = [p for p in err["problems"] if "matches nobody" in p["message"]]
    assert len(nobody) == 1 and nobody[0]["where"].endswith("line 15")
    assert "did you mean NORTH" in nobody[0]["hint"]
    plan.write_text(SHIPPED.read_text().replace("start: 2015-03-30", "start: '2015-03-30'", 1))
    err = _error(mdm("rollout", "validate", "--plan", plan, "--json", code=2))
    assert [(p["message"], p["hint"]) for p in err["problems"]] == [
        ("'2015-03-30' is in quotes, so it is text, not a date",
         "write it without quotes: 2015-03-30")]
    assert rows(db_path, "SELECT COUNT(*) FROM audit WHERE action LIKE 'rollout%'") == [(0,)]


def test_pilot_select_mirrors_the_force_reproducibly_and_apply_fills_the_group(
        mdm: Any, force: None, db_path: Path) -> None:
    first = mdm.json("rollout", "pilot-select", "--size", "55", "--stratify",
                     "rank,worker_type,area", "--seed", "7")
    again = mdm.json("rollout", "pilot-select", "--size", "55", "--stratify",
                     "rank,worker_type,area", "--seed", "7")
    assert first["pilot"] == again["pilot"] and len(first["pilot"]) == 55
    other = mdm.json("rollout", "pilot-select", "--seed", "8")
    assert other["pilot"] != first["pilot"]
    assert abs(first["largest_deviation"]["deviation_points"]) <= 3.0
    assert max(abs(r["deviation_points"]) for r in first["mix"]) == abs(
        first["largest_deviation"]["deviation_points"])
    assert {r["area"] for r in first["pilot"]} == {"NORTH", "WEST", "SOUTH", "HQ"}
    assert len({r["rank"] for r in first["pilot"]}) >= 4
    assert rows(db_path, "SELECT COUNT(*) FROM group_members") == [(0,)]  # a proposal only
    mdm("rollout", "pilot-select", "--seed", "7", "--apply")
    members = {r[0] for r in rows(db_path, "SELECT officer_id FROM group_members"
                                           " WHERE group_name = 'pilot'")}
    assert members == {p["officer_id"] for p in first["pilot"]}
    audit = rows(db_path, "SELECT after FROM audit WHERE action = 'rollout.pilot_select'")
    assert len(audit) == 1 and json.loads(audit[0][0])["seed"] == 7
    mdm("rollout", "pilot-select", "--seed", "9", "--apply", code=2)  # the group is not empty
    mdm("rollout", "pilot-select", "--stratify", "rank,shoe_size", code=2)


def test_advance_holds_back_a_wave_until_the_gate_holds_and_an_override_is_admin_only(
        mdm: Any, force: None, db_path: Path) -> None:
    mdm("rollout", "pilot-select", "--seed", "30", "--apply")
    mdm("operators", "add", "rosa", "--role", "rollout")
    mdm("rollout", "advance", "north", "--plan", SHIPPED, code=2)  # the pilot is not open
    mdm("rollout", "advance", "pilot", "--plan", SHIPPED, operator="rosa")
    held = mdm("rollout", "advance", "north", "--plan", SHIPPED, "--json", code=1,
               operator="rosa")
    unmet = {p["field"]: p["message"] for p in _error(held)["problems"]}
    assert set(unmet) == {"min_handed_over_percent", "min_compliant_percent"}
    assert "0 of 55 handed over" in unmet["min_handed_over_percent"]
    mdm("rollout", "advance", "north", "--plan", SHIPPED, "--override", "--reason", "x",
        code=2, operator="rosa")  # rollout managers cannot override
    mdm("rollout", "advance", "north", "--plan", SHIPPED, "--override", code=2)  # no reason
    done = mdm.json("rollout", "advance", "north", "--plan", SHIPPED, "--override",
                    "--reason", "Chief Constable's decision, 24 April")
    assert done["overridden"] is True
    audit = rows(db_path, "SELECT operator, after FROM audit WHERE action = 'rollout.override'")
    assert audit[0][0] == "admin"
    assert json.loads(audit[0][1])["reason"] == "Chief Constable's decision, 24 April"
    status = mdm.json("rollout", "status", "--plan", SHIPPED)
    assert [w["state"] for w in status["waves"]] == ["open", "open", "planned", "planned",
                                                     "planned"]
    csv_text = mdm("rollout", "status", "--plan", SHIPPED, "--wave", "north", "--by",
                   "station", "-f", "csv").stdout.splitlines()
    assert csv_text[0].startswith("wave,state,station,cohort,allocated,")
    stations = {line.split(",")[2]: int(line.split(",")[3]) for line in csv_text[1:]}
    assert set(stations) == {"Appleby", "Brampton", "Carlisle", "Penrith"}
    assert sum(stations.values()) == status["waves"][1]["funnel"]["cohort"]["count"]


def test_advance_check_answers_as_advance_would_and_opens_nothing(
        mdm: Any, force: None, db_path: Path) -> None:
    mdm("rollout", "pilot-select", "--seed", "30", "--apply")
    mdm("operators", "add", "rosa", "--role", "rollout")

    def state() -> list[Any]:
        return rows(db_path, "SELECT (SELECT COUNT(*) FROM audit),"
                             " (SELECT COUNT(*) FROM rollout_waves)")

    before = state()
    would = mdm.json("rollout", "advance", "pilot", "--plan", SHIPPED, "--check",
                     operator="rosa")
    assert (would["wave"], would["check"], would["opened_at"]) == ("pilot", True, None)
    assert "would open" in mdm("rollout", "advance", "pilot", "--plan", SHIPPED,
                               "--check").output
    assert state() == before
    mdm("rollout", "advance", "pilot", "--plan", SHIPPED, operator="rosa")
    before = state()
    held = _error(mdm("rollout", "advance", "north", "--plan", SHIPPED, "--check", "--json",
                      code=1, operator="rosa"))
    assert {p["field"] for p in held["problems"]} == {"min_handed_over_percent",
                                                      "min_compliant_percent"}
    mdm("rollout", "advance", "north", "--plan", SHIPPED, "--check", "--override",
        "--reason", "x", code=2, operator="rosa")  # the same role check
    assert "would open (the gate would be overridden)" in mdm(
        "rollout", "advance", "north", "--plan", SHIPPED, "--check", "--override", "--reason",
        "x").output
    over = mdm.json("rollout", "advance", "north", "--plan", SHIPPED, "--check",
                    "--override", "--reason", "x")
    assert (over["check"], over["overridden"], over["gate"]["holds"]) == (True, True, False)
    assert state() == before
    status = mdm.json("rollout", "status", "--plan", SHIPPED)
    assert [w["state"] for w in status["waves"]][:2] == ["open", "planned"]


def test_a_bad_provisioning_playbook_is_refused_naming_each_step(
        mdm: Any, force: None, tmp_path: Path, db_path: Path) -> None:
    steps = tmp_path / "provision.yaml"
    steps.write_text("steps:\n  - identity\n  - refresh\n  - policy\n  - reboot\n"
                     "  - policy\n")
    err = _error(mdm("provision", "all", "--plan", SHIPPED, "--steps", steps, "--json",
                     code=2))
    messages = [p["message"] for p in err["problems"]]
    assert "step 'identity' needs 'refresh' before it" in messages
    assert "unknown step 'reboot'" in messages
    assert "step 'policy' is given twice" in messages
    assert "the last step must be `provision`" in messages
    assert rows(db_path, "SELECT COUNT(*) FROM provision_steps") == [(0,)]
