"""The supplier's delivery manifest: parse, check every row, land it whole or not at all.

Core columns become inventory columns; everything else the supplier sends (pallet,
box, ICCID, warranty…) is kept verbatim, as text, in the device's `supplier` record.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mdm import csvio, imports
from mdm.devices.lifecycle import Status
from mdm.enrol import identity
from mdm.errors import InputError, Problem
from mdm.operators import roles
from mdm.progress import Progress, counted
from mdm.store import audit, enrolment, transaction
from mdm.store.db import Database
from mdm.timeutil import now

REQUIRED = ("serial_number", "manufacturer", "model", "imei1")
ALIASES = {"imei": "imei1", "hardware_id": "imei1", "imei_1": "imei1", "imei_2": "imei2",
           "hardware_id2": "imei2", "serial": "serial_number", "serialnumber": "serial_number",
           "serial_no": "serial_number"}
CORE = ("serial_number", "manufacturer", "model", "imei1", "imei2", "marketing_name",
        "order_number")
NUMERIC_TEXT = ("iccid", "msisdn", "meid")


def _check_row(row: csvio.Row, where: str) -> tuple[dict[str, Any], list[Problem]]:
    v = row.values
    loc = f"{where}, row {row.line}"
    problems: list[Problem] = []
    for column in REQUIRED:
        if not v.get(column):
            problems.append(Problem(loc, "is empty", f"every device needs its {column}", column))
    serial = v.get("serial_number", "")
    if serial and (p := identity.serial_problem(serial)):
        problems.append(Problem(loc, p[0], p[1], "serial_number"))
    for column in ("imei1", "imei2"):
        value = v.get(column, "")
        if value and (p := identity.imei_problem(value)):
            problems.append(Problem(loc, p[0], p[1], column))
    for column in NUMERIC_TEXT:
        value = v.get(column, "")
        if value and identity.looks_like_exponent(value):
            problems.append(Problem(loc, f"{value!r} was shortened to exponent notation",
                                    f"re-export the manifest with {column} formatted as text",
                                    column))
    msisdn = v.get("msisdn", "")
    if msisdn and msisdn.isdigit() and len(msisdn) == 10 and msisdn.startswith("7"):
        problems.append(Problem(loc, f"{msisdn!r} lost its leading zero",
                                "re-export with msisdn formatted as text (07…)", "msisdn"))
    rec = {
        "serial": serial,
        "imei1": v.get("imei1", ""),
        "imei2": v.get("imei2") or None,
        "manufacturer": v.get("manufacturer", ""),
        "model": v.get("model", ""),
        "marketing_name": v.get("marketing_name") or None,
        "order_number": v.get("order_number") or None,
        "supplier": {k: val for k, val in v.items() if k not in CORE and val},
        "_line": row.line,
    }
    return rec, problems


def _check_uniqueness(records: list[dict[str, Any]], where: str) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, tuple[int, str]] = {}
    for rec in records:
        loc = f"{where}, row {rec['_line']}"
        keys = [("serial_number", "serial:" + rec["serial"])]
        keys += [(c, "imei:" + rec[c]) for c in ("imei1", "imei2") if rec[c]]
        for column, key in keys:
            if key in seen:
                line, other = seen[key]
                problems.append(Problem(loc, f"{key.split(':', 1)[1]!r} is also on row {line}"
                                        f" ({other})", "each device appears once", column))
            else:
                seen[key] = (rec["_line"], column)
    return problems


def _check_against_inventory(db: Database, records: list[dict[str, Any]],
                             where: str) -> list[Problem]:
    serials = enrolment.serials(db)
    imeis = enrolment.imei_holders(db)
    problems: list[Problem] = []
    for rec in records:
        loc = f"{where}, row {rec['_line']}"
        if rec["serial"] in serials:
            problems.append(Problem(loc, f"serial {rec['serial']!r} is already in the inventory",
                                    "remove the row: this device was delivered before (see"
                                    f" mdm devices show {rec['serial']})", "serial_number"))
        for column in ("imei1", "imei2"):
            if rec[column] and rec[column] in imeis:
                problems.append(Problem(loc, f"IMEI {rec[column]} already belongs to device"
                                        f" {imeis[rec[column]]}",
                                        "check the IMEI against the box label", column))
    return problems


def import_manifest(db: Database, operator: str, path: Path,
                    progress: Progress | None = None) -> dict[str, Any]:
    """Import a delivery manifest: every device lands as `delivered`, or nothing changes."""
    where = str(path)
    raw = csvio.read_bytes(path)
    sha256 = hashlib.sha256(raw).hexdigest()
    rows = csvio.parse_rows(raw, path, REQUIRED, ALIASES)
    if progress:
        progress.start(len(rows), "checking rows")
    records, problems = [], []
    for row in counted(rows, progress):
        rec, row_problems = _check_row(row, where)
        records.append(rec)
        problems += row_problems
    problems += _check_uniqueness(records, where)
    if problems:
        raise InputError(f"{path}: {len(problems)} problem(s); nothing was imported",
                         "fix the rows listed and import the file again", problems=problems)
    with transaction(db):
        roles.require(db, operator, "devices.import")
        if seen := imports.already_imported(db, "devices.import", path, sha256):
            return seen  # the same bytes again: one line, instead of a problem per row
        problems = _check_against_inventory(db, records, where)
        if problems:
            raise InputError(f"{path}: {len(problems)} problem(s); nothing was imported",
                             "fix the rows listed and import the file again",
                             problems=problems)
        stamp = now()
        first_id = enrolment.next_device_id(db)
        device_rows, imei_rows = [], []
        for offset, rec in enumerate(records):
            device_id = first_id + offset
            device_rows.append((device_id, rec["serial"], rec["imei1"], rec["imei2"],
                                rec["manufacturer"], rec["model"], rec["marketing_name"],
                                rec["order_number"], Status.DELIVERED.value, stamp,
                                json.dumps(rec["supplier"], sort_keys=True), stamp))
            imei_rows += [(rec[c], device_id) for c in ("imei1", "imei2") if rec[c]]
        if progress:
            progress.start(len(device_rows), "writing devices")
        enrolment.insert_delivered(db, device_rows, imei_rows,
                                   progress.advance if progress else None)
        orders = sorted({r["order_number"] for r in records if r["order_number"]})
        result = {"file": path.name, "sha256": sha256,
                  "devices": len(records), "orders": orders, "status": Status.DELIVERED.value}
        audit.record(db, operator, "devices.import", f"manifest:{path.name}", None, result)
    return result
