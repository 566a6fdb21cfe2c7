"""Enrolment never pins the wrong phone: bad pairings refused whole, identity proved per connection.

Against the real-sshd lab. "No SSH contact" is shown by the lab devices' command logs and
by a loopback listener that counts every connection made to it.
"""

from __future__ import annotations

import getpass
import random
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from mdm import examples
from tests.helpers import db_fingerprint, rows

pytestmark = [pytest.mark.lab, pytest.mark.backends]


class Listener:
    """A loopback port that records whether anyone connected to it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"

    def contacted(self) -> bool:
        try:
            conn, _ = self.sock.accept()  # the kernel queues connections made meanwhile
        except BlockingIOError:
            return False
        conn.close()
        return True


@pytest.fixture
def listener() -> Iterator[Listener]:
    one = Listener()
    yield one
    one.sock.close()


def _untouched(devices: list[Any]) -> bool:
    return all((d.path / "log" / "commands").read_text() == "" for d in devices)


def _refused(mdm, db_path, plan, *extra: str) -> list[dict[str, Any]]:
    """Run a pairing that must be refused whole; check that nothing changed."""
    before = db_fingerprint(db_path)
    out = mdm.json("enrol", "devices", "--from", plan, "--trust-on-first-use", *extra, code=2)
    assert db_fingerprint(db_path) == before
    assert out["done"] == [] and out["failed"] == []
    return out["refused"]


def _enrol_audits(mdm) -> list[dict[str, Any]]:
    return [e for e in mdm.json("audit", "log") if e["action"] == "devices.enrol"]


def test_a_repeated_serial_refuses_the_file_whole(mdm, lab, delivered, files, db_path,
                                                  listener) -> None:
    a, b, c = delivered(3)
    plan = files("plan.csv", "serial_number,address\n"
                 f"{a.serial},{a.address}\n{b.serial},{listener.address}\n"
                 f"{a.serial},{c.address}\n")
    refused = _refused(mdm, db_path, plan)
    assert [(r["row"], r["field"], r["value"]) for r in refused] == [
        (2, "serial_number", a.serial), (4, "serial_number", a.serial)]
    assert rows(db_path, "SELECT COUNT(*) FROM devices WHERE status != 'delivered'"
                         " OR host_key IS NOT NULL OR address IS NOT NULL") == [(0,)]
    assert _enrol_audits(mdm) == []
    assert _untouched([a, b, c]) and not listener.contacted()


def test_a_repeated_address_refuses_the_file_whole(mdm, lab, delivered, files, db_path,
                                                   listener) -> None:
    a, b, c = delivered(3)
    user_at = f"{getpass.getuser()}@{a.address}"  # the same host:port, spelt differently
    plan = files("plan.csv", "serial_number,address\n"
                 f"{a.serial},{a.address}\n{c.serial},{listener.address}\n"
                 f"{b.serial},{user_at}\n")
    refused = _refused(mdm, db_path, plan)
    assert [(r["row"], r["field"], r["value"]) for r in refused] == [
        (2, "address", a.address), (4, "address", user_at)]
    assert _enrol_audits(mdm) == []
    assert _untouched([a, b, c]) and not listener.contacted()


def test_an_address_bound_to_another_device_is_refused(mdm, lab, enrolled, delivered,
                                                       files, db_path, listener) -> None:
    a = enrolled(1)[0]
    b, c = delivered(2)
    audits = _enrol_audits(mdm)
    plan = files("plan.csv", "serial_number,address\n"
                 f"{c.serial},{listener.address}\n{b.serial},{a.address}\n")
    refused = _refused(mdm, db_path, plan)
    assert [(r["row"], r["field"], r["value"]) for r in refused] == [(3, "address", a.address)]
    assert a.serial in refused[0]["message"]
    # The same check for one device, and for a key already pinned for another device.
    before = db_fingerprint(db_path)
    out = mdm.json("enrol", "device", b.serial, "--address", a.address,
                   "--host-key", lab.fingerprint(a), code=2)
    assert {r["field"] for r in out["refused"]} == {"--address", "--host-key"}
    assert db_fingerprint(db_path) == before and _enrol_audits(mdm) == audits
    assert rows(db_path, "SELECT serial, status, address FROM devices WHERE serial IN (?, ?)"
                         " ORDER BY serial = ?", (a.serial, b.serial, b.serial)) == [
        (a.serial, "enrolled", a.address), (b.serial, "delivered", None)]
    assert _untouched([b, c]) and not listener.contacted()
    # An enrolled device is skipped, and told apart if the file gives it another address;
    # a malformed address refuses the file even for a device that would be skipped.
    out = mdm.json("enrol", "device", a.serial, "--address", listener.address,
                   "--trust-on-first-use")
    assert out["skipped"] == [{"serial": a.serial, "status": "enrolled",
                               "reason": f"already enrolled, at {a.address}"}]
    plan = files("bad.csv", f"serial_number,address\n{a.serial},{a.address}:22\n")
    assert [r["row"] for r in _refused(mdm, db_path, plan)] == [2]
    assert not listener.contacted()


def _set_prop(device: Any, key: str, value: str) -> None:
    with (device.path / "props").open("a") as fh:
        fh.write(f"{key}={value}\n")


def test_a_device_answering_as_another_is_refused_under_tofu(mdm, lab, delivered, files,
                                                             db_path) -> None:
    devices = delivered(6)
    faked, swap1, swap2, wrong_imei, right_imei, plain = devices
    lab.lab.fault(faked.serial, "identity")  # answers with another serial
    _set_prop(wrong_imei, "ro.ril.oem.imei", right_imei.imei1)  # another phone's IMEI
    _set_prop(right_imei, "persist.radio.imei", right_imei.imei1)
    plan = files("plan.csv", "serial_number,address\n" + "".join(
        f"{d.serial},{addr}\n" for d, addr in [
            (faked, faked.address), (swap1, swap2.address), (swap2, swap1.address),
            (wrong_imei, wrong_imei.address), (right_imei, right_imei.address),
            (plain, plain.address)]))
    out = mdm.json("enrol", "devices", "--from", plan, "--trust-on-first-use", code=1)
    failed = {f["serial"]: f for f in out["failed"]}
    assert set(failed) == {faked.serial, swap1.serial, swap2.serial, wrong_imei.serial}
    assert {f["kind"] for f in failed.values()} == {"identity_mismatch"}
    assert "IMEI is " + right_imei.imei1 in failed[wrong_imei.serial]["error"]
    assert sorted(d["serial"] for d in out["done"]) == sorted([right_imei.serial, plain.serial])
    assert rows(db_path, "SELECT serial FROM devices WHERE host_key IS NOT NULL"
                         " OR address IS NOT NULL OR status != 'delivered' ORDER BY serial"
                ) == sorted([(right_imei.serial,), (plain.serial,)])
    audited = {e["subject"]: e["after"] for e in _enrol_audits(mdm)}
    assert set(audited) == {f"device:{right_imei.serial}", f"device:{plain.serial}"}
    after = audited[f"device:{right_imei.serial}"]
    assert after["host_key_check"] == "trusted on first use"
    assert after["identity"]["imeis"] == [right_imei.imei1]
    assert after["host_key"] == lab.fingerprint(right_imei)


def test_concurrent_tofu_enrolment_pins_every_device_its_own_key(mdm, lab, files, tmp_path,
                                                                 monkeypatch) -> None:
    devices = lab.take(6)
    manifest = files("delivery.csv", lab.manifest_for(devices), examples.MANIFEST_COLUMNS)
    own_key = {d.serial: lab.fingerprint(d) for d in devices}
    listed = mdm("lab", "addresses", "--host-keys").stdout.splitlines()[1:]
    assert {line.split(",")[0]: line.split(",")[2] for line in listed
            if line.split(",")[0] in own_key} == own_key
    rng = random.Random(7)
    for round_ in range(5):
        db = tmp_path / f"round-{round_}.db"
        monkeypatch.setenv("MDM_DB", str(db))
        mdm("operators", "add", "admin")
        mdm("enrol", "import", manifest)
        order = rng.sample(devices, len(devices))
        x, y = order[0], order[1]
        # A hostile file first: a serial repeated at a neighbour's address.
        hostile = files(f"hostile-{round_}.csv", "serial_number,address\n" + "".join(
            f"{d.serial},{d.address}\n" for d in order) + f"{x.serial},{y.address}\n")
        assert len(_refused(mdm, db, hostile)) == 4  # x's serial and y's address, twice
        # Then a run in which two devices are given each other's addresses.
        given = {d.serial: d.address for d in order} | {x.serial: y.address,
                                                         y.serial: x.address}
        mixed = files(f"mixed-{round_}.csv", "serial_number,address\n" + "".join(
            f"{d.serial},{given[d.serial]}\n" for d in order))
        out = mdm.json("enrol", "devices", "--from", mixed, "--trust-on-first-use",
                       "--concurrency", "6", code=1)
        assert sorted(f["serial"] for f in out["failed"]) == sorted([x.serial, y.serial])
        plain = files(f"plain-{round_}.csv", "serial_number,address\n" + "".join(
            f"{d.serial},{d.address}\n" for d in order))
        out = mdm.json("enrol", "devices", "--from", plain, "--trust-on-first-use",
                       "--concurrency", "6")
        assert sorted(d["serial"] for d in out["done"]) == sorted([x.serial, y.serial])
        recorded = rows(db, "SELECT d.serial, d.address, d.host_key_fingerprint,"
                            " json_extract(f.props, '$.\"ro.serialno\"') FROM devices d"
                            " JOIN device_facts f ON f.device_id = d.id ORDER BY d.serial")
        assert recorded == sorted((d.serial, d.address, own_key[d.serial], d.serial)
                                  for d in devices), f"round {round_}"
        pinned = {r[0]: r[1] for r in rows(db, "SELECT serial, host_key FROM devices")}
        for d in devices:
            public = (d.path / "etc" / "host_key.pub").read_text().split()[:2]
            assert pinned[d.serial] == " ".join(public), f"round {round_}, {d.serial}"


def test_two_devices_offering_one_host_key_get_one_pin(mdm, lab, delivered, files,
                                                       db_path) -> None:
    a, b = delivered(2)
    keys = [b.path / "etc" / name for name in ("host_key", "host_key.pub")]
    saved = [k.read_bytes() for k in keys]

    def restart(device: Any) -> None:  # sshd reads its host key when it starts
        lab.lab.fault(device.serial, "offline")
        lab.lab.fault(device.serial, "offline", clear=True)

    try:  # b is a clone of a's image: the same host key
        for name, key in zip(("host_key", "host_key.pub"), keys, strict=True):
            key.write_bytes((a.path / "etc" / name).read_bytes())
        restart(b)
        plan = files("plan.csv", f"serial_number,address\n{a.serial},{a.address}\n"
                                 f"{b.serial},{b.address}\n")
        out = mdm.json("enrol", "devices", "--from", plan, "--trust-on-first-use", code=1)
        assert len(out["done"]) == 1 and len(out["failed"]) == 1
        assert out["failed"][0]["kind"] == "conflict"
        assert "is pinned for device " + out["done"][0]["serial"] in out["failed"][0]["error"]
        assert rows(db_path, "SELECT COUNT(*), COUNT(DISTINCT host_key_fingerprint) FROM devices"
                             " WHERE host_key IS NOT NULL") == [(1, 1)]
    finally:
        for key, data in zip(keys, saved, strict=True):
            key.write_bytes(data)
        restart(b)
