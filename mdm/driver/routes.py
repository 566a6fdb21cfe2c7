"""The routes a command run reaches devices by, each handing out shell drivers.

Today: direct SSH to the device (pinned host key, RejectPolicy, deadlines). The driver
speaks to any Transport, so a station's `adb` route is one more connector here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mdm.driver.shell import ShellDriver
from mdm.fleet.executor import DEFAULT_CONCURRENCY
from mdm.fleet.profiles import Profile, chooser
from mdm.fleet.transport import Target, Timeouts, Transport


@dataclass
class ShellDrivers:
    """Opens a transport per device and speaks the device profile over it."""

    connect: Callable[[Target], Transport]
    keyscan: Callable[[Target], str]
    profile_for: Callable[[str | None], Profile]  # device model → its profile
    concurrency: int = DEFAULT_CONCURRENCY

    def open(self, target: Target) -> ShellDriver:
        """Connect to a device (its pinned key checked) and return its driver."""
        return ShellDriver(self.connect(target), self.profile_for(target.model))

    def offered_key(self, target: Target) -> str:
        """Return the public key line a device offers, without trusting it."""
        return self.keyscan(target)


def ssh_drivers(key: str | None = None, profiles: Path | None = None,
                concurrency: int = DEFAULT_CONCURRENCY,
                timeouts: Timeouts | None = None) -> ShellDrivers:
    """Return drivers that reach devices directly over SSH with the operator's key."""
    from mdm.fleet import ssh

    t = timeouts or Timeouts()
    choose = chooser(profiles)  # a bad profile is refused before the key is loaded
    credentials = ssh.load_credentials(key)
    return ShellDrivers(ssh.connector(credentials, t), lambda target: ssh.keyscan(target, t),
                        choose, concurrency)
