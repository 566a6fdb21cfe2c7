"""What went wrong with the inventory file itself, said in words an operator can act on.

SQLite reports a full disk, a damaged file or a colleague's long write as bare result
codes. These are facts about the machine, not bugs, so they become `MdmError`s that say
which (the disk is full; the file is damaged; pid 4242 holds the write lock) instead of
a traceback or a guess. On Linux the holder of the write lock is read from /proc/locks,
never by opening the lock file (closing a second descriptor on it would drop SQLite's
own POSIX locks).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from mdm.errors import ExitCode, InputError, MdmError

# Primary result codes (https://sqlite.org/rescode.html).
_ERROR, _BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT = 1, 5, 6, 8, 10, 11
_FULL, _CANTOPEN, _NOTADB = 13, 14, 26
# The WAL write lock is byte 120 of the -shm file (WAL_WRITE_LOCK in SQLite's wal.c).
_WAL_WRITE_LOCK = 120


class StoreError(MdmError):
    """The inventory file or its disk failed; nothing was changed (exit 1)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message, hint, ExitCode.PARTIAL)


class NoInventory(InputError):
    """A read command was pointed at a file that holds no inventory (exit 2)."""

    def __init__(self, path: Path | str, why: str = "") -> None:
        super().__init__(f"no inventory at {path}{why}; create one with `mdm operators add`",
                         "if you meant an existing inventory, check --db / MDM_DB")


def primary_code(exc: sqlite3.Error) -> int | None:
    """Return SQLite's primary result code for an exception, if it carries one."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def is_busy(exc: sqlite3.Error) -> bool:
    """Say whether SQLite gave up waiting for another connection's lock."""
    return primary_code(exc) in (_BUSY, _LOCKED)


def busy_error(path: Path, wait: float) -> StoreError:
    """Return the error for a write that waited its whole limit."""
    pid = writer_pid(path)
    who = f"another mdm write (pid {pid})" if pid else "another mdm write"
    return StoreError(f"the inventory is busy: {who} held it for more than {wait:g} s;"
                      " nothing was changed",
                      "run the command again when it has finished, or wait longer with"
                      " --wait SECONDS")


def translate(exc: sqlite3.Error, path: Path, wait: float) -> MdmError | None:
    """Return the operator-facing error for a failure of the file or its disk, else None."""
    code = primary_code(exc)
    if code == _FULL:
        return StoreError(f"the disk holding the inventory is full ({path});"
                          " nothing was changed",
                          "free some space on that disk, then run the command again")
    if code in (_CORRUPT, _NOTADB):
        return StoreError(f"the inventory file {path} is damaged ({exc})",
                          "stop writing to it; restore it from a backup, and run"
                          " `mdm audit verify` on the copy you keep")
    if code == _IOERR:
        return StoreError(f"the disk holding the inventory {path} reported an I/O error"
                          f" ({exc}); nothing was changed",
                          "check the disk (and that the file is not on a network share),"
                          " then run the command again")
    if code == _READONLY:
        return StoreError(f"the inventory {path} is read-only for you ({exc})",
                          "ask for write access to the file and its folder")
    if code == _CANTOPEN:
        return StoreError(f"cannot open the inventory {path} ({exc})",
                          "check that the file and its folder exist and are yours to write")
    if code in (_BUSY, _LOCKED):
        return busy_error(path, wait)
    if code == _ERROR and str(exc).startswith(("no such table", "no such column")):
        return StoreError(f"the inventory {path} is missing part of its schema ({exc}):"
                          " it was damaged or altered outside mdm",
                          "run `mdm audit verify`, and restore the file from a backup")
    return None


def writer_pid(path: Path) -> int | None:
    """Return the pid of another process holding the inventory's write lock (Linux only)."""
    try:
        st = os.stat(f"{path}-shm")
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in lines:
        fields = line.split()
        # "1: POSIX  ADVISORY  WRITE 4242 fe:00:2180486 120 120"; blocked waiters have "->"
        if len(fields) >= 8 and fields[1] != "->" and fields[3] == "WRITE" \
                and fields[5] == device and fields[6] == str(_WAL_WRITE_LOCK):
            pid = int(fields[4]) if fields[4].isdigit() else 0
            if pid and pid != os.getpid():
                return pid
    return None


def is_constraint(exc: BaseException) -> bool:
    """Say whether a database refused a write for breaking a constraint (either backend).

    sqlite3.IntegrityError, or psycopg's IntegrityError family, without importing psycopg.
    The triggers that keep history append-only count too (psycopg raises them as
    restrict_violation, an IntegrityError; SQLite's RAISE(ABORT) as IntegrityError).
    """
    return any(cls.__name__ == "IntegrityError" for cls in type(exc).__mro__)
