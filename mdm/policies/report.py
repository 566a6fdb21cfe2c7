"""The compliance report: every device judged against its effective policy, every reason.

A report only reads: it never changes a device's status (moving compliant enrolled
devices to provisioned is `mdm devices provision`, an explicit, role-checked step). It
exits 1 when any device is not compliant, so a script can gate on it. Summaries count
compliant devices per area, station and group (wave).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from mdm import csvio
from mdm.bulk import paused_gc
from mdm.devices.lifecycle import Status
from mdm.errors import ExitCode, MdmError
from mdm.policies import service
from mdm.policies.compliance import FACTS, Judge
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
    facts = {r[0]: r[1:] for r in db.execute(f"SELECT device_id, {', '.join(FACTS)}"
                                             " FROM device_facts")}
    released = releases.load(db)  # empty (and skipped) until a build is released
    judge = Judge()
    names: dict[frozenset[str], list[str]] = {}  # each distinct set of groups, sorted once
    out = []
    for row in rows:
        effective, compiled = resolver.for_device(row)
        reasons = judge(row, facts.get(row["id"]), effective, compiled.sha256)
        if released.current and row["id"] in facts:
            channel = effective.settings.get("apps.channel", "stable")
            installed = releases.installed(facts[row["id"]][_PACKAGES])
            # a new list: the judge shares one list among devices judged alike
            reasons = reasons + released.reasons(channel, effective.apps(), installed)
        groups = names.get(row["groups"])
        if groups is None:
            groups = names[row["groups"]] = sorted(row["groups"])
        out.append({"serial": row["serial"], "status": row["status"], "compliant": not reasons,
                    "holder": row["holder"], "collar_number": row["collar_number"],
                    "area": row["area"], "station": row["station"],
                    "groups": list(groups), "policy": compiled.sha256, "reasons": reasons})
    return out


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
    out: dict[str, dict[str, dict[str, Any]]] = {"area": {}, "station": {}, "group": {},
                                                 "reason": {}}
    # Count each distinct (area, station, groups, compliant?) first: a few hundred, not
    # 50,000; each key first met in the same order as its first device.
    kinds = Counter((row["area"], row["station"], tuple(row["groups"]), row["compliant"])
                    for row in rows)
    for (area, station, groups, compliant), count in kinds.items():
        keys = [("area", area or "(unassigned)"), ("station", station or "(unassigned)")]
        keys += [("group", g) for g in groups]
        for by, key in keys:
            bucket = out[by].setdefault(key, {"total": 0, "compliant": 0, "non_compliant": 0})
            bucket["total"] += count
            bucket["compliant" if compliant else "non_compliant"] += count
    for row in rows:
        if not row["reasons"]:
            continue
        for code in dict.fromkeys(r["code"] for r in row["reasons"]):
            reason = out["reason"].setdefault(code, {"devices": 0, "examples": []})
            reason["devices"] += 1
            if len(reason["examples"]) < EXAMPLES:
                reason["examples"].append(row["serial"])
    return out


def flat_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Return one flat row per device, groups and reasons as text (for CSV and TSV)."""
    return [{**r, "groups": " ".join(r["groups"]),
             "reasons": "; ".join(f"{x['code']}: {x['detail']}" for x in r["reasons"])}
            for r in result["devices"]]


def to_csv(result: dict[str, Any]) -> str:
    """Render the report as spreadsheet-safe CSV, one row per device."""
    return csvio.write_csv(flat_rows(result), COLUMNS)
