"""Find, show, list and export devices: by serial, IMEI, officer, collar number or selector."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mdm import csvio, exports
from mdm.devices import selector
from mdm.errors import NotFound
from mdm.progress import Progress, counted
from mdm.store import devices as store
from mdm.store import officers
from mdm.store.custody import device_history
from mdm.store.db import Database
from mdm.store.queue import live_commands

_DEVICE_COLS = ("serial", "imei1", "imei2", "manufacturer", "model", "marketing_name",
                "order_number", "status", "status_changed_at", "created_at", "address",
                "host_key_fingerprint", "enrolled_at", "last_seen", "last_contact_at",
                "last_contact_error", "applied_policy", "applied_policy_at")

def get(db: Database, ref: str) -> dict[str, Any]:
    """Find one device by serial (exact, then ignoring case) or by either IMEI."""
    ref = ref.strip()
    found = store.get_by_ref(db, ref)
    if found is not None:
        return found
    raise NotFound(f"no device with serial or IMEI {ref!r}",
                   "search more widely with: mdm devices find QUERY")


def _public(row: dict[str, Any]) -> dict[str, Any]:
    out = {c: row.get(c) for c in _DEVICE_COLS}
    out["holder"] = ({"officer_id": row["holder_id"], "collar_number": row["holder_collar"],
                      "payroll_no": row["holder_payroll"], "name": row["holder_name"],
                      "station": row["holder_station"], "since": row["held_since"]}
                     if row.get("holder_id") else None)
    return out


def find(db: Database, query: str) -> list[dict[str, Any]]:
    """Find devices by serial, IMEI, officer id, payroll, collar number or surname."""
    q = query.strip()
    matches: dict[str, dict[str, Any]] = {}

    def add(rows: list[dict[str, Any]], how: str) -> None:
        for r in rows:
            matches.setdefault(r["serial"], {**_public(r), "matched_on": how})

    add(store.with_serial(db, q), "serial")
    add(store.with_imei(db, q), "imei")
    people = officers.ids_matching(db, q)
    if people:
        add(store.held_by(db, people), "holder")
    return list(matches.values())


def show(db: Database, ref: str) -> dict[str, Any]:
    """Return a device's record, its holder now and its whole custody history."""
    row = get(db, ref)
    out = _public(row)
    # How mdm reaches it: through a provisioning station (adb), or directly over SSH.
    out["route"] = (f"station:{row['station']}" if row.get("station")
                    else f"direct:{row['address']}" if row.get("address") else None)
    out["supplier"] = json.loads(row["supplier"])
    f = store.facts(db, row["id"])
    if f:
        f["packages"] = json.loads(f["packages"])
        f["dpc_status"] = json.loads(f["dpc_status"]) if f["dpc_status"] else None
    out["facts"] = f
    out["custody"] = device_history(db, row["id"])
    # What waits in the command queue for it (a policy push after a change of holder, …).
    out["queue"] = live_commands(db, row["id"])
    return out


def get_many(db: Database, refs: list[str]) -> dict[str, dict[str, Any]]:
    """Find many devices at once, as `get` finds one; refs not found are left out."""
    wanted = sorted({r.strip() for r in refs if r.strip()})
    rows: list[dict[str, Any]] = []
    for i in range(0, len(wanted), 500):
        chunk = wanted[i:i + 500]
        rows += store.with_serials(db, chunk)
    exact = {r["serial"]: r for r in rows}
    folded: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        folded.setdefault(r["serial"].upper(), []).append(r)
    out = {ref: exact.get(ref) or folded[ref.upper()][0] for ref in wanted
           if ref in exact or len(folded.get(ref.upper(), [])) == 1}
    rest = [ref for ref in wanted if ref not in out]
    for i in range(0, len(rest), 500):
        chunk = rest[i:i + 500]
        by_imei = store.imei_owners(db, chunk)
        ids = sorted(set(by_imei.values()))
        found = {r["id"]: r for r in store.with_ids(db, ids)}
        out.update({imei: found[device_id] for imei, device_id in by_imei.items()})
    return out


LIST_COLUMNS = ("serial", "status", "model", "holder")


def list_devices(db: Database, selectors: list[str]
                 ) -> tuple[Iterator[dict[str, Any]], Callable[[], int]]:
    """The selected devices with their holders, streamed, and a count of them all.

    The selectors are checked now (one that picks no device is refused); the rows are read
    as the caller takes them, and the count runs only if the caller asks for it.
    """
    where, args = selector.select(db, selectors, allow_none=True)

    def total() -> int:
        return store.count_selected(db, where, args)

    return store.iter_listing(db, where, args), total


EXPORT_COLUMNS = _DEVICE_COLS + ("holder_id", "holder_collar", "holder_name", "held_since")


def export(db: Database, operator: str, fmt: str, reason: str | None,
           selectors: list[str] | None = None, output: Path | None = None,
           force: bool = False, progress: Progress | None = None,
           emit: Callable[[str], None] | None = None) -> tuple[str, int]:
    """Export the selected devices (default all) with their holders; logged as a disclosure."""
    where, args = selector.select(db, selectors or [], allow_none=True)
    rows = store.selected_with_holders(db, where, args)
    if progress:
        progress.start(len(rows))
    body = (csvio.write_csv(counted(rows, progress), EXPORT_COLUMNS) if fmt == "csv"
            else json.dumps([{c: r[c] for c in EXPORT_COLUMNS}
                             for r in counted(rows, progress)], indent=2) + "\n")
    exports.deliver(db, operator, "devices.export", "devices",
                    {"rows": len(rows), "format": fmt, "reason": reason,
                     "selectors": selectors or ["all"]}, body, output, force, emit)
    return body, len(rows)
