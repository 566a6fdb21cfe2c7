"""One contract for every transport: the fake and the real paramiko over the lab's sshd."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from mdm.fleet.transport import Target
from tests.fakes import FakeTransport, echo_stdin


@pytest.fixture(params=["fake", "ssh", "station"])
def transport(request: pytest.FixtureRequest) -> Any:
    if request.param == "fake":
        fake = FakeTransport(Target("FAKE0001", "127.0.0.1"))
        fake.expect(r"^echo hello$", (0, b"hello\n", b""))
        fake.expect(r"^exit 3$", (3, b"", b""))
        fake.expect(r"^echo oops >&2", (1, b"", b"oops\n"))
        fake.expect(r"^cat$", echo_stdin)
        fake.expect(r"^head -c 2000 /dev/zero$", (0, bytes(2000), b""))
        yield fake
        return
    lab = request.getfixturevalue("lab")
    from mdm.fleet.ssh import ParamikoTransport, load_credentials

    if request.param == "station":
        connector, via_station = _station_transport(lab, request.getfixturevalue("station"))
        yield via_station
        via_station.close()
        connector.close()
        return
    device = lab.take(1)[0]
    host_key = " ".join((device.path / "etc" / "host_key.pub").read_text().split()[:2])
    real = ParamikoTransport(Target(device.serial, device.host, device.port,
                                    _user(), host_key), load_credentials())
    yield real
    real.close()


def _station_transport(lab: Any, station: Any) -> Any:
    """A device plugged into the lab's station, reached over SSH to the station and adb."""
    from mdm.fleet.ssh import load_credentials
    from mdm.fleet.station import Station, StationConnector

    device = lab.take(1)[0]
    lab.lab.plug(device.serial, station.name)
    key = " ".join((station.path / "etc" / "host_key.pub").read_text().split()[:2])
    stations = {station.name: Station(station.name, Target(
        station.name, station.host, station.port, _user(), key))}
    connector = StationConnector(stations, load_credentials())
    return connector, connector.connect(Target(device.serial, "", 0, via=station.name))


def _user() -> str:
    import getpass

    return getpass.getuser()


def test_run_returns_output_and_exit_status(transport: Any) -> None:
    result = transport.run("echo hello")
    assert (result.exit_status, result.stdout, result.ok) == (0, b"hello\n", True)
    assert transport.run("exit 3").exit_status == 3
    failed = transport.run("echo oops >&2; exit 1")
    assert (failed.ok, failed.stderr) == (False, b"oops\n")


def test_stdin_reaches_the_command(transport: Any) -> None:
    data = bytes(range(256)) * 64
    assert transport.run("cat", stdin=data).stdout == data


def test_output_past_max_output_raises_and_within_it_is_whole(transport: Any) -> None:
    from mdm.fleet.transport import OutputTooLarge

    with pytest.raises(OutputTooLarge):
        transport.run("head -c 2000 /dev/zero", max_output=1000)
    assert transport.run("head -c 2000 /dev/zero", max_output=2000).stdout == bytes(2000)


def test_put_returns_the_sha256_and_refuses_unsafe_paths(transport: Any) -> None:
    data = b"policy-bytes" * 100
    assert transport.put(data, "$HOME/mdm-staging/x.json") == hashlib.sha256(data).hexdigest()
    with pytest.raises(ValueError):
        transport.put(data, "$HOME/x; rm -rf /")


def test_host_key_is_a_fingerprint_and_close_is_final(transport: Any) -> None:
    assert transport.host_key().startswith("SHA256:")
    transport.close()
    transport.close()
