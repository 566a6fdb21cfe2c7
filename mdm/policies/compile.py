"""Compile an effective policy into an Android Management API `Policy` document.

Only current field names are used (never `passwordRequirements`, `cameraDisabled`,
`debuggingFeaturesAllowed`, `installUnknownSourcesAllowed`, `usbFileTransferDisabled`,
`autoTimeRequired`, `complianceRules` …), so a force could hand the JSON to Google's API
unchanged. The bytes are canonical (sorted keys, no spaces): the sha256 of those bytes is
the policy version, and it is what the device's DPC reports back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from mdm.policies.layering import Effective

DEPRECATED = ("passwordRequirements", "installUnknownSourcesAllowed",
              "debuggingFeaturesAllowed", "cameraDisabled", "unmuteMicrophoneDisabled",
              "usbFileTransferDisabled", "autoTimeRequired", "complianceRules",
              "usbMassStorageEnabled", "ensureVerifyAppsEnabled", "wifiConfigDisabled",
              "tetheringConfigDisabled", "blockApplicationsEnabled")
_INSTALL = {"required": "FORCE_INSTALLED", "available": "AVAILABLE", "blocked": "BLOCKED"}


@dataclass(frozen=True)
class Compiled:
    document: dict[str, Any]
    body: bytes
    sha256: str


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def to_amapi(effective: Effective) -> dict[str, Any]:
    """Return the AMAPI Policy document for an effective policy."""
    s = effective.settings
    doc: dict[str, Any] = {"name": "policies/" + "+".join(effective.layers)}
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
        if entry.get("follows_channel") and channel != "stable":
            app["accessibleTrackIds"] = [channel]
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
            "blockAction": {"blockAfterDays": s.get("compliance.block_after_days", 0)},
            "wipeAction": {"wipeAfterDays": s.get("compliance.wipe_after_days", 30),
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


def compile_policy(effective: Effective) -> Compiled:
    """Compile an effective policy to its document, canonical bytes and sha256."""
    doc = to_amapi(effective)
    body = canonical(doc)
    return Compiled(doc, body, hashlib.sha256(body).hexdigest())


def field_names(document: Any) -> set[str]:
    """Return every key used anywhere in a document."""
    if isinstance(document, dict):
        return set(document) | set().union(*(field_names(v) for v in document.values()))
    if isinstance(document, list):
        return set().union(*(field_names(v) for v in document)) if document else set()
    return set()
