"""Gather facts from many enrolled devices at once and record them with `last_seen`.

An unreachable device is recorded as such (last contact time and error) and named in
the report; it never stops the run. So is a device whose answer is refused (output that
breaks the facts schema, is not UTF-8, or passes the size cap): its previous facts stay,
and the refusal is its last contact error. A device offering a changed host key is
quarantined. Values cut to their cap are named per device and in the audit row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mdm.devices import selector
from mdm.devices.lifecycle import Status
from mdm.driver import DeviceDriver, Drivers
from mdm.errors import MdmError, PartialFailure
from mdm.operators import roles
from mdm.runs import record as runs
from mdm.store import audit, devices, transaction
from mdm.store.db import Database

REACHABLE = (Status.ENROLLED, Status.PROVISIONED)


def enrolled_devices(db: Database, selectors: list[str]) -> list[dict[str, Any]]:
    """Return the enrolled or provisioned devices the selectors pick; refuse picking none."""
    where, args = selector.select(db, selectors, [s.value for s in REACHABLE])
    return devices.reachable_selected(db, where, args)


def refresh(db: Database, operator: str, selectors: list[str], drivers: Drivers,
            progress: runs.Progress | None = None, folder: Path | None = None) -> dict[str, Any]:
    """Collect facts from every selected device; exit 1 names the devices not reached.

    With the policy `folder`, each reached device is judged from its new facts and the
    judgement stored, so the rollout's views read it instead of judging it again.
    """
    from mdm.fleet.executor import Step

    roles.require(db, operator, "devices.refresh")
    rows = enrolled_devices(db, selectors)

    def facts(driver: DeviceDriver) -> dict[str, Any]:
        return driver.facts()

    outcome = runs.Outcome()

    def reached(row: dict[str, Any], result: Any, at: str) -> None:
        facts = result.value("facts")
        runs.record_facts(db, row["id"], facts, at)
        outcome.done.append({"serial": row["serial"], "last_seen": at,
                             "truncated": facts["truncated"]})

    def batch_summary(batch: runs.Batch) -> None:
        details: dict[str, Any] = {
            "reached": sum(r.ok for _, r in batch),
            "not_reached": sorted(row["serial"] for row, r in batch if not r.ok)}
        cut = {row["serial"]: r.value("facts")["truncated"] for row, r in batch
               if r.ok and r.value("facts")["truncated"]}
        if cut:
            details["truncated"] = cut
        audit.record(db, operator, "devices.refresh", "devices", None, details)

    record = runs.recorder(db, operator, outcome, reached, after=batch_summary)

    runs.run_and_record(
        db, rows, [Step("facts", facts)], drivers.open,
        [runs.target_of(r) for r in rows], record, drivers.concurrency, progress)
    if folder is not None and outcome.done:
        done = {d["serial"] for d in outcome.done}
        _judge(db, folder, [r["id"] for r in rows if r["serial"] in done])
    summary = {**outcome.as_dict(), "selected": len(rows)}
    if outcome.failed:
        raise PartialFailure(f"{len(outcome.failed)} of {len(rows)} device(s) could not be"
                             " refreshed",
                             outcome.problems(), summary)
    return summary


def _judge(db: Database, folder: Path, ids: list[int]) -> None:
    """Store the reached devices' judgements; a policy tree that does not load stores none.

    The facts are recorded either way: a device without a stored judgement is judged live
    by whoever reads it, which reports the policy tree's problems there.
    """
    from mdm.policies import judgements

    try:
        with transaction(db):
            judgements.record(db, folder, ids)
    except MdmError:
        return
