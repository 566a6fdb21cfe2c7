"""Enrol, refresh and push through a fake device driver: fast, and no sshd anywhere.

The features see devices only through the driver seam, so a fake driver exercises their
whole logic (planning, per-device results, recording, audit) in milliseconds. The same
flows cross real SSH in the lab tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mdm.context import AppContext
from mdm.errors import PartialFailure
from mdm.fleet.transport import StepFailed, Target, Unreachable
from tests.fakes import FakeDriver, FakeDrivers, fake_key_line
from tests.helpers import rows

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "playbooks" / "policies"


def _device(row: dict[str, Any], index: int) -> FakeDriver:
    serial = row["serial_number"]
    props = {"ro.serialno": serial, "ro.product.manufacturer": row["manufacturer"],
             "ro.product.model": row["model"], "ro.build.version.release": "5.1.1",
             "ro.build.version.sdk": "22", "ro.build.version.security_patch": "2026-10-01",
             "ro.crypto.state": "encrypted"}
    return FakeDriver(Target(serial, f"10.9.0.{index + 1}"), props, fake_key_line(serial))


@pytest.fixture
def fleet(inventory: dict[str, Any]) -> Iterator[tuple[Any, FakeDrivers]]:
    """The inventory's 20 delivered devices, each behind a fake driver; and the database."""
    import os

    from mdm.store import connect

    db = connect(Path(os.environ["MDM_DB"]))
    drivers = FakeDrivers({r["serial_number"]: _device(r, i)
                           for i, r in enumerate(inventory["delivery"])})
    yield db, drivers
    db.conn.close()


def _enrol(db: Any, drivers: FakeDrivers, serials: list[str]) -> dict[str, Any]:
    from mdm.enrol import service
    from mdm.fleet.keys import fingerprint_of_line

    requests = [service.Request(s, f"10.9.0.{i + 1}:22",
                                fingerprint_of_line(drivers.devices[s].key_line))
                for i, s in enumerate(serials)]
    return service.enrol(db, "admin", requests, drivers)


def test_enrol_pins_each_device_its_own_key_and_names_the_one_that_lies(fleet: Any) -> None:
    db, drivers = fleet
    serials = sorted(drivers.devices)[:4]
    liar = drivers.devices[serials[2]]
    liar.props["ro.serialno"] = "NOTTHEONE1"
    with pytest.raises(PartialFailure) as caught:
        _enrol(db, drivers, serials)
    result = caught.value.result
    assert [(f["serial"], f["kind"]) for f in result["failed"]] == [
        (serials[2], "identity_mismatch")]
    pins = dict(db.execute("SELECT serial, host_key FROM devices WHERE status = 'enrolled'")
                .fetchall())
    assert pins == {s: drivers.devices[s].key_line for s in serials if s != serials[2]}
    assert all(drivers.devices[s].calls[0] == "identity" for s in serials)


def test_refresh_records_facts_and_names_the_unreachable(fleet: Any) -> None:
    from mdm.devices.refresh import refresh

    db, drivers = fleet
    serials = sorted(drivers.devices)[:3]
    _enrol(db, drivers, serials)
    drivers.devices[serials[1]].fail["facts"] = Unreachable(serials[1], "cable out")
    drivers.devices[serials[0]].props["ro.build.version.security_patch"] = "2026-11-01"
    with pytest.raises(PartialFailure) as caught:
        refresh(db, "admin", [], drivers)
    result = caught.value.result
    assert [(f["serial"], f["kind"]) for f in result["failed"]] == [
        (serials[1], "unreachable")]
    patch = dict(db.execute("SELECT d.serial, f.security_patch FROM devices d JOIN"
                            " device_facts f ON f.device_id = d.id").fetchall())
    assert patch[serials[0]] == "2026-11-01"
    error = db.scalar("SELECT last_contact_error FROM devices WHERE serial = ?", [serials[1]])
    assert error == "unreachable: cable out"


def test_push_applies_once_records_the_proof_and_keeps_failures_per_device(fleet: Any) -> None:
    from mdm.policies.push import push

    db, drivers = fleet
    serials = sorted(drivers.devices)[:3]
    _enrol(db, drivers, serials)
    drivers.devices[serials[2]].fail["apply_policy"] = StepFailed(
        serials[2], "upload to $HOME/mdm-dpc/inbox/policy.json failed: No space left")
    with pytest.raises(PartialFailure) as caught:
        push(db, "admin", POLICIES, [], drivers)
    result = caught.value.result
    assert [(f["serial"], f["kind"]) for f in result["failed"]] == [(serials[2], "step_failed")]
    assert "No space left" in result["failed"][0]["error"]
    applied = dict(db.execute("SELECT serial, applied_policy FROM devices").fetchall())
    for serial in serials[:2]:
        assert applied[serial] == drivers.devices[serial].dpc["policySha256"]
    assert applied[serials[2]] is None
    del drivers.devices[serials[2]].fail["apply_policy"]
    again = push(db, "admin", POLICIES, [], drivers)
    assert sorted(again["unchanged"]) == serials[:2]
    assert [d["serial"] for d in again["done"]] == [serials[2]]
    events = rows(Path(db.conn.execute("PRAGMA database_list").fetchone()[2]),
                  "SELECT event FROM policy_events e JOIN devices d ON d.id = e.device_id"
                  " WHERE d.serial = ? ORDER BY e.id", (serials[2],))
    assert [e[0] for e in events] == ["failed", "sent", "applied"]
    audit = db.execute("SELECT after FROM audit WHERE action = 'policy.push'").fetchall()
    assert len(audit) == 3 and all(json.loads(a[0])["violations"] == 0 for a in audit)


def test_the_app_context_builds_drivers_from_a_replaceable_factory(tmp_path: Path) -> None:
    fake = FakeDrivers({})
    context = AppContext(tmp_path / "x.db", "admin", driver_factory=lambda c: fake)
    assert context.drivers(7) is fake and fake.concurrency == 7


def test_a_push_that_stops_early_names_the_devices_it_never_started(fleet: Any) -> None:
    from mdm.policies.push import push

    db, drivers = fleet
    serials = sorted(drivers.devices)[:4]
    _enrol(db, drivers, serials)
    drivers.concurrency = 1
    for serial in serials[:2]:
        drivers.devices[serial].fail["apply_policy"] = Unreachable(serial, "no route")
    with pytest.raises(PartialFailure) as caught:
        push(db, "admin", POLICIES, [], drivers, max_fail_percent=25)
    result = caught.value.result
    assert result["stopped_early"] is True
    never = [s["serial"] for s in result["skipped"]]
    assert never and set(never) <= set(serials[2:])
    assert all("apply_policy" not in drivers.devices[s].calls for s in never)


def test_each_device_gets_the_profile_of_its_model(tmp_path: Path) -> None:
    from mdm.driver.routes import ShellDrivers
    from mdm.fleet.profiles import BUILTIN, chooser
    from tests.fakes import FakeTransport

    folder = tmp_path / "profiles"
    folder.mkdir()
    android = (BUILTIN / "android.yaml").read_text()
    (folder / "s5.yaml").write_text(android.replace("name: android", "name: s5") +
                                    "models: [SM-G900F]\n")
    drivers = ShellDrivers(FakeTransport, lambda t: "", chooser(folder))
    s5 = drivers.open(Target("A1", "10.0.0.1", model="SM-G900F"))
    note4 = drivers.open(Target("A2", "10.0.0.2", model="SM-N910F"))
    assert (s5.profile.name, note4.profile.name) == ("s5", "android")
    (folder / "android.yaml").write_text(android.replace("pm list packages",
                                                         "cmd package list packages"))
    local = ShellDrivers(FakeTransport, lambda t: "", chooser(folder))
    assert "cmd package" in local.open(Target("A3", "10.0.0.3")).profile.facts["packages"]


def test_every_failure_kind_says_what_to_do() -> None:
    from mdm.runs.record import HINTS, Outcome

    outcome = Outcome()
    for kind in ("host_key", "malformed_output", "timeout", "unreachable"):
        outcome.failed.append({"serial": f"R58F4{kind}", "error": "x", "kind": kind})
    assert [p.hint for p in outcome.problems()] == [
        HINTS["host_key"], HINTS["malformed_output"], HINTS["timeout"], HINTS["unreachable"]]
    assert all(p.hint for p in outcome.problems())


def _bench(db: Any, drivers: FakeDrivers, serials: list[str], states: dict[str, str] | None
           = None) -> None:
    """Register the fake station `bench` and plug these devices into it."""
    from mdm.stations import service as stations

    drivers.stations.add("bench")
    stations.add(db, "admin", "bench", "127.0.250.1:22", None, True,
                 lambda target: fake_key_line("bench"))
    for serial in serials:
        drivers.plugged[serial] = ("bench", (states or {}).get(serial, "device"))


def test_a_station_is_scanned_and_enrolled_through_the_driver_alone(fleet: Any) -> None:
    from mdm.stations import service as stations

    db, drivers = fleet
    serials = sorted(drivers.devices)[:4]
    _bench(db, drivers, serials, {serials[1]: "unauthorized"})
    drivers.plugged["STRANGER01"] = ("bench", "device")
    scan = {d["serial"]: d["category"] for d in stations.scan(db, "bench", drivers)["devices"]}
    assert scan == {serials[0]: "ready", serials[1]: "unauthorized", serials[2]: "ready",
                    serials[3]: "ready", "STRANGER01": "unknown"}
    with pytest.raises(PartialFailure) as caught:
        stations.enrol(db, "admin", "bench", drivers)
    result = caught.value.result
    assert [(f["serial"], f["kind"]) for f in result["failed"]] == [(serials[1], "unauthorized")]
    assert sorted(d["serial"] for d in result["done"]) == [serials[0], *serials[2:]]
    routed = dict(db.execute("SELECT serial, station FROM devices WHERE status = 'enrolled'")
                  .fetchall())
    assert routed == {s: "bench" for s in (serials[0], *serials[2:])}
    assert all(drivers.devices[s].target.via == "bench" for s in routed)


def test_a_station_routed_device_is_pushed_with_usb_debugging_kept_on(fleet: Any) -> None:
    from mdm.policies.push import push
    from mdm.stations import service as stations

    db, drivers = fleet
    at_bench, in_field = sorted(drivers.devices)[:2]
    _enrol(db, drivers, [in_field])
    _bench(db, drivers, [at_bench])
    stations.enrol(db, "admin", "bench", drivers)
    push(db, "admin", POLICIES, [], drivers)
    overrides = {s: json.loads(drivers.devices[s].inbox or b"{}")["advancedSecurityOverrides"]
                 for s in (at_bench, in_field)}
    assert overrides[at_bench]["developerSettings"] == "DEVELOPER_SETTINGS_ALLOWED"
    assert overrides[in_field]["developerSettings"] == "DEVELOPER_SETTINGS_DISABLED"
    bench_doc = json.loads(drivers.devices[at_bench].inbox or b"{}")
    field_doc = json.loads(drivers.devices[in_field].inbox or b"{}")
    del bench_doc["advancedSecurityOverrides"], field_doc["advancedSecurityOverrides"]
    assert bench_doc == field_doc  # nothing else differs


def test_failures_through_a_station_are_the_devices_last_contact_error(fleet: Any) -> None:
    from mdm.devices.refresh import refresh
    from mdm.stations import service as stations

    db, drivers = fleet
    serials = sorted(drivers.devices)[:3]
    _bench(db, drivers, serials)
    stations.enrol(db, "admin", "bench", drivers)
    drivers.plugged[serials[0]] = ("bench", "offline")
    del drivers.plugged[serials[1]]
    with pytest.raises(PartialFailure) as caught:
        refresh(db, "admin", [], drivers)
    kinds = {f["serial"]: f["kind"] for f in caught.value.result["failed"]}
    assert kinds == {serials[0]: "offline", serials[1]: "not_attached"}
    errors = dict(db.execute("SELECT serial, last_contact_error FROM devices"
                             " WHERE station = 'bench'").fetchall())
    assert errors[serials[0]].startswith("offline: on station bench")
    assert errors[serials[1]].startswith("not_attached: on station bench")
    assert errors[serials[2]] is None
    drivers.stations.clear()  # the station itself goes away: each device named once
    with pytest.raises(PartialFailure) as caught:
        refresh(db, "admin", [], drivers)
    assert sorted(f["serial"] for f in caught.value.result["failed"]) == serials
    assert {f["kind"] for f in caught.value.result["failed"]} == {"station_unreachable"}
