"""Device selectors: which devices a command acts on, and never silently none.

A selector is `all`, a serial (or IMEI), or `key=value` terms joined by commas (all must
match), e.g. `status=enrolled,station=Kendal`. Several selectors on one command line are
OR-ed. Keys about the holder (station, area, district, team, rank, worker_type, officer,
group) match the officer who holds the device now.

Values with a fixed vocabulary (status, rank, worker type) are checked as they are read,
whatever their case, and refused with the allowed list. A selector that picks no device
the command can act on is refused too (exit 2, naming it and why): a typo must never
look like a successful run over zero devices.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from mdm.devices.lifecycle import Status
from mdm.errors import InputError, Problem
from mdm.officers import models as officer_vocab
from mdm.store.db import Database

_DEVICE_KEYS = {"serial": "d.serial", "status": "d.status", "model": "d.model",
                "order": "d.order_number", "manufacturer": "d.manufacturer"}
_HOLDER_KEYS = {"station": "o.station", "area": "o.area", "district": "o.district",
                "team": "o.team", "worker_type": "o.worker_type", "rank": "o.rank"}
_SPECIAL_KEYS = ("officer", "group")
KEYS = tuple(sorted({*_DEVICE_KEYS, *_HOLDER_KEYS, *_SPECIAL_KEYS}))

FROM = ("FROM devices d LEFT JOIN assignments a ON a.device_id = d.id AND a.closed_at IS NULL"
        " LEFT JOIN officers o ON o.officer_id = a.officer_id")

_ENUMS: dict[str, tuple[str, ...]] = {
    "status": tuple(s.value for s in Status),
    "worker_type": officer_vocab.WORKER_TYPES,
    "rank": officer_vocab.RANKS + officer_vocab.SPECIAL_RANKS,
}


@dataclass(frozen=True)
class Term:
    """One `key=value` (or a bare serial) of a selector, as SQL."""

    key: str
    value: str
    sql: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class Selector:
    """One selector as typed, and its terms (all must match)."""

    text: str
    terms: tuple[Term, ...]

    def sql(self) -> tuple[str, list[str]]:
        return ("(" + " AND ".join(t.sql for t in self.terms) + ")",
                [a for t in self.terms for a in t.args])


def canonical(key: str, value: str) -> str:
    """Return a fixed-vocabulary value in its stored form, or refuse it listing the allowed."""
    allowed = _ENUMS[key]
    wanted = (officer_vocab.normalise_rank(value) if key == "rank"
              else value.strip().replace("-", "_").replace(" ", "_"))
    for option in allowed:
        if option.lower() == wanted.lower():
            return option
    close = difflib.get_close_matches(wanted.upper(), [a.upper() for a in allowed], n=1)
    did_you_mean = f"did you mean {close[0].lower() if key == 'status' else close[0]}? " \
        if close else ""
    raise InputError(f"{key.replace('_', ' ')} {value!r} is not one of the allowed values",
                     f"{did_you_mean}use one of: {', '.join(allowed)} (any case)")


def _term(text: str) -> Term:
    if "=" not in text:
        return Term("serial", text, "(d.serial = ? COLLATE NOCASE OR d.id IN"
                    " (SELECT device_id FROM device_imeis WHERE imei = ?))", (text, text))
    raw_key, value = (p.strip() for p in text.split("=", 1))
    key = raw_key.lower().replace("-", "_")
    if key not in KEYS or not value:
        raise InputError(f"selector term {text!r} is not understood",
                         f"use all, a serial, or key=value with key one of: {', '.join(KEYS)}")
    if key in _ENUMS:
        try:
            value = canonical(key, value)
        except InputError as exc:
            raise InputError(f"selector term {text!r}: {exc.message}", exc.hint) from None
    if key == "officer":
        return Term(key, value, "(o.officer_id = ? OR o.payroll_no = ? OR"
                    " o.collar_number = ? COLLATE NOCASE)", (value, value, value))
    if key == "group":
        return Term(key, value, "o.officer_id IN (SELECT officer_id FROM group_members"
                    " WHERE group_name = ? COLLATE NOCASE)", (value,))
    column = _DEVICE_KEYS.get(key) or _HOLDER_KEYS[key]
    return Term(key, value, f"{column} = ? COLLATE NOCASE", (value,))


def parse(selectors: Sequence[str]) -> list[Selector] | None:
    """Parse selectors; None means every device (no selector, or `all`)."""
    texts = [s.strip() for s in selectors]
    if not texts or any(s.lower() == "all" for s in texts):
        return None
    out = []
    for text in texts:
        terms = [t.strip() for t in text.split(",")]
        if not text or not all(terms):
            raise InputError(f"selector {text!r} has an empty term",
                             "write terms as key=value joined by commas, e.g."
                             " station=Kendal,status=enrolled")
        out.append(Selector(text, tuple(_term(t) for t in terms)))
    return out


def to_sql(selectors: Sequence[str]) -> tuple[str, list[str]]:
    """Return a WHERE clause (without WHERE) and its arguments for the selectors."""
    parsed = parse(selectors)
    if parsed is None:
        return "1", []
    parts = [s.sql() for s in parsed]
    return " OR ".join(p[0] for p in parts), [a for p in parts for a in p[1]]


def _scope_sql(statuses: Sequence[str] | None) -> tuple[str, list[str]]:
    if not statuses:
        return "1", []
    return f"d.status IN ({', '.join('?' for _ in statuses)})", list(statuses)


def _scope_words(statuses: Sequence[str]) -> str:
    names = list(statuses)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def select(db: Database, selectors: Sequence[str], statuses: Sequence[str] | None = None,
           *, allow_none: bool = False) -> tuple[str, list[str]]:
    """Return a WHERE clause for the selected devices in these statuses; refuse a selector
    that picks none of them (exit 2), and an empty selection unless `allow_none`."""
    parsed = parse(selectors)
    scope, scope_args = _scope_sql(statuses)
    if parsed is None:
        if not allow_none and not db.scalar(f"SELECT 1 FROM devices d WHERE {scope} LIMIT 1",
                                            scope_args):
            _refuse_empty(db, statuses)
        return scope, scope_args
    problems: list[Problem] = []
    for sel in parsed:
        clause, args = sel.sql()
        if not db.scalar(f"SELECT 1 {FROM} WHERE {clause} AND {scope} LIMIT 1",
                         [*args, *scope_args]):
            problems.append(_why_empty(db, sel, statuses))
    if problems:
        if len(problems) == 1:
            raise InputError(f"{problems[0].where} {problems[0].message}; nothing was done",
                             problems[0].hint)
        raise InputError(f"{len(problems)} selectors select no device; nothing was done",
                         "fix or drop them (mdm devices list shows what there is)",
                         problems=problems)
    clause, args = to_sql(selectors)
    return f"({clause}) AND {scope}", [*args, *scope_args]


def _refuse_empty(db: Database, statuses: Sequence[str] | None) -> None:
    counts = db.query("SELECT status, COUNT(*) AS n FROM devices GROUP BY status ORDER BY status")
    if not counts:
        raise InputError("the inventory has no devices; nothing was done",
                         "import a delivery first: mdm enrol import MANIFEST.csv")
    there = ", ".join(f"{r['n']} {r['status']}" for r in counts)
    raise InputError(f"no device is {_scope_words(statuses or [])}; nothing was done"
                     f" (the inventory has {there})",
                     "enrol devices first (mdm enrol devices --from FILE)")


def _why_empty(db: Database, sel: Selector, statuses: Sequence[str] | None) -> Problem:
    """Say why a selector picks no device: which term matches nothing, or which statuses."""
    where = f"selector {sel.text!r}"
    clause, args = sel.sql()
    counts = db.query(f"SELECT d.status, COUNT(*) AS n {FROM} WHERE {clause}"
                      " GROUP BY d.status ORDER BY d.status", args)
    if counts and statuses:
        there = ", ".join(f"{r['n']} {r['status']}" for r in counts)
        return Problem(where, f"selects no {_scope_words(statuses)} device (it selects {there})",
                       f"this command acts on {_scope_words(statuses)} devices only")
    for term in sel.terms:
        if not db.scalar(f"SELECT 1 {FROM} WHERE {term.sql} LIMIT 1", list(term.args)):
            message, hint = _unknown_value(db, term)
            return Problem(where, message, hint)
    return Problem(where, "matches no device: no device matches all of its terms together",
                   "drop a term, or check each with mdm devices list KEY=VALUE")


def _known(db: Database, term: Term) -> list[str]:
    if term.key == "group":
        return [r[0] for r in db.execute("SELECT name FROM groups ORDER BY name")]
    column = _DEVICE_KEYS.get(term.key) or _HOLDER_KEYS.get(term.key)
    if column is None or term.key == "serial":
        return []
    table = "devices" if column.startswith("d.") else "officers"
    return [r[0] for r in db.execute(f"SELECT DISTINCT {column[2:]} FROM {table}"
                                     f" WHERE {column[2:]} IS NOT NULL ORDER BY 1")]


def _unknown_value(db: Database, term: Term) -> tuple[str, str]:
    """Say whether a term's value exists at all (a typo) or just has no device."""
    if term.key == "serial":
        return (f"matches no device: no serial or IMEI {term.value!r} in the inventory",
                f"search more widely with: mdm devices find {term.value}")
    if term.key == "officer":
        person = db.query("SELECT forename || ' ' || surname AS name, collar_number"
                          " FROM officers WHERE officer_id = ? OR payroll_no = ? OR"
                          " collar_number = ? COLLATE NOCASE LIMIT 1", list(term.args))
        if not person:
            return (f"matches no device: no officer with id, payroll or collar number"
                    f" {term.value!r}", "find them with: mdm officers list --name NAME")
        return (f"matches no device: {person[0]['name']} holds no device",
                "see their history with: mdm custody --officer " + term.value)
    known = _known(db, term)
    label = term.key.replace("_", " ")
    if term.key == "group" and term.value.lower() in (k.lower() for k in known):
        return (f"matches no device: no member of group {term.value} holds a device",
                f"see the group with: mdm groups show {term.value}")
    if term.value.lower() in (k.lower() for k in known) or term.key in _ENUMS:
        whose = "with" if term.key in _DEVICE_KEYS else "is held by anyone with"
        return (f"matches no device: no device {whose} {label} {term.value}",
                "check with: mdm devices list")
    close = difflib.get_close_matches(term.value.upper(), [k.upper() for k in known], n=3)
    suggestions = [k for k in known if k.upper() in close]
    if suggestions:
        hint = "did you mean " + " or ".join(suggestions) + "?"
    elif not known:
        hint = f"the inventory has no {label}s yet"
    elif len(known) <= 30:
        hint = f"{label}s in the inventory: " + ", ".join(known)
    else:
        hint = f"check the spelling ({len(known)} {label}s in the inventory)"
    return f"matches no device: {label} {term.value!r} is not in the inventory", hint

