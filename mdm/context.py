"""What every command needs, built once by the root callback and passed in `ctx.obj`."""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mdm.config import Settings
    from mdm.driver import Drivers
    from mdm.store.db import Database


def ssh_drivers(context: AppContext) -> Drivers:
    """Build the SSH drivers with the operator's key (paramiko is imported here).

    Devices the inventory routes through a provisioning station are reached through it
    (SSH to the station, then adb); the rest directly.
    """
    from mdm.ca.check import require_certificate
    from mdm.driver.routes import ssh_drivers as build
    from mdm.stations.service import registered

    # Before any device is touched: a missing, expired or foreign certificate stops here.
    require_certificate(context.db(), context.key, context.operator)

    profiles = context.settings.get("profiles") if context.settings else None
    return build(context.key, Path(profiles) if profiles else None,
                 stations=registered(context.db()))


def default_operator() -> str:
    """Return the operator: MDM_OPERATOR, else the OS user."""
    return os.environ.get("MDM_OPERATOR") or getpass.getuser()


def _waiting(pid: int | None) -> None:
    from mdm import ui

    ui.info(f"waiting for another mdm write{f' (pid {pid})' if pid else ''} to finish…")


@dataclass
class AppContext:
    """What every command gets from the root options: inventory, operator, output, key."""

    db_path: Path | str  # an SQLite file, or a postgresql:// URL
    operator: str
    json: bool = False
    verbose: bool = False
    key: str | None = None  # the operator's private key path (else MDM_KEY, else default)
    settings: Settings | None = None  # options, MDM_* variables, mdm.toml, defaults
    wait: float | None = None  # seconds a write waits for another's (--wait); None: default
    # How device commands reach devices; tests replace it with a fake.
    driver_factory: Callable[[AppContext], Drivers] = field(default=ssh_drivers, repr=False)
    _db: Database | None = field(default=None, repr=False)
    _drivers: list[Drivers] = field(default_factory=list, repr=False)

    def db(self, create: bool = False) -> Database:
        """Open the inventory on first use (and migrate it); only `create` may make one."""
        if self._db is None:
            from mdm.store import DEFAULT_WAIT, connect

            wait = DEFAULT_WAIT if self.wait is None else self.wait
            self._db = connect(self.db_path, create=create, wait=wait, on_wait=_waiting)
        return self._db

    def drivers(self, concurrency: int | None = None) -> Drivers:
        """Build what reaches devices for this run, from the driver factory."""
        drivers = self.driver_factory(self)
        if concurrency:
            drivers.concurrency = concurrency
        self._drivers.append(drivers)
        return drivers

    def close(self) -> None:
        while self._drivers:  # the stations' connections, kept open for the whole run
            self._drivers.pop().close()
        if self._db is not None:
            self._db.conn.close()
            self._db = None
