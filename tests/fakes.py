"""Fakes at the edges: a transport that answers scripted commands and fails on unexpected
ones, and a device driver (with its factory) for fast tests of the device features."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from mdm.driver import Applied, Delivered, PolicyNotApplied, Seen, Trust
from mdm.fleet.deviceout import StatusReading
from mdm.fleet.transport import (
    MAX_OUTPUT,
    CommandResult,
    FleetError,
    HostKeyError,
    OutputTooLarge,
    StepFailed,
    Target,
    Unreachable,
)

Reply = tuple[int, bytes, bytes] | Callable[[str, bytes | None], tuple[int, bytes, bytes]]


@dataclass
class FakeTransport:
    target: Target
    replies: list[tuple[re.Pattern[str], Reply]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    closed: bool = False
    fingerprint: str = "SHA256:fake"

    def expect(self, pattern: str, reply: Reply) -> FakeTransport:
        self.replies.append((re.compile(pattern), reply))
        return self

    def run(self, command: str, timeout: float | None = None,
            stdin: Any = None, max_output: int | None = None) -> CommandResult:
        assert not self.closed, "run() after close()"
        self.commands.append(command)
        if stdin is not None and not isinstance(stdin, bytes):  # a file, streamed
            stdin = stdin.read()
        for pattern, reply in self.replies:
            if pattern.search(command):
                code, out, err = reply(command, stdin) if callable(reply) else reply
                if max(len(out), len(err)) > (MAX_OUTPUT if max_output is None else max_output):
                    raise OutputTooLarge(self.target.name, "printed too much; stopped reading")
                return CommandResult(command, code, out, err, 0.0)
        raise AssertionError(f"unexpected command on {self.target.name}: {command!r}")

    def put(self, data: bytes, remote_path: str, mode: str = "0644") -> str:
        if not re.fullmatch(r"[A-Za-z0-9_./${}:@+-]+", remote_path):
            raise ValueError(f"unsafe device path {remote_path!r}")
        self.files[remote_path] = data
        return hashlib.sha256(data).hexdigest()

    def host_key(self) -> str:
        return self.fingerprint

    def close(self) -> None:
        self.closed = True


def echo_stdin(command: str, stdin: bytes | None) -> tuple[int, bytes, bytes]:
    return 0, stdin or b"", b""


# -- a fake device driver: what features see of a device, without any shell ------------

@dataclass
class FakeDriver:
    """A device as the driver seam shows it: facts, a DPC that applies, faults on demand."""

    target: Target
    props: dict[str, str]
    key_line: str
    packages: dict[str, int] = field(default_factory=lambda: {"uk.police.mdm.dpc": 300})
    dpc: dict[str, Any] | None = None
    inbox: bytes | None = None
    fail: dict[str, FleetError] = field(default_factory=dict)  # method name → error raised
    calls: list[str] = field(default_factory=list)
    carried_out: dict[str, str] = field(default_factory=dict)  # command id → kind, as a DPC
    closed: bool = False
    trusted: Trust = field(default_factory=lambda: Trust(None, (), None, 1))

    def _call(self, name: str) -> None:
        assert not self.closed, f"{name}() after close()"
        self.calls.append(name)
        if name in self.fail:
            raise self.fail[name]

    def identity(self) -> Seen:
        self._call("identity")
        from mdm.fleet.keys import fingerprint_of_line

        return Seen(fingerprint_of_line(self.key_line), self.facts())

    def facts(self) -> dict[str, Any]:
        self._call("facts")
        status = self.policy_status()
        return {"props": dict(self.props), "packages": dict(self.packages),
                "settings": {"global.adb_enabled": "0"}, "dpc_status": status.dpc,
                "policy_file_sha256": status.policy_file, "truncated": []}

    def policy_status(self) -> StatusReading:
        self._call("policy_status")
        file = hashlib.sha256(self.inbox).hexdigest() if self.inbox is not None else None
        return StatusReading(dict(self.dpc) if self.dpc else None, file, [])

    def apply_policy(self, document: bytes, sha256: str) -> Applied:
        self._call("apply_policy")
        if (self.dpc or {}).get("policySha256") == sha256 and self.inbox == document:
            return Applied(False, dict(self.dpc or {}), sha256)
        self.inbox = document
        self.dpc = {"state": "APPLIED", "policySha256": hashlib.sha256(document).hexdigest(),
                    "nonComplianceDetails": []}
        if self.dpc["policySha256"] != sha256:
            raise PolicyNotApplied(self.target.name, "the DPC reports another sha256")
        return Applied(True, dict(self.dpc), sha256)

    def installed_packages(self) -> dict[str, int]:
        self._call("installed_packages")
        return dict(self.packages)

    def lock(self, command_id: str) -> Delivered:
        self._call("lock")
        return self._command("lock", command_id)

    def wipe(self, command_id: str) -> Delivered:
        self._call("wipe")
        return self._command("wipe", command_id)

    def _command(self, kind: str, command_id: str) -> Delivered:
        """Carry a command id out once, as the DPC does; a wipe makes a new host key."""
        if command_id in self.carried_out:
            return Delivered(command_id, True, f"{kind} already-done")
        self.carried_out[command_id] = kind
        if kind == "wipe":
            self.dpc, self.inbox = None, None
            self.key_line = fake_key_line(f"{self.target.name}-wiped-{len(self.carried_out)}")
        return Delivered(command_id, False, f"{kind} done")

    def trust(self) -> Trust:
        self._call("trust")
        return self.trusted

    def trust_ca(self, ca_line: str, principals: tuple[str, ...]) -> Trust:
        self._call("trust_ca")
        self.trusted = replace(self.trusted, ca=" ".join(ca_line.split()[:2]),
                               principals=principals)
        return self.trusted

    def install_krl(self, krl: bytes, version: int) -> Trust:
        self._call("install_krl")
        self.trusted = replace(self.trusted, krl_version=version)
        return self.trusted

    def remove_plain_keys(self) -> Trust:
        self._call("remove_plain_keys")
        if self.trusted.ca is None:
            raise StepFailed(self.target.name, "no user CA is trusted here")
        self.trusted = replace(self.trusted, plain_keys=0)
        return self.trusted

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeDrivers:
    """Hands out FakeDrivers by serial; checks the pinned key as the real route does."""

    devices: dict[str, FakeDriver]
    concurrency: int = 4
    opened: list[str] = field(default_factory=list)
    # Provisioning stations: serial → (station, adb state), for what is plugged in where.
    plugged: dict[str, tuple[str, str]] = field(default_factory=dict)
    stations: set[str] = field(default_factory=set)  # the stations that answer

    def open(self, target: Target) -> FakeDriver:
        device = self.devices.get(target.name)
        if target.via is not None:  # through a station: adb must see it there
            from mdm.fleet.station import StationUnreachable, classify

            if target.via not in self.stations:
                raise StationUnreachable(target.name, f"station {target.via} unreachable")
            where, state = self.plugged.get(target.name, ("", ""))
            if device is None or where != target.via or state != "device":
                raise classify(target.name, target.via, f"error: device '{target.name}'"
                               " not found" if where != target.via else f"error: device {state}")
            self.opened.append(target.name)
            device.target = target
            device.closed = False
            return device
        if device is None:
            raise Unreachable(target.name, f"cannot connect to {target.host}:{target.port}")
        if target.host_key != device.key_line:
            from mdm.fleet.keys import fingerprint_of_line

            raise HostKeyError(target.name, target.host_key and fingerprint_of_line(
                target.host_key), fingerprint_of_line(device.key_line))
        self.opened.append(target.name)
        device.target = target
        device.closed = False
        return device

    def offered_key(self, target: Target) -> str:
        if target.name not in self.devices:
            raise Unreachable(target.name, f"no SSH handshake with {target.host}")
        return self.devices[target.name].key_line

    def attached(self, station: str) -> list[dict[str, str]]:
        if station not in self.stations:
            raise Unreachable(station, f"station {station} unreachable")
        return [{"serial": serial, "state": state, "usb": f"1-1.{n}"}
                for n, (serial, (where, state)) in enumerate(sorted(self.plugged.items()), 1)
                if where == station]

    def close(self) -> None:
        pass


def fake_key_line(serial: str) -> str:
    """A public key line that is the device's own (its fingerprint derives from it)."""
    import base64

    return "ssh-ed25519 " + base64.b64encode(hashlib.sha256(serial.encode()).digest()).decode()
