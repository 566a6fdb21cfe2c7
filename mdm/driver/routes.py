"""The routes a command run reaches devices by, each handing out shell drivers.

Today: direct SSH to the device (pinned host key, RejectPolicy, deadlines). The driver
speaks to any Transport, so a station's `adb` route is one more connector here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mdm.driver.shell import ShellDriver
from mdm.fleet.executor import DEFAULT_CONCURRENCY
from mdm.fleet.profiles import Profile, chooser
from mdm.fleet.transport import Target, Timeouts, Transport

if TYPE_CHECKING:
    from mdm.fleet.station import Routes


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
                timeouts: Timeouts | None = None,
                routes: Routes | None = None) -> ShellDrivers:
    """Return drivers that reach devices over SSH with the operator's key.

    A device that `routes` puts on a provisioning station is reached through it (one SSH
    connection to the station, then `adb -s SERIAL`); the rest directly.
    """
    from mdm.fleet import ssh

    t = timeouts or Timeouts()
    choose = chooser(profiles)  # a bad profile is refused before the key is loaded
    credentials = ssh.load_credentials(key)
    connect = ssh.connector(credentials, t)
    if routes is not None and routes.devices:
        from mdm.fleet.station import StationConnector

        connect = StationConnector(routes, credentials, t).route(connect)
    return ShellDrivers(connect, lambda target: ssh.keyscan(target, t), choose, concurrency)
