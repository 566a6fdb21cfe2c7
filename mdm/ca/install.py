"""Install the inventory's user CA on devices now (the provisioning playbook's `trust` step).

Enrolment installs it on its own session; this is for devices enrolled before the CA
existed, or provisioned at a bench: each device the inventory does not yet record as
trusting the CA gets the CA key and the principals file, read back, recorded and audited.
With no CA in the inventory there is nothing to trust and no device is contacted.
"""

from __future__ import annotations

from typing import Any

from mdm.ca import held as trust
from mdm.driver import DeviceDriver, Drivers, Trust
from mdm.store import audit, ca, transaction
from mdm.store.db import Database


def install(db: Database, operator: str, serials: list[str],
            drivers: Drivers) -> dict[str, str | None]:
    """Make each device trust the inventory's CA; return serial → error (None: it does)."""
    from mdm.fleet.executor import Step
    from mdm.runs import record as runs

    out: dict[str, str | None] = dict.fromkeys(serials)
    line = trust.ca_public_line(db)
    if line is None or not serials:
        return out
    wanted = trust.fingerprint_of(line)
    held = trust.by_device(db)
    rows = [r for r in ca.devices_with_serials(db, serials)
            if held.get(r["id"], {}).get("ca_fingerprint") != wanted]

    def install_one(driver: DeviceDriver) -> Trust:
        return driver.trust_ca(line, trust.PRINCIPALS)

    def record(batch: list[tuple[dict[str, Any], Any]]) -> None:
        if not batch:
            return
        with transaction(db):
            for row, result in batch:
                if not result.ok:
                    out[row["serial"]] = result.error or result.error_kind
                    continue
                trust.record(db, row["id"], result.value("ca-trust"))
                audit.record(db, operator, "ca.trust", f"device:{row['serial']}", None,
                             {"ca": wanted, "principals": list(trust.PRINCIPALS)})

    if rows:
        runs.run_and_record(db, rows, [Step("ca-trust", install_one)], drivers.open,
                            [runs.target_of(r) for r in rows], record, drivers.concurrency)
    return out


def install_station(db: Database, operator: str, name: str, drivers: Drivers) -> dict[str, Any]:
    """Make a provisioning station's own sshd trust the inventory's CA.

    A phone on a station's bench is reached through the station's sshd (then adb), so it
    is the station's sshd that checks an operator's certificate, and the station's shell
    that holds each principal to its role. The station keeps its plain key: removing it is
    for whoever runs the station host.
    """
    from mdm.errors import ExitCode, InputError, MdmError
    from mdm.fleet.transport import FleetError
    from mdm.operators import roles
    from mdm.stations import service as stations

    roles.require(db, operator, "ca.rollout")
    line = trust.ca_public_line(db)
    if line is None:
        raise InputError("the inventory has no CA: the station has nothing to trust",
                         "create one first with: mdm ca init")
    stations.get(db, name)
    station = stations.registered(db)[name]
    try:
        driver = drivers.open(station.target)
        try:
            now = driver.trust_ca(line, trust.PRINCIPALS)
        finally:
            driver.close()
    except FleetError as exc:
        raise MdmError(f"station {name}: {exc.message}", "check the station is on and"
                       " reachable (and its host key), then run it again", ExitCode.PARTIAL,
                       where=f"station {name}") from None
    wanted = trust.fingerprint_of(line)
    with transaction(db):
        audit.record(db, operator, "ca.station_trust", f"station:{name}", None,
                     {"ca": wanted, "principals": list(now.principals),
                      "plain_keys": now.plain_keys})
    return {"station": name, "ca": wanted, "principals": list(now.principals),
            "plain_keys": now.plain_keys}
