"""The CA's operator-side work: create it, sign a shift's certificate, revoke.

Each change is one transaction with one audit row. The CA's private key is never
recorded, printed or logged; the inventory holds its public line, every certificate
issued (by serial) and every revocation list built.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mdm.ca import keys, krl, sign, trust
from mdm.ca.check import certificate_path
from mdm.errors import InputError, NotFound, PermissionDenied
from mdm.fleet.keys import fingerprint_of_line, key_path
from mdm.operators import roles
from mdm.store import audit, ca, operators, transaction
from mdm.store.db import Database
from mdm.timeutil import format_utc, now

SHIFT = 8 * 3600  # a certificate's default validity: one shift
MIN_VALIDITY = 60
BACKDATE = 60  # seconds a certificate is valid before it is signed: clocks differ a little


def _no_ca() -> InputError:
    return InputError("this inventory has no CA yet", "an admin creates it with: mdm ca init")


def init(db: Database, operator: str, folder: Path, passphrase: Callable[[], str]
         ) -> dict[str, Any]:
    """Create the force's SSH user CA key and record its public line (admin only)."""
    roles.require(db, operator, "ca.manage")
    existing = trust.ca_fingerprint(db)
    if existing:
        raise InputError(f"this inventory already has a CA ({existing})",
                         "see it with: mdm ca show")
    line = keys.create(folder, passphrase(), comment=f"mdm-ca-{now()[:10]}")
    try:
        with transaction(db):
            if trust.ca_fingerprint(db):  # another admin got there first
                raise InputError("this inventory already has a CA", "see it with: mdm ca show")
            row = {"public_line": line, "fingerprint": fingerprint_of_line(line),
                   "created_at": now(), "created_by": operator}
            ca.create(db, line, row["fingerprint"], row["created_at"], operator)
            version = krl.build(db, operator, line)  # an empty list devices can load at once
            audit.record(db, operator, "ca.init", "ca", None,
                         {"public_line": line, "fingerprint": row["fingerprint"],
                          "krl_version": version})
    except BaseException:
        keys.remove(folder)  # never leave a key the inventory does not know
        raise
    return {**row, "key_folder": str(folder), "krl_version": version}


def show(db: Database, folder: Path) -> dict[str, Any]:
    """Return the CA public line devices trust, its fingerprint and where its key is kept."""
    row = ca.get(db)
    if row is None:
        raise _no_ca()
    private, public = keys.paths(folder)
    held = public.exists() and keys.same_key(public.read_text(), row["public_line"])
    last = krl.current(db)
    return {**row, "key_folder": str(folder), "key_here": held and private.exists(),
            "in_agent": keys.agent_holds(row["public_line"]),
            "krl_version": last[0] if last else None}


def _span(seconds: int) -> str:
    """Return a duration as it would be typed: 12h, 90m or 45s."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _stamp(seconds: int) -> str:
    return format_utc(datetime.fromtimestamp(seconds, UTC))


def login(db: Database, operator: str, key: str | None, folder: Path,
          passphrase: Callable[[], str], valid_for: int = SHIFT,
          max_validity: int = 12 * 3600) -> dict[str, Any]:
    """Sign a certificate for the operator's own key, valid for one shift, and write it."""
    role = roles.role_of(db, operator)
    if role is None and operators.exists(db, operator):
        raise PermissionDenied(f"operator {operator!r} was removed, so gets no certificate",
                               "ask an admin if that is a mistake")
    if role is None or role not in roles.ROLES:
        raise PermissionDenied(
            f"operator {operator!r} is not registered with a role in this inventory, so"
            " gets no certificate", f"ask an admin to run: mdm operators add {operator}"
            " --role ROLE (or pass --operator / set MDM_OPERATOR)")
    ca_line = trust.ca_public_line(db)
    if ca_line is None:
        raise _no_ca()
    if valid_for < MIN_VALIDITY:
        raise InputError(f"a certificate must be valid for at least {_span(MIN_VALIDITY)},"
                         f" not {_span(valid_for)}", "give a longer --valid-for, e.g. 8h")
    if valid_for > max_validity:
        raise InputError(f"a certificate may be valid for at most {_span(max_validity)}"
                         f" (ca.max_validity), not {_span(valid_for)}",
                         "give a shorter --valid-for, or ask an admin to raise ca.max_validity"
                         " in mdm.toml")
    private = key_path(key)
    public = private.with_name(private.name + ".pub")
    if not public.exists():
        raise InputError(f"no operator key at {public}", "create one with: mdm keys init")
    subject = public.read_text().strip()
    signer = keys.signer(folder, ca_line, passphrase)  # before the lock: it may prompt
    started = int(time.time())
    with transaction(db):
        if roles.role_of(db, operator) != role:
            raise InputError(f"operator {operator!r} changed role or was removed meanwhile",
                             "run mdm login again")
        serial = ca.next_serial(db)
        request = sign.Request(subject, sign.key_id(operator, serial), sign.principal(role),
                               serial, started - BACKDATE, started + valid_for)
        line = sign.sign(signer, request)
        row = {"serial": serial, "operator": operator, "key_id": request.key_id,
               "principals": request.principal, "key_fingerprint": fingerprint_of_line(subject),
               "ca_fingerprint": fingerprint_of_line(ca_line),
               "valid_after": _stamp(request.valid_after),
               "valid_before": _stamp(request.valid_before), "issued_at": now()}
        ca.insert_certificate(db, row)
        audit.record(db, operator, "ca.login", f"operator:{operator}", None,
                     {k: row[k] for k in ("serial", "key_id", "principals", "key_fingerprint",
                                          "valid_after", "valid_before")}
                     | {"signed_with": "ssh-agent" if signer.via_agent else "key file"})
    path = certificate_path(key)
    _write_public(path, line + "\n")
    return {**row, "principals": [request.principal], "role": role, "path": str(path),
            "signed_with": "ssh-agent" if signer.via_agent else "key file"}


def _write_public(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    tmp.replace(path)


def revoke(db: Database, operator: str, target: str, reason: str) -> dict[str, Any]:
    """Revoke a certificate (by serial) or all of an operator's, and build a new KRL."""
    roles.require(db, operator, "ca.manage")
    if not reason.strip():
        raise InputError("a revocation needs a reason", "give --reason \"…\" (it is audited)")
    ca_line = trust.ca_public_line(db)
    if ca_line is None:
        raise _no_ca()
    by_serial, target = _revocation_target(db, target)
    with transaction(db):
        if by_serial:
            rows = ca.holder_of(db, int(target))
            if not rows:
                raise NotFound(f"no certificate with serial {target}",
                               "list certificates with: mdm ca certificates")
        else:
            if not operators.exists(db, target):
                raise NotFound(f"no operator {target!r}", "list them with: mdm operators list")
            rows = ca.issued_to(db, target)
            if not rows:
                raise InputError(f"operator {target!r} has no certificates to revoke",
                                 f"to stop them getting one: mdm operators remove {target}"
                                 " --reason …")
        serials = [int(r[0]) for r in rows if r[2] is None]
        if not serials:
            what = f"certificate {target} is" if by_serial else f"{target}'s certificates are"
            raise InputError(f"{what} already revoked", "see them with: mdm ca certificates")
        at = now()
        ca.revoke(db, serials, at, operator, reason)
        version = krl.build(db, operator, ca_line)
        subject = f"certificate:{target}" if by_serial else f"operator:{target}"
        audit.record(db, operator, "ca.revoke", subject, None,
                     {"serials": serials, "reason": reason, "krl_version": version})
    return {"revoked": serials, "operators": sorted({str(r[1]) for r in rows}),
            "reason": reason, "revoked_at": at, "krl_version": version}


def _revocation_target(db: Database, target: str) -> tuple[bool, str]:
    """Read OPERATOR|SERIAL, or `operator:NAME` / `serial:N`; say when digits are both."""
    kind, _, rest = target.partition(":")
    if kind in ("operator", "serial") and rest:
        by_serial, target = kind == "serial", rest
        if by_serial and not (target.isascii() and target.isdigit()):
            raise InputError(f"serial {target!r} is not a number",
                             "list certificates with: mdm ca certificates")
    else:
        by_serial = target.isascii() and target.isdigit()
        if by_serial and operators.exists(db, target):
            if int(target) < 2 ** 63 and ca.holder_of(db, int(target)):
                raise InputError(f"{target!r} is both an operator and a certificate's serial",
                                 f"say which: operator:{target} or serial:{target}")
            by_serial = False
    if by_serial and int(target) >= 2 ** 63:  # a serial is a signed 64-bit row id here
        raise NotFound(f"no certificate with serial {target}",
                       "list certificates with: mdm ca certificates")
    return by_serial, target


def certificates(db: Database, operator: str | None = None) -> list[dict[str, Any]]:
    """List certificates issued, newest first (one operator's, if named)."""
    return ca.listing(db, operator)
