"""Training records and plans, feedback, and handover refusals (no devices needed)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import rows

pytestmark = pytest.mark.backends

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "playbooks" / "rollout.yaml"


def _error(result: Any) -> dict[str, Any]:
    return json.loads(result.stderr.strip().splitlines()[-1])


@pytest.fixture
def people(inventory: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in inventory["roster"] if p["status"] == "ACTIVE"]


def test_a_training_csv_naming_unknown_officers_changes_nothing_then_imports_whole(
        mdm: Any, people: list[dict[str, Any]], files: Any, db_path: Path) -> None:
    good = people[0]
    bad = files("bad.csv", "officer,date,trainer,session\n"
                           f"{good['officer_id']},2015-03-31,T. Hodgson,pilot-1\n"
                           "NOBODY-1,2015-03-31,T. Hodgson,pilot-1\n"
                           f"{good['collar_number'] or good['payroll_no']},31/03/2015,,\n")
    err = _error(mdm("training", "import", bad, "--json", code=2))
    where = {(p["where"].rsplit(" ", 1)[-1], p["field"]) for p in err["problems"]}
    assert where == {("3", "officer"), ("4", "date")}
    assert next(p["message"] for p in err["problems"] if p["field"] == "date") \
        == "'31/03/2015' is not a date"
    assert rows(db_path, "SELECT COUNT(*) FROM training") == [(0,)]
    ok = files("ok.csv", "collar_number,date,trainer\n" + "".join(
        f"{p['payroll_no']},2015-04-0{i + 1},T. Hodgson\n" for i, p in enumerate(people[:3])))
    assert mdm.json("training", "import", ok)["imported"] == 3
    assert "already_imported" in mdm.json("training", "import", ok)  # same bytes: nothing
    assert rows(db_path, "SELECT COUNT(*) FROM training") == [(3,)]
    mdm("training", "record", people[4]["officer_id"], "--date", "2015-04-02",
        "--trainer", "T. Hodgson")
    future = (date.today() + timedelta(days=3)).isoformat()
    later = mdm("training", "record", people[4]["officer_id"], "--date", future, code=2)
    assert "is not a past date" in later.stderr
    assert f"--date '{'2015-13-01'}' is not a date" in mdm(
        "training", "record", people[4]["officer_id"], "--date", "2015-13-01", code=2).stderr
    assert rows(db_path, "SELECT COUNT(*) FROM audit WHERE action LIKE 'training.%'") == [(2,)]


PLAN = """\
training: {{ratio: "1:{ratio}", session_hours: 3, hours: "08:00-18:00"}}
shifts:
  patterns:
    days: {{start: 2015-03-30, cycle: [D], shifts: {{D: "06:00-14:00"}}}}
    lates: {{start: 2015-03-30, cycle: [L], shifts: {{L: "14:00-22:00"}}}}
  teams:
    RESPONSE_A: {{pattern: days}}
    RESPONSE_B: {{pattern: lates}}
waves:
  - {{name: everyone, start: 2015-03-30, end: 2015-04-12, cohort: [{{worker_type: OFFICER}},
     {{worker_type: [PCSO, SPECIAL, STAFF]}}]}}
"""


def test_training_plan_groups_by_station_at_the_ratio_inside_off_shift_time(
        mdm: Any, people: list[dict[str, Any]], tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.format(ratio=6))
    result = mdm.json("training", "plan", "--wave", "everyone", "--plan", plan)
    team = {p["officer_id"]: p["team"] for p in people}
    station = {p["officer_id"]: p["station"] for p in people}
    assert result["unscheduled"] == [] and result["scheduled"] == result["untrained"] > 20
    for s in result["sessions"]:
        assert 1 <= s["trainees"] <= 6
        assert {station[o] for o in s["officers"]} == {s["station"]}
        teams = {team[o] for o in s["officers"]}
        if s["start"] in ("08:00", "11:00"):  # the day team works 06:00-14:00
            assert "RESPONSE_A" not in teams
        if s["start"] == "14:00":  # the late team works 14:00-22:00
            assert "RESPONSE_B" not in teams
    scheduled = [o for s in result["sessions"] for o in s["officers"]]
    assert len(scheduled) == len(set(scheduled))
    plan.write_text(PLAN.format(ratio=4))
    assert max(s["trainees"] for s in mdm.json("training", "plan", "--wave", "everyone",
                                               "--plan", plan)["sessions"]) == 4


def test_feedback_blockers_hold_the_gate_until_resolved_and_minutes_saved_are_kept(
        mdm: Any, people: list[dict[str, Any]], db_path: Path) -> None:
    oid = people[0]["officer_id"]
    blocker = mdm.json("feedback", "add", "--officer", oid, "--severity", "blocker",
                       "--text", "the notebook app loses the last entry on reboot")
    mdm("feedback", "add", "--officer", oid, "--severity", "minor", "--text", "case is stiff",
        "--minutes-saved", "40")
    mdm("feedback", "add", "--officer", oid, "--severity", "urgent", "--text", "x", code=2)
    listed = mdm.json("feedback", "list", "--open", "--severity", "blocker")
    assert [i["id"] for i in listed] == [blocker["id"]]
    mdm("groups", "create", "pilot")
    mdm("groups", "add", "pilot", oid)
    plan = SHIPPED
    mdm("rollout", "advance", "pilot", "--plan", plan)
    gate = next(w for w in mdm.json("rollout", "status", "--plan", plan)["waves"]
                if w["wave"] == "pilot")["gate"]
    blockers = next(c for c in gate["conditions"] if c["condition"] == "max_open_blockers")
    assert (blockers["figure"], blockers["met"]) == (1, False)
    mdm("feedback", "resolve", str(blocker["id"]), "--note", "fixed in build 1.4.3")
    mdm("feedback", "resolve", str(blocker["id"]), "--note", "again", code=2)
    gate = next(w for w in mdm.json("rollout", "status", "--plan", plan)["waves"]
                if w["wave"] == "pilot")["gate"]
    assert next(c for c in gate["conditions"]
                if c["condition"] == "max_open_blockers")["met"] is True
    assert rows(db_path, "SELECT resolution FROM feedback WHERE id = ?",
                (blocker["id"],)) == [("fixed in build 1.4.3",)]


def test_an_open_wave_with_no_device_to_judge_needs_no_policy_folder(
        mdm: Any, people: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.setenv("MDM_POLICIES", str(tmp_path / "no-policies-here"))
    mdm("groups", "create", "pilot")
    mdm("groups", "add", "pilot", people[0]["officer_id"])
    mdm("rollout", "advance", "pilot", "--plan", SHIPPED)
    status = mdm.json("rollout", "status", "--plan", SHIPPED)
    gate = next(w for w in status["waves"] if w["wave"] == "pilot")["gate"]
    compliant = next(c for c in gate["conditions"] if c["condition"] == "min_compliant_percent")
    assert (compliant["met"], compliant["text"].split(":")[0]) == (
        False, "0 of 0 enrolled devices compliant")
    refused = mdm("rollout", "advance", "north", "--plan", SHIPPED, code=1)
    assert "0 of 0 enrolled devices compliant" in refused.stdout + refused.stderr
    assert "policy layers" not in refused.stdout + refused.stderr


def test_a_handover_refusal_names_every_condition_that_fails(
        mdm: Any, inventory: dict[str, Any], people: list[dict[str, Any]],
        db_path: Path) -> None:
    serial = inventory["delivery"][0]["serial_number"]
    holder, other = people[0]["officer_id"], people[1]["officer_id"]
    err = _error(mdm("handover", serial, "--officer", holder, "--json", code=2))
    assert {p["field"] for p in err["problems"]} == {"allocated", "provisioned", "compliant",
                                                    "trained"}
    mdm("assign", serial, other)
    mdm("training", "record", holder, "--date", "2015-04-01")
    err = _error(mdm("handover", serial, "--officer", holder, "--json", code=2))
    fields = {p["field"]: p["message"] for p in err["problems"]}
    assert set(fields) == {"allocated", "provisioned", "compliant"}
    assert other in fields["allocated"]
    assert rows(db_path, "SELECT COUNT(*) FROM handovers") == [(0,)]
