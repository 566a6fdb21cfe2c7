"""The routes a command run reaches devices by, each handing out shell drivers.

Two routes, chosen per device by its target: direct SSH to the device (pinned host key,
RejectPolicy, deadlines), or through the provisioning station its target names (`via`):
one SSH connection to the station, then `adb -s SERIAL`. The driver speaks to either
transport the same way, so features never know which route a device has. What features
ask of a station itself (what is plugged into it) is asked here too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mdm.driver.shell import ShellDriver
from mdm.fleet.executor import DEFAULT_CONCURRENCY
from mdm.fleet.profiles import Profile, chooser
from mdm.fleet.station import Station, classify
from mdm.fleet.transport import FleetError, StepFailed, Target, Timeouts, Transport

if TYPE_CHECKING:
    from mdm.fleet.station import StationConnector

__all__ = ["ShellDrivers", "Station", "refusal", "ssh_drivers"]


@dataclass
class ShellDrivers:
    """Opens a transport per device, by its route, and speaks the device profile over it."""

    connect: Callable[[Target], Transport]
    keyscan: Callable[[Target], str]
    profile_for: Callable[[str | None], Profile]  # device model → its profile
    concurrency: int = DEFAULT_CONCURRENCY
    stations: StationConnector | None = None  # the registered stations (None: there are none)

    def open(self, target: Target) -> ShellDriver:
        """Connect to a device (its pinned key checked) and return its driver."""
        if target.via and self.stations is None:
            raise StepFailed(target.name, f"station {target.via} is not registered")
        return ShellDriver(self.connect(target), self.profile_for(target.model))

    def offered_key(self, target: Target) -> str:
        """Return the public key line a device (or station) offers, without trusting it."""
        return self.keyscan(target)

    def attached(self, station: str) -> list[dict[str, str]]:
        """Return what a registered station's adb lists as plugged in (`adb devices -l`)."""
        if self.stations is None:
            raise StepFailed(station, f"station {station} is not registered")
        return self.stations.attached(station)

    def close(self) -> None:
        """Close what the run kept open: each station's one SSH connection."""
        if self.stations is not None:
            self.stations.close()


def refusal(serial: str, station: str, state: str) -> FleetError:
    """Return the named error for a device a station lists in a state other than `device`."""
    return classify(serial, station, f"adb shows it {state}")


def ssh_drivers(key: str | None = None, profiles: Path | None = None,
                concurrency: int = DEFAULT_CONCURRENCY,
                timeouts: Timeouts | None = None,
                stations: Mapping[str, Station] | None = None,
                cert_only: bool = False) -> ShellDrivers:
    """Return drivers that reach devices over SSH with the operator's key.

    A device whose target names a station (`via`) is reached through it (one SSH
    connection to the station, then `adb -s SERIAL`); the rest directly. `cert_only`:
    present the operator's certificate and never fall back to the plain key.
    """
    from mdm.fleet import ssh

    t = timeouts or Timeouts()
    choose = chooser(profiles)  # a bad profile is refused before the key is loaded
    credentials = ssh.load_credentials(key)
    if cert_only:  # present the certificate only: proves a device lets it in
        from dataclasses import replace

        credentials = replace(credentials, plain=None, allow_agent=False)
    connect = ssh.connector(credentials, t)
    connector = None
    if stations:
        from mdm.fleet.station import StationConnector

        connector = StationConnector(stations, credentials, t)
        connect = connector.route(connect)
    return ShellDrivers(connect, lambda target: ssh.keyscan(target, t), choose, concurrency,
                        connector)
