"""Read, verify and checkpoint the hash-chained audit log."""

from __future__ import annotations

import json
import os
import re
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mdm.errors import ExitCode, InputError, MdmError
from mdm.fleet.keys import fingerprint
from mdm.store import audit, auditlog
from mdm.store.db import Database
from mdm.timeutil import now, parse_instant

if TYPE_CHECKING:
    from mdm.audit import signing

_CHECKPOINT = re.compile(r"^(\d+):([0-9a-f]{64})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _one_of(option: str, value: str, allowed: list[str]) -> str:
    """Return the allowed value `value` names (case-insensitively), or refuse listing them."""
    for candidate in allowed:
        if candidate.lower() == value.strip().lower():
            return candidate
    shown = ", ".join(allowed[:30]) + (f" and {len(allowed) - 30} more"
                                       if len(allowed) > 30 else "")
    raise InputError(f"{option} {value!r} does not appear in this inventory's audit log",
                     f"use one of: {shown}" if allowed else "the audit log is empty")


def _bound(option: str, text: str, end_of_day: bool) -> str:
    """Parse --since/--until; a date alone means the start (or the end) of that local day."""
    raw = text.strip()
    if _DATE.match(raw) and end_of_day:
        try:
            raw = (date.fromisoformat(raw) + timedelta(days=1)).isoformat()
        except ValueError:
            pass  # parse_instant explains the bad date
        return parse_instant(raw, option)
    return parse_instant(raw, option)


def log(db: Database, subject: str | None = None, limit: int | None = None,
        operator: str | None = None, action: str | None = None, since: str | None = None,
        until: str | None = None) -> list[dict[str, Any]]:
    """Return audit rows, oldest first, filtered by subject, operator, action and time."""
    if operator is not None:
        operator = _one_of("--operator", operator, auditlog.operator_names(db))
    name = family = None
    if action is not None:
        actions = auditlog.actions(db)
        families = sorted({a.split(".")[0] for a in actions} - set(actions))
        name = _one_of("--action", action, actions + families)
        if name not in actions:  # a family: custody matches custody.assign, custody.unassign …
            name, family = None, name
    start = _bound("--since", since, False) if since else None
    end = _bound("--until", until, True) if until else None
    if start and end and start > end:
        raise InputError(f"--since {since} is after --until {until}",
                         "give the earlier time to --since")
    # "R58F…" matches "device:R58F…"; "device:R58F…" matches itself
    rows = auditlog.rows(db, subject=subject, operator=operator, action=name, family=family,
                         since=start, until=end,
                         until_exclusive=bool(until and _DATE.match(until.strip())),
                         limit=limit)
    for r in rows:
        for k in ("before", "after"):
            r[k] = json.loads(r[k]) if r[k] else None
    return rows


def parse_checkpoint(text: str) -> tuple[int, str]:
    """Parse SEQ:HASH as printed by `mdm audit checkpoint`."""
    match = _CHECKPOINT.match(text.strip())
    if not match:
        raise InputError(f"--checkpoint {text!r} is not SEQ:HASH",
                         "use the value printed by `mdm audit checkpoint`, e.g. 42:3fa9…")
    return int(match.group(1)), match.group(2)


def verify(db: Database, checkpoint: str | None = None,
           signer: str | None = None) -> dict[str, Any]:
    """Prove the chain and the evidential rows, up to a checkpoint (SEQ:HASH or a signed file)."""
    from mdm.audit import signing  # only a signed checkpoint needs it

    signed: signing.Checkpoint | None = None
    cp: tuple[int, str] | None = None
    if checkpoint is None:
        if signer:
            raise InputError("--signer needs --checkpoint FILE",
                             "give the file written by `mdm audit checkpoint --sign`")
    elif _CHECKPOINT.match(checkpoint.strip()):
        if signer:
            raise InputError("--signer needs a signed checkpoint file (SEQ:HASH carries no"
                             " signature)", "give the file written by"
                                            " `mdm audit checkpoint --sign`")
        cp = parse_checkpoint(checkpoint)
    elif Path(checkpoint).is_file():
        signed = signing.read(Path(checkpoint))
        if signer and signing.signer_fingerprint(signer) != signed.signer:
            raise signing.BadSignature(
                f"the checkpoint was signed by {signed.signer}, not by the --signer"
                f" {signing.signer_fingerprint(signer)}",
                "treat it as forged unless you trust its signer's key")
        cp = (signed.seq, signed.hash)
    else:
        raise InputError(f"--checkpoint {checkpoint!r} is not SEQ:HASH, nor a checkpoint file",
                         "give the SEQ:HASH printed by `mdm audit checkpoint`, or the file"
                         " written by `mdm audit checkpoint --sign`")
    result = audit.verify(db, cp)
    if not result.ok:
        raise Tampered(result)
    _check_file(db)  # the log is sound: is every other page of the file?
    out = result.as_dict()
    if signed:
        out["checkpoint"] = {"seq": signed.seq, "hash": signed.hash, "at": signed.at,
                             "signed_at": signed.signed_at, "signer": signed.signer}
    elif cp:
        out["checkpoint"] = {"seq": cp[0], "hash": cp[1]}
    return out


def _check_file(db: Database) -> None:
    """Refuse a file SQLite itself finds damaged (any page, not only the log's): exit 1."""
    found = audit.integrity(db)
    if found != ["ok"]:
        raise MdmError("the inventory file is damaged: " + "; ".join(map(str, found))[:400],
                       "stop writing to the file and restore it from a backup; check the"
                       " copy with `mdm audit verify`", ExitCode.PARTIAL)


class Tampered(MdmError):
    """The log or the rows it vouches for do not verify: exit 1 and say where."""

    def __init__(self, result: audit.VerifyResult) -> None:
        lines = []
        if result.first_bad_seq is not None:
            lines.append(f"the audit chain is broken at row {result.first_bad_seq}:"
                         f" {result.reason}")
        elif result.reason:
            lines.append(result.reason)
        if result.state:
            more = result.state_problems - 1
            lines.append(f"state mismatch: {result.state.table} {result.state.label}:"
                         f" {result.state.reason}" + (f" (and {more} more)" if more else ""))
        if result.safeguards_missing:
            lines.append("safeguard triggers removed: " + ", ".join(result.safeguards_missing))
        damaged = "is damaged" in result.reason
        super().__init__("; ".join(lines),
                         "stop writing to the file and restore it from a backup; check the"
                         " copy with `mdm audit verify`" if damaged else
                         "treat the inventory as tampered with; compare it with a backup and"
                         " your signed checkpoints", ExitCode.PARTIAL)
        self.result = result.as_dict()


ChainBroken = Tampered  # the name earlier code used


def checkpoint(db: Database) -> dict[str, Any]:
    """Return the head of the chain, to record outside the inventory."""
    seq, digest = audit.head(db)
    return {"checkpoint": f"{seq}:{digest}", "seq": seq, "hash": digest,
            "at": auditlog.at_of(db, seq)}


def signed_checkpoint(db: Database, key_path: Path, passphrase: str | None) -> dict[str, Any]:
    """Sign the chain's head with an ed25519 key kept outside the inventory."""
    from mdm.audit import signing

    key, key_blob = signing.load_signing_key(key_path, passphrase)
    result = audit.verify(db)
    if not result.ok:  # never vouch for a log that does not verify
        raise Tampered(result)
    at = auditlog.at_of(db, result.head_seq)
    fields = {"seq": str(result.head_seq), "hash": result.head_hash, "at": at or "",
              "signed_at": now()}
    text = signing.render(fields, key, key_blob)
    return {"checkpoint": f"{result.head_seq}:{result.head_hash}", "seq": result.head_seq,
            "hash": result.head_hash, "at": at, "signed_at": fields["signed_at"],
            "signer": fingerprint(key_blob), "text": text}


def write_new(path: Path, text: str) -> None:
    """Write a checkpoint file whole, never over an existing file."""
    import tempfile

    if path.exists() or path.is_symlink():
        raise InputError(f"{path} already exists", "choose a new name: a checkpoint is never"
                                                   " overwritten")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent or Path("."), prefix=".checkpoint-")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}",
                         "choose a folder you can write to") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # a checkpoint is public: only its signer's key is secret
        os.link(tmp, path)  # fails, rather than replaces, if the name was taken meanwhile
    except FileExistsError:
        raise InputError(f"{path} already exists", "choose a new name") from None
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}",
                         "check the folder and the free space on its disk") from None
    finally:
        os.unlink(tmp)
