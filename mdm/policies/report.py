"""The compliance report: every device judged against its effective policy, every reason.

Devices that pass every check, run their expected policy and have every required app
move enrolled → provisioned (when the operator's role may provision; otherwise they are
listed as ready). Summaries count compliant devices per area, station and group (wave).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mdm import csvio
from mdm.devices import contact
from mdm.devices.lifecycle import Status
from mdm.operators import roles
from mdm.policies import service
from mdm.policies.compliance import judge
from mdm.store import transaction
from mdm.store.db import Database

COLUMNS = ["serial", "status", "compliant", "holder", "collar_number", "area", "station",
           "groups", "policy", "reasons"]


def report(db: Database, operator: str, folder: Path, selectors: list[str]) -> dict[str, Any]:
    """Judge every selected device; promote the compliant; summarise per area, station, group."""
    tree = service.load(folder)
    resolver = service.Resolver(tree)
    rows = service.devices(db, selectors, ("enrolled", "provisioned", "quarantined"))
    facts = {r["device_id"]: r for r in db.query("SELECT * FROM device_facts")}
    out, ready = [], []
    for row in rows:
        effective, compiled = resolver.resolve(row["subject"])
        reasons = judge(row, facts.get(row["id"]), effective, compiled.sha256)
        entry = {"serial": row["serial"], "status": row["status"], "compliant": not reasons,
                 "holder": row["holder"], "collar_number": row["collar_number"],
                 "area": row["area"], "station": row["station"],
                 "groups": sorted(row["subject"].groups), "policy": compiled.sha256,
                 "reasons": reasons}
        out.append(entry)
        if not reasons and row["status"] == Status.ENROLLED:
            ready.append((row, entry))
    role = roles.role_of(db, operator)
    promoted = []
    if ready and role in roles.PERMISSIONS["devices.provision"]:
        with transaction(db):
            for row, entry in ready:
                contact.set_status(db, operator, dict(row), Status.PROVISIONED,
                                   "devices.provision", {"policy": entry["policy"],
                                                         "reason": "compliant"})
                entry["status"] = Status.PROVISIONED.value
                promoted.append(row["serial"])
    return {"devices": out, "summary": _summary(out), "provisioned": promoted,
            "ready_to_provision": [] if promoted else [r["serial"] for r, _ in ready],
            "compliant": sum(e["compliant"] for e in out), "total": len(out)}


EXAMPLES = 5  # serials shown for each reason


def _summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Count devices per area, station and group (compliant or not), and per reason."""
    out: dict[str, dict[str, dict[str, Any]]] = {"area": {}, "station": {}, "group": {},
                                                 "reason": {}}
    for row in rows:
        keys = [("area", row["area"] or "(unassigned)"),
                ("station", row["station"] or "(unassigned)")]
        keys += [("group", g) for g in row["groups"]]
        for by, key in keys:
            bucket = out[by].setdefault(key, {"total": 0, "compliant": 0, "non_compliant": 0})
            bucket["total"] += 1
            bucket["compliant" if row["compliant"] else "non_compliant"] += 1
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
