"""Move enrolled devices from the plain enrolment key to trusting the force's user CA.

Three steps per device, each safe to repeat, in an order that never locks mdm out:
1. the CA trust (CA key and principals) is queued as a `ca-trust` command and the queue
   delivers it (the plain key, or a certificate the device already trusts, gets in);
   a device that does not answer keeps its command queued and gets it when it is back;
2. a session made with the operator's certificate alone (no fallback to the plain key)
   reads the device's trust back: only a device that lets the certificate in, and says
   it trusts this CA, goes on;
3. that same certificate session removes the plain key (the device itself refuses while
   it trusts no CA), and the inventory records what the device now trusts.
Killed at any point, a second run picks up where the devices are: the queue resends a
command marked sent (its effect is idempotent), and step 2 reads what each device holds.
The current revocation list is queued too, to a device that holds an older one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mdm.ca import held as trust
from mdm.driver import DeviceDriver, Drivers, Trust
from mdm.errors import InputError, PartialFailure, Problem
from mdm.operators import roles
from mdm.store import audit, ca, transaction
from mdm.store.db import Database

MANAGED = ("enrolled", "provisioned")


def _rows(db: Database, selectors: list[str]) -> list[dict[str, Any]]:
    from mdm.devices import selector

    where, args = selector.select(db, selectors, MANAGED)
    return ca.selected(db, where, args)


def plan(db: Database, selectors: list[str]) -> dict[str, Any]:
    """Return, per selected device, what the rollout still has to do (nothing is written)."""
    line = trust.ca_public_line(db)
    if line is None:
        raise InputError("the inventory has no CA: devices have nothing to trust",
                         "create one first with: mdm ca init")
    wanted = trust.fingerprint_of(line)
    current = trust.current_krl(db)
    held = trust.by_device(db)
    devices = []
    for row in _rows(db, selectors):
        h = held.get(row["id"], {})
        devices.append({
            "serial": row["serial"], "id": row["id"],
            "install_trust": h.get("ca_fingerprint") != wanted,
            "remove_plain_key": h.get("plain_keys") != 0,
            "send_krl": current is not None and (h.get("krl_version") or 0) < current[0],
        })
    return {"ca": wanted, "krl_version": current[0] if current else None, "devices": devices,
            "line": line}


def queue_krl(db: Database, operator: str, selectors: list[str]) -> dict[str, Any]:
    """Queue the current revocation list to every selected device that holds an older one."""
    from mdm.queue import service

    with transaction(db):
        roles.require(db, operator, "ca.rollout")
        current = trust.current_krl(db)
        if current is None:
            raise InputError("the inventory has no revocation list yet",
                             "revoke a certificate first: mdm ca revoke OPERATOR --reason …")
        held = trust.by_device(db)
        queued = [service.enqueue(db, operator, row, "krl", why="revocation list"
                                  f" v{current[0]}")["id"]
                  for row in _rows(db, selectors)
                  if (held.get(row["id"], {}).get("krl_version") or 0) < current[0]]
    return {"krl_version": current[0], "queued": queued, "count": len(queued)}


def rollout(db: Database, operator: str, selectors: list[str], key: str | None,
            drivers: Callable[[], Drivers], cert_drivers: Callable[[], Drivers], env: Any,
            check: bool = False, progress: Any = None) -> dict[str, Any]:
    """Queue and deliver CA trust, prove a certificate login, then remove the plain key."""
    from mdm.ca.check import require_certificate
    from mdm.fleet.keys import key_path
    from mdm.queue import run as queue_run
    from mdm.queue import service

    roles.require(db, operator, "ca.rollout")
    todo = plan(db, selectors)
    line = todo.pop("line")
    cert = Path(str(key_path(key)) + "-cert.pub")
    if not check and not cert.exists():
        raise InputError(f"no certificate beside the operator key ({cert})",
                         "run mdm login: the rollout proves each device lets a certificate"
                         " in before it removes the plain key")
    if check:
        return {**todo, "check": True}
    # Expired, foreign, revoked, edited: stop before anything is queued (exit 2).
    require_certificate(db, key, operator)
    with transaction(db):
        for d in todo["devices"]:
            row = {"id": d["id"], "serial": d["serial"]}
            if d["install_trust"]:
                service.enqueue(db, operator, row, "ca-trust", why="ca rollout")
            if d["send_krl"]:
                service.enqueue(db, operator, row, "krl", why="ca rollout")
    try:
        queue_run.run_once(db, operator, drivers, env, progress, kinds=("ca-trust", "krl"))
    except PartialFailure:
        pass  # each device's state is read below; the failed ones are named there
    return _remove_plain_keys(db, operator, selectors, line, drivers, cert_drivers, todo,
                              progress)


def _remove_plain_keys(db: Database, operator: str, selectors: list[str], line: str,
                       drivers: Callable[[], Drivers], cert_drivers: Callable[[], Drivers],
                       todo: dict[str, Any], progress: Any) -> dict[str, Any]:
    """Over certificate-only sessions: check the device trusts the CA, remove the plain key."""
    from mdm.driver.sshtrust import ca_key
    from mdm.fleet.executor import Step
    from mdm.runs import record as runs

    wanted = todo["ca"]
    held = trust.by_device(db)
    rows = _rows(db, selectors)
    ready = [r for r in rows if held.get(r["id"], {}).get("ca_fingerprint") == wanted
             and held[r["id"]].get("plain_keys") != 0]
    waiting = [r["serial"] for r in rows if held.get(r["id"], {}).get("ca_fingerprint")
               != wanted]
    done = [r["serial"] for r in rows if held.get(r["id"], {}).get("ca_fingerprint") == wanted
            and held[r["id"]].get("plain_keys") == 0]
    failed: list[Problem] = []

    def remove(driver: DeviceDriver) -> Trust:
        now = driver.trust()  # this session was let in by the certificate alone
        if now.ca != ca_key(line):
            from mdm.fleet.transport import StepFailed

            raise StepFailed(driver.target.name, "the device does not trust the CA the"
                                                 " inventory has: the plain key stays")
        return driver.remove_plain_keys()

    def record(batch: list[tuple[dict[str, Any], Any]]) -> None:
        if not batch:
            return
        with transaction(db):
            for row, result in batch:
                if result.ok:
                    value = result.value("remove-plain-key")
                    trust.record(db, row["id"], value)
                    audit.record(db, operator, "ca.plain_key_removed", f"device:{row['serial']}",
                                 None, {"ca": wanted, "plain_keys": value.plain_keys})
                    done.append(row["serial"])
                else:
                    failed.append(Problem(row["serial"], result.error or result.error_kind,
                                          "the plain key stays; run mdm ca rollout again"))

    # A phone on a station's bench is reached through the station's own sshd (adb): its
    # own sshd serves only its field route, so no certificate login to it can be tried
    # yet. Its plain key goes over the bench route; its field route then lets in only
    # certificates from this CA.
    direct = [r for r in ready if not runs.route_station(r)]
    benched = [r for r in ready if runs.route_station(r)]
    for group, make in ((direct, cert_drivers), (benched, drivers)):
        if group:
            reach = make()
            runs.run_and_record(db, group, [Step("remove-plain-key", remove)], reach.open,
                                [runs.target_of(r) for r in group], record,
                                reach.concurrency, progress)
    result = {"ca": wanted, "done": sorted(done), "waiting": sorted(waiting),
              "failed": [{"serial": p.where, "error": p.message} for p in failed]}
    if failed or waiting:
        names = [*failed, *(Problem(s, "has not taken the CA trust yet",
                                    f"see why with: mdm queue list {s}; an offline device"
                                    " gets it when it answers (mdm queue run)")
                            for s in waiting)]
        raise PartialFailure(f"{len(failed) + len(waiting)} device(s) still accept the plain"
                             " key", names, result)
    return result
