"""`mdm provision`: run the provisioning playbook per device, resumable, duty-aware.

Each step runs over every device that needs it at once, by calling the command that
already does the job (`devices refresh`, `policy push`, `devices provision`), and its
result per device is recorded in `provision_steps` in one transaction as soon as the
step ends. A re-run — after a failure, Ctrl-C or kill -9 — skips every step a device has
already proven since it was last enrolled; a step cut off midway runs again only for the
devices it had not recorded, and push and provision read the device's own state first,
so nothing is applied twice.

Duty-aware: a device is never worked on while its holder is on shift by their team's
rota; a holder with no rota is reached only inside their wave's fixed windows. Anything
else is refused per device (exit 1) unless `--ignore-window --reason`, which is audited.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mdm.devices import selector
from mdm.errors import InputError, MdmError, PartialFailure, Problem
from mdm.operators import roles
from mdm.rollout import membership
from mdm.rollout import steps as playbook
from mdm.rollout.plan import Plan, has_rota, in_window, on_shift
from mdm.store import audit, transaction
from mdm.store import rollout as store
from mdm.store.db import Database
from mdm.timeutil import now

if TYPE_CHECKING:
    from mdm.driver import Drivers

CHUNK = 200  # serials given to one call as selectors
APP_CODES = ("app_missing", "app_outdated", "app_blocked")


def _select(db: Database, plan: Plan, members: membership.Membership, wave: str | None,
            selectors: list[str]) -> list[dict[str, Any]]:
    """Return the devices to work on, each with its holder and the holder's wave."""
    if wave is not None:
        plan.wave(wave)
        cohort = set(members.cohort(wave))
        rows = [r for r in store.held_devices(db, selector.FROM) if r["officer_id"] in cohort]
        if not rows:
            raise InputError(f"nobody in wave {wave} holds a device yet",
                             "allocate devices first: mdm assign --from FILE")
    else:
        if not selectors:
            raise InputError("name the devices: SELECTOR… or --wave W")
        where, args = selector.select(db, selectors, ("enrolled", "provisioned"))
        rows = store.selected_devices(db, selector.FROM, where, args)
    for row in rows:
        row["wave"] = members.wave_of.get(row["officer_id"] or "")
    return rows


def _proven(db: Database, rows: list[dict[str, Any]]) -> dict[int, dict[str, str]]:
    """Return, per device, each step's latest result since it was last enrolled."""
    epoch = {r["id"]: r["status_changed_at"] for r in rows}
    out: dict[int, dict[str, str]] = {r["id"]: {} for r in rows}
    for device, step, result, at in store.steps_of(db, epoch):
        if at >= epoch[device]:
            out[device][step] = result
    return out


def _window(plan: Plan, row: dict[str, Any], moment: datetime) -> str | None:
    """Say why now is outside the device's window (None: inside it)."""
    if has_rota(plan, row["team"]):
        shift = on_shift(plan, row["team"], moment)
        return f"its holder's team {row['team']} is on shift ({shift.text()})" if shift else None
    windows = plan.wave(row["wave"]).windows if row["wave"] else ()
    if not windows:
        return (f"team {row['team'] or '(none)'} has no rota in the plan and"
                f" {'wave ' + row['wave'] if row['wave'] else 'no wave'} gives no windows")
    if in_window(windows, moment):
        return None
    return (f"team {row['team'] or '(none)'} has no rota; wave {row['wave']}'s windows are"
            f" {', '.join(w.text() for w in windows)}")


def provision(db: Database, operator: str, folder: Path, plan: Plan, steps_path: Path,
              selectors: list[str], wave: str | None, check: bool, ignore_window: bool,
              reason: str | None, drivers: Callable[[], Drivers],
              moment: datetime | None = None, builds: Path | None = None) -> dict[str, Any]:
    """Run the playbook's steps per device, recording each; `check` only shows the plan.

    `builds` is the build store the apps step installs released builds from.
    """
    from zoneinfo import ZoneInfo

    from mdm.timeutil import local_zone

    order = playbook.load(steps_path)
    if ignore_window and not reason:
        raise InputError("--ignore-window needs a --reason", "say why the window is ignored")
    if not check:
        for action in ("devices.refresh", "policy.push", "apps.push", "devices.provision"):
            roles.require(db, operator, action)
        if ignore_window:
            roles.require(db, operator, "rollout.ignore_window")
    members = membership.compute(db, plan)
    rows = _select(db, plan, members, wave, selectors)
    opened = set(store.opened_waves(db))
    local = (moment or datetime.now(UTC)).astimezone(ZoneInfo(local_zone()))
    proven = _proven(db, rows)
    report: dict[str, dict[str, Any]] = {}
    work: list[dict[str, Any]] = []
    overridden = []
    for row in rows:
        entry: dict[str, Any] = {"serial": row["serial"], "holder": row["officer_id"],
                                 "wave": row["wave"], "status": row["status"],
                                 "done": [s for s in order if proven[row["id"]].get(s) == "ok"],
                                 "to_do": [], "result": None}
        report[row["serial"]] = entry
        if row["status"] == "provisioned":
            entry["result"] = "already provisioned"
            continue
        if row["status"] != "enrolled":
            entry["result"] = f"refused: the device is {row['status']}, not enrolled"
            continue
        if not row["officer_id"]:
            entry["result"] = "refused: not allocated to anyone (mdm assign)"
            continue
        if row["wave"] and row["wave"] not in opened:
            entry["result"] = (f"refused: wave {row['wave']} is not open"
                               f" (mdm rollout advance {row['wave']})")
            continue
        closed = _window(plan, row, local)
        entry["window"] = closed or "open"
        if closed and not ignore_window:
            entry["result"] = f"refused: {closed}; --ignore-window --reason to go ahead"
            continue
        if closed:
            overridden.append({"serial": row["serial"], "why": closed})
        entry["to_do"] = [s for s in order if s not in entry["done"]]
        work.append(row)
    if not check and overridden:
        with transaction(db):
            audit.record(db, operator, "provision.ignore_window", "devices", None,
                         {"reason": reason, "at": local.isoformat(timespec="minutes"),
                          "devices": overridden})
    if not check and work:
        _run(db, operator, folder, order, work, proven, report, drivers, builds)
    return _summary(report, check, local)


def _summary(report: dict[str, dict[str, Any]], check: bool, local: datetime) -> dict[str, Any]:
    devices = list(report.values())
    refused = [d for d in devices if (d["result"] or "").startswith("refused")]
    failed = [d for d in devices if (d["result"] or "").startswith("failed")]
    result = {"check": check, "at": local.isoformat(timespec="minutes"), "devices": devices,
              "provisioned": [d["serial"] for d in devices if d["result"] == "provisioned"],
              "failed": [d["serial"] for d in failed],
              "refused": [d["serial"] for d in refused], "selected": len(devices)}
    if (refused or failed) and not check:
        problems = [Problem(f"device {d['serial']}", d["result"].split(": ", 1)[-1],
                            "mdm provision --check shows each device's window and wave"
                            if d in refused else "fix it, then run mdm provision again"
                            " (steps already proven are not redone)",
                            "refused" if d in refused else d.get("failed_step", "failed"))
                    for d in refused + failed]
        raise PartialFailure(f"{len(failed)} device(s) failed a step and {len(refused)} were"
                             f" refused, of {len(devices)}", problems, result)
    return result


def _run(db: Database, operator: str, folder: Path, order: list[str],
         work: list[dict[str, Any]], proven: dict[int, dict[str, str]],
         report: dict[str, dict[str, Any]], drivers: Callable[[], Drivers],
         builds: Path | None = None) -> None:
    """Run each step over the devices that still need it; record results as each step ends."""
    active = list(work)
    built: list[Drivers] = []

    def fleet() -> Drivers:
        if not built:
            built.append(drivers())
        return built[0]

    for step in order:
        batch = [r for r in active if proven[r["id"]].get(step) != "ok"]
        if not batch:
            continue
        results: dict[str, str | None] = {}
        runner = partial(_apps, builds=builds) if step == "apps" else STEP_RUNNERS[step]
        for i in range(0, len(batch), CHUNK):
            results.update(runner(db, operator, folder, batch[i:i + CHUNK], fleet))
        _record(db, operator, step, batch, results)
        for row in batch:
            error = results.get(row["serial"])
            entry = report[row["serial"]]
            if error is None:
                entry["done"].append(step)
                entry["to_do"].remove(step)
            else:
                entry["result"] = f"failed at {step}: {error}"
                entry["failed_step"] = step
                active.remove(row)
    for row in active:
        report[row["serial"]]["result"] = "provisioned"


def _record(db: Database, operator: str, step: str, batch: list[dict[str, Any]],
            results: dict[str, str | None]) -> None:
    """Record one step's result for every device of the batch, with one audit row."""
    at = now()
    with transaction(db):
        store.record_steps(db, [(r["id"], step,
                                 "ok" if results.get(r["serial"]) is None else "failed",
                                 results.get(r["serial"]), at, operator) for r in batch])
        audit.record(db, operator, "provision.step", "devices", None,
                     {"step": step, "ok": sorted(r["serial"] for r in batch
                                                 if results.get(r["serial"]) is None),
                      "failed": {s: e for s, e in sorted(results.items()) if e is not None}})


Runner = Callable[[Database, str, Path, list[dict[str, Any]], Callable[[], "Drivers"]],
                  dict[str, str | None]]


def _failures(exc: MdmError, serials: list[str]) -> dict[str, str | None]:
    """Map a command's per-device failures (a PartialFailure) onto the batch."""
    errors: dict[str, str | None] = dict.fromkeys(serials)
    for p in exc.problems:
        serial = p.where.removeprefix("device ")
        if serial in errors:
            errors[serial] = p.message
    return errors


def _refresh(db: Database, operator: str, folder: Path, batch: list[dict[str, Any]],
             drivers: Callable[[], Drivers]) -> dict[str, str | None]:
    from mdm.devices.refresh import refresh

    serials = [r["serial"] for r in batch]
    try:
        refresh(db, operator, serials, drivers(), folder=folder)
    except PartialFailure as exc:
        return _failures(exc, serials)
    return dict.fromkeys(serials)


def _identity(db: Database, operator: str, folder: Path, batch: list[dict[str, Any]],
              drivers: Callable[[], Drivers]) -> dict[str, str | None]:
    from mdm.enrol.identity import expected_of, mismatches, observed_of

    out: dict[str, str | None] = {}
    for row in batch:
        props = store.device_props(db, row["id"])
        if not props:
            out[row["serial"]] = "no facts on record: refresh it first"
            continue
        wrong = mismatches(expected_of(row), observed_of(json.loads(props)))
        out[row["serial"]] = "; ".join(wrong) or None
    return out


def _policy(db: Database, operator: str, folder: Path, batch: list[dict[str, Any]],
            drivers: Callable[[], Drivers]) -> dict[str, str | None]:
    from mdm.policies.push import push

    serials = [r["serial"] for r in batch]
    try:
        push(db, operator, folder, serials, drivers())
    except PartialFailure as exc:
        return _failures(exc, serials)
    return dict.fromkeys(serials)


def _trust(db: Database, operator: str, folder: Path, batch: list[dict[str, Any]],
           drivers: Callable[[], Drivers]) -> dict[str, str | None]:
    from mdm.ca import held as trust
    from mdm.ca import install

    serials = [r["serial"] for r in batch]
    if trust.ca_public_line(db) is None:  # no CA: nothing to trust, no device contacted
        return dict.fromkeys(serials)
    return install.install(db, operator, serials, drivers())


def _judged(db: Database, folder: Path, serials: list[str]) -> dict[str, list[dict[str, Any]]]:
    from mdm.policies.report import judge_devices

    return {e["serial"]: e["reasons"] for e in judge_devices(db, folder, serials, ("enrolled",))}


def _apps(db: Database, operator: str, folder: Path, batch: list[dict[str, Any]],
          drivers: Callable[[], Drivers], builds: Path | None = None) -> dict[str, str | None]:
    # Install what each device's channel says it should run (mdm apps push), then prove the
    # required apps are there at their versions; otherwise say exactly what is missing.
    serials = [r["serial"] for r in batch]
    out: dict[str, str | None] = dict.fromkeys(serials)
    if builds is not None and store.any_release(db):
        from mdm.apps.push import push as install

        try:
            install(db, operator, folder, builds, serials, drivers())
        except PartialFailure as exc:
            out = _failures(exc, serials)
    judged = _judged(db, folder, [s for s in serials if out[s] is None])
    for serial in serials:
        missing = [r["detail"] for r in judged.get(serial, []) if r["code"] in APP_CODES]
        if missing:
            out[serial] = ("; ".join(missing) + " — no build released to its channel"
                           " provides it: mdm apps add, mdm apps release, then run mdm"
                           " provision again")
    return out


def _compliance(db: Database, operator: str, folder: Path, batch: list[dict[str, Any]],
                drivers: Callable[[], Drivers]) -> dict[str, str | None]:
    out = _refresh(db, operator, folder, batch, drivers)
    reached = [s for s, e in out.items() if e is None]
    if reached:
        judged = _judged(db, folder, reached)
        for serial in reached:
            reasons = judged.get(serial, [])
            out[serial] = "; ".join(r["detail"] for r in reasons) or None
    return out


def _provision(db: Database, operator: str, folder: Path, batch: list[dict[str, Any]],
               drivers: Callable[[], Drivers]) -> dict[str, str | None]:
    from mdm.devices.provision import provision as move

    serials = [r["serial"] for r in batch]
    try:
        move(db, operator, folder, serials)
    except PartialFailure as exc:
        return _failures(exc, serials)
    return dict.fromkeys(serials)


STEP_RUNNERS: dict[str, Runner] = {"refresh": _refresh, "identity": _identity, "trust": _trust,
                                   "policy": _policy, "apps": _apps,
                                   "compliance": _compliance, "provision": _provision}
