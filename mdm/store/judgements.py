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
from mdm.store.rollout import INDEXED, Part, roster_columns

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


def _held(part: Part, stream: bool = False, by_id: bool | None = None) -> str:
    """The WHERE of one part of a scope, for the enrolled of the device-eligible.

    `+`: people found by officer id (a part naming them, or `by_id`) are read by it, and
    any other through m019's index, not the funnel's, which lacks the judgement's columns;
    `stream`: through the index's leading columns both, in its order.
    """
    by_id = part.by_id if by_id is None else by_id
    eligible = "p.eligible = 1" if stream else "+p.eligible = 1"
    return f"{eligible} AND {'+' if by_id else ''}p.enrolled = 1 AND {part.sql}"


def grouped(db: Database, columns: Sequence[str], pick: tuple[str, list[Any]],
            where: Sequence[Part], exceptions: Sequence[str],
            now: str) -> list[tuple[Any, ...]]:
    """Count the enrolled and provisioned devices of device-eligible holders, per kind of
    holder, with what their stored judgements say (the rollout's gates; `pick`, `where`:
    see store.rollout.picked and scope).

    Each row: (hand-picked officer id or None, *the values of `columns`, the holder's
    worker type, rank, area and station, their officer id if they are in any group, the
    serial if a policy layer names the device (`exceptions`), then how many devices, how
    many of them have a stored judgement that still holds at `now` (its status, last
    seen and last contact error are the device's, and its time has not passed), how many
    are stored as compliant, and the least and the greatest stored policy key). Where
    every device's judgement holds and the keys are one, the counts are the kind's
    answer; any other kind is read device by device (`each`).
    """
    read, at = _read(columns)
    holds = _holds(db)
    counts = (f"COUNT(*), SUM(CASE WHEN {holds} THEN 1 ELSE 0 END), SUM(p.judged_compliant),"
              " MIN(p.judged_key), MAX(p.judged_key)")
    # Most holders are in no group and their devices named by no layer: their kinds are
    # counted in one pass that streams through m019's index in its order (no sort); the
    # few others, each holder and named device by itself, in a second. A part that is not
    # by id hand-picks nobody (store.rollout.scope): its hand-picked column is NULL, and
    # the plan's hand-picked ids are sent once, in the part's own arguments.
    plain, plain_args = _plain(exceptions)
    order = ", ".join(str(2 + read.index(c)) for c in sorted(read, key=INDEXED.index))
    width = 3 + len(read)  # every column but the counts
    rows: list[tuple[Any, ...]] = []
    for part in where:
        if not part.by_id:
            rows += db.execute(
                f"SELECT CAST(NULL AS TEXT){roster_columns(read)}, CAST(NULL AS TEXT),"
                f" CAST(NULL AS TEXT), {counts} FROM rollout_progress p"
                f" WHERE {_held(part, stream=True)} AND {plain} GROUP BY {order}",
                [now, *part.args, *plain_args]).fetchall()
        # The others of a part that hand-picks nobody: people in a group and named
        # devices, found by officer id and device id.
        picked, picked_args = _picked(part, pick)
        others, others_args = ("", []) if part.by_id else (
            f" AND {_others(exceptions)} AND NOT ({plain})", [*exceptions, *plain_args])
        rows += db.execute(
            f"SELECT {picked}{roster_columns(read)}, {_member(exceptions)}, {counts}"
            f" FROM rollout_progress p WHERE {_held(part, by_id=True)}{others}"
            f" GROUP BY {', '.join(str(i) for i in range(1, width + 1))}",
            [*picked_args, *exceptions, now, *part.args, *others_args]).fetchall()
    return [(*_kind(r, columns, at), *r[width - 2:width], int(r[width]), int(r[width + 1]),
             int(r[width + 2] or 0), r[width + 3], r[width + 4]) for r in rows]


def each(db: Database, columns: Sequence[str], pick: tuple[str, list[Any]],
         where: Sequence[Part], exceptions: Sequence[str], now: str) -> list[tuple[Any, ...]]:
    """The devices `grouped` counts, each by itself: (the row's kind, as `grouped` gives
    it, then the stored policy key and compliant if the judgement still holds at `now`,
    else None and None, then the device's id, serial, status, last seen and last contact
    error)."""
    read, at = _read(columns)
    holds = _holds(db)
    width = 3 + len(read)
    rows: list[tuple[Any, ...]] = []
    for part in where:
        picked, picked_args = _picked(part, pick)
        rows += db.execute(
            f"SELECT {picked}{roster_columns(read)}, {_member(exceptions)},"
            f" CASE WHEN {holds} THEN p.judged_key END,"
            f" CASE WHEN {holds} THEN p.judged_compliant END, p.device_id, d.serial,"
            " d.status, d.last_seen, d.last_contact_error FROM rollout_progress p"
            f" JOIN devices d ON d.id = p.device_id WHERE {_held(part)}",
            [*picked_args, *exceptions, now, now, *part.args]).fetchall()
    return [(*_kind(r, columns, at), *r[width - 2:]) for r in rows]


def _read(columns: Sequence[str]) -> tuple[list[str], dict[str, int]]:
    """The roster columns read (each once: the cohorts' and the policy's overlap), and
    the place of each in a row."""
    read = [*columns, *(c for c in HOLDER if c not in columns)]
    return read, {c: 1 + i for i, c in enumerate(read)}


def _kind(row: tuple[Any, ...], columns: Sequence[str], at: dict[str, int]) -> tuple[Any, ...]:
    """(hand-picked id, *columns, *HOLDER) of a row read with `_read`'s columns."""
    return (row[0], *(row[at[c]] for c in columns), *(row[at[c]] for c in HOLDER))


def _holds(db: Database) -> str:
    """Whether a person's stored judgement still holds at `?` (the judgement's status,
    last seen and contact error are matched to the device's in rollout_progress by
    migration m019; only whether its time has passed is told here)."""
    return ("p.judged_key IS NOT NULL AND (p.judged_until IS NULL"
            f" OR ? < {_text('p.judged_until', db)})")


def _member(exceptions: Sequence[str]) -> str:
    """The holder's officer id if they are in any group, and the serial if a layer names
    the device (`exceptions`: one `?` each)."""
    serial = (f"CASE WHEN p.serial IN ({', '.join('?' for _ in exceptions)})"
              " THEN p.serial END") if exceptions else "CAST(NULL AS TEXT)"
    return f"CASE WHEN p.grouped = 1 THEN p.officer_id END, {serial}"


def _others(exceptions: Sequence[str]) -> str:
    """A condition kept by every person in a group and every device a layer names (and a
    few more, at most), that finds them by officer id and device id."""
    named = (" OR p.device_id IN (SELECT id FROM devices WHERE serial IN"
             f" ({', '.join('?' for _ in exceptions)}))") if exceptions else ""
    return f"(p.officer_id IN (SELECT officer_id FROM group_members){named})"


def _plain(exceptions: Sequence[str]) -> tuple[str, list[Any]]:
    """The condition that a holder (of a part that hand-picks nobody) is in no group and
    their device named by no layer: a kind of holder counted with the others of its kind."""
    if not exceptions:
        return "p.grouped = 0", []
    marks = ", ".join("?" for _ in exceptions)
    return (f"p.grouped = 0 AND (p.serial IS NULL OR p.serial NOT IN ({marks}))",  # not NULL
            list(exceptions))


def _picked(part: Part, pick: tuple[str, list[Any]]) -> tuple[str, list[Any]]:
    """The hand-picked officer id column of a part: NULL where it hand-picks nobody."""
    return pick if part.by_id else ("CAST(NULL AS TEXT)", [])


def _text(column: str, db: Database) -> str:
    """A text column compared character by character (as Python compares strings)."""
    return column if db.dialect.sqlite else f'({column} COLLATE "C")'
