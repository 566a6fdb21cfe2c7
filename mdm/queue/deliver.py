"""How each kind of queued command reaches a device, and what its success records.

`prepare` runs in the caller's thread before any device is contacted (a policy push
compiles each device's due policy now, from its holder now); `send` runs in a worker
with the device's driver; `done` records the outcome inside the recording transaction.
Another feature adds a kind with `kinds.register` and `register` here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mdm.devices.lifecycle import Status
from mdm.driver import Applied, Delivered, DeviceDriver, Trust
from mdm.runs import record as runs
from mdm.store import audit
from mdm.store import queue as queued
from mdm.store.db import Database


@dataclass(frozen=True)
class Env:
    """What preparing a run may need from the project."""

    policies: Path


# command id → what `send` needs; a command missing from it fails with the reason given.
Prepared = tuple[dict[str, Any], dict[str, str]]


@dataclass(frozen=True)
class Delivery:
    prepare: Callable[[Database, list[dict[str, Any]], Env], Prepared]
    send: Callable[[DeviceDriver, dict[str, Any], Any], Any]
    done: Callable[[Database, str, dict[str, Any], dict[str, Any], Any, Any, str], None]


DELIVERIES: dict[str, Delivery] = {}


def register(kind: str, delivery: Delivery) -> None:
    """Say how a registered command kind is delivered."""
    DELIVERIES[kind] = delivery


def answer_of(value: Any) -> str:
    """Return the device's answer as one short line for the queue's record."""
    if isinstance(value, Delivered):
        return value.answer
    if isinstance(value, Applied):
        sha = str(value.status.get("policySha256", ""))[:12]
        return f"policy {sha} applied" if value.changed else f"already runs policy {sha}"
    if isinstance(value, Trust):
        ca = f"trusts CA {value.ca.split()[1][-12:]}" if value.ca else "trusts no CA"
        krl = f"revocation list v{value.krl_version}" if value.krl_version else "no revocation list"
        return f"{ca}, {krl}, {value.plain_keys} plain key(s)"
    return str(value)[:200]


def _as_is(db: Database, commands: list[dict[str, Any]], env: Env) -> Prepared:
    return {c["id"]: None for c in commands}, {}


def _lock_done(db: Database, operator: str, command: dict[str, Any], device: dict[str, Any],
               value: Any, prepared: Any, at: str) -> None:
    audit.record(db, operator, "queue.lock", f"device:{device['serial']}", None,
                 {"command": command["id"], "answer": answer_of(value),
                  "incident": command["incident_id"]})


def _wipe_done(db: Database, operator: str, command: dict[str, Any], device: dict[str, Any],
               value: Any, prepared: Any, at: str) -> None:
    """A confirmed wipe: the device goes to stock (wiped), repair or retirement."""
    then = Status(command["then_status"] or Status.WIPED)
    details = {"command": command["id"], "answer": answer_of(value),
               "incident": command["incident_id"]}
    if device["status"] != then:
        runs.set_status(db, operator, device, then, "queue.wipe", details)
    else:
        audit.record(db, operator, "queue.wipe", f"device:{device['serial']}", None, details)
    if command["incident_id"] is not None:
        queued.close_incident_wiped(db, command["incident_id"], at, operator, then.value)


def _lock_send(driver: DeviceDriver, command: dict[str, Any], prepared: Any) -> Any:
    return driver.lock(command["id"])


def _wipe_send(driver: DeviceDriver, command: dict[str, Any], prepared: Any) -> Any:
    return driver.wipe(command["id"])


def _policy_prepare(db: Database, commands: list[dict[str, Any]], env: Env) -> Prepared:
    """Compile each device's due policy now; a device no longer managed fails its push."""
    from mdm.policies import service

    tree = service.checked_tree(db, env.policies)
    rows = {r["id"]: r for r in service.plan(db, tree, ["all"])} if commands else {}
    ready, refused = {}, {}
    for c in commands:
        row = rows.get(c["device_id"])
        if row is None:
            refused[c["id"]] = "the device is not enrolled or provisioned: no policy is due"
        else:
            ready[c["id"]] = row
    return ready, refused


def _policy_send(driver: DeviceDriver, command: dict[str, Any], row: Any) -> Any:
    compiled = row["compiled"]
    return driver.apply_policy(compiled.body, compiled.sha256)


def _policy_done(db: Database, operator: str, command: dict[str, Any], device: dict[str, Any],
                 value: Any, row: Any, at: str) -> None:
    from mdm.policies import push

    push.record_applied(db, operator, row, value, at, runs.Outcome(), [])


register("lock", Delivery(_as_is, _lock_send, _lock_done))
register("wipe", Delivery(_as_is, _wipe_send, _wipe_done))
register("policy", Delivery(_policy_prepare, _policy_send, _policy_done))


def _ca_prepare(db: Database, commands: list[dict[str, Any]], env: Env) -> Prepared:
    """Read the inventory's CA now; with none, every trust command fails saying so."""
    from mdm.ca import held as trust

    line = trust.ca_public_line(db)
    if line is None:
        return {}, {c["id"]: "the inventory has no CA: run mdm ca init" for c in commands}
    return {c["id"]: line for c in commands}, {}


def _ca_send(driver: DeviceDriver, command: dict[str, Any], line: Any) -> Any:
    from mdm.ca.held import PRINCIPALS

    return driver.trust_ca(line, PRINCIPALS)


def _trust_done(db: Database, operator: str, command: dict[str, Any], device: dict[str, Any],
                value: Any, prepared: Any, at: str) -> None:
    """Record what the device's sshd trusts now, with the audit row of the command."""
    from mdm.ca import held as trust

    trust.record(db, device["id"], value)
    audit.record(db, operator, f"queue.{command['kind']}", f"device:{device['serial']}",
                 None, {"command": command["id"], "ca": trust.fingerprint_of(value.ca)
                        if value.ca else None, "krl_version": value.krl_version,
                        "plain_keys": value.plain_keys})


def _krl_prepare(db: Database, commands: list[dict[str, Any]], env: Env) -> Prepared:
    """Read the current revocation list now: a device always gets the newest one."""
    from mdm.ca import held as trust

    current = trust.current_krl(db)
    if current is None:
        return {}, {c["id"]: "the inventory has no revocation list yet" for c in commands}
    return {c["id"]: current for c in commands}, {}


def _krl_send(driver: DeviceDriver, command: dict[str, Any], current: Any) -> Any:
    version, data = current
    return driver.install_krl(data, version)


register("ca-trust", Delivery(_ca_prepare, _ca_send, _trust_done))
register("krl", Delivery(_krl_prepare, _krl_send, _trust_done))
