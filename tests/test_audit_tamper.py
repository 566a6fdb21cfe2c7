"""Tampering with the inventory around mdm: each edit is found by `audit verify`, by name.

The attacker here holds the file and the sqlite3 shell: drops whatever trigger is in the
way, edits rows, empties or rebuilds the log. `audit verify` must name the table and row
it no longer vouches for (exit 1), and a signed checkpoint must hold up without trusting
the file at all.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mdm.fleet.keys import generate_ed25519
from mdm.store import audit, connect, transaction
from tests.helpers import rows

pytestmark = pytest.mark.backends


@pytest.fixture
def held(mdm, inventory, db_path) -> dict[str, Any]:
    """The inventory fixture plus custody history, a pinned device and a helpdesk operator."""
    serials = [d["serial_number"] for d in inventory["delivery"]]
    people = [p["officer_id"] for p in inventory["roster"] if p["status"] == "ACTIVE"]
    mdm("operators", "add", "hd.smith", "--role", "helpdesk")
    mdm("assign", serials[0], people[0])
    mdm("assign", serials[1], people[1])
    mdm("unassign", serials[1], "--reason", "returned")
    db = connect(db_path)
    with transaction(db):  # what `enrol device` writes, without needing a device
        db.execute("UPDATE devices SET status = 'enrolled', address = '10.0.0.5',"
                   " host_key = 'ssh-ed25519 AAAAgood', host_key_fingerprint = 'SHA256:good'"
                   " WHERE serial = ?", [serials[2]])
        audit.record(db, "admin", "devices.enrol", f"device:{serials[2]}", None, {})
    db.conn.close()
    assert mdm.json("audit", "verify")["ok"]
    return {"serials": serials, "people": people}


def attack(db_path: Path, *sql: str, drop: tuple[str, ...] = ()) -> None:
    """Run SQL as someone with the file and a sqlite3 shell (foreign keys off); on
    PostgreSQL as a superuser with every trigger and foreign key off, as a replica runs."""
    if isinstance(db_path, str):
        for statement in sql:
            rows(db_path, f"SET session_replication_role = replica; {statement}")
        return
    conn = sqlite3.connect(db_path, isolation_level=None)
    for trigger in drop:
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for statement in sql:
        conn.execute(statement)
    conn.close()


def refused(mdm, *args: str) -> dict[str, Any]:
    """Run `audit verify`, which must fail (exit 1); return its JSON result."""
    result = mdm("audit", "verify", "--json", *args, code=1)
    assert "state mismatch" in result.stderr or "broken at row" in result.stderr
    return json.loads(result.stdout)


def mismatch(mdm, *args: str) -> tuple[str, Any, str]:
    found = refused(mdm, *args)["state_mismatch"]
    assert found, "verify found no state mismatch"
    return found["table"], found["key"], found["reason"]


def assignment_id(db_path: Path, serial: str, open_only: bool = True) -> int:
    sql = ("SELECT a.id FROM assignments a JOIN devices d ON d.id = a.device_id"
           " WHERE d.serial = ?" + (" AND a.closed_at IS NULL" if open_only else ""))
    return int(rows(db_path, sql, (serial,))[0][0])


def device_id(db_path: Path, serial: str) -> int:
    return int(rows(db_path, "SELECT id FROM devices WHERE serial = ?", (serial,))[0][0])


def test_a_custody_row_given_to_another_officer_is_named(mdm, held, db_path) -> None:
    aid = assignment_id(db_path, held["serials"][0])
    attack(db_path, f"UPDATE assignments SET officer_id = '{held['people'][5]}' WHERE id = {aid}",
           drop=("assignments_close_only",))
    table, key, reason = mismatch(mdm)
    assert (table, key) == ("assignments", aid) and "changed outside mdm" in reason
    err = mdm("audit", "verify", code=1).stderr
    assert f"state mismatch: assignments {aid} (device {held['serials'][0]}" in err


def test_custody_closed_or_back_dated_without_the_log_is_named(mdm, held, db_path) -> None:
    aid = assignment_id(db_path, held["serials"][0])
    # Closing once is allowed by the trigger; doing it outside mdm is not allowed by verify.
    attack(db_path, "UPDATE assignments SET closed_at = '2099-01-01T00:00:00.000000Z',"
                    f" closed_by = 'x', close_reason = 'lost' WHERE id = {aid}")
    assert mismatch(mdm)[:2] == ("assignments", aid)


# SQLite only: the attack drops SQLite's triggers by name and verify names them
@pytest.mark.backends("sqlite")
def test_a_deleted_custody_row_is_named(mdm, held, db_path) -> None:
    aid = assignment_id(db_path, held["serials"][1], open_only=False)
    attack(db_path, f"DELETE FROM assignments WHERE id = {aid}",
           drop=("assignments_no_delete", "assignments_evidence_delete"))
    table, key, reason = mismatch(mdm)
    assert (table, key) == ("assignments", aid) and "the row is gone" in reason
    assert "assignments_no_delete" in refused(mdm)["safeguards_missing"]


# SQLite only: the attack's rows take their ids as SQLite gives them (PostgreSQL's come
# from a trigger the attacker has turned off)
@pytest.mark.backends("sqlite")
def test_a_custody_row_added_outside_mdm_is_named(mdm, held, db_path) -> None:
    serial, officer = held["serials"][3], held["people"][7]
    attack(db_path, "INSERT INTO assignments (device_id, officer_id, opened_at, opened_by,"
                    f" open_reason) VALUES ({device_id(db_path, serial)}, '{officer}',"
                    " '2015-01-01T00:00:00.000000Z', 'admin', 'allocated')",
           drop=("assignments_evidence_insert",))
    table, key, reason = mismatch(mdm)
    assert table == "assignments" and key == assignment_id(db_path, serial)
    assert "no audit row records" in reason


@pytest.mark.parametrize("column, value", [("host_key", "'ssh-ed25519 AAAAevil'"),
                                           ("host_key_fingerprint", "'SHA256:evil'"),
                                           ("address", "'10.0.0.66'"),
                                           ("status", "'provisioned'")])
def test_a_device_pinned_key_address_or_status_edit_is_named(mdm, held, db_path, column,
                                                              value) -> None:
    serial = held["serials"][2]
    attack(db_path, f"UPDATE devices SET {column} = {value} WHERE serial = '{serial}'",
           drop=("devices_evidence_update",))
    table, key, _ = mismatch(mdm)
    assert (table, key) == ("devices", device_id(db_path, serial))
    assert f"state mismatch: devices {serial} (id {key})" in mdm("audit", "verify",
                                                                 code=1).stderr


# SQLite only: the attack drops SQLite's triggers by name and verify names them
@pytest.mark.backends("sqlite")
def test_an_edit_that_left_its_trigger_in_place_is_named_too(mdm, held, db_path) -> None:
    serial = held["serials"][4]
    attack(db_path, f"UPDATE devices SET status = 'retired' WHERE serial = '{serial}'")
    assert mismatch(mdm)[:2] == ("devices", device_id(db_path, serial))
    assert rows(db_path, "SELECT tbl FROM audit_pending") == [("devices",)]


def test_an_operator_promoted_or_added_outside_mdm_is_named(mdm, held, db_path) -> None:
    attack(db_path, "UPDATE operators SET role = 'admin' WHERE name = 'hd.smith'")
    assert mismatch(mdm)[:2] == ("operators", "hd.smith")
    attack(db_path, "UPDATE operators SET role = 'helpdesk' WHERE name = 'hd.smith'",
           "INSERT INTO operators VALUES ('mallory', 'admin', 1, 't', 'admin')",
           "DELETE FROM audit_pending", drop=("audit_state_no_delete",))
    table, key, reason = mismatch(mdm)
    assert (table, key) == ("operators", "mallory") and "no audit row records" in reason


def test_an_emptied_log_is_found_and_the_rows_it_vouched_for_named(mdm, held,
                                                                    db_path) -> None:
    attack(db_path, "DELETE FROM audit", drop=("audit_no_delete",))
    found = refused(mdm)
    assert found["rows"] == 0 and found["state_mismatch"]["table"] == "operators"
    assert found["state_mismatch"]["key"] == "admin"
    assert "removed from the end" in found["reason"]
    # The careful attacker empties the proofs and the head record too.
    attack(db_path, "DELETE FROM audit_state", "DELETE FROM audit_head",
           drop=("audit_state_no_delete",))
    found = refused(mdm)
    assert (found["state_mismatch"]["table"], found["state_mismatch"]["key"]) == (
        "operators", "admin")
    assert "no audit row records" in found["state_mismatch"]["reason"]


# SQLite only: the attack is SQLite DDL on the log's own table and triggers
@pytest.mark.backends("sqlite")
def test_a_dropped_and_recreated_log_is_found(mdm, held, db_path) -> None:
    schema = rows(db_path, "SELECT sql FROM sqlite_master WHERE name = 'audit'")[0][0]
    attack(db_path, "DROP TABLE audit", schema, "DROP TABLE audit_state",
           "CREATE TABLE audit_state (seq INTEGER NOT NULL, tbl TEXT NOT NULL, key NOT NULL,"
           " row_hash BLOB, PRIMARY KEY (seq, tbl, key)) WITHOUT ROWID",
           "DELETE FROM audit_head")
    table, key, reason = mismatch(mdm)
    assert (table, key) == ("operators", "admin") and "no audit row records" in reason


# SQLite only: the attack is SQLite DDL on the log's own table and triggers
@pytest.mark.backends("sqlite")
def test_a_dropped_log_is_named_by_verify_and_by_every_other_command(mdm, held,
                                                                    db_path) -> None:
    attack(db_path, "DROP TABLE audit")
    found = refused(mdm)
    assert found["first_bad_seq"] == 1 and "table audit is missing" in found["reason"]
    err = mdm("audit", "log", code=1).stderr
    assert "missing part of its schema (no such table: audit)" in err


def test_a_log_cut_back_and_rechained_is_found(mdm, held, db_path) -> None:
    # Cut the log back to just after the roster and manifest imports, forge one row in
    # place of the custody history, and fix up the head record: a knowing forgery.
    keep = rows(db_path, "SELECT MIN(seq) FROM audit WHERE action = 'custody.assign'")[0][0] - 1
    attack(db_path, f"DELETE FROM audit WHERE seq > {keep}",
           f"DELETE FROM audit_state WHERE seq > {keep}",
           drop=("audit_no_delete", "audit_state_no_delete"))
    db = connect(db_path)
    with transaction(db):
        seq = audit.record(db, "admin", "officers.export", "officers", None, {"rows": 1})
    db.conn.close()
    assert seq == keep + 1
    found = refused(mdm)
    assert found["first_bad_seq"] is None  # the chain itself is whole again...
    mine = found["state_mismatch"]  # ...but what the cut rows changed is still there
    assert (mine["table"], mine["key"]) == ("devices", device_id(db_path, held["serials"][2]))
    assert found["state_problems"] == 3  # the pinned device and both custody rows


# SQLite only: SQLite's blobs (zeroblob) and the file's own pages
@pytest.mark.backends("sqlite")
def test_state_proofs_altered_in_place_break_the_chain(mdm, held, db_path) -> None:
    attack(db_path, "UPDATE audit_state SET row_hash = zeroblob(32) WHERE seq = 1",
           drop=("audit_state_no_update",))
    found = refused(mdm)
    assert found["first_bad_seq"] == 1 and "state proofs" in found["reason"]


def test_mdm_itself_cannot_commit_an_evidential_change_without_its_audit_row(
        held, db_path) -> None:
    db = connect(db_path)
    with pytest.raises(RuntimeError, match="without an audit row"), transaction(db):
        db.execute("UPDATE devices SET status = 'retired' WHERE serial = ?",
                   [held["serials"][5]])
    assert rows(db_path, "SELECT status FROM devices WHERE serial = ?",
                (held["serials"][5],)) == [("delivered",)]
    with pytest.raises(RuntimeError, match="without an audit row"), transaction(db):
        db.execute("INSERT INTO assignments (device_id, officer_id, opened_at, opened_by,"
                   " open_reason) VALUES (?, ?, 't', 'admin', 'x')",
                   [device_id(db_path, held["serials"][5]), held["people"][9]])
    with transaction(db):  # contact times are not evidence: no audit row needed
        db.execute("UPDATE devices SET last_seen = 'now' WHERE serial = ?", [held["serials"][5]])
    db.conn.close()


# SQLite only: the attack's rows take their ids as SQLite gives them (PostgreSQL's come
# from a trigger the attacker has turned off)
@pytest.mark.backends("sqlite")
def test_a_change_outside_mdm_is_not_sealed_by_the_next_write(mdm, held, db_path) -> None:
    serials, people = held["serials"], held["people"]
    attack(db_path, f"UPDATE devices SET status = 'retired' WHERE serial = '{serials[4]}'",
           "INSERT INTO assignments (device_id, officer_id, opened_at, opened_by, open_reason)"
           f" VALUES ({device_id(db_path, serials[5])}, '{people[8]}',"
           " '2015-01-01T00:00:00.000000Z', 'admin', 'allocated')",
           "INSERT INTO operators VALUES ('mallory', 'admin', 1, 't', 'admin')")
    mdm("assign", serials[6], people[9])  # an honest write afterwards seals only its own
    found = refused(mdm)
    assert (found["state_mismatch"]["table"], found["state_mismatch"]["key"]) == (
        "operators", "mallory")
    assert found["state_problems"] == 3  # mallory, the retired device, the custody row


# -- a damaged file is a finding, never a crash -------------------------------------------

# SQLite only: SQLite's blobs (zeroblob) and the file's own pages
@pytest.mark.backends("sqlite")
def test_a_blob_in_a_text_column_is_a_broken_row(mdm, held, db_path) -> None:
    attack(db_path, "UPDATE audit SET operator = CAST('admin' AS BLOB) WHERE seq = 2",
           drop=("audit_no_update",))
    found = refused(mdm)
    assert found["first_bad_seq"] == 2 and "BLOB" in found["reason"]
    assert "broken at row 2" in mdm("audit", "verify", code=1).stderr


# SQLite only: SQLite's blobs (zeroblob) and the file's own pages
@pytest.mark.backends("sqlite")
def test_a_corrupted_page_is_a_broken_row_not_a_crash(mdm, held, db_path) -> None:
    page, root = rows(db_path, "PRAGMA page_size")[0][0], rows(
        db_path, "SELECT rootpage FROM sqlite_master WHERE name = 'audit'")[0][0]
    with open(db_path, "r+b") as fh:  # every connection is closed: the WAL is folded in
        fh.seek((root - 1) * page)
        fh.write(b"\xff" * page)
    result = mdm("audit", "verify", code=1)
    assert "broken at row 1" in result.stderr and "damaged" in result.stderr


# SQLite only: SQLite's blobs (zeroblob) and the file's own pages
@pytest.mark.backends("sqlite")
def test_a_damaged_page_outside_the_log_is_found_too(mdm, held, db_path) -> None:
    page, root = rows(db_path, "PRAGMA page_size")[0][0], rows(
        db_path, "SELECT rootpage FROM sqlite_master WHERE name = 'officers'")[0][0]
    with open(db_path, "r+b") as fh:
        fh.seek((root - 1) * page)
        fh.write(b"\xff" * page)
    result = mdm("audit", "verify", code=1)
    assert "damaged" in result.stderr and "verified" not in result.stderr


# -- signed checkpoints -----------------------------------------------------------------

@pytest.fixture
def signer(tmp_path: Path) -> Path:
    key = tmp_path / "keys" / "audit_ed25519"
    generate_ed25519(key, passphrase=b"correct horse", comment="audit-officer")
    return key


def test_a_signed_checkpoint_verifies_and_catches_a_rebuild(mdm, held, db_path, signer,
                                                            tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MDM_KEY_PASSPHRASE", "correct horse")
    cp = tmp_path / "cp-1.txt"
    made = mdm.json("audit", "checkpoint", "--sign", str(signer), "-o", str(cp))
    assert cp.read_text() == made["text"]
    pub = Path(str(signer) + ".pub")
    ok = mdm.json("audit", "verify", "--checkpoint", str(cp), "--signer", str(pub))
    assert ok["checkpoint"]["seq"] == made["seq"] and ok["checkpoint"]["signer"] == made["signer"]
    mdm("assign", held["serials"][6], held["people"][9])  # the log grows: still verifies
    assert mdm.json("audit", "verify", "--checkpoint", str(cp))["ok"]
    # Cut back to before the checkpoint and rebuild consistently: only the checkpoint knows.
    attack(db_path, f"DELETE FROM audit WHERE seq >= {made['seq']}",
           f"DELETE FROM audit_state WHERE seq >= {made['seq']}",
           drop=("audit_no_delete", "audit_state_no_delete"))
    found = refused(mdm, "--checkpoint", str(cp))
    assert found["first_bad_seq"] == made["seq"] and "truncated" in found["reason"]


def test_a_wrong_signer_or_an_edited_checkpoint_is_refused(mdm, held, signer, tmp_path,
                                                           monkeypatch) -> None:
    monkeypatch.setenv("MDM_KEY_PASSPHRASE", "correct horse")
    cp = tmp_path / "cp.txt"
    mdm("audit", "checkpoint", "--sign", str(signer), "-o", str(cp))
    other = tmp_path / "other_ed25519"
    generate_ed25519(other)
    err = mdm("audit", "verify", "--checkpoint", str(cp), "--signer",
              Path(str(other) + ".pub").read_text(), code=1).stderr
    assert "not by the --signer" in err
    text = cp.read_text()
    seq = int(text.split("seq: ")[1].split()[0])
    forged = tmp_path / "forged.txt"
    forged.write_text(text.replace(f"seq: {seq}\n", f"seq: {seq - 1}\n"))
    assert "does not match its contents" in mdm("audit", "verify", "--checkpoint",
                                                str(forged), code=1).stderr
    assert "already exists" in mdm("audit", "checkpoint", "--sign", str(signer), "-o",
                                   str(cp), code=2).stderr
    monkeypatch.delenv("MDM_KEY_PASSPHRASE")
    assert "MDM_KEY_PASSPHRASE" in mdm("audit", "checkpoint", "--sign", str(signer),
                                       code=2).stderr
    assert "not SEQ:HASH, nor a checkpoint file" in mdm(
        "audit", "verify", "--checkpoint", str(tmp_path / "nope.txt"), code=2).stderr


def test_a_third_party_checks_the_signature_with_openssh_alone(mdm, held, tmp_path) -> None:
    key = tmp_path / "plain_ed25519"
    public = generate_ed25519(key, comment="audit-officer")
    text = mdm.json("audit", "checkpoint", "--sign", str(key))["text"]
    statement, _, signature = text.partition("-----BEGIN SSH SIGNATURE-----")
    (tmp_path / "sig").write_text("-----BEGIN SSH SIGNATURE-----" + signature)
    (tmp_path / "allowed").write_text(f"audit-officer {public}")
    ssh_keygen = shutil.which("ssh-keygen")
    assert ssh_keygen, "OpenSSH's ssh-keygen is part of the lab's requirements"
    check = subprocess.run([ssh_keygen, "-Y", "verify", "-f", str(tmp_path / "allowed"),
                            "-I", "audit-officer", "-n", "mdm-audit-checkpoint",
                            "-s", str(tmp_path / "sig")], input=statement.encode(),
                           capture_output=True, timeout=30)
    assert check.returncode == 0, check.stderr
    altered = statement.replace("seq: ", "seq: 1")
    check = subprocess.run([ssh_keygen, "-Y", "verify", "-f", str(tmp_path / "allowed"),
                            "-I", "audit-officer", "-n", "mdm-audit-checkpoint",
                            "-s", str(tmp_path / "sig")], input=altered.encode(),
                           capture_output=True, timeout=30)
    assert check.returncode != 0
