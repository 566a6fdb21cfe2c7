"""Install on each device the builds its channel releases, and prove it from the device.

Per device, through its driver (direct SSH or a provisioning station): the package list
is read; a device already on the build is not written to. Otherwise the build is
streamed to a staging path under a temporary name, checked by sha256 on the device,
installed with `pm install -r`, and the package list read back: success is recorded only
when it shows the build. Every build is hashed again before the first device is sent
it; one altered on disk since `mdm apps add` stops the run before anything is sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mdm.apps import releases, service
from mdm.apps import store as builds
from mdm.driver import Build, DeviceDriver, Drivers, Installed
from mdm.errors import InputError, PartialFailure
from mdm.operators import roles
from mdm.policies import service as policies
from mdm.runs import record as runs
from mdm.store import apps as app_rows
from mdm.store import audit
from mdm.store import devices as device_rows
from mdm.store.db import Database

# What to do about a device's refusal, by the package manager's own code.
HINTS = {
    "INSTALL_FAILED_UPDATE_INCOMPATIBLE": "the device has this package from another signer:"
                                          " release a build of the same signer, or uninstall"
                                          " it on the device first",
    "INSTALL_FAILED_VERSION_DOWNGRADE": "the device runs a newer build: release that, or roll"
                                        " the channel back with mdm apps rollback",
    "INSTALL_FAILED_OLDER_SDK": "the build needs a newer Android than the device runs:"
                                " update the device, or release a build for its API level",
    "INSTALL_PARSE_FAILED_NOT_APK": "the device could not read the file as an APK: check the"
                                    " build with apksigner verify",
}
INSTALL_HINT = "read the device's own words above, fix the cause, then push again"


def plan(db: Database, folder: Path, selectors: list[str], package: str | None = None,
         empty_ok: bool = False) -> list[dict[str, Any]]:
    """Return the selected devices and the builds each should run (from stored facts)."""
    rows = service.targets(db, policies.load(folder), selectors, empty_ok=empty_ok)
    for row in rows:
        if package:
            row["wanted"] = {p: r for p, r in row["wanted"].items() if p == package}
        row["change"] = sorted(p for p, r in row["wanted"].items()
                               if row["installed"].get(p) != r.version_code)
    return rows


def plan_view(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the plan as users see it: one line per device and package."""
    return [{"serial": r["serial"], "channel": r["channel"], "package": p,
             "from": r["installed"].get(p), "to": release.version_code,
             "change": p in r["change"]}
            for r in rows for p, release in sorted(r["wanted"].items())]


def check(db: Database, folder: Path, selectors: list[str]) -> dict[str, Any]:
    """Resolve and return the plan; changes nothing anywhere."""
    rows = plan(db, folder, selectors)
    view = plan_view(rows)
    return {"check": True, "devices": view, "selected": len(rows),
            "would_change": sum(1 for r in rows if r["change"])}


def push(db: Database, operator: str, folder: Path, store: Path, selectors: list[str],
         drivers: Drivers, max_fail_percent: float | None = None,
         progress: runs.Progress | None = None, package: str | None = None,
         rows: list[dict[str, Any]] | None = None, downgrade: bool = False) -> dict[str, Any]:
    """Install every selected device's released builds; exit 1 names every device that failed."""
    if max_fail_percent is not None and not 0 <= max_fail_percent <= 100:
        raise InputError(f"--max-fail-percent {max_fail_percent} is not 0-100")
    roles.require(db, operator, "apps.push")
    rows = plan(db, folder, selectors, package) if rows is None else rows
    rows = [r for r in rows if r["wanted"]]
    files = {}
    for release in {r.sha256: r for row in rows for r in row["wanted"].values()}.values():
        label = f"{release.package} {release.version_code}"
        files[release.sha256] = builds.verified(store, release.sha256, label)
    sizes = app_rows.sizes(db)

    def install(driver: DeviceDriver) -> Any:
        row = by_serial[driver.target.name]
        done = {}
        for name, release in sorted(row["wanted"].items()):
            build = Build(name, release.version_code, release.sha256, sizes[release.sha256],
                          files[release.sha256])
            done[name] = driver.install(build, downgrade)
        return done

    by_serial = {r["serial"]: r for r in rows}
    outcome = runs.Outcome()
    unchanged: list[str] = []

    def installed(row: dict[str, Any], result: Any, at: str) -> None:
        _record_installed(db, operator, row, result.value("install"), at, outcome, unchanged)

    record = runs.recorder(db, operator, outcome, installed,
                           lambda row, result, at: _record_failed(db, row, result, at),
                           describe=_describe)

    def too_many(failed: int, finished: int) -> bool:
        return max_fail_percent is not None and failed * 100 > max_fail_percent * len(rows)

    from mdm.fleet.executor import Step

    run = runs.run_and_record(
        db, rows, [Step("install", install)], drivers.open,
        [runs.target_of(r) for r in rows], record, drivers.concurrency, progress, too_many)
    outcome.skipped += [{"serial": t.name, "reason": "not attempted: the run stopped early"}
                        for t in run.not_attempted]
    stopped = too_many(len(outcome.failed), 0)
    summary = {**outcome.as_dict(), "unchanged": unchanged, "selected": len(rows),
               "changed": len(outcome.done), "stopped_early": stopped}
    if outcome.failed:
        why = f"; stopped early: more than {max_fail_percent:g}% failed" if stopped else ""
        raise PartialFailure(f"{len(outcome.failed)} of {len(rows)} device(s) did not take"
                             f" their build{why}", outcome.problems(), summary)
    return summary


def _record_installed(db: Database, operator: str, row: dict[str, Any],
                      value: dict[str, Installed], at: str, outcome: runs.Outcome,
                      unchanged: list[str]) -> None:
    packages = dict(row["installed"])
    changed = []
    for name, result in sorted(value.items()):
        release = row["wanted"][name]
        packages[name] = release.version_code
        event = "installed" if result.changed else "confirmed"
        if result.changed or row["installed"].get(name) != release.version_code:
            app_rows.add_event(db, row["id"], name, release.sha256, event, at,
                               json.dumps({"from": result.before}))
        if result.changed:
            changed.append({"package": name, "from": result.before,
                            "to": release.version_code, "channel": release.channel})
            audit.record(db, operator, "apps.install", f"device:{row['serial']}",
                         {"package": name, "version_code": result.before},
                         {"package": name, "version_code": release.version_code,
                          "sha256": release.sha256, "channel": release.channel})
    if packages != row["installed"]:
        app_rows.set_packages(db, row["id"], json.dumps(packages, sort_keys=True))
    device_rows.reached(db, row["id"], at)
    if changed:
        outcome.done.append({"serial": row["serial"], "channel": row["channel"],
                             "installed": changed})
    else:
        unchanged.append(row["serial"])


def _record_failed(db: Database, row: dict[str, Any], result: Any, at: str) -> None:
    for name, release in sorted(row["wanted"].items()):
        app_rows.add_event(db, row["id"], name, release.sha256, "failed", at,
                           json.dumps({"error": result.error}))


def _describe(row: dict[str, Any], result: Any) -> dict[str, Any]:
    out = runs.failure(row, result)
    code = getattr(result.exception, "code", None)
    if code:
        out["code"] = code
    if result.error_kind == "install_failed":
        out["hint"] = HINTS.get(code or "", INSTALL_HINT)
    return out


def rollback(db: Database, operator: str, folder: Path, store: Path, package: str,
             channel: str, reason: str | None, drivers: Drivers,
             max_fail_percent: float | None = None,
             progress: runs.Progress | None = None) -> dict[str, Any]:
    """Release the channel's previous build again and push it, downgrading its devices."""
    if not (reason or "").strip():
        raise InputError("a rollback needs --reason", "say why (kept in the audit log)")
    tree = policies.load(folder)
    service.check_channel(tree, channel)
    roles.require(db, operator, "apps.manage")
    roles.require(db, operator, "apps.push")
    history = app_rows.channel_history(db, package, channel)
    if not history:
        raise InputError(f"{package} has never been released to {channel}",
                         "mdm apps show PACKAGE shows its releases")
    current = history[-1]["sha256"]
    # The build the channel ran before this one, never one already rolled back from it.
    withdrawn = releases.load(db).withdrawn.get((channel, package), set())
    previous = next((h["sha256"] for h in reversed(history) if h["sha256"] != current
                     and h["version_code"] not in withdrawn), None)
    if previous is None:
        raise InputError(f"{channel} has run only one build of {package}: there is nothing"
                         " to roll back to", "release an older build with mdm apps release")
    build = app_rows.build(db, previous)
    bad = app_rows.build(db, current)
    assert build is not None and bad is not None  # released builds are never deleted
    builds.verified(store, previous, f"{package} {build['version_code']}")
    known = releases.load(db)
    service.record_release(db, operator, build, channel, known.current[(channel, package)],
                            True, reason)
    rows = [r for r in plan(db, folder, [], package, empty_ok=True)
            if package in r["wanted"] and r["wanted"][package].channel == channel]
    result = {"package": package, "channel": channel, "from": bad["version_code"],
              "to": build["version_code"], "reason": reason}
    if not rows:
        return {**result, "done": [], "failed": [], "unchanged": [], "selected": 0,
                "changed": 0, "skipped": [], "stopped_early": False}
    try:
        pushed = push(db, operator, folder, store, [], drivers, max_fail_percent, progress,
                      package, rows, downgrade=True)
    except PartialFailure as exc:
        if isinstance(exc.result, dict):
            exc.result.update(result)
        raise
    return {**result, **pushed}
