"""Named groups of officers: created, filled, emptied, each change audited."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.backends


def test_groups_lifecycle(mdm: Any, inventory: Any, files: Any) -> None:
    people = inventory["roster"]
    mdm("groups", "create", "pilot", "--description", "first users")
    assert "already exists" in mdm("groups", "create", "pilot", code=2).stderr
    assert "not allowed" in mdm("groups", "create", "Pilot Group", code=2).stderr
    csv_path = files("pilot.csv", "officer_id\n" + "".join(p["officer_id"] + "\n"
                                                          for p in people[:3]))
    added = mdm.json("groups", "add", "pilot", people[3]["payroll_no"], "--from", csv_path)
    assert added == {"group": "pilot", "added": 4, "already_members": 0}
    again = mdm.json("groups", "add", "pilot", people[0]["officer_id"])
    assert again["added"] == 0 and again["already_members"] == 1
    err = mdm("groups", "add", "pilot", "nobody-1", "nobody-2", code=2).stderr
    assert "officer 'nobody-1'" in err and "officer 'nobody-2'" in err
    assert [g["members"] for g in mdm.json("groups", "list")] == [4]
    assert "--reason is required" in mdm("groups", "remove", "pilot",
                                         people[0]["officer_id"], code=2).stderr
    mdm("groups", "remove", "pilot", people[0]["officer_id"], "--reason", "left the pilot")
    members = mdm.json("groups", "show", "pilot")["members"]
    assert sorted(m["officer_id"] for m in members) == sorted(p["officer_id"]
                                                              for p in people[1:4])
    actions = [r["action"] for r in mdm.json("audit", "log", "--subject", "group:pilot")]
    assert actions == ["groups.create", "groups.add", "groups.add", "groups.remove"]
    mdm("operators", "add", "hd", "--role", "helpdesk")
    assert "groups.manage needs" in mdm("groups", "create", "wave-1", operator="hd",
                                        code=2).stderr
    assert "no group" in mdm("groups", "show", "nope", code=2).stderr
