"""The group queries: groups, their members, and the devices members hold."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from mdm.store.db import Database

_MEMBERS = (
    "SELECT o.officer_id, o.collar_number, o.forename || ' ' || o.surname AS name,"
    " o.worker_type, o.rank, o.area, o.station, d.serial AS device, m.added_at"
    " FROM group_members m JOIN officers o ON o.officer_id = m.officer_id"
    " LEFT JOIN assignments a ON a.officer_id = o.officer_id AND a.closed_at IS NULL"
    " LEFT JOIN devices d ON d.id = a.device_id WHERE m.group_name = ?"
    " ORDER BY o.area, o.station, o.surname, o.officer_id")


def exists(db: Database, name: str) -> bool:
    """Say whether a group of this name exists."""
    return bool(db.scalar("SELECT 1 FROM groups WHERE name = ?", [name]))


def insert(db: Database, name: str, description: str | None, at: str, by: str) -> None:
    """Create an empty group."""
    db.execute("INSERT INTO groups (name, description, created_at, created_by)"
               " VALUES (?, ?, ?, ?)", [name, description, at, by])


def names(db: Database) -> list[str]:
    """The name of every group."""
    return [r[0] for r in db.execute("SELECT name FROM groups")]


def get(db: Database, name: str) -> dict[str, Any]:
    """A group's own row (it must exist)."""
    return db.query("SELECT * FROM groups WHERE name = ?", [name])[0]


def member_ids(db: Database, name: str) -> set[str]:
    """The officer ids of a group's members."""
    return {r[0] for r in db.execute("SELECT officer_id FROM group_members"
                                     " WHERE group_name = ?", [name])}


def member_count(db: Database, name: str) -> int:
    """How many members a group has."""
    return int(db.scalar("SELECT COUNT(*) FROM group_members WHERE group_name = ?", [name]))


def add_members(db: Database, name: str, officer_ids: Sequence[str], at: str, by: str) -> None:
    """Add officers (not yet members) to a group."""
    db.executemany("INSERT INTO group_members (group_name, officer_id, added_at, added_by)"
                   " VALUES (?, ?, ?, ?)", [(name, oid, at, by) for oid in officer_ids])


def remove_member(db: Database, name: str, officer_id: str) -> bool:
    """Take one officer out of a group; say whether they were in it."""
    return bool(db.execute("DELETE FROM group_members WHERE group_name = ? AND officer_id = ?",
                           [name, officer_id]).rowcount)


def held_device_ids(db: Database, officer_ids: Sequence[str]) -> list[int]:
    """The ids of the devices these officers hold now (≤ 500 officers)."""
    if not officer_ids:
        return []
    return [r[0] for r in db.execute(
        "SELECT device_id FROM assignments WHERE closed_at IS NULL AND officer_id IN"
        f" ({', '.join('?' * len(officer_ids))})", list(officer_ids))]


def with_counts(db: Database) -> list[dict[str, Any]]:
    """Every group with its member count, by name."""
    return db.query("SELECT g.name, g.description, COUNT(m.officer_id) AS members,"
                    " g.created_at, g.created_by FROM groups g LEFT JOIN group_members m"
                    " ON m.group_name = g.name"
                    " GROUP BY g.name, g.description, g.created_at, g.created_by"
                    " ORDER BY g.name")


def iter_members(db: Database, name: str) -> Iterator[dict[str, Any]]:
    """A group's members with the device each holds, in list order, streamed."""
    return db.iter_query(_MEMBERS, [name])


def members(db: Database, name: str) -> list[dict[str, Any]]:
    """A group's members with the device each holds, in list order."""
    return db.query(_MEMBERS, [name])


def memberships(db: Database) -> Iterator[tuple[str, str]]:
    """Every (group name, officer id) membership, streamed."""
    return iter(db.execute("SELECT group_name, officer_id FROM group_members"))
