"""The contract every way of reaching a device keeps: run a command, put a file, show the key.

Features speak to devices only through this, so a second transport (a provisioning
station driving USB phones with `adb`) slots in without touching them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

# The most a command may print on stdout or on stderr before mdm stops reading and fails
# the device (a real device's facts are tens of KiB; the cap is for a hostile one).
MAX_OUTPUT = 16 * 1024 * 1024
# What a command may read on its stdin: bytes, or an open file streamed in chunks (an app
# build is sent so, never held whole in memory per device).
Stdin = bytes | BinaryIO | None


def on_device(command: str, seconds: int | str) -> str:
    """Return a command as a device runs it: under its own `timeout`, TERM then KILL.

    The lab's device shell accepts exactly this form (and the station's, below) from a
    restricted principal, so the transports and the lab build it here, once.
    """
    import shlex

    return f"timeout -k 1 {seconds} sh -c {shlex.quote(command)}"


@dataclass(frozen=True)
class Target:
    """One device as the fleet layer sees it: a name and where to reach it."""

    name: str  # the serial: what errors and results are keyed by
    host: str
    port: int = 22
    user: str = "root"
    host_key: str | None = None  # pinned public key line ("ssh-ed25519 AAAA…"), if any
    model: str | None = None  # the device model, which picks its device profile
    via: str | None = None  # the provisioning station it is reached through (None: directly)


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_status: int
    stdout: bytes
    stderr: bytes
    seconds: float

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")


class FleetError(Exception):
    """A device could not be reached or did not do what was asked."""

    kind = "error"
    transient = False

    def __init__(self, target: str, message: str) -> None:
        super().__init__(f"{target}: {message}")
        self.target = target
        self.message = message


class Unreachable(FleetError):
    kind = "unreachable"
    transient = True


class AuthFailed(FleetError):
    kind = "auth_failed"


class HostKeyError(FleetError):
    """The device's host key is not the one pinned at enrolment (or there is none)."""

    kind = "host_key"

    def __init__(self, target: str, expected: str | None, offered: str) -> None:
        what = (f"host key changed: expected {expected}, offered {offered}" if expected
                else f"host key {offered} is not pinned")
        super().__init__(target, what)
        self.expected = expected
        self.offered = offered


class CommandTimeout(FleetError):
    """A command did not finish within its deadline (`seconds`), reached `via` a station."""

    kind = "timeout"

    def __init__(self, target: str, message: str, seconds: float | None = None,
                 via: str = "") -> None:
        super().__init__(target, message)
        self.seconds = seconds
        self.via = via


class TransferCorrupt(FleetError):
    kind = "corrupt_transfer"


class StepFailed(FleetError):
    """A command ran but the device said no (non-zero exit or unexpected output)."""

    kind = "step_failed"


class MalformedOutput(StepFailed):
    """The device answered, but not in a shape mdm accepts (schema, encoding, size)."""

    kind = "malformed_output"


def checked_upload(name: str, remote_path: str, expected: str, result: CommandResult,
                   said: str) -> str:
    """Judge an upload script's result (exit 3: the sha256 the device saw did not match)."""
    if result.exit_status == 3:
        seen = result.text.strip()
        raise TransferCorrupt(name, f"upload to {remote_path} arrived with sha256"
                                    f" {seen[:16]}…, sent {expected[:16]}…; discarded")
    if not result.ok:
        raise StepFailed(name, f"upload to {remote_path} failed: {said.strip()[:200]}")
    return expected


class OutputTooLarge(FleetError):
    """The device printed more than the command may; mdm stopped reading and hung up."""

    kind = "output_too_large"


@dataclass
class Timeouts:
    connect: float = 10.0
    banner: float = 10.0
    auth: float = 10.0
    channel: float = 10.0
    command: float = 60.0


@dataclass
class Credentials:
    """The operator's key (already loaded); never printed or stored."""

    pkey: Any = field(default=None, repr=False)  # a paramiko PKey (not imported here)
    allow_agent: bool = False
    # The same key without its certificate, offered if a device refuses the certificate
    # (a device not yet moved to the CA trusts the plain key; OpenSSH's client does so too).
    plain: Any = field(default=None, repr=False)
    certificate: str | None = None  # `<key>-cert.pub`, presented with the agent's copy of the key


class Transport(Protocol):
    target: Target

    def run(self, command: str, timeout: float | None = None,
            stdin: Stdin = None, max_output: int | None = None) -> CommandResult:
        """Run one command; more than `max_output` bytes on a stream raises OutputTooLarge."""
        ...

    def put(self, data: bytes, remote_path: str, mode: str = "0644") -> str: ...

    def host_key(self) -> str: ...

    def close(self) -> None: ...
