"""Write the files mdm hands to people (exports, error lists): whole, private, never via a link.

An export holds names, payroll numbers and e-mail addresses, and its writing may be
recorded as a disclosure. So the data goes to a temporary file in the target's own
folder, is fsynced, and only then renamed into place: a reader never sees half a file,
and a full disk or a bad path leaves nothing behind. The file is created 0600 whatever
the umask. A symbolic link, a folder or a device is refused; an existing file is replaced
only when the caller says so (`--force`).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from mdm.errors import InputError

MODE = 0o600
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _refuse(path: Path, why: str, hint: str) -> InputError:
    return InputError(f"cannot write {path}: {why}", hint)


def check_target(path: Path, force: bool = False) -> None:
    """Refuse a target that is a link, a folder, a device or (without force) a file."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise _refuse(path, exc.strerror or str(exc), "choose another file name") from None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise _refuse(path, "it is a symbolic link, and mdm never writes through one",
                          "give the real path of a new file")
        if stat.S_ISDIR(st.st_mode):
            raise _refuse(path, "it is a folder", f"give a file name, e.g. {path / 'export'}")
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(path, "it is not a regular file (a device, pipe or socket)",
                          "give the path of a new file; leave out -o to write to stdout")
        if not force:
            raise _refuse(path, "the file already exists", "add --force to replace it")
    folder = path.parent
    if not folder.is_dir():
        raise _refuse(path, f"there is no folder {folder}",
                      "create the folder first, or choose another path")


def _io_error(path: Path, exc: OSError) -> InputError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return _refuse(path, "the disk is full", "free some space and export again")
    return _refuse(path, exc.strerror or str(exc), "check the folder and its permissions")


def _write_temp(path: Path, data: bytes) -> Path:
    tmp = path.parent / f".{path.name}.{os.urandom(4).hex()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | os.O_CLOEXEC,
                     MODE)
    except OSError as exc:
        raise _io_error(path, exc) from None
    try:
        os.fchmod(fd, MODE)  # the umask may have taken bits away; never adds any
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        with suppress(OSError):
            os.unlink(tmp)
        raise _io_error(path, exc) from None
    os.close(fd)
    return tmp


def _move(tmp: Path, path: Path, force: bool) -> None:
    """Rename the temp file into place; without force, never over an existing name."""
    try:
        if force:
            os.replace(tmp, path)  # replaces a name, never follows a link
            return
        try:
            os.link(tmp, path)  # atomic "create if absent": fails if anything has the name
        except FileExistsError:
            raise _refuse(path, "the file already exists", "add --force to replace it") from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            if os.path.lexists(path):  # a filesystem without hard links: check, then rename
                raise _refuse(path, "the file already exists",
                              "add --force to replace it") from None
            os.rename(tmp, path)
            return
    except OSError as exc:
        raise _io_error(path, exc) from None
    with suppress(OSError):  # the data is in place under its name; the spare name can go
        os.unlink(tmp)


def _sync_folder(folder: Path) -> None:
    with suppress(OSError):  # not every filesystem lets a folder be fsynced
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextmanager
def staged(path: Path, data: bytes, force: bool = False) -> Iterator[Callable[[], None]]:
    """Write data beside path and yield `place()`, which renames it into place.

    If the block raises (after `place()` or not), the file is removed, so a caller can
    place the file and then record it, knowing a failed record leaves no file behind.
    """
    check_target(path, force)
    tmp = _write_temp(path, data)
    placed = False

    def place() -> None:
        nonlocal placed
        _move(tmp, path, force)
        placed = True
        _sync_folder(path.parent)

    try:
        yield place
    except BaseException:
        with suppress(OSError):
            os.unlink(path if placed else tmp)
        raise
    finally:
        if not placed:
            with suppress(OSError):
                os.unlink(tmp)


def write(path: Path, data: bytes, force: bool = False) -> None:
    """Write a whole file atomically, 0600, refusing links, folders and (unless force) files."""
    with staged(path, data, force) as place:
        place()
