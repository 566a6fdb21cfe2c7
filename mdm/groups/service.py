"""Create groups and change their members; every change is one transaction with its audit row."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mdm import csvio
from mdm.errors import InputError, NotFound, Problem
from mdm.officers import service as officers
from mdm.operators import roles
from mdm.store import audit, groups, transaction
from mdm.store.db import Database
from mdm.timeutil import now

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def _need(db: Database, name: str) -> None:
    if not groups.exists(db, name):
        raise NotFound(f"no group {name!r}", "create it with: mdm groups create NAME")


def create(db: Database, operator: str, name: str, description: str | None) -> dict[str, Any]:
    """Create an empty named group."""
    if not _NAME.match(name):
        raise InputError(f"group name {name!r} is not allowed",
                         "lower-case letters, digits, - and _ (e.g. pilot, wave-1)")
    with transaction(db):
        roles.require(db, operator, "groups.manage")
        if groups.exists(db, name):
            raise InputError(f"group {name!r} already exists")
        groups.insert(db, name, description, now(), operator)
        audit.record(db, operator, "groups.create", f"group:{name}", None,
                     {"description": description})
    return {"name": name, "description": description}


def _follow(db: Database, operator: str, officer_ids: list[str], why: str) -> None:
    """Queue a policy push for the devices these officers hold: their policy may change."""
    from mdm.queue import service as queue

    held = []
    for i in range(0, len(officer_ids), 500):
        chunk = officer_ids[i:i + 500]
        held += groups.held_device_ids(db, chunk)
    queue.follow_holder(db, operator, held, why)


def _refs_from_file(path: Path) -> list[tuple[str, str]]:
    rows = csvio.read_rows(path, ["officer_id"], {"officer": "officer_id"})
    return [(r.values["officer_id"], f"{path}, row {r.line}") for r in rows
            if r.values.get("officer_id")]


def add(db: Database, operator: str, name: str, refs: list[str],
        from_file: Path | None = None) -> dict[str, Any]:
    """Add officers (id, payroll or collar) to a group; all are found or nothing changes."""
    wanted = [(r, f"officer {r!r}") for r in refs] + (_refs_from_file(from_file)
                                                      if from_file else [])
    if not wanted:
        raise InputError("name at least one officer, or give --from FILE")
    with transaction(db):
        roles.require(db, operator, "groups.manage")
        _need(db, name)
        ids, problems = [], []
        for ref, where in wanted:
            try:
                ids.append(officers.resolve(db, ref)["officer_id"])
            except NotFound as exc:
                problems.append(Problem(where, exc.message, exc.hint, "officer_id"))
        if problems:
            raise InputError(f"{len(problems)} officer(s) not found; nothing changed",
                             problems=problems)
        present = groups.member_ids(db, name)
        new = sorted(set(ids) - present)
        at = now()
        groups.add_members(db, name, new, at, operator)
        audit.record(db, operator, "groups.add", f"group:{name}", None,
                     {"added": new, "already_members": len(ids) - len(new)})
        _follow(db, operator, new, f"joined group {name}")
    return {"group": name, "added": len(new), "already_members": len(set(ids)) - len(new)}


def remove(db: Database, operator: str, name: str, refs: list[str],
           reason: str | None) -> dict[str, Any]:
    """Remove officers from a group."""
    if not reason:
        raise InputError("a --reason is required", "say why they leave the group")
    with transaction(db):
        roles.require(db, operator, "groups.manage")
        _need(db, name)
        ids = [officers.resolve(db, r)["officer_id"] for r in refs]
        removed = [oid for oid in ids if groups.remove_member(db, name, oid)]
        audit.record(db, operator, "groups.remove", f"group:{name}", {"members": removed},
                     {"reason": reason})
        _follow(db, operator, removed, f"left group {name}")
    return {"group": name, "removed": len(removed)}


def list_groups(db: Database) -> list[dict[str, Any]]:
    """List groups with their member counts."""
    return groups.with_counts(db)


MEMBER_COLUMNS = ("officer_id", "collar_number", "name", "worker_type", "rank", "area",
                  "station", "device", "added_at")


def get(db: Database, name: str) -> dict[str, Any]:
    """Return a group's own record and how many members it has."""
    _need(db, name)
    info = groups.get(db, name)
    info["members"] = groups.member_count(db, name)
    return info


def iter_members(db: Database, name: str) -> Iterator[dict[str, Any]]:
    """Yield a group's members (with the device each holds), one at a time."""
    _need(db, name)
    return groups.iter_members(db, name)


def show(db: Database, name: str) -> dict[str, Any]:
    """Show a group and its members (with the device each holds)."""
    _need(db, name)
    info = groups.get(db, name)
    return {**info, "members": groups.members(db, name)}


def memberships(db: Database) -> dict[str, set[str]]:
    """Map officer id → the groups they belong to."""
    out: dict[str, set[str]] = {}
    for group, officer in groups.memberships(db):
        out.setdefault(officer, set()).add(group)
    return out
