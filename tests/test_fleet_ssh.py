"""The paramiko transport against real sshd devices: deadlines, big output, bad uploads."""

from __future__ import annotations

import getpass
import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mdm.fleet.ssh import DISABLED_ALGORITHMS, ParamikoTransport, keyscan, load_credentials
from mdm.fleet.transport import (
    CommandTimeout,
    HostKeyError,
    OutputTooLarge,
    Target,
    Timeouts,
    TransferCorrupt,
    Unreachable,
)
from mdm.lab.lab import _descendants
from tests.helpers import device_processes

pytestmark = pytest.mark.lab


def _key(device: Any) -> str:
    return " ".join((device.path / "etc" / "host_key.pub").read_text().split()[:2])


def _connect(device: Any, key: str | None = None, **timeouts: float) -> ParamikoTransport:
    target = Target(device.serial, device.host, device.port, getpass.getuser(),
                    key if key is not None else _key(device))
    return ParamikoTransport(target, load_credentials(), Timeouts(**timeouts))


def _sessions(lab: Any, device: Any) -> list[int]:
    pid = lab.lab._pid(device)
    return _descendants(pid) if pid else []


def _wait_for(check: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_a_hung_command_is_cut_at_its_deadline_and_dies_on_the_device(lab: Any) -> None:
    device = lab.take(1)[0]
    with _connect(device) as t:
        started = time.monotonic()
        with pytest.raises(CommandTimeout, match="did not finish within 1 s"):
            t.run("sleep 30", timeout=1)
        assert time.monotonic() - started < 3
        assert t.run("echo still usable").stdout == b"still usable\n"
    assert _wait_for(lambda: not _sessions(lab, device)), "a session outlived its deadline"


def test_ten_mib_on_stdout_and_stderr_at_once_completes(lab: Any) -> None:
    device = lab.take(1)[0]
    size = 10 * 1024 * 1024
    with _connect(device) as t:
        result = t.run(f"head -c {size} /dev/zero & head -c {size} /dev/zero >&2; wait",
                       timeout=60)
    assert (len(result.stdout), len(result.stderr), result.exit_status) == (size, size, 0)


def test_upload_lands_atomically_and_corruption_in_transit_is_caught(lab: Any) -> None:
    device = lab.take(1)[0]
    data = bytes(range(256)) * 16  # 4 KiB
    staging = device.path / "mdm-staging"
    with _connect(device) as t:
        assert t.put(data, "$HOME/mdm-staging/build.apk") == hashlib.sha256(data).hexdigest()
        assert (staging / "build.apk").read_bytes() == data
        lab.lab.fault(device.serial, "corrupt-upload")
        with pytest.raises(TransferCorrupt, match="discarded"):
            t.put(b"new" + data, "$HOME/mdm-staging/build.apk")
    assert (staging / "build.apk").read_bytes() == data  # the old file is untouched
    assert sorted(p.name for p in staging.iterdir()) == ["build.apk"]  # no temp file left


def test_unknown_or_changed_host_keys_are_refused_before_any_command(lab: Any,
                                                                     tmp_path: Path) -> None:
    device = lab.take(1)[0]
    log = device.path / "log" / "commands"
    with pytest.raises(HostKeyError, match="not pinned"):
        _connect(device, key="")
    from mdm.fleet.keys import generate_ed25519

    other = generate_ed25519(tmp_path / "other").split()
    with pytest.raises(HostKeyError, match="host key changed") as err:
        _connect(device, key=f"{other[0]} {other[1]}")
    assert err.value.expected and err.value.offered == lab.fingerprint(device)
    assert log.read_text() == ""  # nothing ran on the device


def test_keyscan_sees_the_key_the_lab_reports(lab: Any) -> None:
    device = lab.take(1)[0]
    target = Target(device.serial, device.host, device.port)
    assert keyscan(target) == _key(device)
    status = {r["serial"]: r for r in lab.lab.status()}
    from mdm.fleet.keys import fingerprint_of_line

    assert status[device.serial]["fingerprint"] == fingerprint_of_line(keyscan(target))


def test_an_offline_device_is_unreachable_fast(lab: Any) -> None:
    device = lab.take(1)[0]
    lab.lab.fault(device.serial, "offline")
    started = time.monotonic()
    with pytest.raises(Unreachable, match="Connection refused"):
        _connect(device)
    assert time.monotonic() - started < 2


def test_no_thread_or_session_is_left_after_many_connections(lab: Any) -> None:
    devices = lab.take(4)
    before = threading.active_count()
    for _ in range(3):
        for device in devices:
            with _connect(device) as t:
                t.run("true")
    assert _wait_for(lambda: threading.active_count() <= before, 5)
    assert _wait_for(lambda: not any(_sessions(lab, d) for d in devices))


def test_a_slow_device_past_the_deadline_keeps_no_process_of_that_session(lab: Any) -> None:
    device = lab.take(1)[0]
    lab.lab.fault(device.serial, "slow", delay=30)
    with _connect(device) as t:
        with pytest.raises(CommandTimeout, match="within 1 s"):
            t.run("true", timeout=1)
    # The device's own `timeout` kills the whole process group a second after ours.
    assert _wait_for(lambda: not device_processes(device.path), 5), \
        f"still running on the device: {device_processes(device.path)}"


def test_output_past_the_cap_fails_the_command_and_hangs_up_the_channel(lab: Any) -> None:
    device = lab.take(1)[0]
    with _connect(device) as t:
        started = time.monotonic()
        with pytest.raises(OutputTooLarge, match="more than 1 MiB on stdout"):
            t.run("yes", max_output=1024 * 1024, timeout=30)
        with pytest.raises(OutputTooLarge, match="on stderr"):
            t.run("yes >&2", max_output=1024 * 1024, timeout=30)
        assert time.monotonic() - started < 10  # stopped reading; did not wait for `yes`
        assert t.run("echo still usable").stdout == b"still usable\n"
    assert _wait_for(lambda: not device_processes(device.path), 5)


@pytest.mark.parametrize(("fault", "missing"), [("weak-cipher", "ciphers"),
                                                ("weak-mac", "macs"),
                                                ("weak-kex", "kex")])
def test_a_device_offering_only_weak_algorithms_fails_to_negotiate(
        lab: Any, fault: str, missing: str) -> None:
    device = lab.take(1)[0]
    lab.lab.fault(device.serial, fault)
    with pytest.raises(Unreachable, match=f"no acceptable {missing}"):
        _connect(device)
    with pytest.raises(Unreachable, match=f"no acceptable {missing}"):
        keyscan(Target(device.serial, device.host, device.port))
    assert (device.path / "log" / "commands").read_text() == ""
    lab.lab.fault(device.serial, fault, clear=True)
    with _connect(device) as t:  # the same device, offering sound algorithms again
        assert t.run("echo ok").stdout == b"ok\n"
        negotiated = t._client.get_transport()
        assert negotiated is not None
        assert not {negotiated.local_cipher, negotiated.local_mac} & {
            *DISABLED_ALGORITHMS["ciphers"], *DISABLED_ALGORITHMS["macs"]}


def test_weak_algorithms_are_never_offered() -> None:
    import socket

    import paramiko

    a, b = socket.socketpair()
    try:
        offered = paramiko.Transport(a, disabled_algorithms=DISABLED_ALGORITHMS)
        names = [*offered.preferred_ciphers, *offered.preferred_macs, *offered.preferred_kex]
        assert names and not [n for n in names if "cbc" in n or "sha1" in n or "md5" in n]
        assert "diffie-hellman-group14-sha1" in DISABLED_ALGORITHMS["kex"]
        assert "hmac-sha1-etm@openssh.com" in DISABLED_ALGORITHMS["macs"]
    finally:
        a.close()
        b.close()
