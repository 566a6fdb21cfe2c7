"""Timestamps: stored as UTC ISO-8601 text that sorts as it reads.

Operators type local (Europe/London) times; the inventory stores UTC with a `Z`, to the
microsecond, so string order is time order and a custody query is a range scan.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from mdm.errors import InputError

LOCAL_ZONE = "Europe/London"


def now() -> str:
    """Return the current UTC time as stored in the inventory."""
    return format_utc(datetime.now(UTC))


def format_utc(moment: datetime) -> str:
    """Format an aware datetime as the inventory's UTC text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_instant(text: str, what: str = "--at") -> str:
    """Parse a user-typed instant; a time without an offset is local (Europe/London) time."""
    raw = text.strip()
    if raw.lower() == "now":
        return now()
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{what}: {text!r} is not a date and time",
            "use ISO form, e.g. 2015-04-03T14:32 (local UK time) or 2015-04-03T13:32Z (UTC)",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(os.environ.get("MDM_TIMEZONE", LOCAL_ZONE)))
    return format_utc(moment)
