"""The device driver: what features ask of a device, whatever the route to it.

Features never build shell text or hold a transport: they ask a `DeviceDriver` for what
they mean (its identity, its facts, the policy it runs, apply this policy, the packages
it has) and get checked, typed answers back. The shell-speaking driver (`shell.py`) turns
each request into the device profile's commands, in as few round trips as it can, over
any `Transport` (SSH to the device, or a station's `adb`); a later route (an Android
Management API) is one more driver behind the same names.

`Drivers` is what a command run is handed: it opens a driver per device target (by the
route the target names: directly, or through a provisioning station), reads the host key
a device or station offers before any trust, and lists what is plugged into a station;
tests hand in a fake one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mdm.fleet.deviceout import StatusReading
from mdm.fleet.transport import StepFailed, Target


class PolicyNotApplied(StepFailed):
    """The policy arrived, but the DPC does not report running it."""

    kind = "policy_not_applied"


@dataclass(frozen=True)
class Seen:
    """What one authenticated session shows of a device: its key and its facts."""

    fingerprint: str  # of the host key this very session was made with
    facts: dict[str, Any]


@dataclass(frozen=True)
class Applied:
    """What a policy push left on a device, as the device reports it."""

    changed: bool  # False: it already ran this policy, nothing was written
    status: dict[str, Any]  # the DPC status, checked against its schema
    file: str | None  # the sha256 of the policy file in the DPC's inbox
    truncated: list[str] = field(default_factory=list)  # status values cut to their cap


@dataclass(frozen=True)
class Delivered:
    """What a device answered to a queued command: done now, or done before (same id)."""

    command_id: str
    already: bool  # the device had carried this id out before: nothing was redone
    answer: str  # the device's own words, cut short


class InstallFailed(StepFailed):
    """The device's package manager refused a build (its own words say why)."""

    kind = "install_failed"

    def __init__(self, target: str, message: str, code: str | None = None) -> None:
        super().__init__(target, message)
        self.code = code  # INSTALL_FAILED_… or INSTALL_PARSE_FAILED_…, when it said one


@dataclass(frozen=True)
class Build:
    """An app build to install: what it is, and its file (streamed, never read whole)."""

    package: str
    version_code: int
    sha256: str
    size: int
    path: Path


@dataclass(frozen=True)
class Installed:
    """What an install left on a device, as its package manager lists it afterwards."""

    changed: bool  # False: it already ran this build, nothing was sent
    before: int | None  # the versionCode it ran before (None: not installed)
    packages: dict[str, int]  # package → versionCode, listed after the install


@dataclass(frozen=True)
class Trust:
    """Whom a device's sshd lets in, as its own files say."""

    ca: str | None  # the user CA's public line ("type base64") it trusts; None: none
    principals: tuple[str, ...]  # the principals its logins by certificate accept
    krl_version: int | None  # the version of the revocation list it holds; None: none
    plain_keys: int  # plain keys in its authorized_keys (the enrolment key, until removed)


class DeviceDriver(Protocol):
    """One device, reached: each method is one thing a feature needs done or known."""

    target: Target

    def identity(self) -> Seen:
        """Return the session's host-key fingerprint and the device's facts."""
        ...

    def facts(self) -> dict[str, Any]:
        """Return the device's facts (props, packages, settings, DPC status)."""
        ...

    def policy_status(self) -> StatusReading:
        """Return the DPC's status and the sha256 of the policy in its inbox."""
        ...

    def apply_policy(self, document: bytes, sha256: str) -> Applied:
        """Make the device run this policy; succeed only when its DPC reports `sha256`."""
        ...

    def installed_packages(self) -> dict[str, int]:
        """Return package name → versionCode for every package on the device."""
        ...

    def lock(self, command_id: str) -> Delivered:
        """Lock the device's screen now; a command id it has carried out is not redone."""
        ...

    def wipe(self, command_id: str) -> Delivered:
        """Factory-reset the device; a command id it has carried out is not redone."""
        ...

    def install(self, build: Build, downgrade: bool = False) -> Installed:
        """Make the device run this build; succeed only when its package list shows it.

        `downgrade` allows a lower versionCode than the installed one (a rollback).
        """
        ...

    def trust(self) -> Trust:
        """Return whom the device's sshd trusts: CA, principals, KRL version, plain keys."""
        ...

    def trust_ca(self, ca_line: str, principals: tuple[str, ...]) -> Trust:
        """Make the device trust a user CA for these principals (each runs its role)."""
        ...

    def install_krl(self, krl: bytes, version: int) -> Trust:
        """Give the device an OpenSSH key revocation list, and the version it is."""
        ...

    def remove_plain_keys(self) -> Trust:
        """Remove the plain authorised keys; refused while the device trusts no CA."""
        ...

    def close(self) -> None: ...


class Drivers(Protocol):
    """How one command run reaches its devices."""

    concurrency: int

    def open(self, target: Target) -> DeviceDriver:
        """Connect to a device (its pinned key checked) and return its driver."""
        ...

    def offered_key(self, target: Target) -> str:
        """Return the public key line a device offers, without trusting it."""
        ...

    def attached(self, station: str) -> list[dict[str, str]]:
        """Return what a registered station's adb lists as plugged in (`adb devices -l`)."""
        ...

    def close(self) -> None:
        """Close what the run kept open (each station's one connection)."""
        ...
