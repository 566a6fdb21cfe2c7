"""Provisioning stations: register them, see what is plugged in, enrol through them.

A station is a Linux machine at the bench with a USB hub; mdm reaches it over SSH (its
host key pinned here, exactly as a device's is) and drives each phone on it with adb.
Each device's route is stored with it: through a station (`devices.station`) or direct
(its address and pinned key). Every registration, removal, enrolment and route move
writes its audit row in the same transaction. Like every feature, this one reaches
stations and devices only through the device driver: it asks the drivers what a station
has plugged in, and opens a device by a target that names its route.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mdm.devices.lifecycle import Status, check_transition
from mdm.driver import DeviceDriver, Drivers
from mdm.enrol import identity
from mdm.enrol.pairing import fingerprint_problem
from mdm.errors import ExitCode, InputError, MdmError, NotFound, PartialFailure
from mdm.fleet.keys import fingerprint_of_line
from mdm.fleet.transport import FleetError, HostKeyError, StepFailed, Target
from mdm.operators import roles
from mdm.runs import record as contact
from mdm.store import audit, transaction
from mdm.store import devices as device_rows
from mdm.store import stations as station_rows
from mdm.store.db import Database
from mdm.timeutil import now

if TYPE_CHECKING:
    from mdm.driver.routes import Station

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise InputError(f"station name {name!r} is not 1-31 of a-z, 0-9 and -",
                         "e.g. hq-bench or kendal-1")


def get(db: Database, name: str) -> dict[str, Any]:
    """Return a registered station's row, or refuse naming the ones there are."""
    row = station_rows.get(db, name)
    if row is None:
        names = station_rows.names(db)
        raise NotFound(f"no station {name!r}",
                       "registered: " + ", ".join(names) if names
                       else "register one with: mdm stations add NAME --address HOST")
    return row


def _station(row: dict[str, Any]) -> Station:
    from mdm.driver.routes import Station

    user, host, port = contact.parse_address(row["address"])
    return Station(row["name"], Target(row["name"], host, port, user, row["host_key"]),
                   row["concurrency"])


def registered(db: Database) -> dict[str, Station]:
    """Return every registered station (its address, pinned key and limit), by name."""
    return {r["name"]: _station(r) for r in station_rows.every(db)}


def add(db: Database, operator: str, name: str, address: str, host_key: str | None,
        tofu: bool, keyscan: Callable[[Target], str], concurrency: int = 8) -> dict[str, Any]:
    """Register a station: read the key it offers, check it, pin it (audited)."""
    roles.require(db, operator, "stations.manage")
    _check_name(name)
    user, host, port = contact.parse_address(address)
    if not 1 <= concurrency <= 64:
        raise InputError(f"--concurrency {concurrency} is not 1-64")
    if host_key and (problem := fingerprint_problem(host_key)):
        raise InputError(problem, "copy it as `ssh-keygen -l -E sha256 -f"
                                  " /etc/ssh/ssh_host_ed25519_key.pub` prints it on the station")
    if not host_key and not tofu:
        raise InputError("give the station's host key (--host-key SHA256:…), or"
                         " --trust-on-first-use",
                         "on the station: ssh-keygen -l -E sha256 -f"
                         " /etc/ssh/ssh_host_ed25519_key.pub")
    if station_rows.get(db, name) is not None:
        raise InputError(f"station {name!r} is already registered",
                         "remove it first, or choose another name")
    offered = keyscan(Target(name, host, port, user))
    fp = fingerprint_of_line(offered)
    if host_key and host_key != fp:
        raise InputError(f"station {name} at {address} offers host key {fp}, not {host_key}",
                         "a different machine (or an interceptor) answered: check the"
                         " address and the fingerprint on the station")
    row = {"name": name, "address": address, "host_key": offered,
           "host_key_fingerprint": fp, "concurrency": concurrency, "added_at": now(),
           "added_by": operator}
    with transaction(db):
        station_rows.insert(db, row)
        audit.record(db, operator, "stations.add", f"station:{name}", None,
                     {"address": address, "host_key": fp, "concurrency": concurrency,
                      "host_key_check": "confirmed" if host_key else "trusted on first use"})
    return {k: v for k, v in row.items() if k != "host_key"}


def list_(db: Database) -> list[dict[str, Any]]:
    """Return every station, with how many devices are routed through it."""
    return station_rows.with_device_counts(db)


def remove(db: Database, operator: str, name: str, reason: str) -> dict[str, Any]:
    """Forget a station that no device is routed through (audited, with the reason)."""
    roles.require(db, operator, "stations.manage")
    if not reason.strip():
        raise InputError("give a --reason for removing the station")
    with transaction(db):
        row = get(db, name)
        routed = station_rows.routed_serials(db, name)
        if routed:
            raise InputError(f"station {name} still routes {len(routed)} device(s): "
                             + ", ".join(routed[:10]) + ("…" if len(routed) > 10 else ""),
                             "move them first: mdm stations route SERIAL --direct ADDRESS"
                             " --host-key SHA256:... --reason ...")
        station_rows.delete(db, name)
        audit.record(db, operator, "stations.remove", f"station:{name}",
                     {"address": row["address"], "host_key": row["host_key_fingerprint"]},
                     {"reason": reason})
    return {"name": name, "removed": True, "reason": reason}


# -- what is plugged in -------------------------------------------------------------------

def _unreachable(name: str, exc: FleetError) -> MdmError:
    # Not bad input: the command ran and the station failed it (exit 1, like a device).
    return MdmError(f"station {name} could not be asked what is plugged in: {exc.message}",
                    "check the station is on and reachable (and its host key), then run"
                    " the command again", ExitCode.PARTIAL, where=f"station {name}")


def scan(db: Database, name: str, drivers: Drivers) -> dict[str, Any]:
    """Match what is plugged into a station against the inventory."""
    get(db, name)
    try:
        seen = drivers.attached(name)
    except FleetError as exc:
        raise _unreachable(name, exc) from None
    elsewhere: dict[str, list[str]] = {}
    not_scanned = []
    for other in station_rows.others(db, name):
        try:
            for item in drivers.attached(other["name"]):
                elsewhere.setdefault(item["serial"], []).append(other["name"])
        except FleetError as exc:
            not_scanned.append({"station": other["name"], "error": exc.message})
    devices = []
    for item in seen:
        inv = device_rows.route_of_serial(db, item["serial"])
        if item["state"] == "unauthorized":
            category = "unauthorized"
        elif item["state"] != "device":
            category = item["state"]
        elif inv is None:
            category = "unknown"
        elif inv["status"] == Status.DELIVERED:
            category = "ready"
        elif inv["station"] == name:
            category = "enrolled_here"
        else:
            category = "enrolled_elsewhere"
        if item["serial"] in elsewhere:
            category = "two_stations"
        devices.append({**item, "category": category,
                        "status": inv["status"] if inv else None,
                        "route": (inv["station"] and f"station:{inv['station']}"
                                  or (inv["address"] and f"direct:{inv['address']}"))
                        if inv else None,
                        "also_on": elsewhere.get(item["serial"], [])})
    present = {d["serial"] for d in devices}
    missing = [serial for serial in station_rows.routed_serials(db, name)
               if serial not in present]
    counts: dict[str, int] = {}
    for d in devices:
        key = str(d["category"])
        counts[key] = counts.get(key, 0) + 1
    return {"station": name, "devices": devices, "missing": missing, "summary": counts,
            "stations_not_scanned": not_scanned}


# -- enrolment and routes -------------------------------------------------------------------

def enrol(db: Database, operator: str, name: str, drivers: Drivers,
          progress: contact.Progress | None = None) -> dict[str, Any]:
    """Enrol every delivered device plugged into a station; bind each to that station."""
    from mdm.ca import held as trust
    from mdm.driver.routes import refusal
    from mdm.fleet.executor import Step

    roles.require(db, operator, "devices.enrol")
    row = get(db, name)
    ca_line = trust.ca_public_line(db)  # with a CA, the phone trusts it for its field route
    try:
        seen = drivers.attached(name)
    except FleetError as exc:
        raise _unreachable(name, exc) from None
    outcome = contact.Outcome()
    by_serial: dict[str, dict[str, Any]] = {}
    for item in seen:
        found = device_rows.by_serial(db, item["serial"])
        if found is None:
            outcome.skipped.append({"serial": item["serial"],
                                    "reason": "not in the inventory (import its delivery)"})
        elif found["status"] != Status.DELIVERED:
            outcome.skipped.append({"serial": item["serial"],
                                    "reason": f"already {found['status']}"})
        elif item["state"] != "device":
            err = refusal(item["serial"], name, item["state"])
            outcome.failed.append({"serial": item["serial"], "kind": err.kind,
                                   "error": err.message, "station": name,
                                   "hint": contact.HINTS.get(err.kind, "")})
        else:
            by_serial[item["serial"]] = found
    if not seen:
        raise InputError(f"nothing is plugged into station {name} (adb lists no device)",
                         "plug the phones in with USB debugging on, then run it again")

    def prove(driver: DeviceDriver) -> dict[str, Any]:
        serial = driver.target.name
        try:
            facts = driver.facts()
        except ValueError as exc:
            raise StepFailed(serial, f"unreadable facts: {exc}") from None
        seen_id = identity.observed_of(facts["props"])
        wrong = identity.mismatches(identity.expected_of(by_serial[serial]), seen_id)
        if wrong:
            raise IdentityMismatch(serial, "identity does not match the manifest: "
                                   + "; ".join(wrong))
        held = driver.trust_ca(ca_line, trust.PRINCIPALS) if ca_line else None
        return {"identity": seen_id, "facts": facts, "trust": held}

    def enrolled(dev: dict[str, Any], result: Any, at: str) -> None:
        proof = result.value("identity")
        status = device_rows.status_of(db, dev["id"])
        if status != Status.DELIVERED:
            outcome.failed.append({"serial": dev["serial"], "kind": "conflict",
                                   "error": f"became {status} while it was being enrolled"})
            return
        check_transition(dev["serial"], status, Status.ENROLLED)
        device_rows.enrolled_via_station(db, dev["id"], name, at, Status.ENROLLED.value)
        contact.record_facts(db, dev["id"], proof["facts"], at)
        if proof["trust"] is not None:
            trust.record(db, dev["id"], proof["trust"])
        audit.record(db, operator, "devices.enrol", f"device:{dev['serial']}",
                     {"status": dev["status"]},
                     {"status": Status.ENROLLED.value, "route": f"station:{name}",
                      "station_host_key": row["host_key_fingerprint"],
                      "identity": proof["identity"].as_dict()}
                     | ({"ca": trust.fingerprint_of(ca_line)} if ca_line else {}))
        outcome.done.append({"serial": dev["serial"], "station": name,
                             "usb": next((i.get("usb") for i in seen
                                          if i["serial"] == dev["serial"]), None)})

    def describe(dev: dict[str, Any], result: Any) -> dict[str, Any]:
        return {**contact.failure(dev, result), "station": name,
                "hint": contact.HINTS.get(result.error_kind, "")}

    record = contact.recorder(db, operator, outcome, enrolled, describe=describe)
    rows = list(by_serial.values())
    contact.run_and_record(db, rows, [Step("identity", prove)], drivers.open,
                           [Target(s, "", 0, model=by_serial[s]["model"], via=name)
                            for s in by_serial], record, row["concurrency"], progress)
    summary = {**outcome.as_dict(), "station": name}
    if outcome.failed:
        raise PartialFailure(f"{len(outcome.failed)} device(s) on station {name} were not"
                             " enrolled", outcome.problems(), summary)
    return summary


def _hint(exc: FleetError) -> str:
    return contact.HINTS.get(exc.kind) or ("check it is plugged in (or on the network),"
                                           " then run it again")


class IdentityMismatch(StepFailed):
    kind = "identity_mismatch"


def move(db: Database, operator: str, serial: str, reason: str, drivers: Drivers,
         station: str | None = None, address: str | None = None, host_key: str | None = None,
         tofu: bool = False) -> dict[str, Any]:
    """Move a device's route to a station or to a direct address, checked, audited.

    The device must answer on its new route, and say it is this device, before the move
    is recorded: through a station, adb must see it; directly, its host key must be the
    confirmed one (or trusted on first use) and it must report this serial.
    """
    roles.require(db, operator, "devices.enrol")
    if (station is None) == (address is None):
        raise InputError("give exactly one of --station NAME or --direct ADDRESS",
                         "e.g. mdm stations route SERIAL --direct 10.1.2.3:22 --host-key"
                         " SHA256:… --reason 'issued to the field'")
    if not reason.strip():
        raise InputError("give a --reason for the move")
    dev = device_rows.by_serial(db, serial)
    if dev is None:
        raise NotFound(f"no device {serial!r}", "find it with: mdm devices find TEXT")
    if dev["status"] not in (Status.ENROLLED, Status.PROVISIONED):
        raise InputError(f"device {serial} is {dev['status']}; only enrolled or provisioned"
                         " devices have a route", "enrol it first")
    before = {"route": f"station:{dev['station']}" if dev["station"]
              else f"direct:{dev['address']}"}
    key_line = None
    if station is not None:
        get(db, station)
        target = Target(serial, "", 0, model=dev["model"], via=station)
    else:
        assert address is not None
        if host_key and (problem := fingerprint_problem(host_key)):
            raise InputError(problem)
        if not host_key and not tofu:
            raise InputError("give the device's host key (--host-key SHA256:…), or"
                             " --trust-on-first-use",
                             "read it on the device: ssh-keygen -l -E sha256 -f"
                             " /etc/ssh/ssh_host_ed25519_key.pub")
        user, host, port = contact.parse_address(address)
        try:
            key_line = drivers.offered_key(Target(serial, host, port, user))
        except FleetError as exc:
            raise InputError(f"device {serial} does not answer at {address}: {exc.message}",
                             "check the address, then run the command again") from None
        fp = fingerprint_of_line(key_line)
        if host_key and fp != host_key:
            raise InputError(f"{address} offers host key {fp}, not {host_key}",
                             "a different device (or an interceptor) answered there")
        holder = device_rows.serial_pinning(db, fp, dev["id"])
        if holder:
            raise InputError(f"host key {fp} is pinned for device {holder}")
        target = Target(serial, host, port, user, key_line, dev["model"])
    try:
        driver = drivers.open(target)
    except HostKeyError as exc:
        raise InputError(exc.message) from None
    except FleetError as exc:
        raise InputError(f"device {serial}: {exc.message}", _hint(exc)) from None
    try:
        said = str(driver.facts()["props"].get("ro.serialno", ""))
    except FleetError as exc:
        raise InputError(f"device {serial} did not answer on the new route: {exc.message}",
                         _hint(exc)) from None
    finally:
        driver.close()
    if said.strip() != serial:
        raise InputError(f"the device on the new route says it is {said.strip()[:40]!r},"
                         f" not {serial}", "nothing was changed")
    after = {"route": f"station:{station}" if station else f"direct:{address}"}
    with transaction(db):
        if station is not None:
            device_rows.route_via_station(db, dev["id"], station)
        else:
            device_rows.route_direct(db, dev["id"], address, key_line,
                                     fingerprint_of_line(key_line or ""))
            after["host_key"] = fingerprint_of_line(key_line or "")
            after["host_key_check"] = "confirmed" if host_key else "trusted on first use"
        audit.record(db, operator, "devices.route", f"device:{serial}", before,
                     {**after, "reason": reason})
    return {"serial": serial, "from": before["route"], "to": after["route"], "reason": reason}
