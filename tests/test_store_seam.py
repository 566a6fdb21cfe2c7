"""The store modules' contract: what each per-concern store function answers, on a blank
migrated inventory, through the functions alone.

Every statement here (the test's own seeding included) is written to the portable rules,
so the suite can run on every backend: `seam_db` gives one inventory per backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mdm.store import (
    apps,
    audit,
    auditlog,
    ca,
    custody,
    devices,
    enrolment,
    groups,
    incidents,
    officers,
    operators,
    policies,
    queue,
    rollout,
    stations,
    transaction,
)
from mdm.store.db import Database

AT = "2026-01-05T09:00:00.000000Z"
LATER = "2026-01-06T09:00:00.000000Z"


@pytest.fixture(params=["sqlite", "postgresql"])
def seam_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A blank, migrated inventory on each backend."""
    from mdm.store import connect

    where = tmp_path / "mdm.db" if request.param == "sqlite" else \
        str(request.getfixturevalue("pg_url"))
    db = connect(where)
    yield db
    db.conn.close()


def _refusals(db: Database) -> tuple[type[Exception], ...]:
    """What the backend raises when the database itself refuses a write."""
    if db.dialect.name == "sqlite":
        import sqlite3

        return (sqlite3.IntegrityError,)
    import psycopg  # type: ignore[import-not-found]

    from mdm.errors import MdmError

    return (psycopg.IntegrityError, psycopg.errors.RaiseException, MdmError)


@contextmanager
def _write(db: Database) -> Iterator[None]:
    """A write transaction, with the audit row every change of evidence needs."""
    with transaction(db):
        yield
        audit.record(db, "admin", "test.seam", "store", None, {})


def _person(n: int, **over: Any) -> dict[str, Any]:
    return {"officer_id": f"id-{n}", "payroll_no": f"P{n:05d}", "collar_number": f"{n}",
            "forename": "Jo", "surname": over.pop("surname", f"Fell{n}"),
            "worker_type": "OFFICER", "rank": "CONSTABLE", "area": "SOUTH",
            "station": over.pop("station", "Kendal"), "status": over.pop("status", "ACTIVE"),
            "created_at": AT, "updated_at": over.pop("updated_at", AT), **over}


def _device(db: Database, n: int, serial: str | None = None, status: str = "enrolled") -> int:
    serial = serial or f"SN{n:04d}"
    db.execute("INSERT INTO devices (serial, imei1, manufacturer, model, status,"
               " status_changed_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
               [serial, f"35000000000{n:04d}", "Samsung", "XCover", status, AT, AT])
    device_id = int(db.query("SELECT id FROM devices WHERE serial = ?", [serial])[0]["id"])
    db.execute("INSERT INTO device_imeis (imei, device_id) VALUES (?, ?)",
               [f"35000000000{n:04d}", device_id])
    return device_id


@pytest.fixture
def fleet(seam_db: Database) -> dict[str, Any]:
    """Four people (one a leaver) and four devices; the first two devices are held."""
    db = seam_db
    with _write(db):
        officers.insert(db, [_person(1, surname="Fell"), _person(2, surname="fellows"),
                             _person(3, surname="Armstrong", station="Penrith"),
                             _person(4, status="LEAVER", collar_number="1",
                                     updated_at=LATER)])
        ids = [_device(db, 1, "Ab-100"), _device(db, 2), _device(db, 3),
               _device(db, 4, status="delivered")]
        custody.open_many(db, [(ids[0], "id-1", AT, "admin", "issue"),
                               (ids[1], "id-3", AT, "admin", "issue")])
    return {"db": db, "ids": ids}


def test_devices_are_found_by_serial_in_any_case_and_by_either_imei(fleet: Any) -> None:
    db, ids = fleet["db"], fleet["ids"]
    found = devices.get_by_ref(db, "AB-100")
    assert found is not None and found["id"] == ids[0] and found["holder_id"] == "id-1"
    assert found["holder_name"] == "Jo Fell"
    assert devices.get_by_ref(db, "350000000000002")["serial"] == "SN0002"  # type: ignore[index]
    assert devices.get_by_ref(db, "nothing") is None
    assert sorted(r["serial"] for r in devices.with_serials(db, ["ab-100", "sn0003"])) == [
        "Ab-100", "SN0003"]
    assert devices.imei_owners(db, ["350000000000003", "999"]) == {"350000000000003": ids[2]}
    assert devices.with_ids(db, []) == [] and devices.held_by(db, []) == []
    assert [r["serial"] for r in devices.held_by(db, ["id-3"])] == ["SN0002"]
    assert devices.by_serial(db, "ab-100") is None  # by_serial is exact
    assert devices.status_of(db, ids[3]) == "delivered"


def test_selector_terms_match_whatever_the_case(fleet: Any) -> None:
    db = fleet["db"]

    def picked(key: str, value: str) -> list[str]:
        clause, args = devices.term_clause(db.dialect, key, value)
        scope, more = devices.status_clause(["enrolled"])
        rows = devices.selected_with_holders(db, f"{clause} AND {scope}", [*args, *more])
        return [r["serial"] for r in rows]

    assert picked("serial", "ab-100") == ["Ab-100"]
    assert picked("serial", "350000000000003") == ["SN0003"]
    assert picked("station", "KENDAL") == ["Ab-100"]
    assert picked("officer", "P00003") == ["SN0002"]
    assert picked("status", "ENROLLED") == ["Ab-100", "SN0002", "SN0003"]
    assert devices.count_selected(db, devices.EVERY, []) == 4
    assert devices.any_selected(db, *devices.term_clause(db.dialect, "model", "xcover"))
    assert not devices.any_selected(db, *devices.term_clause(db.dialect, "team", "CID"))
    assert devices.known_values(db, "station") == ["Kendal", "Penrith"]
    assert [(r["status"], r["n"]) for r in devices.status_counts(db)] == [
        ("delivered", 1), ("enrolled", 3)]


def test_one_open_assignment_per_device_and_per_officer_held_by_the_database(
        fleet: Any) -> None:
    db, ids = fleet["db"], fleet["ids"]
    for device_id, officer_id in ((ids[0], "id-2"), (ids[2], "id-1")):
        with pytest.raises(_refusals(db)), _write(db):
            custody.open_many(db, [(device_id, officer_id, LATER, "admin", "again")])
    assert custody.serials_held_by(db, ["id-1", "id-2", "id-3"]) == {
        "id-1": "Ab-100", "id-3": "SN0002"}
    held = custody.open_of(db, "device_id", ids[0])
    assert held is not None and held["officer_id"] == "id-1"
    with pytest.raises(_refusals(db)), _write(db):  # history is closed, never rewritten
        db.execute("UPDATE assignments SET officer_id = ? WHERE id = ?", ["id-2", held["id"]])
    with _write(db):
        custody.close(db, held["id"], "admin", "returned", LATER)
    assert custody.open_of(db, "device_id", ids[0]) is None
    assert custody.held_at(db, ids[0], "2026-01-05T12:00:00Z")["officer_id"] == "id-1"  # type: ignore[index]
    assert custody.held_at(db, ids[0], "2026-01-07T00:00:00Z") is None
    assert custody.latest_of_device(db, ids[0])["close_reason"] == "returned"  # type: ignore[index]
    with _write(db):
        custody.close_open_many(db, [(LATER, "admin", "swap", ids[1])])
        custody.open_many(db, [(ids[0], "id-3", LATER, "admin", "reissue")])
    assert [h["officer_id"] for h in custody.device_history(db, ids[0])] == ["id-1", "id-3"]
    assert [h["serial"] for h in custody.officer_history(db, "id-3")] == ["SN0002", "Ab-100"]


def test_officers_are_found_by_any_reference_and_listed_by_name_and_place(
        fleet: Any) -> None:
    db = fleet["db"]
    assert officers.by_ref(db, "P00002")["officer_id"] == "id-2"  # type: ignore[index]
    assert officers.by_ref(db, "1")["officer_id"] == "id-1"  # the serving holder of collar 1
    with _write(db):
        officers.update(db, "id-1", {"status": "LEAVER"}, "2026-01-05T12:00:00Z")
    assert officers.by_ref(db, "1")["officer_id"] == "id-4"  # two leavers: the latest
    assert officers.by_ref(db, "nobody") is None
    assert sorted(r["officer_id"] for r in officers.by_refs(db, ["id-2", "P00003"])) == [
        "id-2", "id-3"]
    assert sorted(officers.ids_matching(db, "FELL")) == ["id-1"]
    assert officers.name_by_ref(db, "3") == {"name": "Jo Armstrong", "collar_number": "3"}
    assert officers.places(db, "station") and set(officers.places(db, "station")) == {
        "Kendal", "Penrith"}
    name = officers.name_clause(db.dialect, "fel", [("", "fel")])
    where, args = officers.where(db.dialect, {"area": "SOUTH"}, {"station": "kendal"}, name)
    assert [r["officer_id"] for r in officers.iter_with_device(db, where, args)] == [
        "id-1", "id-4", "id-2"]  # surnames starting "fel", any case, at Kendal
    assert officers.count(db, where, args) == 3
    listed = list(officers.iter_fields(db, "", [], ["officer_id", "surname"], device=True))
    assert [tuple(r) for r in listed] == [("id-1", "Fell", "Ab-100"), ("id-4", "Fell4", None),
                                          ("id-2", "fellows", None),
                                          ("id-3", "Armstrong", "SN0002")]
    one = list(officers.iter_fields(db, where, args, ["officer_id"], device=True))
    assert [tuple(r) for r in one] == [("id-1", "Ab-100"), ("id-4", None), ("id-2", None)]
    assert [r["officer_id"] for r in officers.holders(db, ["id-1", "id-2"])] == ["id-1"]


def test_groups_count_members_and_say_who_left(fleet: Any) -> None:
    db = fleet["db"]
    with _write(db):
        groups.insert(db, "pilot", "first users", AT, "admin")
        groups.insert(db, "empty", None, AT, "admin")
        groups.add_members(db, "pilot", ["id-1", "id-3"], AT, "admin")
    assert groups.exists(db, "pilot") and not groups.exists(db, "Pilot")
    assert [(g["name"], g["members"]) for g in groups.with_counts(db)] == [
        ("empty", 0), ("pilot", 2)]
    assert groups.held_device_ids(db, ["id-1", "id-3"]) and \
        sorted(groups.held_device_ids(db, ["id-1", "id-3"])) == sorted(fleet["ids"][:2])
    with _write(db):
        assert groups.remove_member(db, "pilot", "id-1") is True
        assert groups.remove_member(db, "pilot", "id-1") is False
    assert [m["device"] for m in groups.members(db, "pilot")] == ["SN0002"]
    assert sorted(groups.memberships(db)) == [("pilot", "id-3")]


def test_the_queue_keeps_a_wipes_own_lock_and_knows_what_is_due(fleet: Any) -> None:
    db, ids = fleet["db"], fleet["ids"]
    with _write(db):
        case = incidents.insert(db, {"device_id": ids[0], "kind": "lost", "known_at": AT,
                                     "opened_at": AT, "opened_by": "admin"})
        second = incidents.insert(db, {"device_id": ids[1], "kind": "return", "known_at": AT,
                                       "opened_at": AT, "opened_by": "admin"})
        for cid, kind, incident, not_before in (("c1lock", "lock", case, None),
                                                 ("c2lock", "lock", None, None),
                                                 ("c3push", "policy", None, LATER)):
            queue.insert_command(db, {"id": cid, "device_id": ids[0], "kind": kind,
                                      "payload": None, "created_at": AT,
                                      "requested_by": "hd", "not_before": not_before,
                                      "expires_at": "2026-02-01T00:00:00Z",
                                      "needs_approval": 0, "held_reason": None,
                                      "incident_id": incident, "then_status": None})
    assert second == case + 1
    assert sorted(queue.queued_before_wipe(db, ids[0], "w", case)) == ["c2lock", "c3push"]
    assert sorted(queue.queued_before_wipe(db, ids[0], "w", None)) == ["c1lock", "c3push"]
    assert sorted(c["id"] for c in queue.due(db, "2026-01-05T10:00:00Z")) == [
        "c1lock", "c2lock"]
    assert queue.any_due(db, "2026-01-05T10:00:00Z")
    assert not queue.any_due(db, "2026-03-01T00:00:00Z")  # all expired by then
    assert [c["id"] for c in queue.by_id_prefix(db, "c3pu")] == ["c3push"]
    with _write(db):
        queue.mark_sent(db, ["c1lock"], AT)
        queue.close(db, ["c2lock"], "superseded", AT, "newer", "c1lock")
        queue.requeue(db, ["c1lock", "c2lock"], "not sent")
    states = {c["id"]: c["state"] for c in queue.listing(db, ids[0], [])}
    assert states == {"c1lock": "queued", "c2lock": "superseded", "c3push": "queued"}
    assert sorted(c["id"] for c in queue.live_commands(db, ids[0])) == ["c1lock", "c3push"]
    assert queue.managed_without_wipe(db, ids) and \
        [r["serial"] for r in queue.managed_without_wipe(db, ids)] == [
            "Ab-100", "SN0002", "SN0003"]
    assert incidents.latest_loss(db, ids[0], ["open"])["id"] == case  # type: ignore[index]
    assert incidents.open_id(db, ids[1], "return") == second
    assert [c["id"] for c in incidents.commands_of(db, [case])] == ["c1lock"]


def test_policies_see_the_same_fleet_whichever_way_it_is_read(fleet: Any) -> None:
    db, ids = fleet["db"], fleet["ids"]
    scope, args = devices.status_clause(["enrolled"])
    assert policies.fleet(db, ["enrolled"]) == policies.subjects(db, scope, args)
    assert policies.subject_of(db, "SN0002")["holder"] == "Jo Armstrong"
    assert sorted(policies.serving_kinds(db))[0][0] == "id-1"
    assert policies.known_serials(db, ["SN0002", "nope"]) == {"SN0002"}
    with _write(db):
        policies.store_version(db, "aa", "{}", "baseline", AT, "admin")
        policies.add_event(db, ids[0], "aa", "applied", AT, None)
        policies.applied_on_contact(db, ids[0], "aa", AT)
    assert policies.has_version(db, "aa") and policies.version_body(db, "bb") is None
    assert policies.last_reported(db, ids[0]) == "aa"
    assert [(e["event"], e["layers"]) for e in policies.events_of(db, ids[0])] == [
        ("applied", "baseline")]


def test_stations_and_apps_read_back_what_was_written(fleet: Any) -> None:
    db, ids = fleet["db"], fleet["ids"]
    with _write(db):
        stations.insert(db, {"name": "bench-1", "address": "10.0.0.1", "host_key": "k",
                             "host_key_fingerprint": "SHA256:x", "concurrency": 8,
                             "added_at": AT, "added_by": "admin"})
        devices.route_via_station(db, ids[2], "bench-1")
        for sha, code, signer, at in (("s1", 1, "B", AT), ("s2", 2, "A", LATER)):
            apps.insert_build(db, {"sha256": sha, "package": "uk.police.pnb",
                                   "version_code": code, "version_name": f"1.{code}",
                                   "signer": signer, "certificates": "[]", "min_sdk": 26,
                                   "size": 10,
                                   "added_at": at, "added_by": "admin"})
        apps.insert_release(db, "uk.police.pnb", "stable", "s1", AT, "admin", False, None)
    assert [(s["name"], s["devices"]) for s in stations.with_device_counts(db)] == [
        ("bench-1", 1)]
    assert stations.routed_serials(db, "bench-1") == ["SN0003"]
    assert apps.signers(db, "uk.police.pnb") == ["B", "A"]  # the first registered first
    assert apps.version_codes(db, "uk.police.pnb") == [1, 2]
    assert [r["version_code"] for r in apps.releases(db)] == [1]
    assert apps.any_release(db) and apps.has_package(db, "uk.police.pnb")


def test_the_audit_log_is_read_by_subject_name_action_and_latest_rows(seam_db: Database) -> None:
    db = seam_db
    with transaction(db):
        operators.insert(db, "ann", "admin", AT, "ann")
        for who, action, subject in (("ann", "devices.enrol", "device:SN1"),
                                     ("bob", "custody.assign", "officer:a:b"),
                                     ("ann", "ca.init", "ca")):
            audit.record(db, who, action, subject, None, {"n": 1})
    first = auditlog.rows(db)
    assert [r["action"] for r in first] == ["devices.enrol", "custody.assign", "ca.init"]
    for subject, seqs in (("SN1", [1]), ("device:SN1", [1]), ("a:b", [2]), ("b", []),
                          ("ca", [3]), ("sn1", [])):
        assert [r["seq"] for r in auditlog.rows(db, subject=subject)] == seqs, subject
    assert [r["seq"] for r in auditlog.rows(db, limit=2)] == [2, 3]  # the latest, in order
    assert [r["seq"] for r in auditlog.rows(db, operator="ann", limit=1)] == [3]
    for family, seqs in (("custody", [2]), ("ca", [3]), ("c", []), ("custody.assign", [])):
        assert [r["seq"] for r in auditlog.rows(db, family=family)] == seqs, family
    assert [r["seq"] for r in auditlog.rows(db, action="ca.init")] == [3]
    assert [r["seq"] for r in auditlog.rows(db, until=first[1]["at"])] == [1, 2]
    assert [r["seq"] for r in auditlog.rows(db, since=first[1]["at"], until=first[1]["at"],
                                            until_exclusive=True)] == []
    assert auditlog.operator_names(db) == ["ann", "bob"]
    assert auditlog.actions(db) == ["ca.init", "custody.assign", "devices.enrol"]
    assert auditlog.at_of(db, 2) == first[1]["at"] and auditlog.at_of(db, 9) is None


def test_a_delivery_lands_whole_and_a_serial_in_another_case_is_found(seam_db: Database) -> None:
    db = seam_db
    assert enrolment.next_device_id(db) == 1 and enrolment.serials(db) == set()
    row = (None, "Manufacturer", "Model", "Name", "PO-1", "delivered", AT, "{}", AT)
    told: list[int] = []
    with _write(db):
        enrolment.insert_delivered(
            db, [(7, "Ab-100", "350000000000001", None, *row[1:]),
                 (8, "SN2", "350000000000002", "350000000000003", *row[1:])],
            [("350000000000001", 7), ("350000000000002", 8), ("350000000000003", 8)],
            told.append)
        later = _device(db, 9)  # added one at a time, after ids written by the delivery
    assert told == [2] and later > 8 and enrolment.next_device_id(db) == later + 1
    assert enrolment.serials(db) == {"Ab-100", "SN2", "SN0009"}
    assert enrolment.imei_holders(db) == {"350000000000001": "Ab-100", "350000000000002": "SN2",
                                          "350000000000003": "SN2", "350000000000009": "SN0009"}
    assert enrolment.serial_in_other_case(db, "AB-100") == "Ab-100"
    assert enrolment.serial_in_other_case(db, "AB-10") is None
    assert enrolment.bound(db, "retired") == []
    with _write(db):
        enrolment.pin(db, 8, "enrolled", LATER, "10.0.0.8:22", "ssh-ed25519 AAAA", "SHA256:k")
    assert enrolment.bound(db, "retired") == [
        {"id": 8, "serial": "SN2", "status": "enrolled", "address": "10.0.0.8:22",
         "host_key_fingerprint": "SHA256:k"}]
    assert enrolment.bound(db, "enrolled") == []  # the status left out is left out
    got = devices.by_serial(db, "SN2")
    assert got is not None and (got["enrolled_at"], got["status_changed_at"]) == (LATER, LATER)


def test_operators_are_registered_found_by_role_and_removed(seam_db: Database) -> None:
    db = seam_db
    assert not operators.any_registered(db) and operators.every(db) == []
    with _write(db):
        operators.insert(db, "bob", "helpdesk", AT, "ann")
        operators.insert(db, "ann", "admin", AT, "ann")
    assert operators.any_registered(db) and operators.exists(db, "bob")
    assert not operators.exists(db, "BOB")  # names are exact
    assert operators.active_role(db, "bob") == "helpdesk" and operators.active_admins(db) == 1
    with _write(db):
        operators.deactivate(db, "ann")
    assert operators.active_role(db, "ann") is None and operators.active_admins(db) == 0
    assert operators.role_and_active(db, "ann") == ("admin", False)
    assert operators.role_and_active(db, "nobody") is None
    assert [(r["name"], r["active"]) for r in operators.every(db)] == [("ann", 0), ("bob", 1)]


def _certificate(serial: int, operator: str, valid_before: str = LATER) -> dict[str, Any]:
    return {"serial": serial, "operator": operator, "key_id": f"mdm:{operator}:{serial}",
            "principals": "mdm-admin", "key_fingerprint": "SHA256:op",
            "ca_fingerprint": "SHA256:ca", "valid_after": AT, "valid_before": valid_before,
            "issued_at": AT}


def test_certificate_serials_increase_and_revocations_are_kept(seam_db: Database
                                                                        ) -> None:
    db = seam_db
    assert ca.get(db) is None and ca.public_line(db) is None and ca.fingerprint(db) is None
    assert ca.next_serial(db) == 1 and ca.latest_krl(db) is None
    with _write(db):
        operators.insert(db, "ann", "admin", AT, "ann")
        ca.create(db, "ssh-ed25519 AAAA ca", "SHA256:ca", AT, "ann")
        for _ in range(3):
            ca.insert_certificate(db, _certificate(ca.next_serial(db), "ann"))
    assert ca.get(db) == {"public_line": "ssh-ed25519 AAAA ca", "fingerprint": "SHA256:ca",
                          "created_at": AT, "created_by": "ann"}
    with _write(db):
        serial = ca.next_serial(db)
        ca.insert_certificate(db, _certificate(serial, "ann", valid_before=AT))
    assert serial == 4  # above every serial issued
    with _write(db):
        ca.revoke(db, [1], LATER, "ann", "lost laptop")
        ca.insert_krl(db, 1, b"\x00KRL", "sha", "[1]", LATER, "ann")
        ca.insert_krl(db, 2, b"\x00KRL2", "sha2", "[1]", LATER, "ann")
    assert ca.revocation(db, 1) == (LATER, "lost laptop") and ca.revocation(db, 2) == (None, None)
    assert ca.revocation(db, 99) is None and ca.revoked_serials(db) == [1]
    assert ca.unexpired_serials(db, "ann", "2026-01-05T12:00:00.000000Z") == [2, 3]
    assert ca.issued_to(db, "ann") == [(1, "ann", LATER), (2, "ann", None), (3, "ann", None),
                                       (4, "ann", None)]
    assert ca.holder_of(db, 4) == [(4, "ann", None)] and ca.holder_of(db, 5) == []
    assert [r["serial"] for r in ca.listing(db)] == [4, 3, 2, 1] == [
        r["serial"] for r in ca.listing(db, "ann")]
    assert ca.listing(db, "bob") == [] and ca.latest_krl(db) == (2, b"\x00KRL2")


def test_what_devices_trust_is_kept_one_row_each(fleet: Any) -> None:
    db, ids = fleet["db"], fleet["ids"]
    with _write(db):
        ca.record_trust(db, ids[0], None, "", 1, None, AT)
        ca.record_trust(db, ids[0], "SHA256:ca", "mdm-admin mdm-it", 0, 2, LATER)
        ca.record_trust(db, ids[1], "SHA256:ca", "mdm-it", 1, 1, AT)
    held = ca.trust_by_device(db)
    assert sorted(held) == ids[:2]
    assert {k: held[ids[0]][k] for k in ("ca_fingerprint", "principals", "plain_keys",
                                         "krl_version", "updated_at")} == {
        "ca_fingerprint": "SHA256:ca", "principals": "mdm-admin mdm-it", "plain_keys": 0,
        "krl_version": 2, "updated_at": LATER}
    assert [r["id"] for r in ca.devices_with_serials(db, ["SN0002", "ab-100"])] == [ids[1]]
    assert ca.devices_with_serials(db, []) == []
    assert [r["serial"] for r in ca.selected(db, devices.EVERY, [])] == [
        "Ab-100", "SN0002", "SN0003", "SN0004"]
    assert ca.selected_status(db, "d.status = ?", ["delivered"]) == [
        {"id": ids[3], "serial": "SN0004", "status": "delivered"}]


def test_the_compliance_report_reads_facts_and_holders_whole(fleet: Any) -> None:
    db, ids = fleet["db"], fleet["ids"]
    facts = {"os_release": "14", "sdk": 34, "security_patch": "2026-01-01",
             "crypto_state": "encrypted", "packages": "[]", "dpc_status": None, "props": "{}",
             "settings": "{}", "policy_file_sha256": None}
    with _write(db):
        devices.save_facts(db, ids[1], AT, facts)
    assert policies.facts_by_device(db, ("sdk", "crypto_state")) == {
        ids[1]: (34, "encrypted")}
    assert policies.open_holders(db) == {ids[0]: "id-1", ids[1]: "id-3"}
    assert policies.holders_by_officer(db)["id-3"] == (
        "id-3", "OFFICER", "CONSTABLE", "SOUTH", "Penrith")
    found = policies.devices_with_facts(db, "d.status = ?", ["enrolled"], ("sdk",))
    assert sorted(tuple(r) for r in found) == [
        (ids[0], "Ab-100", "enrolled", None, None, None, None),
        (ids[1], "SN0002", "enrolled", None, None, ids[1], 34),
        (ids[2], "SN0003", "enrolled", None, None, None, None)]


def test_the_rollout_reads_each_holder_with_their_own_handover(fleet: Any) -> None:
    """A handover belongs to one assignment: once the device goes back and out again, the
    old handover no longer counts for whoever holds it now."""
    db, ids = fleet["db"], fleet["ids"]
    first = custody.open_of(db, "device_id", ids[0])
    assert first is not None
    with _write(db):
        rollout.record_handover(db, first["id"], ids[0], "id-1", AT, "admin")
    held = {r[0]: r for r in rollout.holders(db)}
    assert held["id-1"] == ("id-1", ids[0], "enrolled", 1, AT)
    assert held["id-3"] == ("id-3", ids[1], "enrolled", 0, None)
    assert rollout.handed_over_at(db, first["id"]) == AT
    with _write(db):
        custody.close(db, first["id"], "admin", "returned", LATER)
        custody.open_many(db, [(ids[0], "id-2", LATER, "admin", "reissue")])
    held = {r[0]: r for r in rollout.holders(db)}
    assert sorted(held) == ["id-2", "id-3"]
    assert held["id-2"] == ("id-2", ids[0], "enrolled", 0, None)
    again = custody.open_of(db, "device_id", ids[0])
    assert again is not None and rollout.handed_over_at(db, again["id"]) is None
    assert rollout.open_assignment_id(db, ids[0], "id-2") == again["id"]
    assert rollout.open_assignment_id(db, ids[0], "id-1") is None


def test_the_rollout_finds_devices_feedback_and_the_eligible(fleet: Any) -> None:
    db, ids = fleet["db"], fleet["ids"]
    assert rollout.device_by_ref(db, "ab-100")["id"] == ids[0]  # type: ignore[index]
    assert rollout.device_by_ref(db, "350000000000002")["id"] == ids[1]  # type: ignore[index]
    assert rollout.device_by_ref(db, "nothing") is None
    with _write(db):
        first = rollout.add_feedback(db, "id-1", "blocker", "slow", None, AT, "admin")
        second = rollout.add_feedback(db, "id-3", "minor", "fine", 30, AT, "admin")
    assert second != first and rollout.feedback_item(db, second)["text"] == "fine"  # type: ignore[index]
    assert rollout.open_blockers(db) == 1 and rollout.minutes_saved(db) == [30]
    with _write(db):
        rollout.resolve_feedback(db, first, LATER, "admin", "fixed")
    assert rollout.open_blockers(db) == 0
    assert [f["id"] for f in rollout.iter_feedback(db, False, None)] == [second, first]
    # Leavers are never eligible; the roster's flags decide before the worker type.
    with _write(db):
        officers.insert(db, [  # all with the same keys (the first row's are inserted)
            _person(5, worker_type="STAFF", device_eligible=None, pnb_required=None),
            _person(6, worker_type="STAFF", device_eligible=None, pnb_required=1),
            _person(7, device_eligible=0, pnb_required=1)])
    assert sorted(r[0] for r in rollout.eligible_people(db, [])) == [
        "id-1", "id-2", "id-3", "id-6"]
    assert [p["officer_id"] for p in rollout.people(db, leavers=True)] == ["id-4"]
    assert [p["officer_id"] for p in rollout.people(db, leavers=False)] == ["id-5", "id-7"]
