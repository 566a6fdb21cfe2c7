"""Which build each release channel runs, as the policy compiler and compliance need it.

A device follows one channel (`apps.channel` in its effective policy; `stable` unless a
layer says otherwise). For a package that `follows_channel`, the build released to the
device's channel is what it must run; a channel with no release of its own of that
package, and a package that does not follow channels, fall back to the `stable` release.
A device is compliant with the released build, or with a newer registered build of the
same signer that was not rolled back from its channel; anything else is named.

This module reads the inventory only and knows no other feature, so the policy compiler
can ask it without an import circle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mdm.store import apps as app_rows
from mdm.store.db import Database

STABLE = "stable"


@dataclass(frozen=True)
class Release:
    """One app build released to one channel."""

    package: str
    channel: str
    sha256: str
    version_code: int
    version_name: str | None
    signer: str
    released_at: str
    released_by: str
    rollback: bool
    reason: str | None


@dataclass
class Releases:
    """Every channel's current release, what was rolled back, and every registered build."""

    current: dict[tuple[str, str], Release] = field(default_factory=dict)  # (channel, pkg)
    withdrawn: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    signers: dict[tuple[str, int], str] = field(default_factory=dict)  # (pkg, code) → signer

    def for_device(self, channel: str, package: str, follows: bool) -> Release | None:
        """Return the release a device on `channel` must run for a package (None: none)."""
        if follows and (channel, package) in self.current:
            return self.current[(channel, package)]
        return self.current.get((STABLE, package))

    def track_map(self) -> dict[str, dict[str, int]]:
        """Return channel → package → released versionCode, for the policy compiler."""
        out: dict[str, dict[str, int]] = {}
        for (channel, package), release in self.current.items():
            out.setdefault(channel, {})[package] = release.version_code
        return out

    def reasons(self, channel: str, apps: dict[str, dict[str, Any]],
                packages: dict[str, int]) -> list[dict[str, str]]:
        """Return why a device's installed builds are not what its channel releases.

        Older builds are judged by the policy's minimum version (which the release sets);
        this names what that cannot see: a newer build that is unregistered, of another
        signer, or rolled back from the channel.
        """
        out = []
        for package, entry in sorted(apps.items()):
            have = packages.get(package)
            release = self.for_device(channel, package, bool(entry.get("follows_channel")))
            if release is None or have is None or have <= release.version_code \
                    or entry.get("type") == "blocked":
                continue
            signer = self.signers.get((package, have))
            where = f"{release.channel} releases {release.version_code}"
            if signer is None:
                out.append({"code": "app_unknown_build", "detail": f"{package} is {have},"
                            f" which is not a registered build ({where})"})
            elif signer != release.signer:
                out.append({"code": "app_wrong_signer", "detail": f"{package} {have} has"
                            f" another signer than the released build ({where})"})
            elif have in self.withdrawn.get((release.channel, package), set()):
                out.append({"code": "app_rolled_back", "detail": f"{package} is {have},"
                            f" which was rolled back ({where})"})
        return out


def load(db: Database) -> Releases:
    """Read every release and build (a few rows per package), oldest first."""
    out = Releases()
    if not app_rows.any_release(db):
        return out
    for package, code, signer in app_rows.build_signers(db):
        out.signers[(package, code)] = signer
    rows = app_rows.releases(db)
    for row in rows:
        key = (row["channel"], row["package"])
        previous = out.current.get(key)
        if row["rollback"] and previous is not None:
            out.withdrawn.setdefault(key, set()).add(previous.version_code)
        elif not row["rollback"]:  # released again on purpose: no longer withdrawn
            out.withdrawn.get(key, set()).discard(row["version_code"])
        out.current[key] = Release(row["package"], row["channel"], row["sha256"],
                                   row["version_code"], row["version_name"], row["signer"],
                                   row["released_at"], row["released_by"],
                                   bool(row["rollback"]), row["reason"])
    return out


def installed(facts_packages: str | None) -> dict[str, int]:
    """Parse a device's stored package list (what its last contact reported)."""
    try:
        value = json.loads(facts_packages or "{}")
    except ValueError:
        return {}
    return {k: v for k, v in value.items() if isinstance(v, int)} \
        if isinstance(value, dict) else {}
