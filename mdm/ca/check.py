"""Check the operator's certificate before any device is touched.

A device refuses an expired certificate, one from another CA, or one it has on its
revocation list; but it says only "permission denied", and only after the run has
started. So every command that reaches devices first checks, here, what it can know
locally, and stops with what to do (exit 2, nothing touched).
"""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mdm.ca import trust
from mdm.errors import InputError
from mdm.fleet.keys import fingerprint, key_path
from mdm.store import ca
from mdm.store.db import Database

LOGIN = "run: mdm login"


def certificate_path(key: str | None) -> Path:
    """Return where the operator's certificate lives: beside the key, `<key>-cert.pub`."""
    private = key_path(key)
    return private.with_name(private.name + "-cert.pub")


def _when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def read(path: Path) -> Any:
    """Parse an OpenSSH certificate file (a cryptography SSHCertificate)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import (
        SSHCertificate,
        load_ssh_public_identity,
    )

    try:
        cert = load_ssh_public_identity(path.read_bytes().strip())
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InputError(f"{path} is not an OpenSSH certificate ({exc})",
                         f"{LOGIN} (it writes a new one)") from None
    if not isinstance(cert, SSHCertificate):
        raise InputError(f"{path} holds a plain public key, not a certificate",
                         f"{LOGIN} (it writes a new one)")
    return cert


def require_certificate(db: Database, key: str | None, operator: str,
                        at: float | None = None) -> dict[str, Any] | None:
    """Refuse (exit 2) a missing, expired, not yet valid, foreign or revoked certificate.

    A certificate is needed once the inventory has a CA; without one, devices trust the
    operator's plain key and a certificate file is checked only for its validity times.
    Return what the certificate says, or None if there is none to present.
    """
    from cryptography.hazmat.primitives import serialization

    ca_line = trust.ca_public_line(db)
    path = certificate_path(key)
    if not path.exists():
        if ca_line is None:
            return None
        raise InputError(f"no certificate at {path}: devices of this inventory trust the"
                         " force's CA, not plain keys", LOGIN)
    cert = read(path)
    moment = int(at if at is not None else time.time())
    key_id = cert.key_id.decode(errors="replace")
    if moment >= cert.valid_before:
        raise InputError(f"certificate {key_id} expired at {_when(cert.valid_before)}",
                         f"{LOGIN} (or remove {path} if no device trusts a CA)")
    if moment < cert.valid_after:
        raise InputError(f"certificate {key_id} is not valid until {_when(cert.valid_after)}",
                         f"check this machine's clock, then {LOGIN}")
    if ca_line is not None:
        signed_by = cert.signature_key().public_bytes(serialization.Encoding.OpenSSH,
                                                      serialization.PublicFormat.OpenSSH)
        ca_blob = ca_line.split()[1]
        if signed_by.split()[1].decode() != ca_blob:
            other = fingerprint(base64.b64decode(signed_by.split()[1]))
            raise InputError(f"certificate {key_id} was signed by another CA ({other}), not"
                             f" this inventory's ({trust.ca_fingerprint(db)})", LOGIN)
        from cryptography.exceptions import InvalidSignature

        try:
            cert.verify_cert_signature()
        except InvalidSignature:
            raise InputError(f"certificate {key_id} at {path} does not match its CA's"
                             " signature: it was changed after signing", LOGIN) from None
        own = key_path(key).with_name(key_path(key).name + ".pub")
        if own.exists():
            theirs = cert.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                    serialization.PublicFormat.OpenSSH)
            if theirs.split()[:2] != own.read_bytes().split()[:2]:
                raise InputError(f"certificate {key_id} at {path} is for another key, not"
                                 f" {own}", f"{LOGIN} (it signs your own key)")
        row = ca.revocation(db, cert.serial)
        if row is not None and row[0]:
            raise InputError(f"certificate {key_id} (serial {cert.serial}) was revoked at"
                             f" {row[0]}: {row[1]}", f"ask an admin; then {LOGIN}")
        name = key_id.split(":")[1] if key_id.count(":") == 2 else ""
        if name != operator:
            raise InputError(f"certificate {key_id} was issued to {name or 'someone else'!r},"
                             f" not to operator {operator!r}",
                             f"{LOGIN} as {operator} (or pass --operator {name})")
    return {"path": str(path), "key_id": key_id, "serial": cert.serial,
            "principals": [p.decode() for p in cert.valid_principals],
            "valid_before": _when(cert.valid_before)}
