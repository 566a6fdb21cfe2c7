"""Read what an APK says about itself: package, versions, minimum SDK and its signers.

Everything is read from the file, offline, with `apk-info` (a parser written in Rust that
reads the binary manifest and the v1, v2, v3 and v3.1 signing blocks; no dependencies).
The file is hostile until proven otherwise, so before that parser sees it, Python's own
zip reader checks its central directory against caps: size, number of entries, how much
it would inflate to and by what ratio (a zip bomb is refused without inflating a byte).
mdm records each signing certificate's SHA-256 fingerprint; whether the signatures hold
is for the device to judge (Android's package manager verifies them on install).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from mdm.errors import InputError

MAX_SIZE = 1 << 30  # bytes an APK may have (Google Play's limit for a base APK is lower)
MAX_ENTRIES = 20_000
MAX_INFLATED = 4 << 30  # bytes all entries may inflate to
MAX_RATIO = 200  # how far one entry of more than RATIO_FROM bytes may inflate
RATIO_FROM = 1 << 20
MAX_MANIFEST = 4 << 20  # bytes the binary AndroidManifest.xml may inflate to
# Signing schemes, newest first: a build's signer is the one its newest scheme names.
SCHEMES = ("V31", "V3", "V2", "V1")

HINT = "give the signed .apk file your build produced (apksigner verify checks it)"


@dataclass(frozen=True)
class ApkInfo:
    """What an APK says about itself."""

    package: str
    version_code: int
    version_name: str | None
    min_sdk: int
    signer: str  # the signing certificates' SHA-256 fingerprints, sorted, comma-joined
    certificates: dict[str, list[str]] = field(default_factory=dict)  # scheme → fingerprints


def _refuse(path: Path, why: str, hint: str = HINT) -> InputError:
    return InputError(f"{path}: {why}; nothing was stored", hint, where=str(path))


def check_zip(path: Path, shown: Path | None = None) -> None:
    """Refuse a file that is not a sound zip, or that would inflate past the caps.

    `shown` is the name messages give the file (the user's, not a staged copy's).
    """
    label = shown or path
    size = path.stat().st_size
    if size == 0:
        raise _refuse(label, "the file is empty (0 bytes)")
    if size > MAX_SIZE:
        raise _refuse(label, f"{size:,} bytes is more than an APK may have ({MAX_SIZE:,})")
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _refuse(label, f"not an APK: it is not a readable zip archive ({exc})"
                      " — truncated, or some other kind of file") from None
    if len(entries) > MAX_ENTRIES:
        raise _refuse(label, f"{len(entries):,} entries, more than {MAX_ENTRIES:,}")
    inflated = 0
    for entry in entries:
        inflated += entry.file_size
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > RATIO_FROM and ratio > MAX_RATIO:
            raise _refuse(label, f"entry {entry.filename[:80]!r} would inflate {ratio:,.0f}-fold"
                          f" to {entry.file_size:,} bytes (a zip bomb?)")
        if entry.filename == "AndroidManifest.xml" and entry.file_size > MAX_MANIFEST:
            raise _refuse(label, f"its manifest would inflate to {entry.file_size:,} bytes")
    if inflated > MAX_INFLATED:
        raise _refuse(label, f"its entries would inflate to {inflated:,} bytes")
    if not any(e.filename == "AndroidManifest.xml" for e in entries):
        raise _refuse(label, "not an APK: the zip has no AndroidManifest.xml")


def read(path: Path, shown: Path | None = None) -> ApkInfo:
    """Read an APK's identity and signers; refuse (exit 2) anything that is not a signed APK."""
    label = shown or path
    check_zip(path, shown)
    from apk_info import APK, APKError, Signature

    try:
        apk = APK(str(path))
        package = apk.get_package_name()
        code = apk.get_version_code()
        name = apk.get_version_name()
        min_sdk = apk.get_min_sdk_version()
        signatures = apk.get_signatures()
    except (APKError, ValueError, OSError) as exc:
        raise _refuse(label, f"not a readable APK ({str(exc)[:200]})") from None
    if not package:
        raise _refuse(label, "its manifest names no package")
    try:
        version_code = int(code or "")
    except ValueError:
        raise _refuse(label, f"its versionCode {str(code)[:40]!r} is not a number") from None
    if not 0 < version_code < 1 << 31:
        raise _refuse(label, f"its versionCode {version_code} is out of range")
    try:
        sdk = int(min_sdk or "1")  # no <uses-sdk>: Android takes API level 1
    except ValueError:
        raise _refuse(label, f"its minSdkVersion {str(min_sdk)[:40]!r} is not a number"
                      " (a codename build is not for the field)") from None
    certificates: dict[str, list[str]] = {}
    for signature in signatures:
        if not isinstance(signature, Signature.V1 | Signature.V2 | Signature.V3
                          | Signature.V31):
            continue  # source stamps, channel blocks: not who signed the app
        scheme = type(signature).__name__
        if scheme in SCHEMES:
            prints = sorted({c.sha256_fingerprint.lower() for c in signature.certificates})
            if prints:
                certificates[scheme] = prints
    if not certificates:
        raise _refuse(label, "the APK is not signed", "sign it with apksigner, then add it")
    newest = next(s for s in SCHEMES if s in certificates)
    return ApkInfo(package, version_code, name or None, sdk,
                   ",".join(certificates[newest]), certificates)
