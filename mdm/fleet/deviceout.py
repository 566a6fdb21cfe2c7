"""Read what a device answers without trusting it: sections, a schema and size caps.

A device's output is data from outside. A broken or hostile device may print a forged
section boundary, JSON of the wrong shape, megabytes where a line was expected, numbers
no device has, or bytes that are not UTF-8. Everything here either returns facts or
raises MalformedOutput with a short reason, so one device can only fail itself. A value
longer than its cap is cut and flagged (named in `truncated`), never stored whole.

Sections of one command's output are split on a boundary made afresh for each run
(`new_boundary`), so nothing a device stores can pose as a boundary.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import date
from typing import Any, NamedTuple

from mdm.fleet.transport import MalformedOutput

STATUS_OUTPUT = 1024 * 1024  # the most a status read may print (the DPC's file is ~1 KiB)
MAX_STATUS_TEXT = 256 * 1024  # the most of that which may be the DPC status JSON
MAX_VALUE = 512  # characters kept of a prop, a setting or a DPC status text
MAX_KEY = 256  # characters in a prop or setting name
MAX_ENTRIES = 4000  # props, settings or packages one device may list (a phone has ~1000)
MAX_DETAILS = 500  # non-compliance entries in a DPC status
MAX_UNSYNCED = 10_000_000  # notebook entries a device may report as not yet synced
MAX_VERSION_CODE = 2**63 - 1  # Android's long versionCode
FACT_SECTIONS = ("props", "packages", "settings", "dpc_status", "policy_file")
STATUS_SECTIONS = ("dpc_status", "policy_file")
# What a DPC status may hold; anything else it says is dropped, not stored.
STATUS_TEXT_FIELDS = ("state", "error", "policyName", "appliedAt", "reportedAt")
DETAIL_TEXT_FIELDS = ("settingName", "nonComplianceReason", "packageName", "fieldPath",
                      "installationFailureReason", "specificNonComplianceReason")

# A section is matched whole, one line at a time, as "\n" + section + "\n" (with "\r\n"
# made "\n"): each pattern starts with "\n", so the search jumps from line to line, and
# looks ahead for the next. Lines of no known shape are noise and skipped, except a
# "package:" line, which must be sound.
_PROP = re.compile(r"\n\[([^\]\n]+)\]: \[([^\n]*)\](?=\n)")
_SETTING = re.compile(r"\n([^=\n]+)=([^\n]*)(?=\n)")
_PKG = re.compile(r"\npackage:([A-Za-z0-9_.]{1,255})(?: versionCode:([0-9]{1,19}))?[ \t]*(?=\n)")
_PKG_NAME = re.compile(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*")
_PKG_ANY_LINE = re.compile(r"^package:.*$", re.MULTILINE)
_PKG_LINE = re.compile(r"package:(?P<name>\S*)(?: versionCode:(?P<code>\S*))?\s*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DIGITS = re.compile(r"[0-9]+")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class BadOutput(ValueError):
    """Why a piece of device output was refused (without naming the device)."""


class StatusReading(NamedTuple):
    """What a status read returns: the DPC's status, the policy file's sha256, cut values."""

    dpc: dict[str, Any] | None
    policy_file: str | None
    truncated: list[str]


def new_boundary() -> str:
    """Return a section boundary no device can have guessed."""
    return f"----mdm-{secrets.token_hex(16)}----"


def decode(data: bytes, what: str, device: str) -> str:
    """Return device output as text; bytes that are not UTF-8 fail the device."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedOutput(device, f"{what}: the output is not UTF-8 text (byte"
                                      f" 0x{data[exc.start]:02x} at offset {exc.start})") from None


def _cap(value: str, name: str, truncated: list[str], limit: int = MAX_VALUE) -> str:
    if len(value) <= limit:
        return value
    truncated.append(name)
    return f"{value[:limit]}…[{len(value)} characters, truncated]"


def _sections(text: str, boundary: str, names: tuple[str, ...]) -> list[str]:
    parts = text.split(boundary + "\n")
    if len(parts) != len(names):
        raise BadOutput(f"the output has {len(parts)} sections, expected {len(names)}")
    return parts


def _lines(text: str) -> str:
    return f"\n{text}\n".replace("\r\n", "\n")


def _entries(pairs: list[tuple[str, str]], what: str, truncated: list[str],
             section: str) -> dict[str, str]:
    """Return name → value for one section: unique names, capped names and values."""
    if len(pairs) > MAX_ENTRIES:
        raise BadOutput(f"more than {MAX_ENTRIES} {what}s")
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise BadOutput(f"{what} {key[:MAX_KEY]!r} is listed twice")
            seen.add(key)
    longest = max(map(len, out), default=0)
    if longest > MAX_KEY:
        raise BadOutput(f"a {what} name of {longest} characters (at most {MAX_KEY})")
    if max(map(len, out.values()), default=0) > MAX_VALUE:
        for key in [k for k, v in out.items() if len(v) > MAX_VALUE]:
            out[key] = _cap(out[key], f"{section}.{key}", truncated)
    return out


def _props(text: str, truncated: list[str]) -> dict[str, str]:
    props = _entries(_PROP.findall(_lines(text)), "prop", truncated, "props")
    sdk = props.get("ro.build.version.sdk", "")
    if sdk and not (_DIGITS.fullmatch(sdk) and len(sdk) <= 4):
        raise BadOutput(f"ro.build.version.sdk {sdk[:40]!r} is not an API level")
    patch = props.get("ro.build.version.security_patch", "")
    if patch and not _is_date(patch):
        raise BadOutput(f"ro.build.version.security_patch {patch[:40]!r} is not a date"
                        " (YYYY-MM-DD)")
    return props


def _is_date(text: str) -> bool:
    if not _DATE.fullmatch(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _packages(text: str) -> dict[str, int]:
    text = _lines(text)
    found = _PKG.findall(text)
    if len(found) != text.count("\npackage:"):  # some "package:" line is not sound
        for line in _PKG_ANY_LINE.findall(text):
            m = _PKG_LINE.fullmatch(line)
            if not m or not _PKG_NAME.fullmatch(m["name"]) or len(m["name"]) > 255:
                raise BadOutput(f"the line {line[:60]!r} does not name a package")
            code = m["code"]
            if code is not None and not (_DIGITS.fullmatch(code) and len(code) <= 19):
                shown = code if len(code) <= 20 else f"{code[:12]}… ({len(code)} characters)"
                raise BadOutput(f"package {m['name']}: versionCode {shown!r} is not one a"
                                " device can have")
        raise BadOutput("a package line is not 'package:NAME versionCode:N'")
    out = {name: int(code or 0) for name, code in _entries(found, "package", [], "packages")
           .items()}
    if max(out.values(), default=0) > MAX_VERSION_CODE:
        name = max(out, key=out.__getitem__)
        raise BadOutput(f"package {name}: versionCode {out[name]} is not one a device can have")
    return out


def _settings(text: str, truncated: list[str]) -> dict[str, str]:
    return _entries(_SETTING.findall(_lines(text)), "setting", truncated, "settings")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise BadOutput(f"the DPC status names {key[:40]!r} twice")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise BadOutput(f"the DPC status holds {name}, which is not JSON")


# One decoder for every status: json.loads with hooks builds a new one per call, which
# cost more than the parse itself when a report reads 50,000 devices' statuses.
_STRICT = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def load_status(text: str) -> Any:
    """Parse DPC status JSON strictly: no duplicate keys, NaN, or absurd size or depth."""
    if len(text) > MAX_STATUS_TEXT:
        raise BadOutput(f"the DPC status is {len(text) // 1024} KiB (at most"
                        f" {MAX_STATUS_TEXT // 1024} KiB)")
    try:
        if text.startswith("\ufeff"):  # as json.loads refuses it
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return _STRICT.decode(text)
    except RecursionError:
        raise BadOutput("the DPC status is nested too deeply") from None
    except BadOutput:
        raise
    except ValueError as exc:
        raise BadOutput(f"the DPC status is not JSON ({str(exc)[:80]})") from None


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), "null")


def check_status(status: Any, truncated: list[str]) -> dict[str, Any]:
    """Return a DPC status reduced to what its schema allows; refuse a wrong shape."""
    if not isinstance(status, dict):
        raise BadOutput(f"the DPC status is {_kind(status)}, not an object")
    out: dict[str, Any] = {}
    for key in STATUS_TEXT_FIELDS:
        value = status.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise BadOutput(f"the DPC status's {key} is {_kind(value)}, not a string")
        out[key] = _cap(value, f"dpc_status.{key}", truncated)
    sha = status.get("policySha256")
    if sha is not None:
        if not isinstance(sha, str):
            raise BadOutput(f"the DPC status's policySha256 is {_kind(sha)}, not a sha256")
        if not _SHA256.fullmatch(sha):
            raise BadOutput(f"the DPC status's policySha256 {sha[:20]!r} is not a sha256")
        out["policySha256"] = sha
    unsynced = status.get("unsyncedNotebookEntries")  # the e-notebook's, via the DPC
    if unsynced is not None:
        if isinstance(unsynced, bool) or not isinstance(unsynced, int) \
                or not 0 <= unsynced <= MAX_UNSYNCED:
            raise BadOutput("the DPC status's unsyncedNotebookEntries is not a count"
                            f" (0 to {MAX_UNSYNCED})")
        out["unsyncedNotebookEntries"] = unsynced
    details = status.get("nonComplianceDetails")
    if details is not None:
        out["nonComplianceDetails"] = _details(details, truncated)
    return out


def _details(details: Any, truncated: list[str]) -> list[dict[str, str]]:
    if not isinstance(details, list):
        raise BadOutput(f"the DPC status's nonComplianceDetails is {_kind(details)},"
                        " not a list")
    if len(details) > MAX_DETAILS:
        raise BadOutput(f"the DPC status lists {len(details)} violations (at most"
                        f" {MAX_DETAILS})")
    out = []
    for i, item in enumerate(details):
        if not isinstance(item, dict):
            raise BadOutput(f"the DPC status's nonComplianceDetails holds {_kind(item)},"
                            " not an object")
        clean: dict[str, str] = {}
        for key in DETAIL_TEXT_FIELDS:
            value = item.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                raise BadOutput(f"the DPC status's nonComplianceDetails[{i}].{key} is"
                                f" {_kind(value)}, not a string")
            clean[key] = _cap(value, f"dpc_status.nonComplianceDetails[{i}].{key}",
                              truncated)
        out.append(clean)
    return out


def _policy_file(text: str) -> str | None:
    words = text.split()
    if not words:
        return None
    if not _SHA256.fullmatch(words[0]):
        raise BadOutput(f"the policy file's sha256 {words[0][:20]!r} is not a sha256")
    return words[0]


def _status_sections(dpc_text: str, file_text: str, truncated: list[str]) -> StatusReading:
    dpc_text = dpc_text.strip()
    status = check_status(load_status(dpc_text), truncated) if dpc_text else None
    return StatusReading(status, _policy_file(file_text), truncated)


def parse_facts(text: str, boundary: str, device: str) -> dict[str, Any]:
    """Parse the facts command's output: props, packages, settings, DPC status."""
    truncated: list[str] = []
    try:
        props, packages, settings, dpc, policy_file = _sections(text, boundary,
                                                                FACT_SECTIONS)
        facts: dict[str, Any] = {"props": _props(props, truncated),
                                 "packages": _packages(packages),
                                 "settings": _settings(settings, truncated)}
        status = _status_sections(dpc, policy_file, truncated)
    except BadOutput as exc:
        raise MalformedOutput(device, f"facts refused: {exc}") from None
    return {**facts, "dpc_status": status.dpc, "policy_file_sha256": status.policy_file,
            "truncated": truncated}


def parse_status(text: str, boundary: str, device: str) -> StatusReading:
    """Parse the status command's output: the DPC's status and the policy file's sha256."""
    try:
        dpc, policy_file = _sections(text, boundary, STATUS_SECTIONS)
        return _status_sections(dpc, policy_file, [])
    except BadOutput as exc:
        raise MalformedOutput(device, f"DPC status refused: {exc}") from None


def parse_packages(text: str, device: str) -> dict[str, int]:
    """Parse `pm list packages --show-versioncode` output: package name → versionCode."""
    try:
        return _packages(text)
    except BadOutput as exc:
        raise MalformedOutput(device, f"packages refused: {exc}") from None
