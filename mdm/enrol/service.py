"""Enrol delivered devices over SSH: prove identity, pin the host key, record the facts.

The pairing set (serial, address, fingerprint) is checked whole before any device is
contacted (`pairing.plan`). Then, per device: read the host key it offers (without
trusting it), compare it with the fingerprint IT staff confirmed (`--host-key`) or accept
it on first use when explicitly told (`--trust-on-first-use`, which the audit row
records); connect with that key pinned; on that same authenticated session, check the
negotiated key and read the identity (serial, maker, model, IMEI where the build shows
one). Only a device that proved both is recorded: pin, address, status, facts and audit
row in one transaction, after re-checking that nobody took the address or key meanwhile.

Everything a worker learns travels back in its own result (a `Proof`); workers share no
mutable state, so one device's key or address can never land in another's record.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mdm.devices.lifecycle import Status, check_transition
from mdm.driver import DeviceDriver, Drivers, Trust
from mdm.enrol import identity, pairing
from mdm.enrol.pairing import Request
from mdm.errors import PartialFailure
from mdm.fleet.keys import fingerprint_of_line
from mdm.fleet.transport import HostKeyError, StepFailed, Target
from mdm.operators import roles
from mdm.runs import record as runs
from mdm.store import audit, devices, enrolment
from mdm.store.db import Database

__all__ = ["Proof", "Request", "enrol", "manifest_csv", "requests_from_file"]


@dataclass(frozen=True)
class Proof:
    """What one connection proved: this device, at this address, holds this key.

    Built inside the worker from its own transport only, and carried back in the result,
    so nothing one device's connection learns can land in another device's record.
    """

    serial: str
    address: str
    host_key: str  # the public key line the authenticated session was pinned to
    fingerprint: str
    identity: identity.Identity
    facts: dict[str, Any]
    trust: Trust | None = None  # the user CA trust installed on that session, if any


@dataclass(frozen=True)
class _Expect:
    """What a device must prove; read-only, shared with the worker threads."""

    address: str  # as the pairing gave it
    reaches: tuple[str, int]  # the normalised host and port it names
    fingerprint: str | None
    identity: identity.Identity


def requests_from_file(path: Path) -> list[Request]:
    """Read `serial_number,address[,host_key]` rows; `enrol` checks them all at once."""
    return pairing.read_file(path)


def enrol(db: Database, operator: str, requests: list[Request],
          drivers: Drivers | Callable[[], Drivers], tofu: bool = False,
          progress: runs.Progress | None = None) -> dict[str, Any]:
    """Enrol devices; exit 1 (PartialFailure) names every device that was refused.

    `drivers` may be a function that builds them, so a bad pairing set is reported before
    the operator's key is even loaded.
    """
    from mdm.ca import held as trust
    from mdm.fleet.executor import Step

    roles.require(db, operator, "devices.enrol")
    plan = pairing.plan(db, requests)  # a bad set is refused here, before any SSH
    ca_line = trust.ca_public_line(db)  # with a CA, the device trusts it from enrolment on
    rows = plan.rows
    reach: Drivers = drivers() if callable(drivers) else drivers
    serials = [r["serial"] for r in rows]
    if len(set(serials)) != len(serials):  # results are matched to rows by serial
        raise AssertionError("pairing.plan let a serial through twice")
    expect = {r["serial"]: _Expect(r["address"], pairing.address_key(r["address"]),
                                   r["expected_fp"], identity.expected_of(r)) for r in rows}

    def connect_checked(target: Target) -> DeviceDriver:
        offered = reach.offered_key(target)
        fp = fingerprint_of_line(offered)
        wanted = expect[target.name].fingerprint
        if wanted and wanted != fp:
            raise HostKeyError(target.name, wanted, fp)
        if not wanted and not tofu:
            raise HostKeyError(target.name, None, fp)
        # The connection pins exactly the key just offered: RejectPolicy refuses any other.
        return reach.open(replace(target, host_key=offered))

    def prove(driver: DeviceDriver) -> Proof:
        proof = _prove(driver, expect[driver.target.name])
        if ca_line is None:
            return proof
        return replace(proof, trust=driver.trust_ca(ca_line, trust.PRINCIPALS))

    outcome = runs.Outcome(skipped=plan.skipped)
    held: list[pairing.Bindings] = []  # loaded once per recording transaction

    def enrolled(row: dict[str, Any], result: Any, at: str) -> None:
        proof: Proof = result.value("identity")
        if not held:
            held.append(pairing.Bindings(db))
        refused = _still_free(db, held[0], row, proof)
        if refused:
            outcome.failed.append({"serial": row["serial"], "address": row["address"],
                                   "kind": "conflict", "error": refused,
                                   "attempts": result.attempts,
                                   "hint": "nothing was pinned; check the inventory and run"
                                           " the command again"})
            return
        how = "confirmed" if row["expected_fp"] else "trusted on first use"
        previous = {"status": row["status"], "host_key": row["host_key_fingerprint"]}
        enrolment.pin(db, row["id"], Status.ENROLLED.value, at, proof.address, proof.host_key,
                      proof.fingerprint)
        runs.record_facts(db, row["id"], proof.facts, at)
        if proof.trust is not None:
            trust.record(db, row["id"], proof.trust)
        audit.record(db, operator, "devices.enrol", f"device:{row['serial']}", previous,
                     {"status": Status.ENROLLED.value, "address": proof.address,
                      "host_key": proof.fingerprint, "host_key_check": how,
                      "identity": proof.identity.as_dict()}
                     | ({"ca": trust.fingerprint_of(ca_line)} if ca_line else {}))
        held[0].bind({"id": row["id"], "serial": row["serial"], "status": Status.ENROLLED.value,
                      "address": proof.address, "host_key_fingerprint": proof.fingerprint})
        outcome.done.append({"serial": row["serial"], "address": proof.address,
                             "host_key": proof.fingerprint, "host_key_check": how})

    recorder = runs.recorder(db, operator, outcome, enrolled,
                           describe=lambda row, result: _failure(row, result, tofu))

    def record(batch: runs.Batch) -> None:
        held.clear()  # bindings are read afresh inside each transaction
        recorder(batch)

    targets = [runs.target_of(r, host_key="") for r in rows]
    runs.run_and_record(
        db, rows, [Step("identity", prove)], connect_checked, targets, record,
        reach.concurrency, progress)
    summary = outcome.as_dict()
    if outcome.failed:
        raise PartialFailure(f"{len(outcome.failed)} of {len(rows)} device(s) were not enrolled",
                             outcome.problems(), summary)
    return summary


def _prove(driver: DeviceDriver, expect: _Expect) -> Proof:
    """Prove, on this one authenticated session, who the device is and which key it holds."""
    target = driver.target
    name = target.name
    if (pairing.normal_host(target.host), target.port) != expect.reaches \
            or not target.host_key:
        raise StepFailed(name, "the connection is not the one planned for this device")
    pinned = fingerprint_of_line(target.host_key)
    seen_by = driver.identity()
    if seen_by.fingerprint != pinned:
        raise HostKeyError(name, pinned, seen_by.fingerprint)
    facts = seen_by.facts
    seen = identity.observed_of(facts["props"])
    wrong = identity.mismatches(expect.identity, seen)
    if wrong:
        raise IdentityMismatch(name, "identity does not match the manifest: "
                               + "; ".join(wrong))
    return Proof(name, expect.address, target.host_key, pinned, seen, facts)


def _still_free(db: Database, bindings: pairing.Bindings, row: dict[str, Any],
                proof: Proof) -> str | None:
    """Re-check, under the write lock, that this device may still take this pin and address."""
    status = devices.status_of(db, row["id"])
    if status is None or status != row["status"]:
        return f"device {row['serial']} became {status} while it was being enrolled"
    check_transition(row["serial"], status, Status.ENROLLED)
    if (proof.serial, proof.address) != (row["serial"], row["address"]):
        return f"the proof is for {proof.serial} at {proof.address}, not this device"
    if holder := bindings.address_holder(row["id"], row["address"]):
        return f"address {row['address']} now belongs to device {holder['serial']}"
    if holder := bindings.key_holder(row["id"], proof.fingerprint):
        return f"host key {proof.fingerprint} is pinned for device {holder['serial']}"
    return None


class IdentityMismatch(StepFailed):
    kind = "identity_mismatch"


def _failure(row: dict[str, Any], result: Any, tofu: bool) -> dict[str, Any]:
    out = runs.failure(row, result)
    if result.error_kind == "host_key" and not out.get("expected_fingerprint"):
        out["error"] = f"offers host key {out['offered_fingerprint']}; not confirmed"
        out["hint"] = (f"check {out['offered_fingerprint']} on the device, then give it with"
                       " --host-key (or in the host_key column of --from), or use"
                       " --trust-on-first-use at the bench")
    elif result.error_kind == "host_key":
        out["hint"] = "a different device (or an interceptor) answered: do not enrol it"
    elif result.error_kind == "identity_mismatch":
        out["hint"] = "check the address: another device answered there"
    elif result.error_kind == "unreachable":
        out["hint"] = "check the device is on and reachable, then run the command again"
    return out


def manifest_csv(rows: list[dict[str, Any]]) -> str:
    """Render a list of requests as the `--from` CSV (used by the lab)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["serial_number", "address", "host_key"])
    for r in rows:
        writer.writerow([r["serial"], r["address"], r.get("fingerprint", "")])
    return buffer.getvalue()
