"""Key revocation lists: OpenSSH's own KRL format, one numbered version per change.

A device's sshd reads the list unchanged (`RevokedKeys`), so revocation needs nothing of
mdm on the device. Every version is kept in the inventory (`krls`), holding the serial
of every certificate revoked so far; the newest is what the command queue delivers to
devices (`current`). This module imports nothing heavy: the queue reads it on every run.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from pathlib import Path

from mdm.errors import MdmError
from mdm.store import ca
from mdm.store.db import Database
from mdm.timeutil import now


def current(db: Database) -> tuple[int, bytes] | None:
    """Return the newest revocation list (version, KRL bytes), or None if there is none."""
    return ca.latest_krl(db)


def revoked_serials(db: Database) -> list[int]:
    """Return the serials of every revoked certificate, in order."""
    return ca.revoked_serials(db)


def render(ca_line: str, serials: list[int], version: int) -> bytes:
    """Return an OpenSSH KRL revoking these serials of the CA's certificates (ssh-keygen -k)."""
    with tempfile.TemporaryDirectory(prefix="mdm-krl-") as tmp:
        ca, spec, out = Path(tmp) / "ca.pub", Path(tmp) / "spec", Path(tmp) / "krl"
        ca.write_text(ca_line + "\n")
        spec.write_text("".join(f"serial: {s}\n" for s in serials))
        try:
            done = subprocess.run(["ssh-keygen", "-q", "-k", "-f", str(out), "-s", str(ca),
                                   "-z", str(version), str(spec)],
                                  capture_output=True, text=True, timeout=30, check=False,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MdmError(f"ssh-keygen could not build the revocation list: {exc}",
                           "install OpenSSH's ssh-keygen (bash scripts/setup.sh)") from None
        if done.returncode != 0 or not out.exists():
            raise MdmError(f"ssh-keygen could not build the revocation list:"
                           f" {done.stderr.strip()[:200]}", "report it; nothing was changed")
        return out.read_bytes()


def build(db: Database, operator: str, ca_line: str) -> int:
    """Record the next KRL version, revoking every revoked serial; call in a transaction."""
    last = current(db)
    version = last[0] + 1 if last else 1
    serials = revoked_serials(db)
    data = render(ca_line, serials, version)
    ca.insert_krl(db, version, data, hashlib.sha256(data).hexdigest(), json.dumps(serials),
                  now(), operator)
    return version
