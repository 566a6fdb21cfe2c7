"""The compliance report: every device judged against its effective policy, every reason.

A report only reads: it never changes a device's status (moving compliant enrolled
devices to provisioned is `mdm devices provision`, an explicit, role-checked step). It
exits 1 when any device is not compliant, so a script can gate on it. Summaries count
compliant devices per area, station and group (wave).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from operator import itemgetter
from pathlib import Path
from typing import Any

from mdm import csvio
from mdm.bulk import paused_gc
from mdm.devices import selector
from mdm.devices.lifecycle import Status
from mdm.errors import ExitCode, MdmError
from mdm.groups.service import memberships
from mdm.policies import service
from mdm.policies.compliance import FACTS, Judge
from mdm.store import policies as store
from mdm.store.db import Database

COLUMNS = ["serial", "status", "compliant", "holder", "collar_number", "area", "station",
           "groups", "policy", "reasons"]
STATUSES = ("enrolled", "provisioned", "quarantined")
_PACKAGES = FACTS.index("packages")


def judge_devices(db: Database, folder: Path, selectors: list[str],
                  statuses: tuple[str, ...] = STATUSES) -> list[dict[str, Any]]:
    """Judge every selected device from its latest facts; reads only."""
    from mdm.apps import releases

    tree = service.load(folder, db=db)
    resolver = service.Resolver(tree)
    rows = service.devices(db, selectors, statuses)
    facts = store.facts_by_device(db, FACTS)
    released = releases.load(db)  # empty (and skipped) until a build is released
    judge = Judge()
    names: dict[frozenset[str], list[str]] = {}  # each distinct set of groups, sorted once
    out = []
    for row in rows:
        effective, compiled = resolver.for_device(row)
        reasons = judge(row, facts.get(row["id"]), effective, compiled.sha256)
        reasons = _with_releases(reasons, released, effective, facts.get(row["id"]))
        groups = names.get(row["groups"])
        if groups is None:
            groups = names[row["groups"]] = sorted(row["groups"])
        out.append({"serial": row["serial"], "status": row["status"], "compliant": not reasons,
                    "holder": row["holder"], "collar_number": row["collar_number"],
                    "area": row["area"], "station": row["station"],
                    "groups": list(groups), "policy": compiled.sha256, "reasons": reasons})
    return out


def _with_releases(reasons: list[dict[str, str]], released: Any, effective: Any,
                   facts: tuple[Any, ...] | None) -> list[dict[str, str]]:
    """Add what the app releases say: a required app must run its channel's released build."""
    from mdm.apps import releases

    if not released.current or facts is None:
        return reasons
    channel = effective.settings.get("apps.channel", "stable")
    installed = releases.installed(facts[_PACKAGES])
    # a new list: the judge shares one list among devices judged alike
    added: list[dict[str, str]] = released.reasons(channel, effective.apps(), installed)
    return reasons + added


def report(db: Database, folder: Path, selectors: list[str]) -> dict[str, Any]:
    """Judge every selected device and summarise per area, station and group; reads only."""
    with paused_gc():
        out = judge_devices(db, folder, selectors)
        summary = _summary(out)
    compliant = sum(e["compliant"] for e in out)
    return {"devices": out, "summary": summary,
            "ready_to_provision": [e["serial"] for e in out
                                   if e["compliant"] and e["status"] == Status.ENROLLED],
            "compliant": compliant, "non_compliant": len(out) - compliant, "total": len(out)}


def summarise(db: Database, folder: Path, selectors: list[str]) -> dict[str, Any]:
    """Return what `report` does without its device list: the summary a terminal shows.

    The same judgement and the same counts, from a leaner read: each device as a plain
    tuple of what is judged and counted (no dict, no row for the device list), its kind
    of holder resolved once. Reads only.
    """
    from mdm.apps import releases

    with paused_gc():
        tree = service.load(folder, db=db)
        released = releases.load(db)  # empty (and skipped) until a build is released
        resolver = service.Resolver(tree)
        exceptions = resolver.exception_serials
        judge = Judge()
        resolved: dict[tuple[Any, ...], tuple[Any, str]] = {}
        names: dict[frozenset[str], tuple[str, ...]] = {}
        kinds: Counter[tuple[Any, ...]] = Counter()
        by_reason: dict[str, dict[str, Any]] = {}
        ready: list[str] = []
        for (serial, status, seen, error, officer, worker_type, rank, area, station, groups,
             facts) in _lean_devices(db, selectors):
            kind = (worker_type, rank, area, station, groups)
            found = None if serial in exceptions else resolved.get(kind)
            if found is None:
                effective, compiled = resolver.for_device(
                    {"serial": serial, "officer_id": officer, "worker_type": worker_type,
                     "rank": rank, "area": area, "station": station, "groups": groups})
                found = (effective, compiled.sha256)
                if serial not in exceptions:
                    resolved[kind] = found
            reasons = _with_releases(judge.judge(status, error, seen, facts, *found), released,
                                     found[0], facts)
            sorted_groups = names.get(groups)
            if sorted_groups is None:
                sorted_groups = names[groups] = tuple(sorted(groups))
            kinds[area, station, sorted_groups, not reasons] += 1
            if not reasons:
                if status == Status.ENROLLED:
                    ready.append(serial)
                continue
            for code in dict.fromkeys(r["code"] for r in reasons):
                reason = by_reason.get(code)
                if reason is None:
                    reason = by_reason[code] = {"devices": 0, "examples": []}
                reason["devices"] += 1
                if len(reason["examples"]) < EXAMPLES:
                    reason["examples"].append(serial)
        summary = _count_kinds(kinds)
        summary["reason"] = by_reason
    total = sum(kinds.values())
    compliant = sum(n for k, n in kinds.items() if k[3])
    return {"summary": summary, "ready_to_provision": ready, "compliant": compliant,
            "non_compliant": total - compliant, "total": total}


def _lean_devices(db: Database, selectors: list[str]) -> Iterable[tuple[Any, ...]]:
    """Each selected device, by serial, as (serial, status, last seen, last contact error,
    holder's officer id, worker type, rank, area, station, groups, facts or None)."""
    if selectors:
        facts = store.facts_by_device(db, FACTS)
        return [(r["serial"], r["status"], r["last_seen"], r["last_contact_error"],
                 r["officer_id"], r["worker_type"], r["rank"], r["area"], r["station"],
                 r["groups"], facts.get(r["id"]))
                for r in service.devices(db, selectors, STATUSES)]
    where, args = selector.select(db, [], STATUSES)  # refuses an empty fleet, as `report`
    holders = store.holders_by_officer(db)
    held = store.open_holders(db)
    groups = {officer: frozenset(names) for officer, names in memberships(db).items()}
    nobody: tuple[Any, ...] = (None,) * 5
    none: frozenset[str] = frozenset()
    # Each device's facts through their primary key, in the same scan: faster than a
    # dict of every device's facts.
    found = store.devices_with_facts(db, where, args, FACTS)
    found.sort(key=itemgetter(1))  # by serial, as `report` lists them
    out = []
    for row in found:
        holder = holders.get(held.get(row[0], ""), nobody)
        out.append((row[1], row[2], row[3], row[4], *holder, groups.get(holder[0], none),
                    row[6:] if row[5] is not None else None))
    return out


class NotCompliant(MdmError):
    """Some devices are not compliant: the report is printed, and the exit code is 1."""


def require_compliant(result: dict[str, Any]) -> None:
    """Exit 1 (after the report is printed) when any judged device is not compliant."""
    if result["non_compliant"]:
        raise NotCompliant(f"{result['non_compliant']} of {result['total']} device(s) are not"
                           " compliant (each reason is in the report)",
                           "fix them, run mdm devices refresh, then report again",
                           ExitCode.PARTIAL)


EXAMPLES = 5  # serials shown for each reason


def _summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Count devices per area, station and group (compliant or not), and per reason."""
    # Count each distinct (area, station, groups, compliant?) first: a few hundred, not
    # 50,000; each key first met in the same order as its first device.
    out = _count_kinds(Counter((row["area"], row["station"], tuple(row["groups"]),
                                row["compliant"]) for row in rows))
    out["reason"] = {}
    for row in rows:
        if not row["reasons"]:
            continue
        for code in dict.fromkeys(r["code"] for r in row["reasons"]):
            reason = out["reason"].setdefault(code, {"devices": 0, "examples": []})
            reason["devices"] += 1
            if len(reason["examples"]) < EXAMPLES:
                reason["examples"].append(row["serial"])
    return out


def _count_kinds(kinds: Counter[tuple[Any, ...]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Count devices per area, station and group from the counts of each distinct kind."""
    out: dict[str, dict[str, dict[str, Any]]] = {"area": {}, "station": {}, "group": {}}
    for (area, station, groups, compliant), count in kinds.items():
        keys = [("area", area or "(unassigned)"), ("station", station or "(unassigned)")]
        keys += [("group", g) for g in groups]
        for by, key in keys:
            bucket = out[by].setdefault(key, {"total": 0, "compliant": 0, "non_compliant": 0})
            bucket["total"] += count
            bucket["compliant" if compliant else "non_compliant"] += count
    return out


def flat_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Return one flat row per device, groups and reasons as text (for CSV and TSV)."""
    return [{**r, "groups": " ".join(r["groups"]),
             "reasons": "; ".join(f"{x['code']}: {x['detail']}" for x in r["reasons"])}
            for r in result["devices"]]


def to_csv(result: dict[str, Any]) -> str:
    """Render the report as spreadsheet-safe CSV, one row per device."""
    return csvio.write_csv(flat_rows(result), COLUMNS)
