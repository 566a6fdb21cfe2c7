"""Everything a fleet command needs to reach devices, bundled once per command run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mdm.fleet.executor import DEFAULT_CONCURRENCY
from mdm.fleet.profiles import Profile, load
from mdm.fleet.transport import Credentials, Target, Timeouts, Transport

if TYPE_CHECKING:
    from mdm.fleet.station import Routes


@dataclass
class Fleet:
    connect: Callable[[Target], Transport]
    keyscan: Callable[[Target], str]
    profile: Profile
    concurrency: int = DEFAULT_CONCURRENCY
    credentials: Credentials | None = None  # for the stations' connections
    timeouts: Timeouts | None = None
    direct: Callable[[Target], Transport] | None = None  # SSH to the device, whatever its route

    def through(self, routes: Routes) -> Callable[[Target], Transport]:
        """Return a connect function that reaches routed devices through their stations."""
        from mdm.fleet.station import StationConnector

        if self.credentials is None:
            raise RuntimeError("this fleet has no credentials to reach stations with")
        return StationConnector(routes, self.credentials, self.timeouts).route(
            self.direct or self.connect)


def ssh_fleet(key: str | None = None, profile: str = "android",
              concurrency: int = DEFAULT_CONCURRENCY,
              timeouts: Timeouts | None = None, routes: Routes | None = None) -> Fleet:
    """Return a Fleet that reaches devices over SSH with the operator's key.

    Devices that `routes` puts on a provisioning station are reached through it (SSH to
    the station, then adb); the rest directly.
    """
    from mdm.fleet import ssh

    t = timeouts or Timeouts()
    credentials = ssh.load_credentials(key)
    fleet = Fleet(ssh.connector(credentials, t), lambda target: ssh.keyscan(target, t),
                  load(profile), concurrency, credentials, t)
    fleet.direct = fleet.connect
    if routes is not None and routes.devices:
        fleet.connect = fleet.through(routes)
    return fleet
