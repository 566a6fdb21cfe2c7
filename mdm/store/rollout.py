"""The rollout's queries: who the plan's cohorts can match, the funnel's facts, waves
opened, provisioning steps, training, handovers and feedback.

Kept here so that the rollout's features say what they mean (the eligible people, a
group's members, who holds what) and the SQL stays in the store, written for SQLite and
PostgreSQL both.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from mdm.store.db import Database

# Roster columns a cohort may filter on (the plan checks the keys before they get here).
COLUMNS = ("area", "district", "station", "team", "worker_type", "rank")
PLACES = ("station", "area", "team")
# The order of the gate's index (m019) after `enrolled, eligible` (district and team are
# not in it): grouping and picking people in this order reads the index as it lies.
INDEXED = ("area", "worker_type", "rank", "station", "district", "team")

PEOPLE = ("SELECT officer_id, payroll_no, collar_number, forename, surname, worker_type,"
          " rank, area, district, station, team, status, device_eligible, pnb_required"
          " FROM officers")
# Device-eligible, not counting leavers: the roster's `device_eligible` decides; without
# it `pnb_required`; without either, everyone but police staff (a person with no worker
# type is not admitted here). mdm.rollout.membership.eligible says the same in Python.
ELIGIBLE = ("status <> 'LEAVER' AND COALESCE(device_eligible, pnb_required,"
            " CASE WHEN worker_type = 'STAFF' THEN 0 WHEN worker_type IS NOT NULL THEN 1 END)"
            " <> 0")
_CHUNK = 500  # ids per IN (…) list: well under any database's limit on parameters


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _chunks(ids: Iterable[Any]) -> Iterator[list[Any]]:
    batch = list(ids)
    for start in range(0, len(batch), _CHUNK):
        yield batch[start:start + _CHUNK]


# -- the roster and groups, as the plan's cohorts read them ------------------------------

def eligible_people(db: Database, columns: Sequence[str]) -> list[Any]:
    """Return (officer id, *columns) for each device-eligible person (not leavers)."""
    unknown = set(columns) - set(COLUMNS)
    if unknown:
        raise ValueError(f"not a cohort column: {sorted(unknown)}")
    return db.execute(f"SELECT officer_id{''.join(', ' + c for c in columns)}"
                      f" FROM officers WHERE {ELIGIBLE}").fetchall()


def eligible_places(db: Database) -> list[dict[str, Any]]:
    """Return each device-eligible person's id, area, station and worker type, by id."""
    return db.query("SELECT officer_id, area, station, worker_type FROM officers"
                    f" WHERE {ELIGIBLE} ORDER BY officer_id")


def eligible_values(db: Database, column: str) -> set[str]:
    """Return the distinct values of one cohort column among eligible people."""
    if column not in COLUMNS:
        raise ValueError(column)
    return {r[0] for r in db.execute(f"SELECT DISTINCT {column} FROM officers"
                                     f" WHERE {ELIGIBLE}") if r[0] is not None}


def people(db: Database, leavers: bool | None = None) -> list[dict[str, Any]]:
    """Return everyone's roster details by officer id (only leavers, or only the
    not-eligible who are not leavers, if asked)."""
    if leavers is None:
        return db.query(f"{PEOPLE} ORDER BY officer_id")
    if leavers:
        return db.query(f"{PEOPLE} WHERE status = 'LEAVER' ORDER BY officer_id")
    return db.query(f"{PEOPLE} WHERE status <> 'LEAVER' AND NOT ({ELIGIBLE})"
                    " ORDER BY officer_id")


def not_pnb_required(db: Database) -> list[str]:
    """Return the people the roster does not require to carry a pocket notebook."""
    return [r[0] for r in db.execute("SELECT officer_id FROM officers WHERE pnb_required = 0")]


def group_names(db: Database) -> set[str]:
    """Return every group's name."""
    return {r[0] for r in db.execute("SELECT name FROM groups")}


def group_members(db: Database, names: list[str]) -> dict[str, set[str]]:
    """Return the members of these groups, by group name."""
    out: dict[str, set[str]] = {}
    if not names:
        return out
    for group, officer in db.execute("SELECT group_name, officer_id FROM group_members"
                                     f" WHERE group_name IN ({_marks(len(names))})", names):
        out.setdefault(group, set()).add(officer)
    return out


# -- the funnel's facts, each one scan ---------------------------------------------------

def holders(db: Database) -> list[tuple[str, int, str, int, str | None]]:
    """Return (officer id, device id, device status, handed over 0/1, handed over at) of
    every open assignment."""
    return db.execute(
        "SELECT a.officer_id, a.device_id, d.status,"
        " CASE WHEN h.assignment_id IS NULL THEN 0 ELSE 1 END, h.handed_over_at"
        " FROM assignments a JOIN devices d ON d.id = a.device_id"
        " LEFT JOIN handovers h ON h.assignment_id = a.id"
        " WHERE a.closed_at IS NULL").fetchall()


# -- the funnel, counted from each person's maintained progress (migration m018) -----------

FUNNEL = ("COUNT(*), SUM(allocated), SUM(enrolled), SUM(provisioned), SUM(trained),"
          " SUM(handed_over), SUM(CASE WHEN failed = 1 AND provisioned = 0 THEN 1 ELSE 0 END)")
_MAX_KINDS = 200  # distinct kinds named in one WHERE; beyond, everyone not hand-picked is read


def roster_columns(columns: Sequence[str]) -> str:
    """`, p.column` for each of these cohort columns (refusing any other)."""
    unknown = set(columns) - set(COLUMNS)
    if unknown:
        raise ValueError(f"not a cohort column: {sorted(unknown)}")
    return "".join(f", p.{c}" for c in columns)


def picked(groups: Sequence[str], officers: Sequence[str]) -> tuple[str, list[Any]]:
    """The SQL for a person's officer id if these groups or ids hand-pick them, else NULL."""
    if not groups and not officers:
        return "CAST(NULL AS TEXT)", []
    condition, args = picking(groups, officers)
    return f"CASE WHEN {condition} THEN p.officer_id END", args


def picking(groups: Sequence[str], officers: Sequence[str]) -> tuple[str, list[Any]]:
    """The SQL condition that these groups or ids hand-pick a person (never NULL)."""
    parts, args = [], []
    if groups:
        parts.append("(p.grouped = 1 AND p.officer_id IN (SELECT officer_id FROM"
                     f" group_members WHERE group_name IN ({_marks(len(groups))})))")
        args += list(groups)
    if officers:
        parts.append(f"p.officer_id IN ({_marks(len(officers))})")
        args += list(officers)
    return f"({' OR '.join(parts) or '1 = 0'})", args


class Part(NamedTuple):
    """One part of a scope: its SQL condition on rollout_progress `p`, and its arguments."""

    sql: str
    args: list[Any]
    by_id: bool = False  # hand-picked people by officer id (else: nobody hand-picked)


def scope(columns: Sequence[str], pick: tuple[str, list[Any]],
          kinds: Sequence[tuple[Any, ...]], people: Sequence[str]) -> list[Part]:
    """The SQL that keeps these kinds (values of `columns`) of people not hand-picked (with
    too many kinds to name, everyone not hand-picked), and these hand-picked people.

    Parts that never keep the same person, each read on its own: the kinds in one pass
    over the enrolled, the hand-picked by their officer ids (a few lookups, not a pass).
    """
    roster_columns(columns)
    parts: list[Part] = []
    if len(kinds) > _MAX_KINDS:
        parts.append(Part(f"({pick[0]}) IS NULL", list(pick[1])))
    elif kinds:
        terms, args = _matching(sorted(range(len(columns)), key=lambda i:
                                       INDEXED.index(columns[i])), columns, kinds)
        parts.append(Part(f"(({pick[0]}) IS NULL AND ({terms}))", [*pick[1], *args]))
    for chunk in _chunks(people):  # hand-picked: never in the part above
        parts.append(Part(f"p.officer_id IN ({_marks(len(chunk))})", chunk, True))
    return parts


def _matching(order: Sequence[int], columns: Sequence[str],
              kinds: Sequence[tuple[Any, ...]]) -> tuple[str, list[Any]]:
    """The SQL that keeps these kinds, as a tree over the columns taken in `order` (each
    value once, the last column's as one IN list): read through the gate's index, the
    leading values are ranges of it, not a test of every row."""
    column, rest = columns[order[0]], order[1:]
    values: dict[Any, list[tuple[Any, ...]]] = {}
    for kind in kinds:
        values.setdefault(kind[order[0]], []).append(kind)
    terms, args = [], []
    if not rest:
        if None in values:
            terms.append(f"p.{column} IS NULL")
        known = [v for v in values if v is not None]
        if known:
            terms.append(f"p.{column} IN ({_marks(len(known))})")
            args += known
        return " OR ".join(terms), args
    for value, some in values.items():
        inner, inner_args = _matching(rest, columns, some)
        terms.append(f"(p.{column} IS NULL AND ({inner}))" if value is None
                     else f"(p.{column} = ? AND ({inner}))")
        args += [*([] if value is None else [value]), *inner_args]
    return " OR ".join(terms), args


def funnel_counts(db: Database, columns: Sequence[str], picks: tuple[str, list[Any]],
                  place: str | None = None) -> list[tuple[Any, ...]]:
    """Count the device-eligible people per kind and handover day.

    Each row: (officer id if hand-picked else None, *the values of `columns`, the `place`
    column's value if asked, the day handed over or None, then how many people, and of
    them allocated, enrolled, provisioned, trained, handed over, and holding a device whose
    latest provisioning step failed and that is not provisioned). `picks`: who is
    hand-picked (`picking`).
    """
    if place is not None and place not in PLACES:
        raise ValueError(place)
    wanted = [*columns, *([place] if place else [])]
    width = 2 + len(wanted)
    # The people not hand-picked grouped by their columns alone, then the hand-picked few
    # (found by index) each by itself: grouping everyone by whether they are hand-picked
    # too cost SQLite twice the time. Each column grouped once (a place the cohorts filter
    # on too, by the first), so the funnel's index (migration m018) can stream the groups.
    names = [*wanted, "handed_on"]
    groups = ", ".join(str(2 + names.index(c)) for c in dict.fromkeys(names))
    rows = db.execute(
        f"SELECT CAST(NULL AS TEXT){roster_columns(wanted)}, p.handed_on, {FUNNEL}"
        f" FROM rollout_progress p WHERE p.eligible = 1 AND NOT {picks[0]}"
        f" GROUP BY {groups}", picks[1]).fetchall()
    if picks[1]:
        rows += db.execute(
            f"SELECT p.officer_id{roster_columns(wanted)}, p.handed_on, {FUNNEL}"
            f" FROM rollout_progress p WHERE +p.eligible = 1 AND {picks[0]}"
            f" GROUP BY 1, {groups}", picks[1]).fetchall()
    if db.dialect.sqlite:  # SQLite's COUNT and SUM of integers are int already
        return rows
    # SUM is numeric on PostgreSQL: counts come back as int either way.
    return [(*r[:width], *map(int, r[width:])) for r in rows]


def trained(db: Database) -> set[str]:
    """Return the officer ids with any training on record."""
    return {r[0] for r in db.execute("SELECT DISTINCT officer_id FROM training")}


def is_trained(db: Database, officer_id: str) -> bool:
    """Say whether one officer has any training on record."""
    return bool(db.scalar("SELECT 1 FROM training WHERE officer_id = ? LIMIT 1", [officer_id]))


def open_blockers(db: Database) -> int:
    """Count the blocker feedback items not yet resolved."""
    return int(db.scalar("SELECT COUNT(*) FROM feedback WHERE severity = 'blocker'"
                         " AND resolved_at IS NULL"))


# -- waves -------------------------------------------------------------------------------

def opened_waves(db: Database) -> dict[str, dict[str, Any]]:
    """Return the waves opened so far, by name."""
    return {r["name"]: r for r in db.query("SELECT * FROM rollout_waves")}


def wave_opened(db: Database, name: str) -> bool:
    """Say whether this wave is open."""
    return bool(db.scalar("SELECT 1 FROM rollout_waves WHERE name = ?", [name]))


def open_wave(db: Database, name: str, at: str, by: str, gate: str | None,
              reason: str | None) -> None:
    """Record a wave opened (inside the caller's transaction)."""
    db.execute("INSERT INTO rollout_waves (name, state, opened_at, opened_by, gate,"
               " override_reason) VALUES (?, 'open', ?, ?, ?, ?)", [name, at, by, gate, reason])


# -- provisioning ------------------------------------------------------------------------

DEVICE_COLUMNS = ("SELECT d.id, d.serial, d.status, d.status_changed_at, d.manufacturer,"
                  " d.model, d.imei1, d.imei2, o.officer_id, o.team, o.station")


def held_devices(db: Database, source: str) -> list[dict[str, Any]]:
    """Return every held device with its holder (`source`: the selector's FROM), by serial."""
    return db.query(f"{DEVICE_COLUMNS} {source} WHERE a.id IS NOT NULL ORDER BY d.serial")


def selected_devices(db: Database, source: str, where: str,
                     args: Sequence[Any]) -> list[dict[str, Any]]:
    """Return the selected devices with their holders, by serial."""
    return db.query(f"{DEVICE_COLUMNS} {source} WHERE {where} ORDER BY d.serial", args)


def steps_of(db: Database, ids: Iterable[int]) -> Iterator[tuple[int, str, str, str]]:
    """Yield (device id, step, result, at) of these devices' steps, oldest first per chunk."""
    for chunk in _chunks(ids):
        yield from db.execute("SELECT device_id, step, result, at FROM provision_steps"
                              f" WHERE device_id IN ({_marks(len(chunk))}) ORDER BY id", chunk)


def record_steps(db: Database, rows: Sequence[tuple[int, str, str, str | None, str, str]]
                 ) -> None:
    """Record provisioning steps: (device id, step, result, detail, at, operator)."""
    db.executemany("INSERT INTO provision_steps (device_id, step, result, detail, at,"
                   " operator) VALUES (?, ?, ?, ?, ?, ?)", rows)


def device_props(db: Database, device_id: int) -> str | None:
    """Return one device's stored properties (JSON text), or None."""
    value = db.scalar("SELECT props FROM device_facts WHERE device_id = ?", [device_id])
    return None if value is None else str(value)


def any_release(db: Database) -> bool:
    """Say whether any app build has been released."""
    return bool(db.scalar("SELECT 1 FROM app_releases LIMIT 1"))


# -- training, handover, pilot, feedback -------------------------------------------------

def record_training(db: Database, rows: Sequence[tuple[Any, ...]]) -> None:
    """Record training: (officer id, trained on, trainer, session, recorded at, by)."""
    db.executemany("INSERT INTO training (officer_id, trained_on, trainer, session,"
                   " recorded_at, recorded_by) VALUES (?, ?, ?, ?, ?, ?)", rows)


def device_by_ref(db: Database, ref: str) -> dict[str, Any] | None:
    """Return one device by serial (any case) or either IMEI, or None."""
    found = db.query(f"SELECT * FROM devices WHERE {db.dialect.ieq('serial')}"
                     " OR imei1 = ? OR imei2 = ?", [ref, ref, ref])
    return found[0] if found else None


def open_assignment(db: Database, device_id: int) -> dict[str, Any] | None:
    """Return a device's open assignment (id, officer id), or None."""
    held = db.query("SELECT id, officer_id FROM assignments WHERE device_id = ?"
                    " AND closed_at IS NULL", [device_id])
    return held[0] if held else None


def open_assignment_id(db: Database, device_id: int, officer_id: str) -> int | None:
    """Return the id of the device's open assignment to this officer, or None."""
    value = db.scalar("SELECT id FROM assignments WHERE device_id = ? AND officer_id = ?"
                      " AND closed_at IS NULL", [device_id, officer_id])
    return None if value is None else int(value)


def handed_over_at(db: Database, assignment_id: int | None) -> str | None:
    """Return when this assignment was handed over ('' if recorded without a time; None
    if it was not)."""
    rows = db.execute("SELECT handed_over_at FROM handovers WHERE assignment_id = ?",
                      [assignment_id]).fetchall()
    return (rows[0][0] or "") if rows else None


def record_handover(db: Database, assignment_id: int | None, device_id: int,
                    officer_id: str, at: str, by: str) -> None:
    """Record a handover (inside the caller's transaction)."""
    db.execute("INSERT INTO handovers (assignment_id, device_id, officer_id,"
               " handed_over_at, handed_over_by) VALUES (?, ?, ?, ?, ?)",
               [assignment_id, device_id, officer_id, at, by])


def add_feedback(db: Database, officer_id: str, severity: str, text: str,
                 minutes_saved: int | None, at: str, by: str) -> int:
    """Record one feedback item; return its id."""
    return int(db.execute("INSERT INTO feedback (officer_id, severity, text, minutes_saved,"
                          " raised_at, raised_by) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                          [officer_id, severity, text, minutes_saved, at, by]).fetchone()[0])


def feedback_item(db: Database, fid: int) -> dict[str, Any] | None:
    """Return one feedback item, or None."""
    rows = db.query("SELECT * FROM feedback WHERE id = ?", [fid])
    return rows[0] if rows else None


def resolve_feedback(db: Database, fid: int, at: str, by: str, note: str) -> None:
    """Mark one feedback item resolved (inside the caller's transaction)."""
    db.execute("UPDATE feedback SET resolved_at = ?, resolved_by = ?, resolution = ?"
               " WHERE id = ?", [at, by, note, fid])


def iter_feedback(db: Database, open_only: bool, severity: str | None
                  ) -> Iterator[dict[str, Any]]:
    """Yield feedback items with the officer's collar number and station, newest first."""
    where, args = ["1 = 1"], []
    if open_only:
        where.append("f.resolved_at IS NULL")
    if severity:
        where.append("f.severity = ?")
        args.append(severity)
    return db.iter_query(
        "SELECT f.id, f.severity, f.officer_id, o.collar_number, o.station, f.text,"
        " f.minutes_saved, f.raised_at, f.raised_by, f.resolved_at, f.resolved_by,"
        " f.resolution FROM feedback f JOIN officers o ON o.officer_id = f.officer_id"
        f" WHERE {' AND '.join(where)} ORDER BY f.id DESC", args)


def minutes_saved(db: Database) -> list[int]:
    """Return every minutes-saved figure given in feedback."""
    return [r[0] for r in db.execute("SELECT minutes_saved FROM feedback"
                                     " WHERE minutes_saved IS NOT NULL")]
