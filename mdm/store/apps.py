"""The app queries: registered builds, their releases to channels, and install events."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from mdm.store.db import Database

# -- builds ----------------------------------------------------------------------------------

def build(db: Database, sha256: str) -> dict[str, Any] | None:
    """One registered build by its sha256, or None."""
    rows = db.query("SELECT * FROM app_builds WHERE sha256 = ?", [sha256])
    return rows[0] if rows else None


def build_of(db: Database, package: str, version_code: int) -> dict[str, Any] | None:
    """One registered build by package and versionCode, or None."""
    rows = db.query("SELECT * FROM app_builds WHERE package = ? AND version_code = ?",
                    [package, version_code])
    return rows[0] if rows else None


def signers(db: Database, package: str) -> list[str]:
    """The distinct signers of a package's registered builds, the first registered first."""
    return [r[0] for r in db.execute("SELECT signer FROM app_builds WHERE package = ?"
                                     " GROUP BY signer ORDER BY MIN(added_at), signer",
                                     [package])]


def insert_build(db: Database, row: Mapping[str, Any]) -> None:
    """Register a build (its columns as keys)."""
    db.execute(f"INSERT INTO app_builds ({', '.join(row)}) VALUES"
               f" ({', '.join('?' for _ in row)})", list(row.values()))


def version_codes(db: Database, package: str) -> list[int]:
    """The versionCodes of a package's registered builds, lowest first."""
    return [r[0] for r in db.execute("SELECT version_code FROM app_builds WHERE"
                                     " package = ? ORDER BY version_code", [package])]


def has_package(db: Database, package: str) -> bool:
    """Say whether any build of a package is registered."""
    return bool(db.scalar("SELECT 1 FROM app_builds WHERE package = ?", [package]))


def iter_builds(db: Database, package: str | None) -> Iterator[dict[str, Any]]:
    """Every registered build (of one package, if given), by package then newest first."""
    where, args = ("WHERE package = ?", [package]) if package else ("", [])
    return db.iter_query(f"SELECT * FROM app_builds {where}"
                         " ORDER BY package, version_code DESC", args)


def sizes(db: Database) -> dict[str, int]:
    """Every registered build's size, by sha256."""
    return dict(db.execute("SELECT sha256, size FROM app_builds"))


def build_signers(db: Database) -> Iterator[tuple[str, int, str]]:
    """(package, versionCode, signer) of every registered build."""
    return iter(db.execute("SELECT package, version_code, signer FROM app_builds"))


# -- releases --------------------------------------------------------------------------------

def any_release(db: Database) -> bool:
    """Say whether any build was ever released."""
    return bool(db.scalar("SELECT 1 FROM app_releases LIMIT 1"))


def releases(db: Database) -> list[dict[str, Any]]:
    """Every release with its build's versionCode, name and signer, oldest first."""
    return db.query("SELECT r.*, b.version_code, b.version_name, b.signer FROM app_releases r"
                    " JOIN app_builds b ON b.sha256 = r.sha256 ORDER BY r.id")


def release_history(db: Database, package: str) -> list[dict[str, Any]]:
    """Every release of one package to any channel, oldest first."""
    return db.query("SELECT r.channel, b.version_code, b.version_name, r.sha256,"
                    " r.released_at, r.released_by, r.rollback, r.reason"
                    " FROM app_releases r JOIN app_builds b ON b.sha256 = r.sha256"
                    " WHERE r.package = ? ORDER BY r.id", [package])


def channel_history(db: Database, package: str, channel: str) -> list[dict[str, Any]]:
    """The builds (sha256, versionCode) released of a package to one channel, oldest first."""
    return db.query("SELECT r.sha256, b.version_code FROM app_releases r JOIN app_builds b"
                    " ON b.sha256 = r.sha256 WHERE r.package = ? AND r.channel = ?"
                    " ORDER BY r.id", [package, channel])


def insert_release(db: Database, package: str, channel: str, sha256: str, at: str, by: str,
                   rollback: bool, reason: str | None) -> None:
    """Release a build to a channel (or roll the channel back to it)."""
    db.execute("INSERT INTO app_releases (package, channel, sha256, released_at,"
               " released_by, rollback, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
               [package, channel, sha256, at, by, int(rollback), reason])


# -- devices ---------------------------------------------------------------------------------

def any_managed(db: Database) -> bool:
    """Say whether any device is enrolled or provisioned."""
    return bool(db.scalar(
        "SELECT 1 FROM devices WHERE status IN ('enrolled', 'provisioned') LIMIT 1"))


def installed_packages(db: Database) -> dict[int, str]:
    """Each device's installed packages as last collected (JSON text), by device id."""
    return dict(db.execute("SELECT device_id, packages FROM device_facts"))


def sdks(db: Database) -> dict[str, Any]:
    """Each device's Android SDK level as last collected, by serial."""
    return {serial: sdk for serial, sdk in db.execute(
        "SELECT d.serial, f.sdk FROM devices d JOIN device_facts f ON f.device_id = d.id")}


def add_event(db: Database, device_id: int, package: str, sha256: str, event: str, at: str,
              detail: str) -> None:
    """Record an install event of a device (detail as JSON text)."""
    db.execute("INSERT INTO app_events (device_id, package, sha256, event, at, detail)"
               " VALUES (?, ?, ?, ?, ?, ?)", [device_id, package, sha256, event, at, detail])


def set_packages(db: Database, device_id: int, packages: str) -> None:
    """Record a device's installed packages (JSON text)."""
    db.execute("UPDATE device_facts SET packages = ? WHERE device_id = ?", [packages, device_id])

