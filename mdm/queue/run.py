"""Deliver what is due: every device that answers gets its commands, the rest wait.

One pass: expire what is past its expiry; mark every due command `sent` (attempts + 1)
in one transaction *before* any device is contacted; then reach the devices through the
executor (one session each, bounded concurrency, deadlines) and record each answer in
batches. A command whose device did not answer goes back to `queued`. If the pass is
killed after sending and before recording, the next pass finds the command still
`sent` and sends it again with the same id: the device answers "already done" without
acting twice, and the outcome is recorded. Delivery is at least once, and each device
action happens once.

A device that held a sent wipe and now offers a new host key is the wiped device
coming back (a factory reset makes a new key): it is reached with the key it offers
only to repeat that same wipe id, which it answers "already done" (or carries out, if
it had not); any other changed key is refused as before (quarantined if the device
was enrolled or provisioned).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mdm.driver import DeviceDriver, Drivers
from mdm.errors import InputError, MdmError, PartialFailure, Problem
from mdm.fleet.transport import FleetError, HostKeyError, Target
from mdm.operators import roles
from mdm.queue import service
from mdm.queue.deliver import DELIVERIES, Env, answer_of
from mdm.queue.kinds import KINDS
from mdm.runs import record as runs
from mdm.store import audit, transaction
from mdm.store import queue as queued
from mdm.store.db import Database
from mdm.timeutil import now

MAX_EVERY = 86400


def _due(db: Database, at: str) -> list[dict[str, Any]]:
    return queued.due(db, at)


def run_once(db: Database, operator: str, drivers: Drivers | Callable[[], Drivers], env: Env,
             progress: runs.Progress | None = None,
             kinds: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Deliver every due command to each device that answers; record every answer.

    `drivers` may be a function that builds them: a pass with nothing due loads no key.
    `kinds`: deliver only commands of these kinds (the rest wait for a full pass).
    """
    from mdm.fleet.executor import Step

    roles.require(db, operator, "queue.run")
    at = now()
    reach: Drivers | None = None
    if queued.any_due(db, at):
        # Before anything is marked sent: a missing key changes nothing.
        reach = drivers() if callable(drivers) else drivers
    with transaction(db):
        expired = service.expire(db, operator, at)
        due = [c for c in _due(db, at) if kinds is None or c["kind"] in kinds]
        resent = {c["id"] for c in due if c["state"] == "sent"}
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for c in due:
            by_kind.setdefault(c["kind"], []).append(c)
        prepared: dict[str, Any] = {}
        refused: dict[str, str] = {}
        held_back: list[dict[str, Any]] = []
        for kind, commands in by_kind.items():
            try:
                ready, bad = DELIVERIES[kind].prepare(db, commands, env)
            except MdmError as exc:  # a broken policy tree must never hold back a wipe
                held_back += [{"id": c["id"], "kind": kind, "why": exc.message}
                              for c in commands]
                continue
            prepared.update(ready)
            refused.update(bad)
        failed_now = [c for c in due if c["id"] in refused]
        for c in failed_now:
            queued.mark_failed(db, c["id"], at, refused[c["id"]])
        if failed_now:
            audit.record(db, operator, "queue.failed", "queue", None,
                         {"failed": [{"id": c["id"], "kind": c["kind"],
                                      "why": refused[c["id"]]} for c in failed_now]})
        skipped = {h["id"] for h in held_back}
        due = [c for c in due if c["id"] not in refused and c["id"] not in skipped]
        queued.mark_sent(db, [c["id"] for c in due], at)
    plan: dict[int, list[dict[str, Any]]] = {}
    for c in due:
        plan.setdefault(c["device_id"], []).append(c)
    for commands in plan.values():
        commands.sort(key=lambda c: (KINDS[c["kind"]].order, c["created_at"]))
    ids = list(plan)
    rows = queued.devices_by_id(db, ids)
    by_serial = {r["serial"]: r for r in rows}
    work = {r["serial"]: plan[r["id"]] for r in rows}
    # Devices whose wipe was sent before this pass: a new host key may be that wipe's.
    rekey_ok = {s for s, cs in work.items()
                if any(c["kind"] == "wipe" and c["id"] in resent for c in cs)}
    if rows and reach is None:  # became due (approved, say) since the first look
        reach = drivers() if callable(drivers) else drivers

    def connect(target: Target) -> DeviceDriver:
        assert reach is not None
        try:
            return reach.open(target)
        except HostKeyError:
            if target.name not in rekey_ok:
                raise
            return reach.open(replace(target, host_key=reach.offered_key(target)))

    def deliver(driver: DeviceDriver) -> list[tuple[str, bool, Any, str]]:
        serial = driver.target.name
        # Only a direct route has a key of its own (a station's key is the station's).
        rekeyed = driver.target.via is None \
            and driver.target.host_key != by_serial[serial]["host_key"]
        out: list[tuple[str, bool, Any, str]] = []
        for c in work[serial]:
            if rekeyed and not (c["kind"] == "wipe" and c["id"] in resent):
                continue  # a new key is trusted for repeating its wipe, nothing else
            try:
                value = DELIVERIES[c["kind"]].send(driver, c, prepared.get(c["id"]))
            except FleetError as exc:
                out.append((c["id"], False, exc, exc.kind))
                break  # the rest wait for the next pass
            out.append((c["id"], True, value, "rekeyed" if rekeyed else ""))
            if c["kind"] == "wipe":
                break  # nothing more reaches a factory-reset device
        return out

    done: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    waiting: list[dict[str, Any]] = []
    outcome = runs.Outcome()

    def delivered(row: dict[str, Any], result: Any, when: str) -> None:
        answers = result.value("deliver")
        answered = {a[0] for a in answers}
        for cid, ok, value, note in answers:
            c = next(x for x in work[row["serial"]] if x["id"] == cid)
            if ok:
                queued.mark_done(db, cid, when, answer_of(value))
                DELIVERIES[c["kind"]].done(db, operator, c, row, value, prepared.get(cid),
                                           when)
                if note == "rekeyed":
                    queued.set_contact_error(db, row["id"], "host key changed by its wipe:"
                                             " re-enrol it to manage it again"
                                             " (mdm enrol device)")
                done.append({"serial": row["serial"], "id": cid, "kind": c["kind"],
                             "answer": answer_of(value)})
            else:
                final = note not in ("unreachable", "timeout", "cancelled")
                queued.mark_answered(db, cid, "failed" if final else "queued",
                                     when if final else None, value.message[:500])
                if final:
                    audit.record(db, operator, f"queue.{c['kind']}", f"device:{row['serial']}",
                                 None, {"command": cid, "failed": value.message[:500]})
                    failed.append({"serial": row["serial"], "id": cid, "kind": c["kind"],
                                   "error": value.message, "error_kind": note})
                else:
                    waiting.append({"serial": row["serial"], "id": cid, "kind": c["kind"],
                                    "why": value.message})
        rest = [c for c in work[row["serial"]] if c["id"] not in answered]
        _requeue(db, rest, "not sent in this pass", when)
        waiting.extend({"serial": row["serial"], "id": c["id"], "kind": c["kind"],
                        "why": "not sent in this pass"} for c in rest)

    def unreachable(row: dict[str, Any], result: Any, when: str) -> None:
        _requeue(db, work[row["serial"]], f"{result.error_kind}: {result.error}", when)
        waiting.extend({"serial": row["serial"], "id": c["id"], "kind": c["kind"],
                        "why": result.error} for c in work[row["serial"]])

    record = runs.recorder(db, operator, outcome, delivered, unreachable)
    targets = [runs.target_of(r) for r in rows]
    run = runs.run_and_record(db, rows, [Step("deliver", deliver)], connect, targets, record,
                              reach.concurrency if reach else 1, progress)
    if run.not_attempted:
        with transaction(db):
            _requeue(db, [c for t in run.not_attempted for c in work[t.name]],
                     "not attempted: the pass was stopped", now())
    summary: dict[str, Any] = {"at": at, "devices": len(rows), "due": len(due) + len(refused),
               "done": done, "failed": failed + [{"serial": _serial_of(db, c["device_id"]),
                                                  "id": c["id"], "kind": c["kind"],
                                                  "error": refused[c["id"]],
                                                  "error_kind": "not_due"}
                                                 for c in failed_now],
               "waiting": waiting, "expired": expired, "held_back": held_back,
               "unreached": outcome.failed}
    if held_back:
        raise PartialFailure(f"{len(held_back)} command(s) could not be prepared; they stay"
                             " queued", [Problem(f"command {h['id'][:8]}", f"{h['kind']}:"
                                                 f" {h['why']}") for h in held_back]
                             + [Problem(f"device {f['serial']}", f"{f['kind']}"
                                        f" {f['id'][:8]}: {f['error']}")
                                for f in summary["failed"]], summary)
    if summary["failed"]:
        raise PartialFailure(f"{len(summary['failed'])} command(s) failed",
                             [Problem(f"device {f['serial']}", f"{f['kind']} {f['id'][:8]}:"
                                      f" {f['error']}") for f in summary["failed"]], summary)
    return summary


def _serial_of(db: Database, device_id: int) -> str:
    return queued.serial_of(db, device_id)


def _requeue(db: Database, commands: list[dict[str, Any]], why: str, at: str) -> None:
    """Put commands that were not delivered back in the queue (unless closed meanwhile)."""
    queued.requeue(db, [c["id"] for c in commands], why[:500])


def run(db: Database, operator: str, drivers: Drivers | Callable[[], Drivers], env: Env,
        every: float | None,
        passes: int | None = None, progress: runs.Progress | None = None,
        on_pass: Any = None) -> dict[str, Any]:
    """Run one pass, or with `every` a pass every so many seconds until stopped.

    SIGTERM or Ctrl-C stops it cleanly: devices in flight finish their step, what they
    answered is recorded, then it returns. `passes` bounds the number of passes.
    """
    if every is None:
        return run_once(db, operator, drivers, env, progress)
    if not 1 <= every <= MAX_EVERY:
        raise InputError(f"--every {every:g} is not 1 to {MAX_EVERY} seconds",
                         "e.g. --every 60 (or leave --every out for one pass)")
    stop = threading.Event()

    def on_term(signum: int, frame: Any) -> None:
        stop.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    count, last = 0, {}
    try:
        while not stop.is_set() and (passes is None or count < passes):
            try:
                last = run_once(db, operator, drivers, env, progress)
            except PartialFailure as exc:  # a loop goes on; each pass reports its failures
                last = exc.result if isinstance(exc.result, dict) else {}
            count += 1
            if on_pass:
                on_pass(last)
            if passes is not None and count >= passes:
                break
            stop.wait(every)
    except KeyboardInterrupt:
        stop.set()
    finally:
        signal.signal(signal.SIGTERM, previous)
    return {"passes": count, "stopped": stop.is_set(), "last": last}
