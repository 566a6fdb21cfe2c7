"""Timestamps: stored as UTC ISO-8601 text that sorts as it reads.

Operators type local (Europe/London) times; the inventory stores UTC with a `Z`, to the
microsecond, so string order is time order and a custody query is a range scan.

A local time the clocks skip (01:30 on the last Sunday of March, in the UK) never
happened, and one they repeat (01:30 on the last Sunday of October) happened twice. For
an evidential record neither is guessed: both are refused, asking for an explicit offset.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from mdm.errors import InputError

LOCAL_ZONE = "Europe/London"


def now() -> str:
    """Return the current UTC time as stored in the inventory."""
    return format_utc(datetime.now(UTC))


def format_utc(moment: datetime) -> str:
    """Format an aware datetime as the inventory's UTC text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def local_zone() -> str:
    """Return the zone of times typed without an offset (MDM_TIMEZONE, mdm.toml, London)."""
    from mdm import config

    return config.load().timezone


def _offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta()).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def localise(moment: datetime, zone_name: str, what: str, text: str) -> datetime:
    """Attach a zone to a naive local time, refusing times that happen twice or never."""
    zone = ZoneInfo(zone_name)
    first, second = moment.replace(tzinfo=zone, fold=0), moment.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first
    stamp = moment.isoformat(timespec="minutes")
    back = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    if back != moment:  # the clocks went forward over it
        raise InputError(
            f"{what}: {text!r} never happened in {zone_name}: the clocks went forward"
            f" from {_offset(first.utcoffset())} to {_offset(second.utcoffset())}",
            f"give the offset you mean: {stamp}{_offset(first.utcoffset())} or"
            f" {stamp}{_offset(second.utcoffset())}; Z means UTC")
    raise InputError(
        f"{what}: {text!r} happened twice in {zone_name}: the clocks went back from"
        f" {_offset(first.utcoffset())} to {_offset(second.utcoffset())}",
        f"give the offset you mean: {stamp}{_offset(first.utcoffset())} (the first)"
        f" or {stamp}{_offset(second.utcoffset())} (the second); Z means UTC")


def parse_instant(text: str, what: str = "--at") -> str:
    """Parse a user-typed instant; a time without an offset is local (Europe/London) time."""
    raw = text.strip()
    if raw.lower() == "now":
        return now()
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{what}: {text!r} is not a date and time",
            "use ISO form, e.g. 2015-04-03T14:32 (local UK time) or 2015-04-03T13:32Z (UTC)",
        ) from None
    if moment.tzinfo is None:
        moment = localise(moment, local_zone(), what, text)
    return format_utc(moment)
