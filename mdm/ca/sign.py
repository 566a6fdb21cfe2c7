"""Sign an operator's certificate: one principal, one shift, a pseudo-terminal at most.

Two ways, one result. With the CA key file, the `cryptography` package's
SSHCertificateBuilder signs in this process, so neither the passphrase nor the decrypted
key ever reaches another program or a file. With the key in ssh-agent, `ssh-keygen -U`
(OpenSSH's own signer) asks the agent, which `cryptography` cannot. Either way the
certificate carries only `permit-pty`: no agent, port or X11 forwarding, no user rc.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mdm.ca.keys import Signer
from mdm.errors import MdmError

EXTENSIONS = ("permit-pty",)


@dataclass(frozen=True)
class Request:
    """What one certificate says: whose key, which principal, which serial, how long."""

    public_line: str  # the operator's public key line
    key_id: str  # mdm:<operator>:<serial>
    principal: str  # mdm-<role>
    serial: int
    valid_after: int  # seconds since the epoch
    valid_before: int


def key_id(operator: str, serial: int) -> str:
    """Return a certificate's key id, which devices log: `mdm:<operator>:<serial>`."""
    return f"mdm:{operator}:{serial}"


def principal(role: str) -> str:
    """Return the principal of a role: what a device's principals file maps to its rights."""
    return f"mdm-{role}"


def sign(signer: Signer, request: Request) -> str:
    """Return the OpenSSH certificate line for the request, signed by the CA."""
    if signer.via_agent:
        return _sign_with_agent(signer, request)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import (
        SSHCertificateBuilder,
        SSHCertificateType,
    )

    subject = serialization.load_ssh_public_key(request.public_line.encode())
    builder = (SSHCertificateBuilder()
               .public_key(subject)  # type: ignore[arg-type]
               .serial(request.serial)
               .type(SSHCertificateType.USER)
               .key_id(request.key_id.encode())
               .valid_principals([request.principal.encode()])
               .valid_after(request.valid_after)
               .valid_before(request.valid_before))
    for name in EXTENSIONS:
        builder = builder.add_extension(name.encode(), b"")
    certificate = builder.sign(signer.private)
    return f"{certificate.public_bytes().decode()} {request.key_id}"


def _stamp(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y%m%d%H%M%SZ")


def _sign_with_agent(signer: Signer, request: Request) -> str:
    with tempfile.TemporaryDirectory(prefix="mdm-sign-") as tmp:
        ca, subject = Path(tmp) / "ca.pub", Path(tmp) / "operator.pub"
        ca.write_text(signer.public_line + "\n")
        subject.write_text(request.public_line + "\n")
        command = ["ssh-keygen", "-q", "-U", "-s", str(ca), "-I", request.key_id,
                   "-n", request.principal, "-z", str(request.serial),
                   "-V", f"{_stamp(request.valid_after)}:{_stamp(request.valid_before)}",
                   "-O", "clear", *(arg for name in EXTENSIONS for arg in ("-O", name)),
                   str(subject)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=30,
                                  check=False, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MdmError(f"ssh-keygen could not sign through ssh-agent: {exc}",
                           "check that OpenSSH's ssh-keygen is installed and the agent"
                           " answers (ssh-add -l)") from None
        cert = Path(tmp) / "operator-cert.pub"
        if done.returncode != 0 or not cert.exists():
            raise MdmError(f"ssh-agent did not sign: {done.stderr.strip()[:200]}",
                           "check the agent still holds the CA key (ssh-add -l), or unload"
                           " it to sign with the key file")
        return f"{cert.read_text().split()[0]} {cert.read_text().split()[1]} {request.key_id}"
