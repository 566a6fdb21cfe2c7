"""The lab and the operator's key, through the CLI: up, status, faults, down, cleanup."""

from __future__ import annotations

import csv
import io
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from mdm.lab.lab import _alive

pytestmark = pytest.mark.lab


def test_keys_init_writes_a_private_key_only_we_can_read(mdm, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MDM_KEY", str(tmp_path / "k" / "id_ed25519"))
    out = mdm.json("keys", "init")
    private = Path(out["path"])
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    keygen = subprocess.run(["ssh-keygen", "-lf", str(private) + ".pub"], capture_output=True,
                            text=True, check=True)
    assert out["fingerprint"] == keygen.stdout.split()[1]
    assert "already exists" in mdm("keys", "init", code=2).stderr
    assert mdm.json("keys", "show")["fingerprint"] == out["fingerprint"]
    assert "PRIVATE" not in out["public_key"]


def test_a_passphrase_protected_key_loads_with_its_passphrase(mdm, tmp_path,
                                                              monkeypatch) -> None:
    monkeypatch.setenv("MDM_KEY", str(tmp_path / "id"))
    monkeypatch.setenv("MDM_KEY_PASSPHRASE", "correct horse battery")
    assert mdm.json("keys", "init", "--passphrase")["passphrase"] is True
    from mdm.fleet.ssh import load_credentials

    assert load_credentials().pkey is not None
    monkeypatch.setenv("MDM_KEY_PASSPHRASE", "wrong")
    from mdm.errors import InputError

    with pytest.raises(InputError, match="cannot load"):
        load_credentials()
    monkeypatch.delenv("MDM_KEY_PASSPHRASE")
    assert load_credentials().allow_agent  # left to ssh-agent


@pytest.fixture
def own_lab(tmp_path, monkeypatch, operator_key):
    """A lab of this test's own, stopped whatever happens."""
    from mdm.lab.lab import Lab, become_subreaper

    become_subreaper()
    monkeypatch.setenv("MDM_KEY", str(operator_key))
    monkeypatch.setenv("MDM_LAB", str(tmp_path / "lab"))
    yield tmp_path / "lab"
    Lab(tmp_path / "lab").down()


def test_lab_up_status_faults_manifest_and_down(mdm, own_lab) -> None:
    tmp_path = own_lab.parent
    devices = mdm.json("lab", "up", "3")
    assert [d["running"] for d in devices] == [True, True, True]
    assert all(d["address"].startswith("127.0.") for d in devices)
    assert "already up" in mdm("lab", "up", "2", code=2).stderr
    serial = devices[0]["serial"]
    mdm("lab", "fault", serial, "offline")
    mdm("lab", "fault", serial, "slow", "--delay", "0.5")
    status = {d["serial"]: d for d in mdm.json("lab", "status")}
    assert status[serial]["running"] is False and status[serial]["faults"] == ["offline", "slow"]
    mdm("lab", "fault", serial, "--clear")
    assert mdm.json("lab", "status")[0]["running"] is True
    assert "unknown fault" in mdm("lab", "fault", serial, "melted", code=2).stderr
    manifest = list(csv.DictReader(io.StringIO(mdm("lab", "manifest").stdout)))
    assert [r["serial_number"] for r in manifest] == [d["serial"] for d in devices]
    from mdm.enrol.identity import is_valid_imei

    assert all(is_valid_imei(r["imei1"]) for r in manifest)
    from mdm.lab.lab import Lab

    pids = Lab(tmp_path / "lab").pids()
    assert len(pids) == 3
    mdm("lab", "down")
    assert not [p for p in pids if _alive(p)]
    assert not (tmp_path / "lab").exists()
    assert os.path.exists("/run/sshd")


def _orphan(device: object) -> None:
    """Start `sleep 60` on a device, then drop the connection: the session is orphaned."""
    import getpass

    from mdm.fleet.ssh import ParamikoTransport, load_credentials
    from mdm.fleet.transport import Target

    path = device.path  # type: ignore[attr-defined]
    key = " ".join((path / "etc" / "host_key.pub").read_text().split()[:2])
    t = ParamikoTransport(Target(device.serial, device.host, device.port,  # type: ignore[attr-defined]
                                 getpass.getuser(), key), load_credentials())
    transport = t._client.get_transport()
    assert transport is not None
    transport.open_session().exec_command("sleep 60")  # no deadline of ours around it
    t.close()


def test_lab_down_stops_what_a_dropped_session_left_running(mdm, own_lab) -> None:
    from mdm.lab.lab import Lab
    from tests.helpers import device_processes

    mdm("lab", "up", "2")
    lab = Lab(own_lab)
    devices = lab.devices()
    for device in devices:
        _orphan(device)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(
            any(b"sleep" in Path(f"/proc/{p}/cmdline").read_bytes()
                for p in device_processes(d.path)) for d in devices):
        time.sleep(0.05)
    left = {d.serial: device_processes(d.path) for d in devices}
    assert all(left.values())  # the sleeps outlived their connections
    assert set(lab.pids()) >= {p for pids in left.values() for p in pids}
    lab.fault(devices[0].serial, "offline")  # stopping one device stops its leftovers
    assert not device_processes(devices[0].path) and device_processes(devices[1].path)
    mdm("lab", "down")
    assert not [p for pids in left.values() for p in pids if _alive(p)]
    assert not any(device_processes(d.path) for d in devices)


def test_the_lab_is_private_whatever_the_umask(mdm, own_lab) -> None:
    old = os.umask(0)
    try:
        mdm("lab", "up", "1")
    finally:
        os.umask(old)
    from mdm.lab.lab import Lab

    lab = Lab(own_lab)
    device = lab.devices()[0]
    lab.fault(device.serial, "slow", delay=0.1)
    lab.fault(device.serial, "patch-unknown")
    folders = [own_lab, *[p for p in own_lab.rglob("*") if p.is_dir()]]
    files = [p for p in own_lab.rglob("*") if p.is_file() and p.name != "sshd.pid"]
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in folders} == {"0o700"}
    modes = {p.relative_to(device.path).as_posix() if device.path in p.parents else p.name:
             stat.S_IMODE(p.stat().st_mode) for p in files}
    assert {m & 0o077 for m in modes.values()} == {0}, modes  # nothing for group or others
    for name in ("props", "packages", "etc/host_key", "etc/authorized_keys", "lab.json",
                 "faults/slow"):
        assert modes[name] == 0o600, name
    assert modes["bin/sh"] == modes["bin/mdm-shell"] == 0o700


def test_every_fault_is_documented_and_in_the_help(mdm) -> None:
    from mdm.lab.lab import FAULTS

    doc = (Path(__file__).resolve().parent.parent / "docs" / "fleet.md").read_text()
    help_text = " ".join(mdm("lab", "fault", "--help").stdout.split())
    assert [f for f in FAULTS if f"`{f}`" not in doc] == []
    assert [f for f in FAULTS if f not in help_text] == []
