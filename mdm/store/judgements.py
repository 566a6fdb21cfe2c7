"""Stored compliance judgements: each device's, written when its facts are recorded.

Judging a device reads its facts, its policy and the clock; at force scale, judging every
device again on each look at the rollout costs seconds. So a judgement is stored with
what it was judged from, and the readers here return it with what the device is now, for
the caller to tell whether it still holds. The facts it read need no comparing: any write
to a device's facts deletes its judgement (triggers of migration m017).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from mdm.store.db import Database
from mdm.store.rollout import Part

_CHUNK = 500  # ids per IN (…) list: well under any database's limit on parameters
HOLDER = ("worker_type", "rank", "area", "station")  # what a holder's policy depends on


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    batch = sorted(ids)
    for start in range(0, len(batch), _CHUNK):
        yield batch[start:start + _CHUNK]


def devices(db: Database, statuses: tuple[str, ...],
            ids: Iterable[int]) -> list[tuple[Any, ...]]:
    """Return these devices (those in these statuses), with holder and stored judgement.

    Each row: (id, serial, status, last seen, last contact error, holder's officer id,
    worker type, rank, area, station, then the judgement's policy key, status, last seen,
    last contact error, compliant, valid until — all None when none is stored).
    """
    marks = ", ".join("?" for _ in statuses)
    out: list[tuple[Any, ...]] = []
    for batch in _chunks(ids):
        out += db.execute(
            "SELECT d.id, d.serial, d.status, d.last_seen, d.last_contact_error, o.officer_id,"
            " o.worker_type, o.rank, o.area, o.station, j.policy_key, j.status, j.last_seen,"
            " j.last_contact_error, j.compliant, j.valid_until"
            " FROM devices d"
            " LEFT JOIN assignments a ON a.device_id = d.id AND a.closed_at IS NULL"
            " LEFT JOIN officers o ON o.officer_id = a.officer_id"
            " LEFT JOIN device_judgements j ON j.device_id = d.id"
            f" WHERE d.id IN ({', '.join('?' for _ in batch)}) AND d.status IN ({marks})",
            [*batch, *statuses]).fetchall()
    return out


def facts(db: Database, columns: tuple[str, ...], ids: Iterable[int]) -> dict[int, tuple[Any, ...]]:
    """Return the named fact columns of these devices, by device id (none if none stored)."""
    out: dict[int, tuple[Any, ...]] = {}
    for batch in _chunks(ids):
        marks = ", ".join("?" for _ in batch)
        for row in db.execute(f"SELECT device_id, {', '.join(columns)} FROM device_facts"
                              f" WHERE device_id IN ({marks})", batch):
            out[row[0]] = tuple(row[1:])
    return out


def store(db: Database, rows: Iterable[tuple[Any, ...]]) -> None:
    """Write judgements, replacing any stored (inside the caller's transaction).

    Each row: (device id, policy key, status, last seen, last contact error, compliant,
    reasons as JSON, valid until or None, judged at).
    """
    db.executemany(
        "INSERT INTO device_judgements (device_id, policy_key, status, last_seen,"
        " last_contact_error, compliant, reasons, valid_until, judged_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (device_id) DO UPDATE SET policy_key = excluded.policy_key,"
        " status = excluded.status, last_seen = excluded.last_seen,"
        " last_contact_error = excluded.last_contact_error, compliant = excluded.compliant,"
        " reasons = excluded.reasons, valid_until = excluded.valid_until,"
        " judged_at = excluded.judged_at", rows)


def stored(db: Database, device_id: int) -> dict[str, Any] | None:
    """Return one device's stored judgement, or None."""
    rows = db.query("SELECT * FROM device_judgements WHERE device_id = ?", [device_id])
    return rows[0] if rows else None


def any_in_scope(db: Database, where: Sequence[Part]) -> bool:
    """Say whether any device-eligible person in `where` (store.rollout.scope) holds an
    enrolled or provisioned device: whether a gate has anything to judge."""
    return any(db.execute(f"SELECT 1 FROM rollout_progress p WHERE {_held(part)} LIMIT 1",
                          part.args).fetchone() is not None for part in where)


def _held(part: Part) -> str:
    """The WHERE of one part of a scope, for the enrolled of the device-eligible (`+`: a
    part naming officer ids is read by them, not through the index of every holder)."""
    return f"+p.eligible = 1 AND {'+' if part.by_id else ''}p.enrolled = 1 AND {part.sql}"


def grouped(db: Database, columns: Sequence[str], pick: tuple[str, list[Any]],
            where: Sequence[Part], exceptions: Sequence[str], now: str,
            each: bool = False) -> list[tuple[Any, ...]]:
    """Count the enrolled and provisioned devices of device-eligible holders, per kind of
    holder and stored judgement (the rollout's gates; `pick`, `where`: see
    store.rollout.picked and scope).

    Each row: (hand-picked officer id or None, *the values of `columns`, the holder's
    worker type, rank, area and station, their officer id if they are in any group, the
    serial if a policy layer names the device, then — where a judgement is stored and its
    status, last seen, last contact error and time still hold at `now` — its policy key and
    compliant, else None, None and the device id; then how many devices). With `each`,
    every device is a row of its own (its id last but one).
    """
    from mdm.store.rollout import roster_columns

    # The held device's serial and matching judgement are kept in rollout_progress
    # (migration m019); only whether the judgement's time has passed is told here.
    holds = ("p.judged_key IS NOT NULL AND (p.judged_until IS NULL"
             f" OR ? < {_text('p.judged_until', db)})")
    serial = (f"CASE WHEN p.serial IN ({', '.join('?' for _ in exceptions)})"
              " THEN p.serial END") if exceptions else "CAST(NULL AS TEXT)"
    device = "p.device_id" if each else f"CASE WHEN {holds} THEN NULL ELSE p.device_id END"
    # Each roster column grouped once (the cohorts' and the policy's overlap). The enrolled
    # are read from m019's index, which holds every column read here (`+`: not through the
    # funnel's, which lacks the judgement's columns).
    read = [*columns, *(c for c in HOLDER if c not in columns)]
    width = 6 + len(read)  # every column but the count
    rows = [row for part in where for row in db.execute(
        f"SELECT {pick[0]}{roster_columns(read)},"
        f" CASE WHEN p.grouped = 1 THEN p.officer_id END, {serial},"
        f" CASE WHEN {holds} THEN p.judged_key END,"
        f" CASE WHEN {holds} THEN p.judged_compliant END, {device}, COUNT(*)"
        f" FROM rollout_progress p WHERE {_held(part)}"
        f" GROUP BY {', '.join(str(i) for i in range(1, width + 1))}",
        [*pick[1], *exceptions, now, now, *([] if each else [now]), *part.args]).fetchall()]
    at = {c: 1 + i for i, c in enumerate(read)}
    return [(r[0], *(r[at[c]] for c in columns), *(r[at[c]] for c in HOLDER),
             *r[1 + len(read):-1], int(r[-1])) for r in rows]


def _text(column: str, db: Database) -> str:
    """A text column compared character by character (as Python compares strings)."""
    return column if db.dialect.sqlite else f'({column} COLLATE "C")'
