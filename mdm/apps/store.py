"""The build store: APK files kept once each, by sha256, in a folder beside the inventory.

Builds never go into SQLite: the folder (`builds` in mdm.toml, default `builds/` beside
the inventory) holds one read-only file per build, named by its sha256. A build is copied
in streamed (never whole in memory) to a temporary name in that folder, hashed as it goes,
fsynced, then checked (`apk.read`) and only then renamed into place, so a bad file leaves nothing
behind. Before a build is sent anywhere it is hashed again (`verified`): a file altered
on disk since it was registered is refused and named.
"""

from __future__ import annotations

import hashlib
import os
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mdm.apps import apk
from mdm.errors import InputError, MdmError

CHUNK = 1 << 20


def path_of(folder: Path, sha256: str) -> Path:
    """Return where the build with this sha256 is kept."""
    return folder / f"{sha256}.apk"


def _source(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file", "check the path of the .apk file",
                         where=str(path))
    if not path.is_file():
        raise InputError(f"{path}: not a regular file", "give the path of an .apk file",
                         where=str(path))


@contextmanager
def staged(folder: Path, source: Path) -> Iterator[tuple[Path, str, int]]:
    """Copy a file into the store under a temporary name; yield it, its sha256 and size.

    The temporary file is removed when the block ends unless `keep` moved it.
    """
    _source(source)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the build store {folder}: {exc.strerror}",
                         "check `builds` in mdm.toml (or MDM_BUILDS)") from None
    tmp = folder / f".incoming-{uuid.uuid4().hex}"
    digest = hashlib.sha256()
    size = 0
    try:
        with source.open("rb") as src, tmp.open("xb") as dst:
            while chunk := src.read(CHUNK):
                size += len(chunk)
                if size > apk.MAX_SIZE:
                    raise InputError(f"{source}: more than {apk.MAX_SIZE:,} bytes, more than"
                                     " an APK may have; nothing was stored", apk.HINT)
                digest.update(chunk)
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        yield tmp, digest.hexdigest(), size
    except OSError as exc:
        raise InputError(f"cannot copy {source} into {folder}: {exc.strerror or exc}",
                         "check the file and that the disk has room") from None
    finally:
        tmp.unlink(missing_ok=True)


def keep(folder: Path, tmp: Path, sha256: str) -> bool:
    """Rename a staged build into place, read-only; False if an identical one was there."""
    final = path_of(folder, sha256)
    if final.exists() and file_sha256(final) == sha256:
        return False
    os.chmod(tmp, stat.S_IRUSR | stat.S_IRGRP)  # 0440: builds are immutable
    os.replace(tmp, final)
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def file_sha256(path: Path) -> str:
    """Hash a file, streamed."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class BuildAltered(MdmError):
    """A stored build's bytes are not the ones registered: refused before any device."""


def verified(folder: Path, sha256: str, label: str) -> Path:
    """Re-hash a stored build; return its path, or refuse (exit 2) if missing or altered."""
    path = path_of(folder, sha256)
    try:
        seen = file_sha256(path)
    except OSError as exc:
        raise BuildAltered(f"build {label} is missing from the store ({path}:"
                           f" {exc.strerror}); nothing was sent",
                           "add the same .apk again with mdm apps add", where=str(path)) from None
    if seen != sha256:
        raise BuildAltered(f"build {label} was altered on disk since it was registered"
                           f" ({path} now has sha256 {seen[:16]}…, registered"
                           f" {sha256[:16]}…); nothing was sent",
                           "find out who changed it; then remove the file and add the"
                           " original .apk again with mdm apps add", where=str(path))
    return path
