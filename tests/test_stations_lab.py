"""Provisioning stations against the lab: a real sshd station, its adb, plugged devices."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LabPool, Mdm
from tests.helpers import rows

pytestmark = pytest.mark.backends


@pytest.fixture
def bench(mdm: Mdm, lab: LabPool, station: Any, db_path: Path) -> dict[str, Any]:
    """The lab's station, registered in this test's inventory with its confirmed key."""
    row = next(r for r in lab.lab.station_status() if r["name"] == station.name)
    created = (db_path.exists() if isinstance(db_path, Path) else  # a migrated template
               rows(db_path, "SELECT COUNT(*) FROM operators")[0][0] > 0)
    if not created:
        mdm("operators", "add", "admin")
    mdm("stations", "add", station.name, "--address", row["address"],
        "--host-key", row["fingerprint"])
    return {"name": station.name, "station": station, **row}


def _on_station(mdm: Mdm, lab: LabPool, delivered: Callable[[int], list[Any]],
                bench: dict[str, Any], count: int) -> list[Any]:
    devices = delivered(count)
    for d in devices:
        lab.lab.plug(d.serial, bench["name"])
    return devices


def _adb(station: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the lab station's adb as its sshd session would."""
    home = station.path
    return subprocess.run([str(home / "bin" / "adb"), *args], capture_output=True, text=True,
                          env={"HOME": str(home), "PATH": f"{home}/bin:/usr/bin:/bin"},
                          timeout=30)


def _policy_file(d: Any) -> Path:
    return d.path / "mdm-dpc" / "inbox" / "policy.json"


def test_a_delivery_on_a_station_is_scanned_enrolled_refreshed_and_pushed(
        mdm: Mdm, lab: LabPool, delivered: Callable[[int], list[Any]],
        bench: dict[str, Any]) -> None:
    devices = _on_station(mdm, lab, delivered, bench, 12)
    refuser, yanked = devices[3], devices[7]
    lab.lab.fault(refuser.serial, "unauthorized")

    scan = mdm.json("stations", "scan", "bench")
    category = {d["serial"]: d["category"] for d in scan["devices"]}
    assert category == {d.serial: "unauthorized" if d is refuser else "ready" for d in devices}
    assert {d["usb"] for d in scan["devices"]} >= {"1-1.1", "1-1.12"}

    enrol = mdm.json("enrol", "station", "bench", code=1)
    assert [f["serial"] for f in enrol["failed"]] == [refuser.serial]
    assert enrol["failed"][0]["kind"] == "unauthorized"
    assert len(enrol["done"]) == 11
    rows = {r["serial"]: r for r in mdm.json("devices", "list")}
    assert rows[refuser.serial]["status"] == "delivered"
    assert mdm.json("devices", "show", devices[0].serial)["route"] == "station:bench"
    assert all(rows[d.serial]["status"] == "enrolled" for d in devices if d is not refuser)

    refresh = mdm.json("devices", "refresh", "all")
    assert sorted(r["serial"] for r in refresh["done"]) == sorted(
        d.serial for d in devices if d is not refuser)

    lab.lab.fault(yanked.serial, "unplug-mid-push")
    push = mdm.json("policy", "push", "all", code=1)
    assert [(f["serial"], f["kind"]) for f in push["failed"]] == [(yanked.serial, "unplugged")]
    assert "nothing was renamed into place" in push["failed"][0]["error"]
    assert mdm.json("devices", "show", yanked.serial)["last_contact_error"].startswith(
        "unplugged: ")
    assert len(push["done"]) == 10
    for d in devices:
        if d not in (refuser, yanked):
            assert _policy_file(d).exists(), d.serial
    assert not _policy_file(yanked).exists()  # the half-written upload never took its place

    lab.lab.plug(yanked.serial, "bench")  # plugged back in: the next run resumes
    again = mdm.json("policy", "push", "all")
    assert [d["serial"] for d in again["done"]] == [yanked.serial]
    assert _policy_file(yanked).exists()
    assert not list(_policy_file(yanked).parent.glob("policy.json.mdm-*"))
    log = (yanked.path / "log" / "commands").read_text()
    assert "adb shell" in log  # it was reached over adb (the upload streams in one shell), not sshd


def test_an_unreachable_station_fails_each_device_once(
        mdm: Mdm, lab: LabPool, delivered: Callable[[int], list[Any]],
        bench: dict[str, Any]) -> None:
    devices = _on_station(mdm, lab, delivered, bench, 3)
    mdm.json("enrol", "station", "bench")
    lab.lab.station_down("bench")
    result = mdm.json("devices", "refresh", "all", code=1)
    assert sorted(f["serial"] for f in result["failed"]) == sorted(d.serial for d in devices)
    assert {f["kind"] for f in result["failed"]} == {"station_unreachable"}
    assert all(f["attempts"] == 1 for f in result["failed"])
    for d in devices:  # stored as a direct route's failure is: kind, then the words
        error = mdm.json("devices", "show", d.serial)["last_contact_error"]
        assert error.startswith("station_unreachable: station bench unreachable"), error
    shown = mdm("devices", "refresh", "all", code=1)  # as IT staff see it: once per device
    words = shown.stdout + shown.stderr
    assert all(words.count(d.serial) == 1 for d in devices), words
    assert "Traceback" not in words and "Exception" not in words
    scan = mdm("stations", "scan", "bench", code=1)  # the station failed, not the input
    assert "could not be asked" in scan.stderr


def test_station_failures_are_stored_as_each_devices_last_contact_error(
        mdm: Mdm, lab: LabPool, delivered: Callable[[int], list[Any]],
        bench: dict[str, Any]) -> None:
    refuser, stuck, gone, fine = _on_station(mdm, lab, delivered, bench, 4)
    mdm.json("enrol", "station", "bench")
    lab.lab.fault(refuser.serial, "unauthorized")
    lab.lab.fault(stuck.serial, "offline")
    lab.lab.unplug(gone.serial)
    result = mdm.json("devices", "refresh", "all", code=1)
    kinds = {f["serial"]: f["kind"] for f in result["failed"]}
    assert kinds == {refuser.serial: "unauthorized", stuck.serial: "offline",
                     gone.serial: "not_attached"}
    assert [d["serial"] for d in result["done"]] == [fine.serial]
    for device, kind in kinds.items():
        shown = mdm.json("devices", "show", device)
        assert shown["last_contact_error"].startswith(f"{kind}: on station bench"), shown
        assert shown["last_contact_at"] is not None
    assert mdm.json("devices", "show", fine.serial)["last_contact_error"] is None
    lab.lab.fault(refuser.serial, "unauthorized", clear=True)
    lab.lab.fault(stuck.serial, "offline", clear=True)
    lab.lab.plug(gone.serial, "bench")
    assert len(mdm.json("devices", "refresh", "all")["done"]) == 4  # and the errors clear
    assert all(mdm.json("devices", "show", d.serial)["last_contact_error"] is None
               for d in (refuser, stuck, gone))


def test_a_device_moves_from_a_station_to_direct_and_back_audited(
        mdm: Mdm, lab: LabPool, delivered: Callable[[int], list[Any]],
        bench: dict[str, Any]) -> None:
    device = _on_station(mdm, lab, delivered, bench, 1)[0]
    mdm.json("enrol", "station", "bench")
    # Still on the bench: there is no direct route to it yet.
    refused = mdm("stations", "route", device.serial, "--direct", device.address,
                  "--host-key", lab.fingerprint(device), "--reason", "to the field", code=2)
    assert "does not answer" in refused.stderr
    lab.lab.unplug(device.serial)
    wrong = mdm("stations", "route", device.serial, "--direct", device.address,
                "--host-key", "SHA256:" + "A" * 43, "--reason", "to the field", code=2)
    assert "offers host key" in wrong.stderr
    moved = mdm.json("stations", "route", device.serial, "--direct", device.address,
                     "--host-key", lab.fingerprint(device), "--reason", "issued to the field")
    assert (moved["from"], moved["to"]) == ("station:bench", f"direct:{device.address}")
    assert mdm.json("devices", "show", device.serial)["route"] == f"direct:{device.address}"
    assert mdm.json("devices", "refresh", "all")["done"][0]["serial"] == device.serial
    assert "adb shell" not in (device.path / "log" / "commands").read_text().splitlines()[-1]

    mdm("stations", "route", device.serial, "--station", "bench", "--reason", "back", code=2)
    lab.lab.plug(device.serial, "bench")
    back = mdm.json("stations", "route", device.serial, "--station", "bench",
                    "--reason", "back to the bench for repair")
    assert back["to"] == "station:bench"
    assert mdm.json("devices", "refresh", "all")["done"][0]["serial"] == device.serial
    moves = [e for e in mdm.json("audit", "log") if e["action"] == "devices.route"]
    assert [json.loads(m["after"])["reason"] if isinstance(m["after"], str)
            else m["after"]["reason"] for m in moves] == ["issued to the field",
                                                          "back to the bench for repair"]
    removal = mdm("stations", "remove", "bench", "--reason", "decommissioned", code=2)
    assert device.serial in removal.stderr


def _adb_enabled(d: Any) -> str:
    lines = (d.path / "settings" / "global").read_text().splitlines()
    return next(line.split("=", 1)[1] for line in lines if line.startswith("adb_enabled="))


def _developer_settings(d: Any) -> str:
    document = json.loads(_policy_file(d).read_text())
    return str(document["advancedSecurityOverrides"]["developerSettings"])


def test_usb_debugging_stays_on_at_the_station_and_goes_off_on_the_field_route(
        mdm: Mdm, lab: LabPool, delivered: Callable[[int], list[Any]],
        bench: dict[str, Any]) -> None:
    device = _on_station(mdm, lab, delivered, bench, 1)[0]
    mdm.json("enrol", "station", "bench")
    at_bench = mdm.json("policy", "push", "all")
    assert [d["serial"] for d in at_bench["done"]] == [device.serial]
    # The baseline disables developer settings; at the bench it allows them, or the phone
    # would switch USB debugging off and drop off the station's adb.
    assert _developer_settings(device) == "DEVELOPER_SETTINGS_ALLOWED"
    assert _adb_enabled(device) == "1"
    assert mdm.json("devices", "refresh", "all")["done"][0]["serial"] == device.serial
    assert mdm.json("policy", "push", "all")["unchanged"] == [device.serial]
    report = mdm.json("compliance", "report", code=1)["devices"][0]  # not yet field-ready
    assert {"policy_drift", "developer_options_on"} <= {r["code"] for r in report["reasons"]}

    lab.lab.unplug(device.serial)
    mdm.json("stations", "route", device.serial, "--direct", device.address,
             "--host-key", lab.fingerprint(device), "--reason", "issued to the field")
    in_field = mdm.json("policy", "push", "all")
    assert [d["serial"] for d in in_field["done"]] == [device.serial]
    assert in_field["done"][0]["from"] == at_bench["done"][0]["to"]
    assert _developer_settings(device) == "DEVELOPER_SETTINGS_DISABLED"
    assert _adb_enabled(device) == "0"

    # Back at the bench with USB debugging off, as the field policy left it: adb sees
    # nothing, and the move back is refused until someone switches debugging on.
    lab.lab.plug(device.serial, "bench", debugging=False)
    assert device.serial not in {d["serial"] for d in mdm.json("stations", "scan", "bench")
                                 ["devices"]}
    refused = mdm("stations", "route", device.serial, "--station", "bench",
                  "--reason", "repair", code=2)
    assert "not found" in refused.stderr and "USB debugging" in refused.stderr


def test_a_serial_on_two_stations_and_unknown_serials_are_named(
        mdm: Mdm, lab: LabPool, delivered: Callable[[int], list[Any]],
        bench: dict[str, Any]) -> None:
    from mdm.fleet.keys import key_path

    devices = _on_station(mdm, lab, delivered, bench, 2)
    stranger = lab.take(1)[0]  # plugged in, but not in this inventory
    lab.lab.plug(stranger.serial, "bench")
    other = lab.lab.station_up("annex", Path(str(key_path(None)) + ".pub").read_text())
    row = next(r for r in lab.lab.station_status() if r["name"] == "annex")
    mdm("stations", "add", "annex", "--address", row["address"], "--trust-on-first-use")
    lab.lab.plug(devices[0].serial, "annex")
    try:
        scan = mdm.json("stations", "scan", "bench")
    finally:
        lab.lab.station_down(other.name)
    category = {d["serial"]: d for d in scan["devices"]}
    assert category[devices[0].serial]["category"] == "two_stations"
    assert category[devices[0].serial]["also_on"] == ["annex"]
    assert category[devices[1].serial]["category"] == "ready"
    assert category[stranger.serial]["category"] == "unknown"
    listed = {s["name"]: s for s in mdm.json("stations", "list")}
    assert set(listed) == {"annex", "bench"}
    mdm("stations", "remove", "annex", "--reason", "a second bench, no longer used")
    assert [s["name"] for s in mdm.json("stations", "list")] == ["bench"]


def test_a_station_with_another_key_is_refused(mdm: Mdm, lab: LabPool, station: Any) -> None:
    mdm("operators", "add", "admin")
    row = next(r for r in lab.lab.station_status() if r["name"] == station.name)
    result = mdm("stations", "add", "bench", "--address", row["address"],
                 "--host-key", "SHA256:" + "B" * 43, code=2)
    assert row["fingerprint"] in result.stderr
    assert mdm.json("stations", "list") == []
    assert mdm("stations", "add", "bench", "--address", row["address"], code=2)


@pytest.mark.backends("sqlite")  # no inventory
def test_the_lab_adb_speaks_as_adb_does(lab: LabPool, station: Any) -> None:
    assert _adb(station, "shell", "true").stderr.strip() == "error: no devices/emulators found"
    one, two = lab.take(2)
    lab.lab.plug(one.serial, station.name)
    lab.lab.plug(two.serial, station.name)
    lab.lab.fault(two.serial, "unauthorized")
    listing = _adb(station, "devices", "-l").stdout.splitlines()
    assert listing[0] == "List of devices attached"
    assert listing[1].split() == [one.serial, "device", "usb:1-1.1", "product:trltexx",
                                  "model:SM_N910F", "device:trlte", "transport_id:1"]
    assert listing[2].split() == [two.serial, "unauthorized", "usb:1-1.2", "transport_id:2"]
    assert _adb(station, "devices").stdout.splitlines()[1] == f"{one.serial}\tdevice"
    missing = _adb(station, "-s", "NOPE123", "shell", "true")
    assert (missing.returncode, missing.stderr.strip()) == (1, "error: device 'NOPE123' not found")
    refused = _adb(station, "-s", two.serial, "shell", "true")
    assert refused.returncode == 1 and refused.stderr.startswith("error: device unauthorized.")
    assert _adb(station, "-s", one.serial, "shell", "exit 7").returncode == 7
    model = _adb(station, "-s", one.serial, "shell", "getprop", "ro.product.model")
    assert model.stdout == "SM-N910F\n"
    lab.lab.fault(one.serial, "offline")
    assert _adb(station, "-s", one.serial, "get-state").stderr.strip() == "error: device offline"
    lab.lab.fault(one.serial, "offline", clear=True)
    # USB debugging switched off (as a policy disabling developer settings does): the
    # phone runs no adbd, so adb neither lists nor reaches it.
    subprocess.run([str(one.path / "bin" / "settings"), "put", "global", "adb_enabled", "0"],
                   env={"HOME": str(one.path), "PATH": "/usr/bin:/bin"}, check=True, timeout=30)
    assert one.serial not in _adb(station, "devices", "-l").stdout
    gone = _adb(station, "-s", one.serial, "shell", "true")
    assert (gone.returncode, gone.stderr.strip()) == (1, f"error: device '{one.serial}' not found")


@pytest.mark.backends("sqlite")  # no inventory
def test_adb_devices_lines_are_parsed_and_strange_ones_refused() -> None:
    from mdm.fleet.station import parse_devices
    from mdm.fleet.transport import StepFailed

    text = ("* daemon not running; starting now at tcp:5037\n* daemon started successfully\n"
            "List of devices attached\n"
            "R58F484G7YV            device usb:1-1.2 product:trltexx model:SM_N910F"
            " device:trlte transport_id:3\n"
            "R58F4ENEEWJ            unauthorized usb:1-1.3 transport_id:4\n"
            "R58F46ARPY1\toffline\n\n")
    assert parse_devices(text, "bench") == [
        {"serial": "R58F484G7YV", "state": "device", "usb": "1-1.2", "product": "trltexx",
         "model": "SM_N910F", "device": "trlte", "transport_id": "3"},
        {"serial": "R58F4ENEEWJ", "state": "unauthorized", "usb": "1-1.3",
         "transport_id": "4"},
        {"serial": "R58F46ARPY1", "state": "offline"}]
    with pytest.raises(StepFailed):
        parse_devices("List of devices attached\n$(reboot) device\n", "bench")


@pytest.mark.backends("sqlite")  # no inventory
def test_station_errors_are_named() -> None:
    from mdm.fleet.station import classify

    said = ("error: device unauthorized.\nThis adb server's $ADB_VENDOR_KEYS is not set\n")
    assert classify("S1", "bench", said).kind == "unauthorized"
    assert classify("S1", "bench", "error: device offline").kind == "offline"
    assert classify("S1", "bench", "error: device 'S1' not found").kind == "not_attached"
    assert classify("S1", "bench", "error: no devices/emulators found").kind == "not_attached"


def test_a_station_works_on_at_most_its_concurrency_of_devices_at_once(
        mdm: Mdm, lab: LabPool, delivered: Callable[[int], list[Any]], station: Any) -> None:
    import time

    mdm("operators", "add", "admin")
    row = next(r for r in lab.lab.station_status() if r["name"] == station.name)
    mdm("stations", "add", station.name, "--address", row["address"], "--host-key",
        row["fingerprint"], "--concurrency", "1")
    devices = delivered(3)
    for d in devices:
        lab.lab.plug(d.serial, station.name)
    mdm.json("enrol", "station", station.name)
    for d in devices:  # every shell on it now starts a second late: 2 s per command via adb
        lab.lab.fault(d.serial, "slow", delay=1.0)
    started = time.monotonic()
    assert len(mdm.json("devices", "refresh", "all")["done"]) == 3
    assert time.monotonic() - started >= 5.0  # one device at a time (all at once: ~2.6 s)


def _adb_runs(station_path: Path, since: float, command: str) -> list[tuple[float, float, str]]:
    """The station's adb runs of one command since a time: (start, end, SSH connection)."""
    out = []
    for line in (station_path / "log" / "adb").read_text().splitlines():
        start, end, connection, what, _serial = line.split("\t")
        if what == command and float(start) >= since:
            out.append((float(start), float(end), connection))
    return out


def test_each_station_carries_its_devices_on_one_connection_in_its_own_lane(
        mdm: Mdm, lab: LabPool, delivered: Callable[[int], list[Any]],
        bench: dict[str, Any]) -> None:
    import time

    from mdm.fleet.keys import key_path

    other = lab.lab.station_up("annex", Path(str(key_path(None)) + ".pub").read_text())
    try:
        row = next(r for r in lab.lab.station_status() if r["name"] == "annex")
        mdm("stations", "add", "annex", "--address", row["address"], "--host-key",
            row["fingerprint"])
        on_bench = _on_station(mdm, lab, delivered, bench, 3)
        on_annex = delivered(3)
        for d in on_annex:
            lab.lab.plug(d.serial, "annex")
        mdm.json("enrol", "station", "bench")
        mdm.json("enrol", "station", "annex")
        for d in on_bench + on_annex:  # every command on them now takes over a second
            lab.lab.fault(d.serial, "slow", delay=1.0)
        since = time.time()
        result = mdm.json("devices", "refresh", "all", "--concurrency", "1")
        assert len(result["done"]) == 6
        runs = {name: _adb_runs(path, since, "shell")
                for name, path in (("bench", bench["station"].path), ("annex", other.path))}
    finally:
        lab.lab.station_down("annex")
    for name, shells in runs.items():
        assert len(shells) == 3, (name, shells)
        # one SSH connection per station carried all its devices' commands
        assert len({connection for _, _, connection in shells}) == 1, (name, shells)
        # --concurrency 1: one device at a time in each station's lane
        ordered = sorted(shells)
        assert all(a[1] <= b[0] for a, b in zip(ordered, ordered[1:], strict=False)), name
    # ... but the two stations' lanes ran side by side, not one after the other
    assert any(a[0] < b[1] and b[0] < a[1] for a in runs["bench"] for b in runs["annex"])
