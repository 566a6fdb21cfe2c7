"""Everything a fleet command needs to reach devices, bundled once per command run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mdm.fleet.executor import DEFAULT_CONCURRENCY
from mdm.fleet.profiles import Profile, load
from mdm.fleet.transport import Target, Timeouts, Transport


@dataclass
class Fleet:
    connect: Callable[[Target], Transport]
    keyscan: Callable[[Target], str]
    profile: Profile
    concurrency: int = DEFAULT_CONCURRENCY


def ssh_fleet(key: str | None = None, profile: str = "android",
              concurrency: int = DEFAULT_CONCURRENCY,
              timeouts: Timeouts | None = None) -> Fleet:
    """Return a Fleet that reaches devices over SSH with the operator's key."""
    from mdm.fleet import ssh

    t = timeouts or Timeouts()
    credentials = ssh.load_credentials(key)
    return Fleet(ssh.connector(credentials, t), lambda target: ssh.keyscan(target, t),
                 load(profile), concurrency)
