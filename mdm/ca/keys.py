"""The CA key pair: created once, kept outside the inventory and the project folder.

Whoever holds the CA's private key can let anyone into every device, so it is never in
the inventory (shared by the whole device team and copied to backups) nor in the project
folder (version-controlled). By default it lives in the folder of whoever ran `mdm ca
init`, `~/.config/mdm/ca` (0700); `ca.dir` in mdm.toml or MDM_CA_DIR moves it, e.g. to
an encrypted removable drive kept in a safe. It is encrypted with a passphrase (OpenSSH's
own format and KDF, so `ssh-keygen` and `ssh-add` read it too), asked for at a prompt or
read from MDM_CA_PASSPHRASE for automation, never from the command line. Signing may go
through ssh-agent instead (the key `ssh-add`ed once, or held by a hardware token): then
mdm never reads the private key at all.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mdm.errors import InputError
from mdm.fleet.keys import fingerprint_of_line, generate_ed25519

PRIVATE = "ca"  # the private key's file name in the CA folder; its public line is ca.pub
PASSPHRASE_ENV = "MDM_CA_PASSPHRASE"
MIN_PASSPHRASE = 8


def paths(folder: Path) -> tuple[Path, Path]:
    """Return the CA's private and public key files in its folder."""
    return folder / PRIVATE, folder / f"{PRIVATE}.pub"


def create(folder: Path, passphrase: str, comment: str) -> str:
    """Write a new passphrase-protected ed25519 CA key pair and return its public line."""
    private, public = paths(folder)
    if len(passphrase) < MIN_PASSPHRASE:
        raise InputError(f"the CA passphrase is shorter than {MIN_PASSPHRASE} characters",
                         "choose a longer one (it protects access to every device)")
    if private.exists() or public.exists():
        raise InputError(f"a CA key already exists in {folder}",
                         "keep it (each inventory needs its own CA folder: set ca.dir in"
                         " mdm.toml or MDM_CA_DIR), or move it away first")
    line = generate_ed25519(private, passphrase.encode(), comment=comment)
    folder.chmod(0o700)
    return line.strip()


def remove(folder: Path) -> None:
    """Delete a CA key pair that was never recorded (its inventory write failed)."""
    for file in paths(folder):
        file.unlink(missing_ok=True)


def public_line(folder: Path) -> str:
    """Return the CA's public key line from its folder."""
    public = paths(folder)[1]
    if not public.exists():
        raise InputError(f"no CA public key at {public}",
                         "create the CA with: mdm ca init (or set ca.dir / MDM_CA_DIR)")
    return public.read_text().strip()


def same_key(line: str, other: str) -> bool:
    """Say whether two public key lines hold the same key (comments aside)."""
    return line.split()[:2] == other.split()[:2]


@dataclass(frozen=True)
class Signer:
    """How certificates are signed: with the decrypted key in memory, or by ssh-agent."""

    public_line: str
    private: Any = None  # a cryptography Ed25519PrivateKey; None: the agent holds the key

    @property
    def via_agent(self) -> bool:
        return self.private is None


def agent_holds(line: str) -> bool:
    """Say whether a running ssh-agent (SSH_AUTH_SOCK) holds the key of this public line."""
    if not os.environ.get("SSH_AUTH_SOCK"):
        return False
    try:
        listed = subprocess.run(["ssh-add", "-L"], capture_output=True, text=True,
                                timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return listed.returncode == 0 and any(same_key(line, held)
                                          for held in listed.stdout.splitlines())


def signer(folder: Path, expected: str, passphrase: Callable[[], str]) -> Signer:
    """Return a signer for the inventory's CA: ssh-agent if it holds the key, else the file.

    `passphrase` is asked only when the key file has to be read.
    """
    if agent_holds(expected):
        return Signer(expected)
    from cryptography.hazmat.primitives.serialization import load_ssh_private_key

    private_file = paths(folder)[0]
    if not private_file.exists():
        raise InputError(f"no CA key at {private_file}, and ssh-agent does not hold it",
                         "set ca.dir in mdm.toml (or MDM_CA_DIR) to the CA's folder, or"
                         f" add the key to ssh-agent: ssh-add {private_file}")
    data = private_file.read_bytes()
    try:
        key = load_ssh_private_key(data, passphrase().encode() or None)
    except (ValueError, TypeError):  # a wrong passphrase, or none for an encrypted key
        raise InputError(f"wrong passphrase for the CA key {private_file}",
                         f"type it again, or check {PASSPHRASE_ENV}; nothing was signed"
                         ) from None
    from cryptography.hazmat.primitives import serialization

    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()
    if not same_key(line, expected):
        raise InputError(f"the CA key {private_file} ({fingerprint_of_line(line)}) is not"
                         f" this inventory's CA ({fingerprint_of_line(expected)})",
                         "set ca.dir in mdm.toml (or MDM_CA_DIR) to this inventory's CA"
                         " folder")
    return Signer(expected, key)
