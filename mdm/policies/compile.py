"""Compile an effective policy into an Android Management API `Policy` document.

Only current field names are used (never `passwordRequirements`, `cameraDisabled`,
`debuggingFeaturesAllowed`, `installUnknownSourcesAllowed`, `usbFileTransferDisabled`,
`autoTimeRequired`, `complianceRules` …), so a force could hand the JSON to Google's API
unchanged. The bytes are canonical (sorted keys, no spaces): the sha256 of those bytes is
the policy version, and it is what the device's DPC reports back.

What the API itself demands is checked before anything is compiled (`check`): the policy is
named `enterprises/{enterpriseId}/policies/{policyId}`, with the enterprise id from the
project settings and a policy id made of the layer names that apply (`force-baseline.pcso`:
letters, digits, `-`, `_` and `.` only); `accessibleTrackIds` holds Google Play track ids,
mapped from release channels in the settings; `blockAfterDays` is less than `wipeAfterDays`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mdm.errors import InputError, Problem
from mdm.policies.layering import Effective

if TYPE_CHECKING:
    from mdm.config import Settings

DEPRECATED = ("passwordRequirements", "installUnknownSourcesAllowed",
              "debuggingFeaturesAllowed", "cameraDisabled", "unmuteMicrophoneDisabled",
              "usbFileTransferDisabled", "autoTimeRequired", "complianceRules",
              "usbMassStorageEnabled", "ensureVerifyAppsEnabled", "wifiConfigDisabled",
              "tetheringConfigDisabled", "blockApplicationsEnabled")
_INSTALL = {"required": "FORCE_INSTALLED", "available": "AVAILABLE", "blocked": "BLOCKED"}


_LAYER_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
DEFAULT_BLOCK_AFTER_DAYS = 0
DEFAULT_WIPE_AFTER_DAYS = 30


@dataclass(frozen=True)
class Compiled:
    """A policy compiled for the Android Management API: the document, its bytes and sha256."""

    document: dict[str, Any]
    body: bytes
    sha256: str


@dataclass(frozen=True)
class Target:
    """Where compiled policies go: the AMAPI enterprise, and each channel's Play track ids."""

    enterprise_id: str | None = None
    tracks: dict[str, dict[str, str]] = field(default_factory=dict)  # channel → {pkg|*: id}
    settings_file: str | None = None  # where the settings came from, for messages
    # channel → package → versionCode of the build released to it (mdm apps release)
    releases: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> Target:
        file = str(settings.file) if settings.file else None
        return cls(settings.enterprise_id, settings.tracks, file)

    def track_id(self, channel: str, package: str) -> str | None:
        ids = self.tracks.get(channel, {})
        return ids.get(package) or ids.get("*")

    def where(self) -> str:
        return self.settings_file or "mdm.toml (none found; create one with mdm init)"

    def released(self, channel: str, package: str, follows: bool) -> int | None:
        """Return the versionCode released to a device's channel (else to stable), if any."""
        if follows and package in self.releases.get(channel, {}):
            return self.releases[channel][package]
        return self.releases.get("stable", {}).get(package)


def with_releases(effective: Effective, target: Target) -> Effective:
    """Return the effective policy with each released app's minimum version set to its release.

    The compiled policy's minimumVersionCode and the compliance report then follow the
    build released to the device's channel (a rollback lowers it again).
    """
    if not target.releases:
        return effective
    channel = effective.settings.get("apps.channel", "stable")
    apps = dict(effective.settings.get("apps.install", {}))
    changed = False
    for package, entry in effective.apps().items():
        code = target.released(channel, package, bool(entry.get("follows_channel")))
        if code is not None and entry["type"] != "blocked" and entry.get("min_version") != code:
            apps[package] = {**entry, "min_version": code}
            changed = True
    if not changed:
        return effective
    return Effective({**effective.settings, "apps.install": apps}, effective.sources,
                     effective.layers, effective.conflicts)


@dataclass(frozen=True)
class Issue:
    """Something the Android Management API would refuse; `setting` locates it in a layer."""

    setting: str | None  # the policy setting (None: a project setting or a layer name)
    message: str
    hint: str
    layer: str | None = None  # the layer whose name is at fault
    project: bool = False  # fixed in the project settings (mdm.toml), not in a layer


def policy_id(effective: Effective) -> str:
    """Return the policy id: the names of the layers that apply, joined by dots."""
    return ".".join(effective.layers)


def check(effective: Effective, target: Target, for_api: bool = True) -> list[Issue]:
    """Return what the API would refuse in this policy (project settings only if for_api)."""
    s = effective.settings
    issues: list[Issue] = []
    for name in effective.layers:
        if not _LAYER_NAME.match(name):
            issues.append(Issue(None, f"layer name {name!r} cannot be part of a policy id",
                                "use letters, digits, - and _ only (the policy id joins"
                                " layer names with dots)", name))
    block = s.get("compliance.block_after_days", DEFAULT_BLOCK_AFTER_DAYS)
    wipe = s.get("compliance.wipe_after_days", DEFAULT_WIPE_AFTER_DAYS)
    if ("compliance.block_after_days" in s or "compliance.wipe_after_days" in s) \
            and block >= wipe:
        key = ("compliance.block_after_days" if "compliance.block_after_days" in s
               else "compliance.wipe_after_days")
        issues.append(Issue(key, f"blocks after {block} days but wipes after {wipe}"
                            f"{'' if 'compliance.wipe_after_days' in s else ' (the default)'}",
                            "block_after_days must be less than wipe_after_days (the"
                            " Android Management API refuses the policy otherwise)"))
    if s.get("updates.system_update") == "windowed" and "updates.window" not in s:
        issues.append(Issue("updates.system_update", "windowed updates need a window",
                            "add updates.window, e.g. \"02:00-04:00\""))
    if not for_api:
        return issues
    if not target.enterprise_id:
        issues.append(Issue(None, "no Android Management API enterprise id is set; a"
                            " compiled policy is named enterprises/{id}/policies/…",
                            f"set enterprise_id under [policy] in {target.where()}"
                            " (or MDM_ENTERPRISE_ID)", project=True))
    channel = s.get("apps.channel", "stable")
    if channel != "stable":
        missing = [package for package, entry in sorted(effective.apps().items())
                   if entry.get("follows_channel") and not target.track_id(channel, package)]
        if missing:
            issues.append(Issue("apps.channel", f"channel {channel!r} has no Google Play"
                                f" track id for {', '.join(missing)}",
                                f"set {channel} = \"TRACK_ID\" under [policy.tracks] in"
                                f" {target.where()} (or MDM_TRACKS={channel}=TRACK_ID)",
                                project=True))
    return issues


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def to_amapi(effective: Effective, target: Target) -> dict[str, Any]:
    """Return the AMAPI Policy document for an effective policy (run `check` first)."""
    s = effective.settings
    doc: dict[str, Any] = {
        "name": f"enterprises/{target.enterprise_id}/policies/{policy_id(effective)}"}
    password = {k: s[f"password.{k}"] for k in ("quality", "min_length",
                                                 "max_failed_attempts_before_wipe",
                                                 "strong_auth_every_day")
                if f"password.{k}" in s}
    if password:
        policy: dict[str, Any] = {"passwordScope": "SCOPE_DEVICE"}
        if "quality" in password:
            policy["passwordQuality"] = password["quality"]
        if "min_length" in password:
            policy["passwordMinimumLength"] = password["min_length"]
        if "max_failed_attempts_before_wipe" in password:
            policy["maximumFailedPasswordsForWipe"] = password["max_failed_attempts_before_wipe"]
        if password.get("strong_auth_every_day"):
            policy["requirePasswordUnlock"] = "REQUIRE_EVERY_DAY"
        doc["passwordPolicies"] = [policy]
    if "lock.auto_lock_seconds" in s:
        doc["maximumTimeToLock"] = str(s["lock.auto_lock_seconds"] * 1000)  # int64 → string
    if s.get("lock.hide_notification_content"):
        doc["keyguardDisabledFeatures"] = ["UNREDACTED_NOTIFICATIONS"]
    if "lock.message" in s:
        doc["deviceOwnerLockScreenInfo"] = {"defaultMessage": s["lock.message"]}
    if s.get("encryption") == "required":
        doc["encryptionPolicy"] = "ENABLED_WITH_PASSWORD"
    overrides = {}
    if "developer_options" in s:
        overrides["developerSettings"] = ("DEVELOPER_SETTINGS_ALLOWED" if s["developer_options"]
                                          else "DEVELOPER_SETTINGS_DISABLED")
    if "unknown_sources" in s:
        overrides["untrustedAppsPolicy"] = ("ALLOW_INSTALL_DEVICE_WIDE" if s["unknown_sources"]
                                            else "DISALLOW_INSTALL")
    if overrides:
        doc["advancedSecurityOverrides"] = overrides
    if "usb_file_transfer" in s:
        doc["deviceConnectivityManagement"] = {"usbDataAccess": (
            "ALLOW_USB_DATA_TRANSFER" if s["usb_file_transfer"] else "DISALLOW_USB_FILE_TRANSFER")}
    if "screen_capture" in s:
        doc["screenCaptureDisabled"] = not s["screen_capture"]
    if "camera" in s:
        doc["cameraAccess"] = {"allowed": "CAMERA_ACCESS_USER_CHOICE",
                               "disabled": "CAMERA_ACCESS_DISABLED",
                               "enforced": "CAMERA_ACCESS_ENFORCED"}[s["camera"]]
    if "factory_reset" in s:
        doc["factoryResetDisabled"] = not s["factory_reset"]
    if "auto_date_time" in s:
        doc["autoDateAndTimeZone"] = ("AUTO_DATE_AND_TIME_ZONE_ENFORCED"
                                      if s["auto_date_time"] == "enforced"
                                      else "AUTO_DATE_AND_TIME_ZONE_USER_CHOICE")
    if "location" in s:
        doc["locationMode"] = {"enforced": "LOCATION_ENFORCED",
                               "user_choice": "LOCATION_USER_CHOICE",
                               "disabled": "LOCATION_DISABLED"}[s["location"]]
    if "vpn.package" in s:
        doc["alwaysOnVpnPackage"] = {"packageName": s["vpn.package"],
                                     "lockdownEnabled": bool(s.get("vpn.lockdown", False))}
    channel = s.get("apps.channel", "stable")
    apps = []
    for package, entry in sorted(effective.apps().items()):
        app: dict[str, Any] = {"packageName": package, "installType": _INSTALL[entry["type"]]}
        if "min_version" in entry:
            app["minimumVersionCode"] = entry["min_version"]
        track = target.track_id(channel, package) if channel != "stable" else None
        if entry.get("follows_channel") and track:
            app["accessibleTrackIds"] = [track]
        apps.append(app)
    if apps:
        doc["applications"] = apps
    if "apps.mode" in s:
        doc["playStoreMode"] = "WHITELIST" if s["apps.mode"] == "allow_list" else "BLACKLIST"
    update = s.get("updates.system_update")
    if update == "windowed" and "updates.window" in s:
        start, end = s["updates.window"].split("-")
        doc["systemUpdate"] = {"type": "WINDOWED", "startMinutes": _minutes(start),
                               "endMinutes": _minutes(end)}
    elif update in ("automatic", "postpone"):
        doc["systemUpdate"] = {"type": update.upper()}
    if "updates.minimum_api_level" in s:
        doc["minimumApiLevel"] = s["updates.minimum_api_level"]
    if "compliance.wipe_after_days" in s or "compliance.block_after_days" in s:
        doc["policyEnforcementRules"] = [{
            "settingName": "passwordPolicies",
            "blockAction": {"blockAfterDays": s.get("compliance.block_after_days",
                                                    DEFAULT_BLOCK_AFTER_DAYS)},
            "wipeAction": {"wipeAfterDays": s.get("compliance.wipe_after_days",
                                                  DEFAULT_WIPE_AFTER_DAYS),
                           "preserveFrp": True},
        }]
    doc["statusReportingSettings"] = {
        "applicationReportsEnabled": True, "deviceSettingsEnabled": True,
        "softwareInfoEnabled": True, "hardwareStatusEnabled": True,
        "networkInfoEnabled": True, "powerManagementEventsEnabled": True,
        "memoryInfoEnabled": True, "displayInfoEnabled": True, "systemPropertiesEnabled": True,
    }
    return doc


def canonical(document: dict[str, Any]) -> bytes:
    """Return the canonical bytes of a document (the bytes pushed and hashed)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def compile_policy(effective: Effective, target: Target) -> Compiled:
    """Compile an effective policy to its document, canonical bytes and sha256."""
    issues = check(effective, target)
    if issues:
        raise InputError(f"the policy for layers {policy_id(effective)} cannot be compiled"
                         " for the Android Management API", "fix the settings named",
                         problems=[Problem(i.layer or i.setting or "settings", i.message,
                                           i.hint) for i in issues])
    doc = to_amapi(effective, target)
    body = canonical(doc)
    return Compiled(doc, body, hashlib.sha256(body).hexdigest())


def at_station(compiled: Compiled) -> Compiled:
    """Return the version for a device reached through a provisioning station.

    A station drives the phone with adb, and a phone whose developer settings are
    disabled turns USB debugging off and drops off adb: the station would push the
    policy and never reach the phone again. So while a device is routed through a
    station its policy allows developer settings (everything else the same); the field
    version, with them disabled, is pushed once it has its direct route.
    """
    overrides = compiled.document.get("advancedSecurityOverrides", {})
    if overrides.get("developerSettings") != "DEVELOPER_SETTINGS_DISABLED":
        return compiled
    doc = {**compiled.document, "advancedSecurityOverrides": {
        **overrides, "developerSettings": "DEVELOPER_SETTINGS_ALLOWED"}}
    body = canonical(doc)
    return Compiled(doc, body, hashlib.sha256(body).hexdigest())


def field_names(document: Any) -> set[str]:
    """Return every key used anywhere in a document."""
    if isinstance(document, dict):
        return set(document) | set().union(*(field_names(v) for v in document.values()))
    if isinstance(document, list):
        return set().union(*(field_names(v) for v in document)) if document else set()
    return set()
