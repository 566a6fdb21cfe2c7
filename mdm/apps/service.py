"""App builds as users see them: register a build, list and show them, release one to a channel.

A build is registered once (`add`): read from the APK itself, stored by sha256, and never
changed. A package's builds keep one signer unless a new one is accepted on purpose
(`--new-signer --reason`), since a device refuses an update from another signer anyway.
A release names the build a channel runs; the one before stays as history. Every change
is one transaction with its audit row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mdm.apps import apk, releases
from mdm.apps import store as builds
from mdm.errors import InputError, NotFound
from mdm.operators import roles
from mdm.policies import service as policies
from mdm.store import apps as app_rows
from mdm.store import audit, transaction
from mdm.store.db import Database
from mdm.timeutil import now

LIST_COLUMNS = ["package", "version_code", "version_name", "min_sdk", "size", "channels",
                "signer", "sha256", "added_at", "added_by"]


def add(db: Database, operator: str, folder: Path, file: Path, notes: str | None = None,
        new_signer: bool = False, reason: str | None = None) -> dict[str, Any]:
    """Register an APK: read from the file, stored once by sha256 (read-only), audited."""
    roles.require(db, operator, "apps.manage")
    if new_signer and not (reason or "").strip():
        raise InputError("--new-signer needs --reason", "say why the package changes signer"
                         " (kept in the audit log)")
    with builds.staged(folder, file) as (tmp, sha256, size):
        info = apk.read(tmp, shown=file)
        known = app_rows.build(db, sha256)
        if known:
            builds.keep(folder, tmp, sha256)  # put the file back if it went missing
            return {"added": False, "build": _build_view(known),
                    "message": "this build is already registered"}
        clash = app_rows.build_of(db, info.package, info.version_code)
        if clash:
            raise InputError(f"{file}: {info.package} versionCode {info.version_code} is"
                             f" already registered with other bytes (sha256"
                             f" {clash['sha256'][:16]}…); nothing was stored",
                             "builds are immutable: raise versionCode and build again",
                             where=str(file))
        signers = app_rows.signers(db, info.package)
        if signers and info.signer not in signers and not new_signer:
            raise InputError(f"{file}: {info.package} {info.version_code} is signed by"
                             f" {_short(info.signer)}, not by {_short(signers[-1])} like its"
                             " earlier builds; nothing was stored",
                             "devices refuse an update from another signer; if the force"
                             " really changed its key, add --new-signer --reason …",
                             where=str(file))
        builds.keep(folder, tmp, sha256)
    row = {"sha256": sha256, "package": info.package, "version_code": info.version_code,
           "version_name": info.version_name, "min_sdk": info.min_sdk, "size": size,
           "signer": info.signer, "certificates": json.dumps(info.certificates, sort_keys=True),
           "notes": notes, "added_at": now(), "added_by": operator}
    with transaction(db):
        app_rows.insert_build(db, row)
        after = {k: row[k] for k in ("package", "version_code", "version_name", "sha256",
                                     "signer", "min_sdk", "size")}
        if signers and info.signer not in signers:
            after["new_signer"] = {"previous": signers[-1], "reason": reason}
        audit.record(db, operator, "apps.add", f"app:{info.package}", None, after)
    return {"added": True, "build": _build_view(row)}


def _short(signer: str) -> str:
    return signer.split(",")[0][:16] + "…"


def _build_view(row: dict[str, Any], channels: list[str] | None = None) -> dict[str, Any]:
    out = {k: row[k] for k in ("package", "version_code", "version_name", "min_sdk", "size",
                               "sha256", "signer", "notes", "added_at", "added_by")}
    out["certificates"] = json.loads(row["certificates"]) if isinstance(
        row.get("certificates"), str) else row.get("certificates")
    if channels is not None:
        out["channels"] = channels
    return out


def build_of(db: Database, package: str, version_code: int) -> dict[str, Any]:
    """Return a registered build, or refuse (exit 2) naming what is registered."""
    found = app_rows.build_of(db, package, version_code)
    if found:
        return found
    codes = [str(c) for c in app_rows.version_codes(db, package)]
    if not codes:
        raise NotFound(f"no builds of {package} are registered",
                       "register one with mdm apps add FILE.apk (mdm apps list shows them)")
    raise NotFound(f"{package} has no build with versionCode {version_code}",
                   f"registered: {', '.join(codes)}")


def iter_builds(db: Database, package: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield every build (newest first per package) with the channels it is released to."""
    current = releases.load(db).current
    on: dict[str, list[str]] = {}
    for (channel, _), release in sorted(current.items()):
        on.setdefault(release.sha256, []).append(channel)
    for row in app_rows.iter_builds(db, package):
        view = _build_view(row, on.get(row["sha256"], []))
        view["channels"] = " ".join(view["channels"])
        yield view


def show(db: Database, package: str) -> dict[str, Any]:
    """Return a package's builds and its release history, channel by channel."""
    found = list(iter_builds(db, package))
    if not found:
        raise NotFound(f"no builds of {package} are registered",
                       "mdm apps list shows every registered build")
    history = app_rows.release_history(db, package)
    current = {channel: r for (channel, name), r in releases.load(db).current.items()
               if name == package}
    for row in history:
        row["rollback"] = bool(row["rollback"])
    return {"package": package, "builds": found,
            "channels": {c: {"version_code": r.version_code, "sha256": r.sha256,
                             "since": r.released_at, "by": r.released_by,
                             "rollback": r.rollback, "reason": r.reason}
                         for c, r in sorted(current.items())},
            "history": history}


# -- channels and releases ------------------------------------------------------------------

def channels(tree: policies.Tree) -> list[str]:
    """Return the channels the policy tree names (`stable` is every device's default)."""
    named = {str(layer.settings["apps.channel"]) for layer in tree.layers
             if "apps.channel" in layer.settings}
    return sorted(named | {releases.STABLE})


def check_channel(tree: policies.Tree, channel: str) -> None:
    """Refuse (exit 2) a channel no policy layer names."""
    known = channels(tree)
    if channel not in known:
        raise InputError(f"no policy layer names the channel {channel!r}",
                         f"release to one of: {', '.join(known)} (or add a layer that sets"
                         f" apps.channel: {channel})")


def targets(db: Database, tree: policies.Tree, selectors: list[str],
            known: releases.Releases | None = None,
            empty_ok: bool = True) -> list[dict[str, Any]]:
    """Return the selected devices with the release each required package should run.

    Each row gets `channel`, `installed` (its last reported packages) and `wanted`
    ({package: Release}). Contacts nobody. With no selectors and no enrolled device,
    the answer is none (unless not `empty_ok`: then the selector's refusal, exit 2).
    """
    known = known if known is not None else releases.load(db)
    resolver = policies.Resolver(tree)
    if empty_ok and not selectors and not app_rows.any_managed(db):
        return []
    rows = policies.devices(db, selectors)
    facts = app_rows.installed_packages(db)
    for row in rows:
        effective, _ = resolver.for_device(row)
        channel = str(effective.settings.get("apps.channel", releases.STABLE))
        wanted = {}
        for package, entry in effective.apps().items():
            release = known.for_device(channel, package, bool(entry.get("follows_channel")))
            if entry["type"] == "required" and release is not None:
                wanted[package] = release
        row["channel"] = channel
        row["wanted"] = wanted
        row["installed"] = releases.installed(facts.get(row["id"]))
    return rows


def release(db: Database, operator: str, folder: Path, package: str, version_code: int,
            channel: str, check: bool = False, reason: str | None = None) -> dict[str, Any]:
    """Release a build to a channel (the previous release stays as history); --check: the plan."""
    tree = policies.load(folder)
    check_channel(tree, channel)
    build = build_of(db, package, version_code)
    known = releases.load(db)
    current = known.current.get((channel, package))
    proposed = releases.Releases(dict(known.current), known.withdrawn, known.signers)
    proposed.current[(channel, package)] = releases.Release(
        package, channel, build["sha256"], version_code, build["version_name"],
        build["signer"], "", operator, False, reason)
    # The devices this release would change: those it becomes the build of, not yet on it.
    changes = [{"serial": r["serial"], "channel": r["channel"],
                "from": r["installed"].get(package), "to": version_code}
               for r in targets(db, tree, [], proposed)
               if package in r["wanted"] and r["wanted"][package].channel == channel
               and r["installed"].get(package) != version_code]
    # Devices whose Android is older than the build needs: they would refuse it
    # (INSTALL_FAILED_OLDER_SDK), so a release that reaches them is refused here.
    sdks = app_rows.sdks(db)
    too_old = [{"serial": c["serial"], "sdk": int(sdks[c["serial"]])} for c in changes
               if str(sdks.get(c["serial"]) or "").isdigit() and build["min_sdk"] is not None
               and int(sdks[c["serial"]]) < int(build["min_sdk"])]
    plan = {"package": package, "channel": channel, "version_code": version_code,
            "sha256": build["sha256"],
            "previous": current.version_code if current else None,
            "devices": changes, "would_change": len(changes), "too_old": too_old}
    if check:
        return {"check": True, **plan}
    if too_old:
        raise InputError(
            f"{package} {version_code} needs Android SDK {build['min_sdk']}, but"
            f" {len(too_old)} device(s) of {channel} run an older one: "
            + ", ".join(f"{t['serial']} (SDK {t['sdk']})" for t in too_old[:10])
            + ("…" if len(too_old) > 10 else ""),
            "release a build whose minSdkVersion they meet, or move them off the channel;"
            " nothing was released", problems=[])
    roles.require(db, operator, "apps.manage")
    if current is not None and current.sha256 == build["sha256"]:
        return {**plan, "released": False,
                "message": f"{channel} already runs {package} {version_code}"}
    record_release(db, operator, build, channel, current, False, reason)
    return {**plan, "released": True}


def record_release(db: Database, operator: str, build: dict[str, Any], channel: str,
                    current: releases.Release | None, rollback: bool,
                    reason: str | None) -> None:
    with transaction(db):
        app_rows.insert_release(db, build["package"], channel, build["sha256"], now(),
                                operator, rollback, reason)
        audit.record(db, operator, "apps.rollback" if rollback else "apps.release",
                     f"app:{build['package']}",
                     {"channel": channel, "version_code": current.version_code,
                      "sha256": current.sha256} if current else {"channel": channel},
                     {"channel": channel, "version_code": build["version_code"],
                      "sha256": build["sha256"], **({"reason": reason} if reason else {})})


def status(db: Database, folder: Path, package: str | None = None,
           by: str | None = None) -> dict[str, Any]:
    """Count devices per version of each released package, against what their channel says."""
    if by not in (None, "station", "area", "channel"):
        raise InputError(f"--by {by!r} is not one of station, area, channel",
                         "e.g. mdm apps status --by station")
    tree = policies.load(folder)
    known = releases.load(db)
    if package and not app_rows.has_package(db, package):
        raise NotFound(f"no builds of {package} are registered",
                       "mdm apps list shows every registered build")
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in targets(db, tree, [], known):
        for name, release in sorted(row["wanted"].items()):
            if package and name != package:
                continue
            have = row["installed"].get(name)
            group = row.get(by) if by and by != "channel" else None
            key = (group, name, release.channel, release.version_code, have)
            entry = groups.setdefault(key, {
                **({by: group or "(unassigned)"} if by and by != "channel" else {}),
                "package": name,
                "channel": release.channel, "released": release.version_code,
                "installed": have, "on_release": have == release.version_code, "devices": 0})
            entry["devices"] += 1
    rows = sorted(groups.values(), key=lambda e: tuple(str(v) for v in e.values()))
    on = sum(e["devices"] for e in rows if e["on_release"])
    total = sum(e["devices"] for e in rows)
    return {"rows": rows, "on_release": on, "off_release": total - on, "total": total}
