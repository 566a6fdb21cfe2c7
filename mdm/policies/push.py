"""Push each device its compiled policy and record it only once the device proves it.

Per device, the driver (`DeviceDriver.apply_policy`) reads the DPC's status and the
policy file's sha256; if both already show the expected version, it writes nothing.
Otherwise it uploads the policy to the DPC's inbox (temporary name, sha256 checked on
the device, rename), broadcasts the apply action and reads the status back: success is
recorded only when the DPC reports the expected sha256. A status that breaks its schema
(or is too large, or not UTF-8) fails that device before anything is written to it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mdm.bulk import paused_gc
from mdm.driver import Applied, DeviceDriver, Drivers, PolicyNotApplied
from mdm.errors import InputError, PartialFailure
from mdm.operators import roles
from mdm.policies import service
from mdm.queue import service as queue
from mdm.runs import record as runs
from mdm.store import audit, transaction
from mdm.store import policies as policy_rows
from mdm.store import queue as commands
from mdm.store.db import Database
from mdm.timeutil import now

__all__ = ["PolicyNotApplied", "check", "push"]
# Failures that mean the device did not answer: its push waits in the command queue.
UNANSWERED = ("unreachable", "timeout")


def check(db: Database, folder: Path, selectors: list[str]) -> dict[str, Any]:
    """Resolve and return the plan; changes nothing anywhere.

    Every device (old → new hash), and each distinct change with its device count.
    """
    tree = service.checked_tree(db, folder)
    with paused_gc():
        rows = service.plan(db, tree, selectors)
        view = service.plan_view(rows)
        return {"check": True, "devices": view, "would_change": sum(r["change"] for r in view),
                "selected": len(view), "changes": service.plan_summary(rows)}


def push(db: Database, operator: str, folder: Path, selectors: list[str], drivers: Drivers,
         max_fail_percent: float | None = None,
         progress: runs.Progress | None = None) -> dict[str, Any]:
    """Push every selected device its policy; exit 1 names every device that failed."""
    from mdm.fleet.executor import Step

    if max_fail_percent is not None and not 0 <= max_fail_percent <= 100:
        raise InputError(f"--max-fail-percent {max_fail_percent} is not 0-100")
    tree = service.checked_tree(db, folder)  # nothing is pushed from an invalid tree
    roles.require(db, operator, "policy.push")
    rows = service.plan(db, tree, selectors)
    by_serial = {r["serial"]: r for r in rows}
    _store_versions(db, operator, rows)

    def apply(driver: DeviceDriver) -> Any:
        compiled = by_serial[driver.target.name]["compiled"]
        return driver.apply_policy(compiled.body, compiled.sha256)

    outcome = runs.Outcome()
    unchanged: list[str] = []
    queued: set[int] = set()  # devices of the batch with a policy push waiting in the queue

    def batch_queued(batch: runs.Batch) -> None:
        queued.clear()
        queued.update(commands.with_queued(db, [row["id"] for row, _ in batch], "policy"))

    def applied(row: dict[str, Any], result: Any, at: str) -> None:
        _record_applied(db, operator, row, result.value("apply"), at, outcome, unchanged)
        if row["id"] in queued:
            queue.settle(db, row["id"], "policy",
                         "the device took its policy from mdm policy push", at)

    followed: list[str] = []

    def failed(row: dict[str, Any], result: Any, at: str) -> None:
        _record_failed(db, row, result, at)
        if result.error_kind in UNANSWERED:  # the command queue sends it when it answers
            followed.extend(queue.follow_holder(db, operator, [row["id"]],
                                                "the device did not answer a push"))

    record = runs.recorder(db, operator, outcome, applied, failed, before=batch_queued)

    def too_many(failed: int, finished: int) -> bool:
        return max_fail_percent is not None and failed * 100 > max_fail_percent * len(rows)

    run = runs.run_and_record(
        db, rows, [Step("apply", apply)], drivers.open,
        [runs.target_of(r) for r in rows], record, drivers.concurrency, progress, too_many)
    outcome.skipped += [{"serial": t.name, "reason": "not attempted: the run stopped early"}
                        for t in run.not_attempted]
    summary = {**outcome.as_dict(), "unchanged": unchanged, "selected": len(rows),
               "changed": len(outcome.done), "queued": followed}
    stopped = max_fail_percent is not None and len(outcome.failed) * 100 > \
        max_fail_percent * len(rows)
    summary["stopped_early"] = stopped
    if outcome.failed:
        why = (f"; stopped early: more than {max_fail_percent:g}% failed" if stopped else "")
        raise PartialFailure(f"{len(outcome.failed)} of {len(rows)} device(s) did not take"
                             f" the policy{why}", outcome.problems(), summary)
    return summary


def _store_versions(db: Database, operator: str, rows: list[dict[str, Any]]) -> None:
    """Store each compiled version once (by sha256) before any device is sent it."""
    versions = {r["compiled"].sha256: r["compiled"] for r in rows if r["change"]}
    with transaction(db):
        new = [sha for sha in versions
               if not policy_rows.has_version(db, sha)]
        at = now()
        for sha in new:
            c = versions[sha]
            policy_rows.store_version(db, sha, c.body.decode(), c.document["name"], at,
                                      operator)
        if new:
            audit.record(db, operator, "policy.versions", "policies", None, {"stored": new})


def _record_applied(db: Database, operator: str, row: dict[str, Any], value: Applied,
                    at: str, outcome: runs.Outcome, unchanged: list[str]) -> None:
    sha = row["compiled"].sha256
    status = value.status
    if not value.changed:
        unchanged.append(row["serial"])
        if row["applied_policy"] != sha:
            # Already running it, but we had not recorded that (say, a run cut short after
            # the device applied it): record what the device proves it runs.
            policy_rows.set_applied(db, row["id"], sha, at)
            policy_rows.add_event(db, row["id"], sha, "reported", at,
                                  json.dumps({"state": status.get("state")}))
            audit.record(db, operator, "policy.confirmed", f"device:{row['serial']}",
                         {"policy": row["applied_policy"]}, {"policy": sha})
        return
    violations = status.get("nonComplianceDetails", [])
    policy_rows.record_push(db, row["id"], sha, at,
                            [("sent", None), ("applied", json.dumps({"violations": violations}))],
                            json.dumps(status, sort_keys=True), value.file)
    audit.record(db, operator, "policy.push", f"device:{row['serial']}",
                 {"policy": row["applied_policy"]},
                 {"policy": sha, "layers": row["compiled"].document["name"],
                  "violations": len(violations),
                  **({"truncated": value.truncated} if value.truncated else {})})
    outcome.done.append({"serial": row["serial"], "from": row["applied_policy"], "to": sha,
                         "violations": violations, "truncated": value.truncated})


def _record_failed(db: Database, row: dict[str, Any], result: Any, at: str) -> None:
    sent = any(s.name == "apply" for s in result.steps) and result.error_kind in (
        "policy_not_applied",)
    if sent:
        policy_rows.add_event(db, row["id"], row["compiled"].sha256, "sent", at, None)
    policy_rows.add_event(db, row["id"], row["compiled"].sha256, "failed", at,
                          json.dumps({"error": result.error}))


# The command queue records a queued push's outcome as a direct push does.
record_applied = _record_applied
