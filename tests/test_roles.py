"""Operators and roles: each command says who may run it, and refusals say what is needed."""

from __future__ import annotations

from tests.helpers import db_fingerprint


def test_first_operator_is_admin_then_only_admin_adds(mdm) -> None:
    first = mdm.json("operators", "add", "alice", "--role", "helpdesk", operator="alice")
    assert first["role"] == "admin" and first["first_operator"]
    mdm("operators", "add", "bob", "--role", "helpdesk", operator="alice")
    err = mdm("operators", "add", "carol", "--role", "admin", operator="bob", code=2).stderr
    assert "needs the admin role" in err
    assert "unknown role" in mdm("operators", "add", "dan", "--role", "boss",
                                 operator="alice", code=2).stderr
    assert "already exists" in mdm("operators", "add", "bob", operator="alice", code=2).stderr
    names = [(o["name"], o["role"]) for o in mdm.json("operators", "list")]
    assert names == [("alice", "admin"), ("bob", "helpdesk")]


def test_roles_gate_commands_and_refusals_change_nothing(mdm, inventory, files, db_path) -> None:
    mdm("operators", "add", "hd", "--role", "helpdesk")
    mdm("operators", "add", "ro", "--role", "rollout")
    roster = files("again.csv", (db_path.parent / "roster.csv").read_text())
    before = db_fingerprint(db_path)
    err = mdm("officers", "import", roster, operator="hd", code=2).stderr
    assert "officers.import needs the admin or rollout role" in err
    err = mdm("enrol", "import", db_path.parent / "manifest.csv", operator="ro", code=2).stderr
    assert "devices.import needs the admin or it role" in err
    err = mdm("assign", inventory["delivery"][0]["serial_number"],
              inventory["roster"][0]["officer_id"], operator="stranger", code=2).stderr
    assert "'stranger' is not registered" in err
    assert db_fingerprint(db_path) == before
    mdm("assign", inventory["delivery"][0]["serial_number"],
        inventory["roster"][0]["officer_id"], operator="hd")


def test_a_new_inventory_says_how_to_start(mdm, files, db_path) -> None:
    from mdm.store import connect

    err = mdm("officers", "import", files("r.csv", "officer_id\n1\n"), code=2).stderr
    assert "no inventory at" in err and "mdm operators add" in err
    assert not db_path.exists()  # only `operators add` creates an inventory
    connect(db_path).conn.close()  # an inventory with no operators in it yet
    err = mdm("officers", "import", files("r.csv", "officer_id\n1\n"), code=2).stderr
    assert "required column" in err  # bad input is reported before anything else
    from mdm import examples

    roster = files("r2.csv", examples.generate_roster(3), examples.ROSTER_COLUMNS)
    err = mdm("officers", "import", roster, code=2).stderr
    assert "no operators yet" in err and "mdm operators add" in err
