"""Pairings of serial, address and host key: read them, check them all, refuse a bad set whole.

A pairing decides which phone's key is pinned under which serial, so it is checked before
any device is contacted: every field's syntax, a serial, address or fingerprint given
twice, a serial the inventory does not know, and an address or key that already belongs
to another device. Any problem refuses the whole set (exit 2) with every offending row
named by file, row, field and value; nothing changes and no device is contacted.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdm.devices.lifecycle import Status
from mdm.enrol import identity
from mdm.errors import InputError, Problem
from mdm.runs import record as runs
from mdm.store import devices, enrolment
from mdm.store.db import Database

ENROLLABLE = (Status.DELIVERED, Status.QUARANTINED, Status.WIPED, Status.IN_REPAIR)
_FINGERPRINT = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_FILE_FIELDS = {"serial": "serial_number", "address": "address", "host_key": "host_key"}
_ARG_FIELDS = {"serial": "SERIAL", "address": "--address", "host_key": "--host-key"}


@dataclass(frozen=True)
class Request:
    """One pairing: this serial is at this address (and offers this key, if known)."""

    serial: str
    address: str
    host_key: str | None = None  # the fingerprint IT staff confirmed, SHA256:…
    file: str | None = None  # where the pairing came from, for messages
    row: int | None = None

    @property
    def where(self) -> str:
        return f"{self.file}, row {self.row}" if self.file else f"device {self.serial}"

    def field_name(self, name: str) -> str:
        """Return a field's name as the user wrote it (CSV column or command option)."""
        return (_FILE_FIELDS if self.file else _ARG_FIELDS)[name]


@dataclass(frozen=True)
class Refusal:
    """One reason a pairing set is refused: where, which field, which value, why."""

    request: Request
    field: str  # serial, address or host_key
    value: str
    message: str
    hint: str

    def problem(self) -> Problem:
        return Problem(self.request.where, self.message, self.hint,
                       self.request.field_name(self.field))

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.request.file, "row": self.request.row,
                "field": self.request.field_name(self.field), "value": self.value,
                "message": self.message, "hint": self.hint}


class PairingRefused(InputError):
    """The pairing set is refused whole: exit 2, every offending row named, nothing done."""

    def __init__(self, message: str, refusals: list[Refusal]) -> None:
        super().__init__(message, "fix the rows listed and run the command again",
                         problems=[r.problem() for r in refusals])
        self.result = {"refused": [r.as_dict() for r in refusals],
                       "done": [], "failed": [], "skipped": []}


@dataclass
class Plan:
    """The devices to contact (each row carries its requested address) and those skipped."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


def read_file(path: Path) -> list[Request]:
    """Read `serial_number,address[,host_key]` rows (checked later, all at once, by `plan`)."""
    from mdm import csvio

    rows = csvio.read_rows(path, ["serial_number", "address"],
                           {"serial": "serial_number", "host_key_fingerprint": "host_key",
                            "fingerprint": "host_key"})
    return [Request(r.values.get("serial_number", ""), r.values.get("address", ""),
                    r.values.get("host_key") or None, str(path), r.line) for r in rows]


@functools.lru_cache(maxsize=1 << 16)  # one file checks each address several times
def address_key(text: str) -> tuple[str, int]:
    """Return the (host, port) an address reaches, normalised: the user does not count."""
    _, host, port = runs.parse_address(text)
    return normal_host(host), port


def normal_host(host: str) -> str:
    """Return a host as one spelling: IP addresses compressed, names lower-case."""
    host = host.rstrip(".").lower()
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host  # a host name


def address_problem(text: str) -> str | None:
    """Say what is wrong with an address, or None if it is [user@]host[:port]."""
    port = re.search(r"(?<!:):(\d+)$", text.strip())
    if port and not 1 <= int(port[1]) <= 65535:
        return f"address {text!r}: port {port[1]} is not 1-65535"
    try:
        _, host, _ = runs.parse_address(text)
    except InputError as exc:
        return exc.message
    if ":" in host or re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return f"address {text!r}: {host!r} is not an IP address"
    elif len(host) > 253 or not all(_LABEL.match(p) for p in host.rstrip(".").split(".")):
        return f"address {text!r}: {host!r} is not a host name"
    return None


def fingerprint_problem(text: str) -> str | None:
    """Say what is wrong with a host-key fingerprint, or None if it is SHA256:… (43 chars)."""
    if _FINGERPRINT.match(text):
        return None
    if text.upper().startswith("MD5:") or re.fullmatch(r"([0-9a-fA-F]{2}:){15}[0-9a-fA-F]{2}",
                                                       text):
        return f"{text!r} is an MD5 fingerprint; mdm pins SHA256 ones"
    return f"{text!r} is not a SHA256 fingerprint"


_FP_HINT = "copy it as `ssh-keygen -l -E sha256` prints it: SHA256: and 43 characters"


def _syntax(requests: Iterable[Request]) -> list[Refusal]:
    out = []
    for req in requests:
        if not req.serial:
            out.append(Refusal(req, "serial", "", "is empty", "every row needs its serial"))
        elif p := identity.serial_problem(req.serial):
            out.append(Refusal(req, "serial", req.serial, p[0], p[1]))
        if not req.address:
            out.append(Refusal(req, "address", "", "is empty", "every row needs its address"))
        elif p1 := address_problem(req.address):
            out.append(Refusal(req, "address", req.address, p1,
                               "give [user@]host[:port], e.g. 10.20.0.15:22"))
        if req.host_key and (p2 := fingerprint_problem(req.host_key)):
            out.append(Refusal(req, "host_key", req.host_key, p2, _FP_HINT))
    return out


def _repeats(requests: list[Request], bad: set[tuple[int, str]]) -> list[Refusal]:
    """Name every row of a serial, address or fingerprint given more than once."""
    out = []
    keys: list[tuple[str, str, Any]] = [
        ("serial", "serial", lambda r: r.serial.casefold()),
        ("address", "address", lambda r: address_key(r.address)),
        ("host_key", "host key", lambda r: r.host_key)]
    for name, label, key_of in keys:
        groups: dict[Any, list[int]] = {}
        for i, req in enumerate(requests):
            if getattr(req, name) and (i, name) not in bad:
                groups.setdefault(key_of(req), []).append(i)
        for members in groups.values():
            if len(members) < 2:
                continue
            for i in members:
                req = requests[i]
                others = ", ".join(_place(requests[j]) for j in members if j != i)
                value = getattr(req, name)
                out.append(Refusal(req, name, value,
                                   f"{label} {value!r} is also given on {others}",
                                   "each device, address and host key appears once: a repeat"
                                   " would pin one phone's key under another's serial"))
    return out


def _place(req: Request) -> str:
    return f"row {req.row}" if req.file else f"{req.serial!r}"


class Bindings:
    """Who holds each address and each pinned key: every device not retired.

    Loaded once per check (or per recording transaction, under the write lock) and kept
    up to date as devices are bound, so checking N devices stays linear.
    """

    def __init__(self, db: Database) -> None:
        self.by_address: dict[tuple[str, int], dict[str, Any]] = {}
        self.by_key: dict[str, dict[str, Any]] = {}
        for row in enrolment.bound(db, Status.RETIRED.value):
            self.bind(row)

    def bind(self, row: dict[str, Any]) -> None:
        """Record that a device holds its address and key (the first holder stays)."""
        if row.get("address"):
            try:
                self.by_address.setdefault(address_key(row["address"]), row)
            except InputError:
                pass  # an address that no longer parses reaches nothing
        if row.get("host_key_fingerprint"):
            self.by_key.setdefault(row["host_key_fingerprint"], row)

    def address_holder(self, device_id: int, address: str) -> dict[str, Any] | None:
        """Return another device recorded at this address, if any."""
        holder = self.by_address.get(address_key(address))
        return holder if holder and holder["id"] != device_id else None

    def key_holder(self, device_id: int, fingerprint: str) -> dict[str, Any] | None:
        """Return another device that has this host key pinned, if any."""
        holder = self.by_key.get(fingerprint)
        return holder if holder and holder["id"] != device_id else None


def _against_inventory(db: Database, requests: list[Request], bad: set[tuple[int, str]],
                       plan: Plan) -> list[Refusal]:
    out = []
    bindings = Bindings(db)
    for i, req in enumerate(requests):
        device: dict[str, Any] | None = None
        if (i, "serial") not in bad:
            device = devices.by_serial(db, req.serial)
            if device is None:
                out.append(_unknown(db, req))
            elif device["status"] not in ENROLLABLE + (Status.ENROLLED, Status.PROVISIONED):
                out.append(Refusal(req, "serial", req.serial,
                                   f"device {req.serial} is {device['status']}",
                                   "only delivered, quarantined, wiped or repaired devices"
                                   " are enrolled"))
        if (i, "address") not in bad:
            holder = bindings.by_address.get(address_key(req.address))
            if holder and holder["serial"] != req.serial:
                out.append(Refusal(req, "address", req.address,
                                   f"address {req.address!r} belongs to device"
                                   f" {holder['serial']} ({holder['status']})",
                                   f"check the address; if {holder['serial']} has really"
                                   " moved, re-enrol it at its new address first"))
        if req.host_key and (i, "host_key") not in bad:
            holder = bindings.by_key.get(req.host_key)
            if holder and holder["serial"] != req.serial:
                out.append(Refusal(req, "host_key", req.host_key,
                                   f"host key {req.host_key} is pinned for device"
                                   f" {holder['serial']}",
                                   "two devices never share a host key: check the"
                                   " fingerprint on the device"))
        if device is not None:
            _add(plan, device, req)
    return out


def _unknown(db: Database, req: Request) -> Refusal:
    near = enrolment.serial_in_other_case(db, req.serial)
    hint = (f"serials are case-sensitive: did you mean {near}?" if near else
            "import its delivery manifest first (mdm enrol import)")
    return Refusal(req, "serial", req.serial, f"no device {req.serial!r} in the inventory",
                   hint)


def _add(plan: Plan, device: dict[str, Any], req: Request) -> None:
    if device["status"] in (Status.ENROLLED, Status.PROVISIONED):
        try:
            moved = bool(device["address"]) and address_key(device["address"]) != address_key(
                req.address)
        except InputError:
            moved = False  # a bad address: the set is being refused anyway
        plan.skipped.append({"serial": device["serial"], "status": device["status"],
                             "reason": f"already enrolled, at {device['address']}" if moved
                             else "already enrolled"})
    elif device["status"] in ENROLLABLE:
        plan.rows.append({**device, "address": req.address, "expected_fp": req.host_key})


def plan(db: Database, requests: list[Request]) -> Plan:
    """Check every pairing against the others and the inventory; refuse the set on any fault."""
    refusals = _syntax(requests)
    row_of = {id(req): i for i, req in enumerate(requests)}
    bad = {(row_of[id(r.request)], r.field) for r in refusals}
    refusals += _repeats(requests, bad)
    result = Plan()
    refusals += _against_inventory(db, requests, bad, result)
    if refusals:
        refusals.sort(key=lambda r: row_of[id(r.request)])  # stable: fields keep their order
        rows = len({id(r.request) for r in refusals})
        source = requests[0].file or "enrol device"
        raise PairingRefused(f"{source}: {len(refusals)} problem(s) in {rows} row(s); nothing"
                             " was done and no device was contacted", refusals)
    return result
