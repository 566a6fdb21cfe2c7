"""SSH key material: the operator's key pair, and host-key fingerprints as OpenSSH shows them.

The operator's private key lives outside the inventory (default `~/.config/mdm/id_ed25519`,
or MDM_KEY), is written with mode 0600 from the first byte, and is never logged.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

DEFAULT_KEY = Path("~/.config/mdm/id_ed25519")


def key_path(value: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the operator key path: the option, then MDM_KEY, then the default."""
    return Path(os.path.expanduser(str(value or os.environ.get("MDM_KEY") or DEFAULT_KEY)))


def fingerprint(key_blob: bytes) -> str:
    """Return the SHA256 fingerprint of a public key blob, as `ssh-keygen -l` prints it."""
    digest = hashlib.sha256(key_blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def fingerprint_of_line(public_line: str) -> str:
    """Return the fingerprint of an OpenSSH public key line (`ssh-ed25519 AAAA… comment`)."""
    return fingerprint(base64.b64decode(public_line.split()[1]))


def generate_ed25519(path: Path, passphrase: bytes | None = None,
                     comment: str = "mdm") -> str:
    """Write a new ed25519 key pair (private 0600, public .pub) and return the public line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase
        else serialization.NoEncryption())
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.OpenSSH, encryption)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    line = f"{public} {comment}\n"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private)
    Path(str(path) + ".pub").write_text(line)
    return line
