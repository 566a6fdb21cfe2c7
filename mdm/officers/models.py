"""The roster's vocabulary: worker types, ranks, statuses and how each column is read."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

WORKER_TYPES = ("OFFICER", "PCSO", "SPECIAL", "STAFF")
STATUSES = ("ACTIVE", "ABSENT", "LEAVER")
RANKS = (
    "CONSTABLE", "SERGEANT", "INSPECTOR", "CHIEF_INSPECTOR", "SUPERINTENDENT",
    "CHIEF_SUPERINTENDENT", "ASSISTANT_CHIEF_CONSTABLE", "DEPUTY_CHIEF_CONSTABLE",
    "CHIEF_CONSTABLE",
)
SPECIAL_RANKS = (
    "SPECIAL_CONSTABLE", "SPECIAL_SERGEANT", "SPECIAL_INSPECTOR", "SPECIAL_CHIEF_INSPECTOR",
    "SPECIAL_SUPERINTENDENT", "SPECIAL_CHIEF_OFFICER",
)
RANK_ALIASES = {
    "PC": "CONSTABLE", "DC": "CONSTABLE", "PS": "SERGEANT", "SGT": "SERGEANT", "DS": "SERGEANT",
    "INSP": "INSPECTOR", "DI": "INSPECTOR", "CI": "CHIEF_INSPECTOR", "DCI": "CHIEF_INSPECTOR",
    "SUPT": "SUPERINTENDENT", "CH_SUPT": "CHIEF_SUPERINTENDENT", "ACC": "ASSISTANT_CHIEF_CONSTABLE",
    "DCC": "DEPUTY_CHIEF_CONSTABLE", "CC": "CHIEF_CONSTABLE",
}
COLLAR = re.compile(r"^[A-Z]{0,2}\d{1,5}$")

REQUIRED = ("officer_id", "payroll_no", "forename", "surname", "worker_type", "status")
OPTIONAL = ("force_code", "collar_number", "warrant_card_no", "rank", "is_detective", "area",
            "district", "station", "team", "pnb_required", "device_eligible", "email",
            "start_date", "leave_date")
COLUMNS = REQUIRED + OPTIONAL
BOOLEAN = ("is_detective", "pnb_required", "device_eligible")
DATES = ("start_date", "leave_date")
UPPER = ("worker_type", "status", "area", "force_code", "collar_number", "team")

_TRUE = {"1", "y", "yes", "true", "t"}
_FALSE = {"0", "n", "no", "false", "f", ""}


def parse_bool(value: str) -> bool | None:
    """Read a spreadsheet boolean; None if it is not one."""
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    return None


def with_booleans(row: dict[str, Any]) -> dict[str, Any]:
    """Give a stored officer's yes/no columns as True/False (unknown stays None)."""
    for c in BOOLEAN:
        if row.get(c) is not None:
            row[c] = bool(row[c])
    return row


def parse_date(value: str) -> str | None:
    """Read an ISO date or a UK spreadsheet date (DD/MM/YYYY) as ISO; None if neither."""
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(value, fmt).date().isoformat()
        except ValueError:
            continue
    return None


def normalise_rank(value: str) -> str:
    """Map 'Chief Inspector', 'chief-inspector' or 'DCI' to CHIEF_INSPECTOR."""
    key = re.sub(r"[\s\-.]+", "_", value.strip().upper())
    return RANK_ALIASES.get(key, key)


def describe(person: Mapping[str, Any]) -> str:
    """Name a person as the helpdesk knows them: 'Emma Armstrong (collar 1097, Ulverston)'."""
    name = person.get("name") or f"{person.get('forename', '')} {person.get('surname', '')}"
    marks = []
    if person.get("collar_number"):
        marks.append(f"collar {person['collar_number']}")
    elif person.get("payroll_no"):
        marks.append(f"payroll {person['payroll_no']}")
    elif person.get("officer_id"):
        marks.append(f"officer {person['officer_id']}")
    if person.get("station"):
        marks.append(str(person["station"]))
    if person.get("status") == "LEAVER":
        marks.append("leaver")
    return f"{name.strip()} ({', '.join(marks)})" if marks else name.strip()


def today() -> str:
    return date.today().isoformat()
