"""Between the fleet and the inventory: targets from device rows, results back into rows.

The executor runs in worker threads and knows no database; this module turns device
rows into targets, and records what comes back from the caller's thread, in batches of
transactions (each change with its audit row). A device whose host key has changed is
quarantined here, whatever the command was.
"""

from __future__ import annotations

import getpass
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from mdm.devices.lifecycle import Status, check_transition
from mdm.errors import InputError, Problem
from mdm.fleet.transport import Target
from mdm.store import audit, transaction
from mdm.store import devices as device_rows
from mdm.store import policies as policy_rows
from mdm.store.db import Database
from mdm.timeutil import now

if TYPE_CHECKING:  # the executor is imported only when a fleet command runs
    from mdm.fleet.executor import DeviceResult, RunResult, Step

_ADDRESS = re.compile(r"^(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)"
                      r"(?::(?P<port>\d{1,5}))?$")
BATCH = 50


class Progress(Protocol):
    """Where a fleet command reports progress (a progress bar, or nothing)."""

    def start(self, total: int) -> None: ...

    def advance(self) -> None: ...


def parse_address(text: str) -> tuple[str, str, int]:
    """Parse [user@]host[:port] into (user, host, port); the user defaults to MDM_SSH_USER."""
    match = _ADDRESS.match(text.strip())
    port = int(match["port"]) if match and match["port"] else 22
    if not match or not 1 <= port <= 65535:
        raise InputError(f"address {text!r} is not [user@]host[:port]",
                         "e.g. 10.20.0.15:22 or 127.0.1.4:2222")
    user = match["user"] or os.environ.get("MDM_SSH_USER") or getpass.getuser()
    return user, match["host"].strip("[]"), port


def route_station(row: dict[str, Any]) -> str | None:
    """Return the provisioning station a device row is routed through, if any.

    A row joined with its holder names the device's station `via` (`station` is then the
    officer's police station); a plain device row names it `station`.
    """
    return row["via"] if "via" in row else row.get("station")


def target_of(row: dict[str, Any], host_key: str | None = None) -> Target:
    """Return the fleet target for a device row (its pinned key unless one is given).

    A device routed through a provisioning station is reached through it (its target
    names the station), whatever address it may also have.
    """
    if via := route_station(row):
        return Target(row["serial"], "", 0, model=row.get("model"), via=via)
    if not row.get("address"):
        return Target(row["serial"], "", 0)
    user, host, port = parse_address(row["address"])
    return Target(row["serial"], host, port, user, host_key or row.get("host_key"),
                  row.get("model"))


def record_facts(db: Database, device_id: int, facts: dict[str, Any], at: str) -> None:
    """Store the latest facts of one device (inside the caller's transaction).

    The facts come from the profile's parser: checked against its schema, every value
    within its cap (cut values are listed in facts["truncated"]).
    """
    props = facts["props"]
    sdk = props.get("ro.build.version.sdk", "")
    device_rows.save_facts(db, device_id, at, {
        "os_release": props.get("ro.build.version.release"),
        "sdk": int(sdk) if sdk.isascii() and sdk.isdigit() else None,
        "security_patch": props.get("ro.build.version.security_patch") or None,
        "crypto_state": props.get("ro.crypto.state"),
        "packages": json.dumps(facts["packages"], sort_keys=True),
        "dpc_status": (json.dumps(facts["dpc_status"], sort_keys=True)
                       if facts["dpc_status"] else None),
        "props": json.dumps(props, sort_keys=True),
        "settings": json.dumps(facts["settings"], sort_keys=True),
        "policy_file_sha256": facts["policy_file_sha256"]})
    device_rows.reached(db, device_id, at)
    record_reported_policy(db, device_id, facts["dpc_status"], at)


def record_reported_policy(db: Database, device_id: int, status: dict[str, Any] | None,
                           at: str) -> None:
    """Add a 'reported' policy event when the device reports a policy we had not seen it run."""
    reported = (status or {}).get("policySha256")
    if not reported:
        return
    if policy_rows.last_reported(db, device_id) != reported:
        policy_rows.add_event(db, device_id, reported, "reported", at,
                              json.dumps({"state": (status or {}).get("state")}))


def set_status(db: Database, operator: str, row: dict[str, Any], new: Status, action: str,
               details: dict[str, Any]) -> None:
    """Move a device to a new status, with its audit row (inside the caller's transaction)."""
    check_transition(row["serial"], row["status"], new)
    at = now()
    device_rows.set_status(db, [row["id"]], new.value, at)
    audit.record(db, operator, action, f"device:{row['serial']}", {"status": row["status"]},
                 {"status": new.value, **details})
    row["status"] = new.value


@dataclass
class Outcome:
    """What a fleet command did: devices that changed, that were fine, that failed."""

    done: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"done": self.done, "failed": self.failed, "skipped": self.skipped}

    def problems(self) -> list[Problem]:
        return [Problem(f"device {f['serial']}", f["error"],
                        f.get("hint") or HINTS.get(f["kind"], ""), f["kind"])
                for f in self.failed]


# What an operator does next, by the kind of failure (a feature may give its own hint).
HINTS = {
    "unreachable": "check the device is switched on and on the network, then run it again",
    "timeout": "the device answered but did not finish in time: check it is awake and not"
               " busy (an update installing, a low battery), then run the command again"
               " for it alone (give its serial); if it happens again, restart the device",
    "auth_failed": "check the operator key is authorised on the device (mdm keys show)",
    "host_key": "the device offers another host key: confirm it is the same phone before"
                " re-enrolling it; until then it is quarantined",
    "malformed_output": "the device answered in a shape mdm does not accept: check its build"
                        " and DPC; the other devices were recorded",
    "output_too_large": "the device printed more than mdm reads: check its build and DPC",
    "corrupt_transfer": "run it again; if it repeats, check the device's storage",
    "step_failed": "read the device's own words above, fix the cause, then run it again",
    "policy_not_applied": "read the DPC's words above, fix the cause, then push again",
    "cancelled": "run the command again to finish the rest",
    # what a provisioning station says about a device on it
    "unauthorized": "unlock the phone and accept the USB debugging prompt (tick 'Always"
                    " allow from this computer'), then run the command again",
    "offline": "unplug and replug the phone (or try another hub port), then run it again",
    "not_attached": "check the phone is plugged into this station with USB debugging on"
                    " (a field policy switches it off: Settings › Developer options)",
    "unplugged": "plug the phone back in and run the command again: it starts afresh",
    "station_unreachable": "check the station is on and reachable over SSH, then run the"
                           " command again",
}


def failure(row: dict[str, Any], result: DeviceResult) -> dict[str, Any]:
    """Describe a failed device for the report."""
    out = {"serial": row["serial"], "address": row.get("address"), "kind": result.error_kind,
           "error": result.error, "attempts": result.attempts}
    exc = result.exception
    if result.error_kind == "host_key" and exc is not None:
        out["expected_fingerprint"] = getattr(exc, "expected", None)
        out["offered_fingerprint"] = getattr(exc, "offered", None)
    return out


def record_failure(db: Database, operator: str, row: dict[str, Any],
                   result: DeviceResult, at: str) -> None:
    """Record a failed contact; quarantine an enrolled device whose host key has changed."""
    if not row.get("host_key") and not route_station(row):
        return  # never enrolled (no pinned key, no station route): nothing of ours to update
    device_rows.not_reached(db, row["id"], at, f"{result.error_kind}: {result.error}"[:500])
    exc = result.exception
    if result.error_kind == "host_key" and row["status"] in (Status.ENROLLED,
                                                             Status.PROVISIONED):
        set_status(db, operator, row, Status.QUARANTINED, "devices.quarantine",
                   {"reason": "host key changed", "address": row["address"],
                    "expected": getattr(exc, "expected", None),
                    "offered": getattr(exc, "offered", None)})


Batch = list[tuple[dict[str, Any], "DeviceResult"]]


def recorder(db: Database, operator: str, outcome: Outcome,
             on_ok: Callable[[dict[str, Any], DeviceResult, str], None],
             on_fail: Callable[[dict[str, Any], DeviceResult, str], None] | None = None,
             describe: Callable[[dict[str, Any], DeviceResult], dict[str, Any]] | None = None,
             after: Callable[[Batch], None] | None = None,
             before: Callable[[Batch], None] | None = None) -> Callable[[Batch], None]:
    """Return a function that records one batch of results in one transaction.

    `before` may first read what the whole batch needs (in one query, not one a device:
    on PostgreSQL a read sends the writes waiting before it, so a read per device would
    cost a round trip and a statement of each kind per device). Successes go to `on_ok`;
    failures are recorded (last contact, quarantine), passed to `on_fail`, and described
    in the outcome; `after` may add a summary audit row.
    """

    def record(batch: Batch) -> None:
        if not batch:
            return
        with transaction(db):
            if before:
                before(batch)
            at = now()
            for row, result in batch:
                if result.ok:
                    on_ok(row, result, at)
                    continue
                if on_fail:
                    on_fail(row, result, at)
                record_failure(db, operator, row, result, at)
                outcome.failed.append((describe or failure)(row, result))
            if after:
                after(batch)

    return record


def run_and_record(db: Database, rows: Sequence[dict[str, Any]], steps: Sequence[Step],
                   connect: Callable[[Target], Any], targets: Iterable[Target],
                   record: Callable[[list[tuple[dict[str, Any], DeviceResult]]], None],
                   concurrency: int, progress: Progress | None = None,
                   stop_when: Callable[[int, int], bool] | None = None) -> RunResult:
    """Run steps on every target; call `record` with batches from this thread.

    `stop_when(failed, finished)` is asked after each device; when it says yes, no more
    devices are started. Returns the executor's RunResult: every device's result, and the
    targets never attempted. On Ctrl-C, what finished (including devices in flight) is
    recorded, then KeyboardInterrupt propagates.
    """
    from mdm.fleet.executor import Executor, RunResult

    by_serial = {r["serial"]: r for r in rows}
    executor = Executor(connect, concurrency=concurrency)
    targets = list(targets)
    if progress:
        progress.start(len(targets))
    batch: list[tuple[dict[str, Any], DeviceResult]] = []
    seen: set[str] = set()
    failed = 0
    run = RunResult()
    try:
        for result in executor.run(targets, steps):
            if progress:
                progress.advance()
            if result.error_kind == "cancelled":
                continue
            seen.add(result.target.name)
            run.results.append(result)
            batch.append((by_serial[result.target.name], result))
            failed += not result.ok
            if stop_when and stop_when(failed, len(seen)):
                executor.cancel()
            if len(batch) >= BATCH:
                record(batch)
                batch = []
    finally:
        record(batch)
    run.not_attempted = [t for t in targets if t.name not in seen]
    return run
