"""The certificate authority's queries: the CA's public line, the certificates issued
(each serial increasing and never reused), the revocation lists built (append-only), and
what each device's sshd was last seen to trust."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mdm.store.db import Database
from mdm.store.devices import SELECTED

_LISTED = ("serial", "operator", "key_id", "principals", "valid_after", "valid_before",
           "issued_at", "revoked_at", "revoke_reason")


# -- the CA --------------------------------------------------------------------------------

def get(db: Database) -> dict[str, Any] | None:
    """The CA's row (public_line, fingerprint, created_at, created_by), or None."""
    found = db.query("SELECT public_line, fingerprint, created_at, created_by FROM ca"
                     " WHERE id = 1")
    return found[0] if found else None


def public_line(db: Database) -> str | None:
    """The CA's public key line, or None if the inventory has no CA."""
    line = db.scalar("SELECT public_line FROM ca WHERE id = 1")
    return None if line is None else str(line)


def fingerprint(db: Database) -> str | None:
    """The CA key's fingerprint, or None if the inventory has no CA."""
    found = db.scalar("SELECT fingerprint FROM ca WHERE id = 1")
    return None if found is None else str(found)


def create(db: Database, line: str, fingerprint: str, at: str, by: str) -> None:
    """Record the inventory's one CA."""
    db.execute("INSERT INTO ca (id, public_line, fingerprint, created_at, created_by)"
               " VALUES (1, ?, ?, ?, ?)", [line, fingerprint, at, by])


# -- certificates --------------------------------------------------------------------------

def next_serial(db: Database) -> int:
    """The serial the next certificate takes: above every serial ever issued."""
    return int(db.scalar(db.dialect.next_serial("certificates", "serial")))


def insert_certificate(db: Database, row: dict[str, Any]) -> None:
    """Record a certificate issued (serial, operator, key_id, principals, key_fingerprint,
    ca_fingerprint, valid_after, valid_before, issued_at)."""
    cols = ("serial", "operator", "key_id", "principals", "key_fingerprint", "ca_fingerprint",
            "valid_after", "valid_before", "issued_at")
    db.execute(f"INSERT INTO certificates ({', '.join(cols)})"
               f" VALUES ({', '.join('?' * len(cols))})", [row[c] for c in cols])


def revocation(db: Database, serial: int) -> tuple[str | None, str | None] | None:
    """When and why certificate `serial` was revoked ((None, None) if it is not), or None
    if the inventory never issued it."""
    row = db.execute("SELECT revoked_at, revoke_reason FROM certificates WHERE serial = ?",
                     [serial]).fetchone()
    return (row[0], row[1]) if row else None


def holder_of(db: Database, serial: int) -> list[tuple[int, str, str | None]]:
    """Certificate `serial` as (serial, operator, revoked_at), if issued."""
    return [(int(r[0]), str(r[1]), r[2]) for r in db.execute(
        "SELECT serial, operator, revoked_at FROM certificates WHERE serial = ?",
        [serial]).fetchall()]


def issued_to(db: Database, operator: str) -> list[tuple[int, str, str | None]]:
    """Every certificate of one operator as (serial, operator, revoked_at), by serial."""
    return [(int(r[0]), str(r[1]), r[2]) for r in db.execute(
        "SELECT serial, operator, revoked_at FROM certificates WHERE operator = ?"
        " ORDER BY serial", [operator]).fetchall()]


def unexpired_serials(db: Database, operator: str, at: str) -> list[int]:
    """The serials of one operator's certificates neither revoked nor expired at `at`."""
    return [int(r[0]) for r in db.execute(
        "SELECT serial FROM certificates WHERE operator = ? AND revoked_at IS NULL"
        " AND valid_before > ? ORDER BY serial", [operator, at]).fetchall()]


def revoke(db: Database, serials: Sequence[int], at: str, by: str, reason: str) -> None:
    """Mark these certificates revoked at `at`."""
    db.execute(f"UPDATE certificates SET revoked_at = ?, revoked_by = ?, revoke_reason = ?"
               f" WHERE serial IN ({', '.join('?' * len(serials))})",
               [at, by, reason, *serials])


def revoked_serials(db: Database) -> list[int]:
    """The serials of every revoked certificate, in order."""
    return [int(r[0]) for r in db.execute(
        "SELECT serial FROM certificates WHERE revoked_at IS NOT NULL ORDER BY serial"
    ).fetchall()]


def listing(db: Database, operator: str | None = None) -> list[dict[str, Any]]:
    """Certificates issued, newest first (one operator's, if named)."""
    sql = f"SELECT {', '.join(_LISTED)} FROM certificates"
    params: list[Any] = []
    if operator:
        sql += " WHERE operator = ?"
        params.append(operator)
    return db.query(sql + " ORDER BY serial DESC", params)


# -- revocation lists ----------------------------------------------------------------------

def latest_krl(db: Database) -> tuple[int, bytes] | None:
    """The latest revocation list as (version, OpenSSH KRL bytes), or None."""
    row = db.execute("SELECT version, krl FROM krls ORDER BY version DESC LIMIT 1").fetchone()
    return (int(row[0]), bytes(row[1])) if row else None


def insert_krl(db: Database, version: int, data: bytes, sha256: str, serials: str, at: str,
               by: str) -> None:
    """Record a revocation list (`serials` as JSON text); call inside a transaction."""
    assert db.in_transaction, "a revocation list is recorded inside store.transaction()"
    db.execute("INSERT INTO krls (version, krl, sha256, serials, created_at, created_by)"
               " VALUES (?, ?, ?, ?, ?, ?)", [version, data, sha256, serials, at, by])


# -- what devices trust --------------------------------------------------------------------

def record_trust(db: Database, device_id: int, ca_fingerprint: str | None, principals: str,
                 plain_keys: Any, krl_version: Any, at: str) -> None:
    """Record what a device's sshd trusts now (one row per device, replaced)."""
    db.execute("INSERT INTO device_trust (device_id, ca_fingerprint, principals, plain_keys,"
               " krl_version, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
               " ON CONFLICT (device_id) DO UPDATE SET ca_fingerprint = excluded.ca_fingerprint,"
               " principals = excluded.principals, plain_keys = excluded.plain_keys,"
               " krl_version = excluded.krl_version, updated_at = excluded.updated_at",
               [device_id, ca_fingerprint, principals, plain_keys, krl_version, at])


def trust_by_device(db: Database) -> dict[int, dict[str, Any]]:
    """Device id → what the inventory last saw its sshd trust."""
    return {r["device_id"]: r for r in db.query("SELECT * FROM device_trust")}


def devices_with_serials(db: Database, serials: Sequence[str]) -> list[dict[str, Any]]:
    """The device rows whose serial is exactly one of these."""
    if not serials:
        return []
    return db.query(f"SELECT * FROM devices WHERE serial IN ({', '.join('?' * len(serials))})",
                    list(serials))


def selected(db: Database, where: str, args: Sequence[Any]) -> list[dict[str, Any]]:
    """The device rows a selection's clause picks (see store.devices), by serial."""
    return db.query(f"SELECT d.* {SELECTED} WHERE {where} ORDER BY d.serial", list(args))


def selected_status(db: Database, where: str, args: Sequence[Any]) -> list[dict[str, Any]]:
    """Id, serial and status of the devices a selection's clause picks, by serial."""
    return db.query(f"SELECT d.id, d.serial, d.status {SELECTED} WHERE {where}"
                    " ORDER BY d.serial", list(args))
