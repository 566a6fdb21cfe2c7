"""Small helpers for asserting on the inventory file itself."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any


def _pg(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


def db_fingerprint(path: Path | str) -> tuple[str, dict[str, int]]:
    """Return the file's sha256 (after folding in the WAL) and each table's row count.

    For a PostgreSQL inventory (a URL): a sha256 of every table's rows in order instead.
    """
    if isinstance(path, str):
        with _pg(path) as pg:
            tables = [r[0] for r in pg.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema() ORDER BY table_name")]
            digest, counts = hashlib.sha256(), {}
            for t in tables:
                found = [r[0] for r in pg.execute(
                    f'SELECT t::text FROM "{t}" t ORDER BY t::text COLLATE "C"')]
                counts[t] = len(found)
                digest.update(f"{t}\n{chr(10).join(found)}\n".encode())
            return digest.hexdigest(), counts
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    counts = {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
    conn.close()
    return hashlib.sha256(path.read_bytes()).hexdigest(), counts


def inventory_bytes(path: Path | str) -> bytes:
    """Return all the inventory holds: the SQLite file with its journal and WAL, or every
    row of every table of a PostgreSQL database as text (a secret stored in any column
    shows in either)."""
    if isinstance(path, str):
        with _pg(path) as pg:
            tables = [r[0] for r in pg.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema() ORDER BY table_name")]
            return "\n".join(r[0] for t in tables
                             for r in pg.execute(f'SELECT t::text FROM "{t}" t')).encode()
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def rows(path: Path | str, sql: str,
         args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Run a statement against the inventory file (or PostgreSQL database) directly and
    commit it; return the rows it gives."""
    if isinstance(path, str):
        with _pg(path) as pg:
            cur = pg.execute(
                sql.replace("%", "%%").replace("?", "%s") if args else sql, args or None)
            return [tuple(r) for r in cur] if cur.description else []
    conn = sqlite3.connect(path)
    try:
        found = conn.execute(sql, args).fetchall()
        conn.commit()  # a statement that writes is kept, as on PostgreSQL
        return found
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


class Raw:
    """A plain connection to the inventory on either backend (`?` placeholders), as another
    writer of facts would hold one; a `with` block commits."""

    def __init__(self, db_path: Path | str) -> None:
        self.pg = isinstance(db_path, str)
        if self.pg:
            import psycopg

            self.conn: Any = psycopg.connect(str(db_path))
        else:
            self.conn = sqlite3.connect(db_path)

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        if self.pg:
            return self.conn.execute(sql.replace("?", "%s"), args or None)
        return self.conn.execute(sql, args)

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if self.pg:
            self.conn.cursor().executemany(sql.replace("?", "%s"), rows)
        else:
            self.conn.executemany(sql, rows)

    def commit(self) -> None:
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Raw:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is None:
            self.conn.commit()
        else:
            self.conn.rollback()


PROGRESS = ("officer_id, area, district, station, team, worker_type, rank, eligible, grouped,"
            " device_id, allocated, enrolled, provisioned, trained, handed_over, failed,"
            " handed_on, serial, judged_key, judged_compliant, judged_until")


def progress_drift(path: Path | str) -> list[str]:
    """Compare each person's kept rollout progress (rollout_progress, kept by the inventory's
    triggers: the funnel's stages, m018; the held device's serial and matching judgement,
    m019) with the same worked out here, in Python, from the base tables; return every
    row that is not in both (kept rows prefixed `kept`, worked-out rows `expected`)."""
    held = {o: (a, d) for a, d, o in rows(
        path, "SELECT id, device_id, officer_id FROM assignments WHERE closed_at IS NULL")}
    status: dict[Any, Any] = {d: s for d, s in rows(path, "SELECT id, status FROM devices")}
    trained = {o for (o,) in rows(path, "SELECT officer_id FROM training")}
    grouped = {o for (o,) in rows(path, "SELECT officer_id FROM group_members")}
    handed: dict[Any, Any] = {a: at for a, at in rows(
        path, "SELECT assignment_id, handed_over_at FROM handovers")}
    latest: dict[Any, Any] = {}
    for device, result in rows(path, "SELECT device_id, result FROM provision_steps ORDER BY id"):
        latest[device] = result
    held_device: dict[Any, Any] = {d: tuple(r) for d, *r in rows(
        path, "SELECT id, serial, status, last_seen, last_contact_error FROM devices")}
    judged: dict[Any, Any] = {d: tuple(r) for d, *r in rows(
        path, "SELECT device_id, policy_key, status, last_seen, last_contact_error,"
        " compliant, valid_until FROM device_judgements")}

    def judgement(device: Any) -> tuple[Any, ...]:
        """The device's serial and its stored judgement where it still matches it."""
        if device is None:
            return (None, None, None, None)
        serial, state, seen, error = held_device[device]
        key, j_state, j_seen, j_error, compliant, until = judged.get(device, (None,) * 6)
        if key is None or (j_state == "quarantined") != (state == "quarantined") \
                or j_seen != seen or j_error != error:
            return (serial, None, None, None)
        return (serial, key, compliant, until)

    expected = set()
    for (oid, area, district, station, team, worker_type, rank, state, device_eligible,
         pnb_required) in rows(path, "SELECT officer_id, area, district, station, team,"
                               " worker_type, rank, status, device_eligible, pnb_required"
                               " FROM officers"):
        flag = next((f for f in (device_eligible, pnb_required) if f is not None),
                    None if worker_type is None else int(worker_type != "STAFF"))
        eligible = int(state is not None and state != "LEAVER" and flag is not None
                       and flag != 0)
        assignment, device = held.get(oid, (None, None))
        state_of: Any = status.get(device)
        at: Any = handed.get(assignment) if assignment is not None else None
        expected.add((oid, area, district, station, team, worker_type, rank, eligible,
                      int(oid in grouped), device,
                      int(assignment is not None),
                      int(state_of in ("enrolled", "provisioned")),
                      int(state_of == "provisioned"), int(oid in trained),
                      int(assignment is not None and assignment in handed),
                      int(device is not None and latest.get(device) == "failed"),
                      (at[:10] or None) if at is not None else None, *judgement(device)))
    kept = {tuple(r) for r in rows(path, f"SELECT {PROGRESS} FROM rollout_progress")}
    return sorted([f"kept {r!r}" for r in kept - expected]
                  + [f"expected {r!r}" for r in expected - kept])
