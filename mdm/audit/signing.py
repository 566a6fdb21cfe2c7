"""Signed checkpoints: the head of the chain, signed with a key kept off the inventory.

A plain checkpoint (`SEQ:HASH`) proves nothing unless it was kept somewhere safe. A signed
one can sit anywhere: anyone with the signer's public key can check it, and nobody
without the private key can make one. The signature is OpenSSH's own SSHSIG format
(namespace `mdm-audit-checkpoint`), so a third party can check a checkpoint file with
`ssh-keygen -Y verify` without trusting mdm or the inventory's host. ed25519 only.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

from mdm.errors import ExitCode, InputError, MdmError
from mdm.fleet.keys import fingerprint

NAMESPACE = "mdm-audit-checkpoint"
HEADER = "mdm audit checkpoint v1"
_MAGIC = b"SSHSIG"
_BEGIN, _END = "-----BEGIN SSH SIGNATURE-----", "-----END SSH SIGNATURE-----"
_KEY_TYPE = b"ssh-ed25519"


class BadSignature(MdmError):
    """A checkpoint whose signature does not hold, or not by the expected signer (exit 1)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message, hint, ExitCode.PARTIAL)


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _read_string(buf: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 4 > len(buf):
        raise ValueError("truncated")
    (size,) = struct.unpack(">I", buf[pos:pos + 4])
    end = pos + 4 + size
    if end > len(buf):
        raise ValueError("truncated")
    return buf[pos + 4:end], end


def _signed_data(message: bytes) -> bytes:
    return (_MAGIC + _string(NAMESPACE.encode()) + _string(b"") + _string(b"sha512")
            + _string(hashlib.sha512(message).digest()))


def public_line(key_blob: bytes) -> str:
    """Return an OpenSSH public key line (`ssh-ed25519 AAAA…`) for a key blob."""
    return f"{_KEY_TYPE.decode()} {base64.b64encode(key_blob).decode()}"


def load_signing_key(path: Path, passphrase: str | None) -> tuple[object, bytes]:
    """Load an ed25519 private key (OpenSSH format); return it and its public key blob."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the signing key {path}: {exc.strerror}",
                         "give the private key file made by `mdm keys init`") from None
    password = passphrase.encode() if passphrase else None
    try:
        try:
            key = serialization.load_ssh_private_key(data, password)
        except TypeError:
            if password is None:
                raise InputError(f"the signing key {path} is protected by a passphrase",
                                 "set MDM_KEY_PASSPHRASE to it") from None
            key = serialization.load_ssh_private_key(data, None)  # it needs none
    except ValueError as exc:
        wrong = password is not None and b"OPENSSH PRIVATE KEY" in data
        raise InputError(f"cannot load the signing key {path}"
                         f"{' (wrong passphrase?)' if wrong else ''}: {exc}",
                         "give an OpenSSH ed25519 private key, e.g. one made by"
                         " `mdm keys init`, and its passphrase in MDM_KEY_PASSPHRASE") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"the signing key {path} is not an ed25519 key",
                         "make one with `mdm keys init` (or ssh-keygen -t ed25519)")
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return key, _string(_KEY_TYPE) + _string(raw)


def sign(message: bytes, key: object, key_blob: bytes) -> str:
    """Return an armoured SSHSIG signature of `message` (as `ssh-keygen -Y sign` makes)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    assert isinstance(key, Ed25519PrivateKey)
    signature = key.sign(_signed_data(message))
    blob = (_MAGIC + struct.pack(">I", 1) + _string(key_blob) + _string(NAMESPACE.encode())
            + _string(b"") + _string(b"sha512")
            + _string(_string(_KEY_TYPE) + _string(signature)))
    text = base64.b64encode(blob).decode()
    lines = [text[i:i + 70] for i in range(0, len(text), 70)]
    return "\n".join([_BEGIN, *lines, _END]) + "\n"


def verify(message: bytes, armoured: str) -> bytes:
    """Check an armoured SSHSIG signature of `message`; return the signer's key blob."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    body = armoured.strip()
    if not (body.startswith(_BEGIN) and body.endswith(_END)):
        raise BadSignature("the checkpoint's signature block is missing or cut short",
                           "use the file exactly as `mdm audit checkpoint --sign` wrote it")
    try:
        blob = base64.b64decode("".join(body[len(_BEGIN):-len(_END)].split()), validate=True)
        if blob[:6] != _MAGIC or struct.unpack(">I", blob[6:10])[0] != 1:
            raise ValueError("not an SSHSIG v1 signature")
        key_blob, pos = _read_string(blob, 10)
        namespace, pos = _read_string(blob, pos)
        _, pos = _read_string(blob, pos)
        hash_alg, pos = _read_string(blob, pos)
        sig_blob, _ = _read_string(blob, pos)
        key_type, kpos = _read_string(key_blob, 0)
        raw_key, _ = _read_string(key_blob, kpos)
        sig_type, spos = _read_string(sig_blob, 0)
        raw_sig, _ = _read_string(sig_blob, spos)
    except (ValueError, struct.error) as exc:
        raise BadSignature(f"the checkpoint's signature can't be read ({exc})",
                           "use the file exactly as `mdm audit checkpoint --sign` wrote it"
                           ) from None
    if namespace != NAMESPACE.encode() or hash_alg not in (b"sha512", b"sha256"):
        raise BadSignature("the signature is not an mdm checkpoint signature",
                           "sign checkpoints with `mdm audit checkpoint --sign KEYFILE`")
    if key_type != _KEY_TYPE or sig_type != _KEY_TYPE or len(raw_key) != 32:
        raise BadSignature("the checkpoint is not signed with an ed25519 key",
                           "sign checkpoints with an ed25519 key")
    digest = hashlib.new(hash_alg.decode(), message).digest()
    signed = (_MAGIC + _string(namespace) + _string(b"") + _string(hash_alg) + _string(digest))
    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(raw_sig, signed)
    except InvalidSignature:
        raise BadSignature("the checkpoint's signature does not match its contents (the file"
                           " was altered, or signed by someone else)",
                           "get the checkpoint again from where it was kept") from None
    return key_blob


@dataclass(frozen=True)
class Checkpoint:
    """A parsed checkpoint file: what was signed, and by whom."""

    seq: int
    hash: str
    at: str
    signed_at: str
    signer: str  # fingerprint
    signer_key: str  # OpenSSH public key line


def render(fields: dict[str, str], key: object, key_blob: bytes) -> str:
    """Return the text of a signed checkpoint file: the statement, then its signature."""
    statement = "\n".join([HEADER, *(f"{k}: {v}" for k, v in fields.items()),
                           f"signer_key: {public_line(key_blob)}",
                           f"signer: {fingerprint(key_blob)}"]) + "\n"
    return statement + sign(statement.encode(), key, key_blob)


def read(path: Path) -> Checkpoint:
    """Parse and check a signed checkpoint file; raise if its signature does not hold."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the checkpoint file {path} ({exc})",
                         "give the file written by `mdm audit checkpoint --sign`") from None
    statement, marker, rest = text.partition(_BEGIN)
    fields: dict[str, str] = {}
    lines = statement.splitlines()
    for line in lines[1:]:
        name, sep, value = line.partition(": ")
        if sep:
            fields[name] = value
    needed = ("seq", "hash", "at", "signed_at", "signer_key", "signer")
    if not lines or lines[0] != HEADER or not marker or any(k not in fields for k in needed) \
            or not fields["seq"].isdigit():
        raise InputError(f"{path} is not a signed mdm checkpoint",
                         "give the file written by `mdm audit checkpoint --sign`")
    key_blob = verify(statement.encode(), marker + rest)
    if public_line(key_blob) != fields["signer_key"] or fingerprint(key_blob) != fields["signer"]:
        raise BadSignature("the checkpoint names a different signer from the key that signed"
                           " it (the file was altered)",
                           "get the checkpoint again from where it was kept")
    return Checkpoint(int(fields["seq"]), fields["hash"], fields["at"], fields["signed_at"],
                      fingerprint(key_blob), fields["signer_key"])


def signer_fingerprint(value: str) -> str:
    """Turn --signer (a fingerprint, a public key line or a .pub file) into a fingerprint."""
    text = value.strip()
    if text.startswith("SHA256:"):
        return text
    path = Path(text)
    if not text.startswith("ssh-") and path.is_file():
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    parts = text.split()
    if len(parts) >= 2 and parts[0] == _KEY_TYPE.decode():
        try:
            return fingerprint(base64.b64decode(parts[1], validate=True))
        except ValueError:
            pass
    raise InputError(f"--signer {value!r} is not a public key",
                     "give a fingerprint (SHA256:…), an `ssh-ed25519 AAAA…` line or a .pub"
                     " file")
