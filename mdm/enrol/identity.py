"""Device identity: IMEI check digits, serial rules, spreadsheet damage, and who answered.

IMEI = TAC (8) + serial (6) + a Luhn check digit over the first 14 (3GPP TS 23.003
Annex B). Spreadsheets damage long numbers in two ways we can recognise: exponent
notation (`3.52549E+14`) and dropped leading zeros.

At enrolment, the identity a device reports over SSH is compared with its manifest row:
a key is pinned only for the device that proves to be the one the manifest names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_EXPONENT = re.compile(r"^\d+(\.\d+)?[eE][+]?\d+$")
_SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{3,31}$")


def luhn_check_digit(digits: str) -> int:
    """Return the Luhn check digit for a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 0:
            n *= 2
            n = n // 10 + n % 10
        total += n
    return (10 - total % 10) % 10


def is_valid_imei(imei: str) -> bool:
    """Say whether a string is a 15-digit IMEI with a correct check digit."""
    return (len(imei) == 15 and imei.isascii() and imei.isdigit()
            and luhn_check_digit(imei[:14]) == int(imei[14]))


def looks_like_exponent(value: str) -> bool:
    """Say whether a spreadsheet turned a long number into exponent notation."""
    return bool(_EXPONENT.match(value))


def imei_problem(value: str) -> tuple[str, str] | None:
    """Return (what is wrong, what to do) for a bad IMEI, or None if it is valid."""
    if is_valid_imei(value):
        return None
    if looks_like_exponent(value):
        return (f"{value!r} is a number a spreadsheet shortened to exponent notation",
                "re-export the manifest with IMEI columns formatted as text")
    if value.isdigit() and len(value) == 14 and is_valid_imei("0" + value):
        return (f"{value!r} has 14 digits; a spreadsheet probably dropped its leading zero",
                "re-export the manifest with IMEI columns formatted as text")
    if value.isdigit() and len(value) == 16:
        return (f"{value!r} has 16 digits: that is an IMEISV (software version), not an IMEI",
                "use the 15-digit IMEI printed on the box or by *#06#")
    if not (value.isascii() and value.isdigit()) or len(value) != 15:
        return (f"{value!r} is not 15 digits", "an IMEI is exactly 15 digits")
    return (f"{value!r} fails the IMEI check digit (expected"
            f" {luhn_check_digit(value[:14])} at the end)",
            "check the IMEI for a mistyped digit against the box label")


def serial_problem(value: str) -> tuple[str, str] | None:
    """Return (what is wrong, what to do) for a bad serial number, or None if it is valid."""
    if looks_like_exponent(value):
        return (f"{value!r} is a number a spreadsheet shortened to exponent notation",
                "re-export the manifest with the serial column formatted as text")
    if not _SERIAL.match(value):
        return (f"{value!r} is not a serial number (4-32 letters, digits or '-')",
                "copy the serial exactly as the device shows it (it is case-sensitive)")
    return None


# Properties some Android builds use to publish an IMEI; none is standard, so an IMEI is
# checked only where one of them holds a valid IMEI (a device build may add its own here).
IMEI_PROPS = ("ro.ril.oem.imei", "ro.ril.oem.imei1", "ro.ril.oem.imei2",
              "persist.radio.imei", "persist.radio.imei1", "persist.radio.imei2")
_SHOWN = 48  # how much of a device-reported value a message quotes


@dataclass(frozen=True)
class Identity:
    """Who a device is: its serial, maker, model and IMEIs (manifest or device-reported)."""

    serial: str
    manufacturer: str
    model: str
    imeis: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {"serial": self.serial, "manufacturer": self.manufacturer,
                "model": self.model, "imeis": list(self.imeis)}


def expected_of(row: Mapping[str, Any]) -> Identity:
    """Return the identity the manifest recorded for a device row."""
    imeis = tuple(i for i in (row.get("imei1"), row.get("imei2")) if i)
    return Identity(row["serial"], row["manufacturer"], row["model"], imeis)


def observed_of(props: Mapping[str, str]) -> Identity:
    """Return the identity a device reports in its properties (readable IMEIs only)."""
    values = (str(props.get(name, "")).strip() for name in IMEI_PROPS)
    imeis = tuple(dict.fromkeys(v for v in values if is_valid_imei(v)))
    return Identity(str(props.get("ro.serialno", "")),
                    str(props.get("ro.product.manufacturer", "")),
                    str(props.get("ro.product.model", "")), imeis)


def _shown(value: str) -> str:
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "…")


def mismatches(expected: Identity, seen: Identity) -> list[str]:
    """Say how a device's reported identity differs from its manifest row (empty if not)."""
    wrong = []
    if seen.serial != expected.serial:  # serials are case-sensitive
        wrong.append(f"serial is {_shown(seen.serial)}, the manifest says"
                     f" {expected.serial!r}")
    for name in ("manufacturer", "model"):
        got, want = getattr(seen, name), getattr(expected, name)
        if got.casefold() != want.casefold():
            wrong.append(f"{name} is {_shown(got)}, the manifest says {want!r}")
    for imei in seen.imeis:
        if imei not in expected.imeis:
            wrong.append(f"IMEI is {imei}, the manifest says"
                         f" {' or '.join(expected.imeis) or 'none'}")
    return wrong
