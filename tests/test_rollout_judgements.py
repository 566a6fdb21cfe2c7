"""Stored compliance judgements: read only while judging the device now would say the same.

The rollout's gates read each device's stored judgement instead of judging it again; each
test here changes one thing a judgement depends on (its facts, its policy, its holder,
the clock) and checks that the stored answer is no longer used, by comparing with a live
judgement of the same devices.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mdm.cli import app
from mdm.policies import judgements
from mdm.policies import service as policies
from mdm.policies.compliance import FACTS, Judge
from mdm.store import connect, transaction
from tests.helpers import Raw, progress_drift

SHIPPED = Path(__file__).resolve().parent.parent / "playbooks" / "policies"
REQUIRED = {"uk.police.cumbria.enotebook": 10402, "uk.police.cumbria.vpn": 1,
            "uk.police.mdm.dpc": 300}

pytestmark = pytest.mark.backends


@pytest.fixture
def fleet(mdm: Any, inventory: dict[str, Any], db_path: Path, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Six enrolled devices, each held by an officer, with facts that pass the policy."""
    folder = tmp_path / "policies"
    shutil.copytree(SHIPPED, folder)
    monkeypatch.setenv("MDM_POLICIES", str(folder))
    serials = sorted(d["serial_number"] for d in inventory["delivery"])[:6]
    people = [p for p in inventory["roster"] if p["status"] == "ACTIVE"
              and p["worker_type"] == "OFFICER"][:6]
    conn = Raw(db_path)
    with conn:
        conn.executemany("UPDATE devices SET status = 'enrolled' WHERE serial = ?",
                         [(s,) for s in serials])
    conn.close()
    for serial, person in zip(serials, people, strict=True):
        mdm("assign", serial, person["officer_id"])
    shas = {r["serial"]: r["to"] for r in mdm.json("policy", "push", "--check")["devices"]}
    conn = Raw(db_path)
    with conn:
        for serial in serials:
            _facts(conn, serial, shas[serial])
    conn.close()
    db = connect(db_path)
    ids = {r[0]: r[1] for r in db.execute("SELECT id, serial FROM devices WHERE status ="
                                          " 'enrolled'")}
    yield {"db": db, "folder": folder, "ids": ids, "shas": shas, "people": people,
           "serials": serials}
    db.conn.close()


def _facts(conn: Raw, serial: str, sha: str, **change: Any) -> None:
    """Record facts that pass every check of the shipped policy (then apply `change`)."""
    now = datetime.now(UTC)
    facts = {"collected_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "os_release": "6.0.1",
             "sdk": 23, "security_patch": now.date().isoformat(), "crypto_state": "encrypted",
             "packages": json.dumps(REQUIRED),
             "dpc_status": json.dumps({"policySha256": sha, "state": "APPLIED"}),
             "props": "{}", "settings": "{}", "policy_file_sha256": sha, **change}
    device = conn.execute("SELECT id FROM devices WHERE serial = ?", (serial,)).fetchone()[0]
    conn.execute("UPDATE devices SET last_seen = ? WHERE id = ?",
                 (facts["collected_at"], device))
    conn.execute(f"INSERT INTO device_facts (device_id, {', '.join(facts)}) VALUES"
                 f" (?, {', '.join('?' for _ in facts)}) ON CONFLICT (device_id) DO UPDATE SET"
                 f" {', '.join(f'{k} = excluded.{k}' for k in facts)}",
                 (device, *facts.values()))


def _live(db: Any, folder: Path, moment: datetime | None = None) -> dict[int, bool]:
    """Judge every enrolled device now, from scratch: the slow truth."""
    resolver = policies.Resolver(policies.load(folder, db=db))
    facts = {r[0]: tuple(r[1:]) for r in db.execute(
        f"SELECT device_id, {', '.join(FACTS)} FROM device_facts")}
    judge = Judge(moment)
    return {row["id"]: not judge(row, facts.get(row["id"]), *_policy(resolver, row))
            for row in policies.devices(db, ["all"], ("enrolled", "provisioned"))}


def _policy(resolver: Any, row: dict[str, Any]) -> tuple[Any, str]:
    effective, compiled = resolver.for_device(row)
    return effective, compiled.sha256


def _stored(fleet: dict[str, Any], moment: datetime | None = None) -> int:
    with transaction(fleet["db"]):
        return judgements.record(fleet["db"], fleet["folder"], fleet["ids"], moment)


def _fast(fleet: dict[str, Any], moment: datetime | None = None) -> dict[int, bool]:
    return judgements.compliant(fleet["db"], fleet["folder"], set(fleet["ids"]), moment)


def _judged_rows(fleet: dict[str, Any]) -> int:
    return int(fleet["db"].scalar("SELECT COUNT(*) FROM device_judgements"))


def test_stored_judgements_say_what_judging_live_says(fleet: dict[str, Any],
                                                      db_path: Path) -> None:
    serials, shas = fleet["serials"], fleet["shas"]
    conn = Raw(db_path)
    with conn:
        _facts(conn, serials[1], shas[serials[1]], crypto_state="unencrypted")
        _facts(conn, serials[2], shas[serials[2]], security_patch="2014-01-01")
        _facts(conn, serials[3], shas[serials[3]], packages=json.dumps({}))
        conn.execute("DELETE FROM device_facts WHERE device_id = (SELECT id FROM devices"
                     " WHERE serial = ?)", (serials[4],))
    conn.close()
    truth = _live(fleet["db"], fleet["folder"])
    assert sorted(truth.values()) == [False] * 4 + [True] * 2
    assert _stored(fleet) == 6
    assert _fast(fleet) == truth
    # The stored rows themselves say it (the fast path reads them, not the facts).
    stored = dict(fleet["db"].execute("SELECT device_id, compliant FROM device_judgements"))
    assert {d: bool(c) for d, c in stored.items()} == truth


def test_new_facts_make_a_stored_judgement_stale(fleet: dict[str, Any], db_path: Path) -> None:
    _stored(fleet)
    assert all(_fast(fleet).values())
    serial = fleet["serials"][0]
    device = next(d for d, s in fleet["ids"].items() if s == serial)
    conn = Raw(db_path)
    with conn:  # as any writer of facts would: a refresh, a push, an app install
        conn.execute("UPDATE device_facts SET crypto_state = 'unencrypted' WHERE device_id = ?",
                     (device,))
    conn.close()
    assert _judged_rows(fleet) == 5
    fast = _fast(fleet)
    assert fast[device] is False
    assert fast == _live(fleet["db"], fleet["folder"])


def test_a_policy_edit_makes_stored_judgements_stale(fleet: dict[str, Any],
                                                     db_path: Path) -> None:
    conn = Raw(db_path)
    old_patch = (datetime.now(UTC).date() - timedelta(days=30)).isoformat()
    with conn:
        for serial in fleet["serials"]:
            _facts(conn, serial, fleet["shas"][serial], security_patch=old_patch)
    conn.close()
    _stored(fleet)
    assert all(_fast(fleet).values())
    baseline = fleet["folder"] / "00-baseline.yaml"
    text = baseline.read_text()
    assert "max_patch_age_days: 45" in text
    baseline.write_text(text.replace("max_patch_age_days: 45", "max_patch_age_days: 20"))
    fast = _fast(fleet)
    assert fast == _live(fleet["db"], fleet["folder"])
    assert not any(fast.values())


def test_a_new_holder_with_another_policy_makes_a_stored_judgement_stale(
        mdm: Any, fleet: dict[str, Any], inventory: dict[str, Any]) -> None:
    _stored(fleet)
    assert all(_fast(fleet).values())
    serial = fleet["serials"][0]
    device = next(d for d, s in fleet["ids"].items() if s == serial)
    pcso = next(p for p in inventory["roster"] if p["worker_type"] == "PCSO"
                and p["status"] == "ACTIVE")
    mdm("reassign", serial, pcso["officer_id"], "--reason", "moved to a PCSO")
    fast = _fast(fleet)
    truth = _live(fleet["db"], fleet["folder"])
    assert fast == truth
    assert fast[device] is False  # it runs the officers' policy, not the PCSOs'


def test_a_stored_judgement_expires_when_the_patch_grows_too_old(fleet: dict[str, Any],
                                                                 db_path: Path) -> None:
    now = datetime.now(UTC)
    patch = now.date() - timedelta(days=44)  # the baseline allows 45 days
    conn = Raw(db_path)
    with conn:
        for serial in fleet["serials"]:
            _facts(conn, serial, fleet["shas"][serial], security_patch=patch.isoformat())
    conn.close()
    _stored(fleet, now)
    assert all(_fast(fleet, now).values())
    later = now + timedelta(days=2)
    assert _fast(fleet, later) == _live(fleet["db"], fleet["folder"], later)
    assert not any(_fast(fleet, later).values())


def test_a_stored_judgement_expires_when_the_device_has_been_away_too_long(
        fleet: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    _stored(fleet, now)
    later = now + timedelta(days=8)  # the baseline: last seen at most 7 days ago
    assert all(_fast(fleet, now + timedelta(days=6)).values())
    stale = _fast(fleet, later)
    assert stale == _live(fleet["db"], fleet["folder"], later)
    assert not any(stale.values()) and len(stale) == len(fleet["ids"])


@pytest.mark.backends("sqlite")  # no inventory: the judge alone
@pytest.mark.parametrize("days", [45, 60])
def test_valid_until_is_the_first_instant_the_live_judge_disagrees(days: int) -> None:
    from mdm.policies.layering import Effective

    effective = Effective(settings={"updates.max_patch_age_days": days,
                                    "compliance.max_offline_days": days + 30})
    now = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    patch = date(2026, 2, 1)
    facts = tuple(patch.isoformat() if c == "security_patch" else None for c in FACTS)
    storable, until = judgements.valid_until(effective, facts, "2026-03-01T09:00:00Z", now)
    assert storable and until is not None
    edge = datetime.strptime(until, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)

    def codes(moment: datetime) -> list[str]:
        reasons = Judge(moment).judge("enrolled", None, "2026-03-01T09:00:00Z", facts,
                                      effective, "sha")
        return [r["code"] for r in reasons if r["code"] in ("patch_too_old", "not_seen")]

    assert codes(now) == codes(edge - timedelta(microseconds=1)) == []
    assert codes(edge) == ["patch_too_old"]
    assert edge == datetime.combine(patch + timedelta(days=days + 1), datetime.min.time(),
                                    UTC)


@pytest.mark.backends("sqlite")  # no inventory: the judge alone
def test_a_judgement_that_cannot_be_timed_is_not_stored() -> None:
    from mdm.policies.layering import Effective

    now = datetime(2026, 3, 1, tzinfo=UTC)
    facts = tuple(None for _ in FACTS)
    odd = Effective(settings={"compliance.max_offline_days": "seven"})
    assert judgements.valid_until(odd, facts, "2026-03-01T00:00:00Z", now) == (False, None)
    naive = Effective(settings={"compliance.max_offline_days": 7})
    assert judgements.valid_until(naive, facts, "2026-03-01T00:00:00", now) == (False, None)
    assert judgements.valid_until(naive, None, "2026-03-01T00:00:00Z", now) == (True, None)


@pytest.mark.lab
def test_a_refresh_stores_each_reached_devices_judgement_as_the_report_judges_it(
        mdm: Any, lab: Any, enrolled: Any, inventory: Any, tmp_path: Path, db_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "policies"
    shutil.copytree(SHIPPED, folder)
    monkeypatch.setenv("MDM_POLICIES", str(folder))
    devices = enrolled(2)
    officer = next(p for p in inventory["roster"] if p["worker_type"] == "OFFICER"
                   and p["status"] == "ACTIVE")
    mdm("assign", devices[0].serial, officer["officer_id"])
    conn = Raw(db_path)
    conn.execute("DELETE FROM device_judgements")  # whatever enrolment left
    conn.commit()
    mdm("devices", "refresh")
    report = mdm.runner.invoke(app, ["compliance", "report", "--json"])  # exits 1 if any fails
    judged = {r["serial"]: r["compliant"] for r in json.loads(report.stdout)["devices"]}
    stored = dict(conn.execute("SELECT d.serial, j.compliant FROM device_judgements j"
                               " JOIN devices d ON d.id = j.device_id"))
    assert {s: bool(c) for s, c in stored.items()} == judged
    assert sorted(stored) == sorted(d.serial for d in devices)
    assert progress_drift(db_path) == []  # the holder's kept judgement (m019) with it
    mdm("policy", "push", devices[0].serial)  # records the device's new DPC status
    assert [r[0] for r in conn.execute("SELECT d.serial FROM device_judgements j"
                                       " JOIN devices d ON d.id = j.device_id")] \
        == [devices[1].serial]
    conn.close()


def _compliant_figure(mdm: Any) -> str:
    plan = Path(__file__).resolve().parent.parent / "playbooks" / "rollout.yaml"
    gate = next(w for w in mdm.json("rollout", "status", "--plan", plan)["waves"]
                if w["wave"] == "pilot")["gate"]
    return str(next(c["text"] for c in gate["conditions"]
                    if c["condition"] == "min_compliant_percent"))


def test_the_gate_counts_what_judging_live_counts_before_and_after_new_facts(
        mdm: Any, fleet: dict[str, Any], db_path: Path) -> None:
    plan = Path(__file__).resolve().parent.parent / "playbooks" / "rollout.yaml"
    mdm("groups", "create", "pilot")
    for person in fleet["people"]:
        mdm("groups", "add", "pilot", person["officer_id"])
    mdm("rollout", "advance", "pilot", "--plan", plan)
    shas = {r["serial"]: r["to"] for r in mdm.json("policy", "push", "--check")["devices"]}
    assert shas != fleet["shas"]  # the pilot layer now applies to them
    conn = Raw(db_path)
    with conn:
        for serial in fleet["serials"]:
            _facts(conn, serial, shas[serial])
    conn.close()
    live = _compliant_figure(mdm)  # nothing stored yet: every device judged live
    assert live.startswith("6 of 6 enrolled devices compliant")
    _stored(fleet)
    assert _compliant_figure(mdm) == live
    conn = Raw(db_path)
    with conn:
        _facts(conn, fleet["serials"][0], shas[fleet["serials"][0]], crypto_state="unencrypted")
    conn.close()
    after = _compliant_figure(mdm)
    assert after.startswith("5 of 6 enrolled devices compliant")
    fleet["db"].execute("DELETE FROM device_judgements")
    assert _compliant_figure(mdm) == after


@pytest.mark.parametrize("form", ["named", "every kind", "one id per part"])
def test_the_gate_counts_each_kind_of_holder_as_judging_each_device_live(
        mdm: Any, fleet: dict[str, Any], db_path: Path, monkeypatch: pytest.MonkeyPatch,
        form: str) -> None:
    """compliant_counts, per kind of holder, against the live truth of each device: in a
    kind whose judgements all hold, one whose judgement was dropped, one judged against
    another policy; a holder in a group, one hand-picked, a device a layer names; with the
    kinds named, too many kinds to name, and the hand-picked read in parts."""
    from mdm.store import rollout as store

    if form == "every kind":
        monkeypatch.setattr(store, "_MAX_KINDS", 0)
    if form == "one id per part":
        monkeypatch.setattr(store, "_CHUNK", 1)
    db, ids = fleet["db"], [p["officer_id"] for p in fleet["people"]]
    conn = Raw(db_path)
    with conn:  # two kinds of holder: three people each
        for i, oid in enumerate(ids):
            conn.execute("UPDATE officers SET area = ?, station = ?, rank = 'PC' WHERE"
                         " officer_id = ?", ("NORTH" if i < 3 else "WEST",
                                             "Penrith" if i < 3 else "Workington", oid))
    conn.close()
    mdm("groups", "create", "firearms")
    mdm("groups", "add", "firearms", ids[4])  # in a group: a policy of their own may apply
    (fleet["folder"] / "50-device.yaml").write_text(  # a device named by a layer
        f"layer: camera-fault\nkind: device\nmatch: [{fleet['serials'][5]}]\n"
        "reason: camera module faulty\nexpires: 2099-06-30\nsettings:\n  camera: disabled\n")
    shas = {r["serial"]: r["to"] for r in mdm.json("policy", "push", "--check")["devices"]}
    conn = Raw(db_path)
    with conn:
        for serial in fleet["serials"]:
            _facts(conn, serial, shas[serial])
        _facts(conn, fleet["serials"][1], shas[fleet["serials"][1]], crypto_state="unencrypted")
    conn.close()
    keys = ("area", "worker_type")
    pick = store.picked([], [ids[3]])  # hand-picked by officer id
    where = store.scope(keys, pick, [("NORTH", "OFFICER"), ("WEST", "OFFICER")], [ids[3]])
    holder = {oid: (oid if oid == ids[3] else None, "NORTH" if i < 3 else "WEST", "OFFICER")
              for i, oid in enumerate(ids)}
    by_device = dict(db.execute("SELECT device_id, officer_id FROM assignments"
                                " WHERE closed_at IS NULL"))

    def expected() -> Counter[tuple[Any, ...]]:
        out: Counter[tuple[Any, ...]] = Counter()
        for device, ok in _live(db, fleet["folder"]).items():
            out[holder[by_device[device]]] += int(ok)
        return out

    def counted() -> Counter[tuple[Any, ...]]:
        found = judgements.compliant_counts(db, fleet["folder"], keys, pick, where)
        return Counter({k: n for k, n in found.items() if n})

    truth = expected()
    assert sum(truth.values()) == 5
    assert counted() == truth  # nothing stored: each device judged live
    assert _stored(fleet) == 6
    assert counted() == truth  # every judgement stored and holding
    with transaction(db):  # one of a kind's judgements dropped: that one judged live
        db.execute("DELETE FROM device_judgements WHERE device_id = ?",
                   [next(d for d, o in by_device.items() if o == ids[0])])
    assert counted() == truth
    # Another of that kind stored as if judged against another policy: the stored
    # answer (compliant) is not read for it; judged live, it is not.
    conn = Raw(db_path)
    with conn:
        _facts(conn, fleet["serials"][2], shas[fleet["serials"][2]],
               crypto_state="unencrypted")
    conn.close()
    assert _stored(fleet) == 6
    with transaction(db):
        db.execute("UPDATE device_judgements SET policy_key = 'another', compliant = 1"
                   " WHERE device_id = ?", [next(d for d, o in by_device.items()
                                                 if o == ids[2])])
    truth = expected()
    assert sum(truth.values()) == 4
    assert counted() == truth
    # A device away too long, nothing stored: judged live from its last contact.
    away = (datetime.now(UTC) - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with transaction(db):
        db.execute("DELETE FROM device_judgements")
        db.execute("UPDATE devices SET last_seen = ? WHERE serial = ?", [away, fleet["serials"][0]])
    truth = expected()
    assert sum(truth.values()) == 3
    assert counted() == truth


def test_a_plan_that_hand_picks_tens_of_thousands_by_id_is_counted_in_bounded_statements(
        fleet: dict[str, Any]) -> None:
    """PostgreSQL binds at most 65,535 values per statement: the plan's hand-picked ids
    (here 25,000 listed, as a plan of short roster ids can) are sent once per statement."""
    from mdm.store import rollout as store

    db, ids = fleet["db"], [p["officer_id"] for p in fleet["people"]]
    assert _stored(fleet) == 6
    listed = [ids[0], *(f"x{i}" for i in range(25_000))]
    keys = ("area", "worker_type")
    kinds = sorted({(p["area"], p["worker_type"]) for p in fleet["people"]})
    pick = store.picked([], listed)
    found = judgements.compliant_counts(db, fleet["folder"], keys, pick,
                                        store.scope(keys, pick, kinds, [ids[0]]))
    assert sum(found.values()) == 6
    assert found[(ids[0], fleet["people"][0]["area"], "OFFICER")] == 1
