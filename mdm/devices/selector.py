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
from mdm.store import devices as store
from mdm.store import officers
from mdm.store.db import Database
from mdm.store.dialect import Dialect

_DEVICE_KEYS = tuple(store.DEVICE_COLUMNS)
_HOLDER_KEYS = tuple(store.HOLDER_COLUMNS)
_SPECIAL_KEYS = ("officer", "group")
KEYS = tuple(sorted({*_DEVICE_KEYS, *_HOLDER_KEYS, *_SPECIAL_KEYS}))

FROM = store.SELECTED  # what a selection's WHERE clause reads (d, a, o)

_ENUMS: dict[str, tuple[str, ...]] = {
    "status": tuple(s.value for s in Status),
    "worker_type": officer_vocab.WORKER_TYPES,
    "rank": officer_vocab.RANKS + officer_vocab.SPECIAL_RANKS,
}


@dataclass(frozen=True)
class Term:
    """One `key=value` (or a bare serial) of a selector."""

    key: str
    value: str

    def sql(self, dialect: Dialect) -> tuple[str, tuple[str, ...]]:
        return store.term_clause(dialect, self.key, self.value)


@dataclass(frozen=True)
class Selector:
    """One selector as typed, and its terms (all must match)."""

    text: str
    terms: tuple[Term, ...]

    def sql(self, dialect: Dialect) -> tuple[str, list[str]]:
        parts = [t.sql(dialect) for t in self.terms]
        return ("(" + " AND ".join(p[0] for p in parts) + ")",
                [a for p in parts for a in p[1]])


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
        return Term("serial", text)
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
    return Term(key, value)


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


def to_sql(dialect: Dialect, selectors: Sequence[str]) -> tuple[str, list[str]]:
    """Return a WHERE clause (without WHERE) and its arguments for the selectors."""
    parsed = parse(selectors)
    if parsed is None:
        return store.EVERY, []
    parts = [s.sql(dialect) for s in parsed]
    return " OR ".join(p[0] for p in parts), [a for p in parts for a in p[1]]


def _scope_words(statuses: Sequence[str]) -> str:
    names = list(statuses)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def select(db: Database, selectors: Sequence[str], statuses: Sequence[str] | None = None,
           *, allow_none: bool = False) -> tuple[str, list[str]]:
    """Return a WHERE clause for the selected devices in these statuses; refuse a selector
    that picks none of them (exit 2), and an empty selection unless `allow_none`."""
    parsed = parse(selectors)
    scope, scope_args = store.status_clause(statuses)
    if parsed is None:
        if not allow_none and not store.any_device(db, scope, scope_args):
            _refuse_empty(db, statuses)
        return scope, scope_args
    problems: list[Problem] = []
    for sel in parsed:
        clause, args = sel.sql(db.dialect)
        if not store.any_selected(db, f"{clause} AND {scope}", [*args, *scope_args]):
            problems.append(_why_empty(db, sel, statuses))
    if problems:
        if len(problems) == 1:
            raise InputError(f"{problems[0].where} {problems[0].message}; nothing was done",
                             problems[0].hint)
        raise InputError(f"{len(problems)} selectors select no device; nothing was done",
                         "fix or drop them (mdm devices list shows what there is)",
                         problems=problems)
    clause, args = to_sql(db.dialect, selectors)
    return f"({clause}) AND {scope}", [*args, *scope_args]


def _refuse_empty(db: Database, statuses: Sequence[str] | None) -> None:
    counts = store.status_counts(db)
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
    clause, args = sel.sql(db.dialect)
    counts = store.selected_status_counts(db, clause, args)
    if counts and statuses:
        there = ", ".join(f"{r['n']} {r['status']}" for r in counts)
        return Problem(where, f"selects no {_scope_words(statuses)} device (it selects {there})",
                       f"this command acts on {_scope_words(statuses)} devices only")
    for term in sel.terms:
        if not store.any_selected(db, *term.sql(db.dialect)):
            message, hint = _unknown_value(db, term)
            return Problem(where, message, hint)
    return Problem(where, "matches no device: no device matches all of its terms together",
                   "drop a term, or check each with mdm devices list KEY=VALUE")


def _unknown_value(db: Database, term: Term) -> tuple[str, str]:
    """Say whether a term's value exists at all (a typo) or just has no device."""
    if term.key == "serial":
        return (f"matches no device: no serial or IMEI {term.value!r} in the inventory",
                f"search more widely with: mdm devices find {term.value}")
    if term.key == "officer":
        person = officers.name_by_ref(db, term.value)
        if person is None:
            return (f"matches no device: no officer with id, payroll or collar number"
                    f" {term.value!r}", "find them with: mdm officers list --name NAME")
        return (f"matches no device: {person['name']} holds no device",
                "see their history with: mdm custody --officer " + term.value)
    known = store.known_values(db, term.key)
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

