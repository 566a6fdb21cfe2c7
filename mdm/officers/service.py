"""Import the HR roster, find officers, list and export them.

A re-import of a later export updates officers in place: transfers and promotions are
field changes, leavers arrive with status LEAVER; the very same file again (by sha256) is
recognised and changes nothing. Nobody is ever deleted: an officer's
record is part of the chain of custody of every device they held.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from mdm import csvio, exports, imports
from mdm.errors import InputError, NotFound, Problem
from mdm.officers import models as m
from mdm.operators import roles
from mdm.progress import Progress, counted
from mdm.store import audit, officers, transaction
from mdm.store.custody import officer_history
from mdm.store.db import Database
from mdm.timeutil import now

ALIASES = {"collar": "collar_number", "collar_no": "collar_number", "payroll": "payroll_no",
           "payroll_number": "payroll_no", "first_name": "forename", "last_name": "surname"}


def _check_row(row: csvio.Row, where: str) -> tuple[dict[str, Any], list[Problem]]:
    """Turn one CSV row into an officer record, or say everything wrong with it."""
    v = row.values
    loc = f"{where}, row {row.line}"
    problems: list[Problem] = []

    def bad(column: str, message: str, hint: str) -> None:
        problems.append(Problem(loc, message, hint, column))

    rec: dict[str, Any] = {c: (v.get(c) or None) for c in m.COLUMNS}
    for c in m.UPPER:
        if rec[c]:
            rec[c] = rec[c].upper()
    for c in m.REQUIRED:
        if not rec[c]:
            bad(c, "is empty", f"every row needs a {c}")
    if rec["worker_type"] and rec["worker_type"] not in m.WORKER_TYPES:
        bad("worker_type", f"{rec['worker_type']!r} is not a worker type",
            "use one of " + ", ".join(m.WORKER_TYPES))
    if rec["status"] and rec["status"] not in m.STATUSES:
        bad("status", f"{rec['status']!r} is not a status", "use one of " + ", ".join(m.STATUSES))
    if rec["rank"]:
        rec["rank"] = m.normalise_rank(rec["rank"])
    # Which ranks are right depends on the worker type: with no good worker type, the
    # rank cannot be judged, and only the worker type is named.
    if rec["rank"] and rec["worker_type"] in m.WORKER_TYPES:
        allowed = m.RANKS + (m.SPECIAL_RANKS if rec["worker_type"] == "SPECIAL" else ())
        if rec["worker_type"] in ("PCSO", "STAFF"):
            bad("rank", f"a {rec['worker_type']} has no police rank (got {rec['rank']!r})",
                "leave rank empty for PCSOs and staff")
        elif rec["rank"] not in allowed:
            bad("rank", f"{rec['rank']!r} is not a rank", "use one of " + ", ".join(allowed))
    elif not rec["rank"] and rec["worker_type"] == "OFFICER":
        bad("rank", "is empty for a police officer", "give the officer's rank, e.g. CONSTABLE")
    if rec["collar_number"] and not m.COLLAR.match(rec["collar_number"]):
        bad("collar_number", f"{rec['collar_number']!r} is not a collar number",
            "up to two letters then 1-5 digits, e.g. 1234 or CN123")
    for c in m.BOOLEAN:
        parsed = m.parse_bool(v.get(c, ""))
        if parsed is None:
            bad(c, f"{v.get(c)!r} is not yes/no", "use true/false, yes/no or 1/0")
        rec[c] = int(parsed) if parsed is not None and v.get(c, "") != "" else None
    rec["is_detective"] = rec["is_detective"] or 0
    for c in m.DATES:
        if rec[c]:
            parsed_date = m.parse_date(rec[c])
            if parsed_date is None:
                bad(c, f"{rec[c]!r} is not a date", "use YYYY-MM-DD (or DD/MM/YYYY)")
            rec[c] = parsed_date
    if rec["email"] and "@" not in rec["email"]:
        bad("email", f"{rec['email']!r} is not an e-mail address", "fix or leave empty")
    return rec, problems


def import_roster(db: Database, operator: str, path: Path,
                  progress: Progress | None = None) -> dict[str, Any]:
    """Import or re-import an HR roster export: all rows land, or nothing changes."""
    where = str(path)
    raw = csvio.read_bytes(path)
    sha256 = hashlib.sha256(raw).hexdigest()
    rows = csvio.parse_rows(raw, path, m.REQUIRED, ALIASES)
    if progress:
        progress.start(len(rows), "checking rows")
    problems: list[Problem] = []
    records: list[dict[str, Any]] = []
    first_line: dict[str, dict[str, int]] = {"officer_id": {}, "payroll_no": {}}
    for row in counted(rows, progress):
        rec, row_problems = _check_row(row, where)
        problems += row_problems
        for key in ("officer_id", "payroll_no"):
            value = rec[key]
            if value and value in first_line[key]:
                problems.append(Problem(f"{where}, row {row.line}",
                                        f"{value!r} is also on row {first_line[key][value]}",
                                        f"each officer appears once; {key} must be unique", key))
            elif value:
                first_line[key][value] = row.line
        rec["_line"] = row.line
        records.append(rec)
    if problems:
        raise InputError(f"{path}: {len(problems)} problem(s); nothing was imported",
                         "fix the rows listed and import the file again", problems=problems)

    with transaction(db):
        roles.require(db, operator, "officers.import")
        if seen := imports.already_imported(db, "officers.import", path, sha256):
            return seen  # the same bytes again: one line, instead of a problem per row
        existing = officers.all_by_id(db)
        problems = _check_against_inventory(records, existing, where)
        if problems:
            raise InputError(f"{path}: {len(problems)} problem(s); nothing was imported",
                             "fix the rows listed and import the file again",
                             problems=problems)
        result = _write(db, records, existing, progress)
        result["file"] = path.name
        result["sha256"] = sha256
        summary = {k: result[k] for k in ("file", "sha256", "rows", "inserted", "updated",
                                          "unchanged", "not_in_file")}
        audit.record(db, operator, "officers.import", f"roster:{path.name}", None,
                     {**summary, "changes": result.pop("changes")})
    return result


def _check_against_inventory(records: list[dict[str, Any]], existing: dict[str, dict[str, Any]],
                             where: str) -> list[Problem]:
    """Check the roster as it will stand after the import: unique payroll and live collars."""
    problems: list[Problem] = []
    final = dict(existing)
    for rec in records:
        final[rec["officer_id"]] = rec
    payroll_owner = {r["payroll_no"]: oid for oid, r in existing.items()}
    collar_owner: dict[str, str] = {}
    for oid, r in final.items():
        if r["collar_number"] and r["status"] != "LEAVER":
            collar_owner.setdefault(r["collar_number"], oid)
    for rec in records:
        loc = f"{where}, row {rec['_line']}"
        owner = payroll_owner.get(rec["payroll_no"])
        if owner and owner != rec["officer_id"] and final[owner]["payroll_no"] == rec["payroll_no"]:
            problems.append(Problem(loc, f"payroll number {rec['payroll_no']!r} belongs to"
                                    f" {m.describe(existing[owner])} (officer {owner}) in the"
                                    " inventory",
                                    "check the officer_id and payroll_no columns", "payroll_no"))
        collar = rec["collar_number"]
        if collar and rec["status"] != "LEAVER" and collar_owner[collar] != rec["officer_id"]:
            other = final[collar_owner[collar]]
            problems.append(Problem(loc, f"collar number {collar!r} is also held by"
                                    f" {m.describe(other)} (officer {collar_owner[collar]}),"
                                    " who is not a leaver",
                                    "a collar number belongs to one serving person at a time",
                                    "collar_number"))
    return problems


def _write(db: Database, records: list[dict[str, Any]], existing: dict[str, dict[str, Any]],
           progress: Progress | None) -> dict[str, Any]:
    stamp = now()
    inserts: list[dict[str, Any]] = []
    changes: dict[str, dict[str, list[Any]]] = {}
    new_leavers: list[str] = []
    for rec in records:
        clean = {c: rec[c] for c in m.COLUMNS}
        old = existing.get(rec["officer_id"])
        if old is None:
            inserts.append({**clean, "created_at": stamp, "updated_at": stamp})
            continue
        diff = {c: [old[c], clean[c]] for c in m.COLUMNS if old[c] != clean[c]}
        if diff:
            changes[rec["officer_id"]] = diff
            if "status" in diff and clean["status"] == "LEAVER":
                new_leavers.append(rec["officer_id"])
    if progress:
        progress.start(len(inserts) + len(changes), "writing changes")
    for start in range(0, len(inserts), 5000):
        officers.insert(db, inserts[start:start + 5000])
        if progress:
            progress.advance(len(inserts[start:start + 5000]))
    for oid, diff in counted(changes.items(), progress):
        officers.update(db, oid, {c: new for c, (_, new) in diff.items()}, stamp)
    in_file = {r["officer_id"] for r in records}
    holding = officers.holders(db, new_leavers)
    return {"rows": len(records), "inserted": len(inserts), "updated": len(changes),
            "unchanged": len(records) - len(inserts) - len(changes),
            "not_in_file": len(set(existing) - in_file), "new_leavers": len(new_leavers),
            "leavers_holding_devices": holding, "changes": changes}


def resolve(db: Database, ref: str) -> dict[str, Any]:
    """Find one officer by officer id, payroll number or collar number."""
    found = officers.by_ref(db, ref.strip())
    if found is not None:
        return m.with_booleans(found)
    raise NotFound(f"no officer with id, payroll or collar number {ref!r}",
                   "search with: mdm officers list --json, or check the roster import")


def resolve_many(db: Database, refs: list[str]) -> dict[str, dict[str, Any]]:
    """Find many officers at once, as `resolve` finds one; refs not found are left out."""
    wanted = sorted({r.strip() for r in refs if r.strip()})
    rows: dict[str, dict[str, Any]] = {}
    for i in range(0, len(wanted), 300):
        chunk = wanted[i:i + 300]
        for r in officers.by_refs(db, chunk):
            rows[r["officer_id"]] = r
    by_payroll = {r["payroll_no"]: r for r in rows.values()}
    by_collar: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(rows.values(), key=lambda r: r["updated_at"], reverse=True):
        if r["collar_number"]:
            by_collar.setdefault(r["collar_number"], []).append(r)
    out = {}
    for ref in wanted:
        holders = by_collar.get(ref.upper(), [])
        serving = [r for r in holders if r["status"] != "LEAVER"]
        found = (rows.get(ref) or by_payroll.get(ref)
                 or (serving[0] if len(serving) == 1 else holders[0] if holders else None))
        if found:
            out[ref] = found
    return out


def show(db: Database, ref: str) -> dict[str, Any]:
    """Return one officer with the device they hold now and every device they have held."""
    officer = resolve(db, ref)
    history = officer_history(db, officer["officer_id"])
    officer["device"] = next((h["serial"] for h in history if h["closed_at"] is None), None)
    officer["custody"] = history
    return officer


FILTERS = ("area", "station", "worker_type", "rank", "status", "team", "district", "name")
LIST_COLUMNS = ("officer_id", "collar_number", "forename", "surname", "worker_type", "rank",
                "area", "station", "team", "status", "device")
KEY_COLUMNS = ("officer_id", "collar_number", "device")
DROP_FIRST = ("team", "status", "worker_type", "area", "rank", "forename")


_VOCABULARY = {"worker_type": m.WORKER_TYPES, "status": m.STATUSES,
               "rank": m.RANKS + m.SPECIAL_RANKS}


def canonical_filter(key: str, value: str) -> str:
    """Return a worker type, rank or status as stored, whatever its case; refuse others."""
    allowed = _VOCABULARY[key]
    wanted = m.normalise_rank(value) if key == "rank" else value.strip().upper()
    if wanted in allowed:
        return wanted
    import difflib

    near = difflib.get_close_matches(wanted, list(allowed), n=1, cutoff=0.6)
    raise InputError(f"--{key.replace('_', '-')} {value!r} is not one of the allowed values",
                     (f"did you mean {near[0]}? " if near else "")
                     + "use one of: " + ", ".join(allowed) + " (any case)")


def _name_clause(db: Database, name: str) -> tuple[str, list[str]]:
    """Match people as the helpdesk types them: surname prefix, 'forename surname', collar."""
    text = " ".join(name.replace(",", " , ").split())
    if not text.strip(" ,"):
        raise InputError("--name is empty", "give a surname (or its start), 'forename"
                                            " surname', or a collar number")
    if "," in text:  # "Armstrong, Emma"
        surname, _, forename = (p.strip() for p in text.partition(","))
        pairs = [(forename, surname)]
    else:
        words = text.split(" ")
        splits = [(" ".join(words[:i]), " ".join(words[i:])) for i in range(1, len(words))]
        pairs = [("", text)] + splits + [(last, first) for first, last in splits]
    return officers.name_clause(db.dialect, text, pairs)


def _where(db: Database, filters: dict[str, str | None]) -> tuple[str, list[str]]:
    """Turn list filters into a selection that the indexes serve; case never matters."""
    exact: dict[str, str] = {}
    anycase: dict[str, str] = {}
    name = None
    for key, value in filters.items():
        if value is None:
            continue
        if key not in FILTERS:
            raise InputError(f"cannot filter on {key!r}")
        if key == "name":
            name = _name_clause(db, value)
        elif key in _VOCABULARY:
            exact[key] = canonical_filter(key, value)
        elif key in m.UPPER:  # area, team: stored upper-case, so an exact, indexed match
            exact[key] = value.strip().upper()
        else:  # station, district: as HR spells them, matched whatever the case
            anycase[key] = value.strip()
    return officers.where(db.dialect, exact, anycase, name)


def _check_places(db: Database, filters: dict[str, str | None]) -> None:
    """Refuse an area, station, district or team that no one in the roster has (exit 2)."""
    import difflib

    for key in ("area", "station", "district", "team"):
        value = filters.get(key)
        if value is None:
            continue
        known = officers.places(db, key)
        if value.strip().upper() in {k.upper() for k in known}:
            continue
        near = difflib.get_close_matches(value.strip().upper(), [k.upper() for k in known],
                                         n=3, cutoff=0.6)
        spelled = {k.upper(): k for k in known}
        raise InputError(f"no one in the roster has {key} {value!r}",
                         (f"did you mean {', '.join(spelled[n] for n in near)}?" if near
                          else f"see the {key}s with: mdm officers list --format tsv"))


def iter_officers(db: Database, filters: dict[str, str | None]) -> Iterator[dict[str, Any]]:
    """Yield officers matching every given filter, with the device each holds now."""
    _check_places(db, filters)
    where, args = _where(db, filters)
    rows = officers.iter_with_device(db, where, args)
    return (m.with_booleans(r) for r in rows)


def iter_listed(db: Database, filters: dict[str, str | None],
                fields: Sequence[str] = LIST_COLUMNS) -> Iterator[tuple[Any, ...]]:
    """Yield only these fields of the matching officers, as tuples, in the list's order.

    What a list of the whole roster prints: at 45,000 people this is several times
    cheaper than a dict of every column per person. `device` (what each holds now) comes
    last if at all; the whole roster is read from one index (`officers_listing`).
    """
    _check_places(db, filters)
    where, args = _where(db, filters)
    columns = [f for f in fields if f != "device"]
    if "device" in fields and fields[-1] != "device":
        raise ValueError("device must be the last field")
    return officers.iter_fields(db, where, args, columns, "device" in fields)


def count_officers(db: Database, filters: dict[str, str | None]) -> int:
    """Count the officers matching every given filter."""
    where, args = _where(db, filters)
    return officers.count(db, where, args)


def list_officers(db: Database, filters: dict[str, str | None],
                  limit: int | None = None, name: str | None = None) -> list[dict[str, Any]]:
    """List officers matching every given filter (and a name search), with their device."""
    return list(islice(iter_officers(db, {**filters, "name": name}), limit))


def export(db: Database, operator: str, fmt: str, reason: str | None,
           output: Path | None = None, force: bool = False,
           progress: Progress | None = None,
           emit: Callable[[str], None] | None = None) -> tuple[str, int]:
    """Export every officer as CSV or JSON, to stdout or a file; logged as a disclosure."""
    import json

    rows = list_officers(db, {})
    if progress:
        progress.start(len(rows))
    columns = list(m.COLUMNS) + ["device", "created_at", "updated_at"]
    body = (csvio.write_csv(counted(rows, progress), columns) if fmt == "csv"
            else json.dumps([{c: r[c] for c in columns} for r in counted(rows, progress)],
                            indent=2) + "\n")
    exports.deliver(db, operator, "officers.export", "officers",
                    {"rows": len(rows), "format": fmt, "reason": reason}, body, output, force,
                    emit)
    return body, len(rows)
