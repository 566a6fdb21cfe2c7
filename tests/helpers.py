"""Small helpers for asserting on the inventory file itself."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path


def db_fingerprint(path: Path) -> tuple[str, dict[str, int]]:
    """Return the file's sha256 (after folding in the WAL) and each table's row count."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    counts = {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
    conn.close()
    return hashlib.sha256(path.read_bytes()).hexdigest(), counts


def rows(path: Path, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Run a query against the inventory file directly."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def device_processes(home: Path) -> list[int]:
    """Return the PIDs of processes running as a lab device (HOME is its folder)."""
    marker = f"HOME={home}".encode() + b"\0"
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes() and \
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                out.append(int(entry.name))
        except (OSError, IndexError):
            continue
    return out
