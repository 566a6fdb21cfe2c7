"""Enrol delivered devices over SSH: check identity, pin the host key, record the facts.

For each device: read the host key it offers (without trusting it), compare it with the
fingerprint IT staff confirmed (`--host-key`) or accept it on first use when explicitly
told (`--trust-on-first-use`, which the audit row records); connect with that key pinned;
read identity with `getprop` and refuse the device unless serial, manufacturer and model
match its manifest row; then pin the key and move it delivered → enrolled.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mdm.devices import contact
from mdm.devices.lifecycle import Status, check_transition
from mdm.errors import InputError, PartialFailure, Problem
from mdm.fleet.session import Fleet
from mdm.fleet.transport import StepFailed, Target, Transport
from mdm.operators import roles
from mdm.store import audit
from mdm.store.db import Database

ENROLLABLE = (Status.DELIVERED, Status.QUARANTINED, Status.WIPED, Status.IN_REPAIR)


@dataclass(frozen=True)
class Request:
    serial: str
    address: str
    host_key: str | None = None  # the fingerprint IT staff confirmed, SHA256:…
    where: str = ""


def requests_from_file(path: Path) -> list[Request]:
    """Read `serial_number,address[,host_key]` rows; every bad row is reported at once."""
    from mdm import csvio

    rows = csvio.read_rows(path, ["serial_number", "address"],
                           {"serial": "serial_number", "host_key_fingerprint": "host_key"})
    out, problems = [], []
    for row in rows:
        where = f"{path}, row {row.line}"
        serial, address = row.values.get("serial_number", ""), row.values.get("address", "")
        fp = row.values.get("host_key") or None
        for column, value in (("serial_number", serial), ("address", address)):
            if not value:
                problems.append(Problem(where, "is empty", f"every row needs its {column}",
                                        column))
        if address:
            try:
                contact.parse_address(address)
            except InputError as exc:
                problems.append(Problem(where, exc.message, exc.hint, "address"))
        if fp and not fp.startswith("SHA256:"):
            problems.append(Problem(where, f"{fp!r} is not a SHA256 fingerprint",
                                    "copy it as ssh-keygen -l prints it: SHA256:…", "host_key"))
        out.append(Request(serial, address, fp, where))
    if problems:
        raise InputError(f"{path}: {len(problems)} problem(s); nothing was done",
                         problems=problems)
    return out


def _plan(db: Database, requests: list[Request]) -> tuple[list[dict[str, Any]],
                                                          list[dict[str, Any]]]:
    """Match requests to delivered devices; refuse unknown serials before any SSH."""
    rows, skipped, problems = [], [], []
    for req in requests:
        found = db.query("SELECT * FROM devices WHERE serial = ?", [req.serial])
        where = req.where or f"device {req.serial}"
        if not found:
            problems.append(Problem(where, f"no device {req.serial!r} in the inventory",
                                    "import its delivery manifest first (mdm enrol import)",
                                    "serial_number"))
            continue
        row = found[0]
        if row["status"] in (Status.ENROLLED, Status.PROVISIONED):
            skipped.append({"serial": row["serial"], "status": row["status"],
                            "reason": "already enrolled"})
            continue
        if row["status"] not in ENROLLABLE:
            problems.append(Problem(where, f"device {req.serial} is {row['status']}",
                                    "only delivered, quarantined, wiped or repaired devices"
                                    " are enrolled", "serial_number"))
            continue
        row.update(address=req.address, expected_fp=req.host_key)
        rows.append(row)
    if problems:
        raise InputError(f"{len(problems)} device(s) cannot be enrolled; nothing was done",
                         problems=problems)
    return rows, skipped


def enrol(db: Database, operator: str, requests: list[Request], fleet: Fleet,
          tofu: bool = False, progress: contact.Progress | None = None) -> dict[str, Any]:
    """Enrol devices; exit 1 (PartialFailure) names every device that was refused."""
    from mdm.fleet.executor import Step
    from mdm.fleet.keys import fingerprint_of_line
    from mdm.fleet.transport import HostKeyError

    roles.require(db, operator, "devices.enrol")
    rows, skipped = _plan(db, requests)
    by_serial = {r["serial"]: r for r in rows}

    def connect_checked(target: Target) -> Transport:
        offered = fleet.keyscan(target)
        fp = fingerprint_of_line(offered)
        expected = by_serial[target.name]["expected_fp"]
        if expected and expected != fp:
            raise HostKeyError(target.name, expected, fp)
        if not expected and not tofu:
            raise HostKeyError(target.name, None, fp)
        by_serial[target.name]["offered_key"] = offered
        return fleet.connect(Target(target.name, target.host, target.port, target.user, offered))

    def identity(transport: Transport) -> dict[str, Any]:
        row = by_serial[transport.target.name]
        facts = fleet.profile.parse_facts(
            contact.run_checked(transport, fleet.profile.facts_command(), "reading facts"))
        props = facts["props"]
        seen = {"serial": props.get("ro.serialno", ""),
                "manufacturer": props.get("ro.product.manufacturer", ""),
                "model": props.get("ro.product.model", "")}
        wrong = [f"{k} is {seen[k]!r}, the manifest says {row[k]!r}" for k in seen
                 if (seen[k] != row[k] if k == "serial" else seen[k].lower() != row[k].lower())]
        if wrong:
            raise IdentityMismatch(row["serial"], "identity does not match the manifest: "
                                   + "; ".join(wrong))
        return facts

    outcome = contact.Outcome(skipped=skipped)

    def enrolled(row: dict[str, Any], result: Any, at: str) -> None:
        offered = row["offered_key"]
        fp = fingerprint_of_line(offered)
        previous = {"status": row["status"], "host_key": row["host_key_fingerprint"]}
        check_transition(row["serial"], row["status"], Status.ENROLLED)
        db.execute("UPDATE devices SET status = ?, status_changed_at = ?, address = ?,"
                   " host_key = ?, host_key_fingerprint = ?, enrolled_at = ?"
                   " WHERE id = ?", [Status.ENROLLED.value, at, row["address"], offered,
                                     fp, at, row["id"]])
        contact.record_facts(db, row["id"], result.value("identity"), at)
        how = "confirmed" if row["expected_fp"] else "trusted on first use"
        audit.record(db, operator, "devices.enrol", f"device:{row['serial']}", previous,
                     {"status": Status.ENROLLED.value, "address": row["address"],
                      "host_key": fp, "host_key_check": how})
        outcome.done.append({"serial": row["serial"], "address": row["address"],
                             "host_key": fp, "host_key_check": how})

    record = contact.recorder(db, operator, outcome, enrolled,
                              describe=lambda row, result: _failure(row, result, tofu))

    targets = [contact.target_of(r, host_key="") for r in rows]
    contact.run_and_record(
        db, rows, [Step("identity", identity)], connect_checked, targets, record,
        fleet.concurrency, progress)
    summary = outcome.as_dict()
    if outcome.failed:
        raise PartialFailure(f"{len(outcome.failed)} of {len(rows)} device(s) were not enrolled",
                             outcome.problems(), summary)
    return summary


class IdentityMismatch(StepFailed):
    kind = "identity_mismatch"


def _failure(row: dict[str, Any], result: Any, tofu: bool) -> dict[str, Any]:
    out = contact.failure(row, result)
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
