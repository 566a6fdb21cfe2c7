"""Device identity: IMEI check digits, serial rules, and spotting spreadsheet damage.

IMEI = TAC (8) + serial (6) + a Luhn check digit over the first 14 (3GPP TS 23.003
Annex B). Spreadsheets damage long numbers in two ways we can recognise: exponent
notation (`3.52549E+14`) and dropped leading zeros.
"""

from __future__ import annotations

import re

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
