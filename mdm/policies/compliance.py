"""Judge one device against its effective policy, from its latest facts and DPC status.

Every reason a device fails is listed, not just the first: IT staff fix devices in one
visit. The judgement reads only the inventory (run `mdm devices refresh` first for fresh
facts); it never contacts a device.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from mdm.policies.layering import Effective


def _days_since(stamp: str, now: datetime) -> float:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (now - moment).total_seconds() / 86400


def judge(device: dict[str, Any], facts: dict[str, Any] | None, effective: Effective,
          expected_sha: str, now: datetime | None = None) -> list[dict[str, str]]:
    """Return every reason the device is not compliant (empty when it is)."""
    now = now or datetime.now(UTC)
    s = effective.settings
    reasons: list[dict[str, str]] = []

    def fail(code: str, detail: str) -> None:
        reasons.append({"code": code, "detail": detail})

    if device["status"] == "quarantined":
        fail("quarantined", "host key changed; re-enrol the device")
    if not facts:
        fail("never_reported", "no facts yet: run mdm devices refresh")
        return reasons
    status = json.loads(facts["dpc_status"]) if facts.get("dpc_status") else None
    reported = (status or {}).get("policySha256")
    if not reported:
        fail("no_policy", f"no policy applied; expected {expected_sha[:12]}")
    elif reported != expected_sha:
        fail("policy_drift", f"runs {reported[:12]}, expected {expected_sha[:12]}")
    if facts.get("policy_file_sha256") and facts["policy_file_sha256"] != reported:
        fail("policy_tampered", "the policy file on the device is not the one the DPC applied")
    if status and status.get("state") not in (None, "APPLIED"):
        fail("dpc_error", f"the DPC reports {status.get('state')}: {status.get('error', '')}")
    packages = json.loads(facts["packages"]) if facts.get("packages") else {}
    for item in (status or {}).get("nonComplianceDetails", []):
        if item.get("settingName") == "applications" and item.get("packageName") in \
                effective.apps():
            continue  # judged below from the package list, with versions
        fail("dpc_violation", f"{item.get('settingName')}: {item.get('nonComplianceReason')}"
             + (f" ({item['packageName']})" if item.get("packageName") else ""))
    max_age = s.get("updates.max_patch_age_days")
    patch = facts.get("security_patch")
    if max_age and not patch:
        fail("patch_unknown", "the device reports no security patch level")
    elif max_age and patch:
        age = (now.date() - date.fromisoformat(patch)).days
        if age > max_age:
            fail("patch_too_old", f"security patch {patch} is {age} days old (max {max_age})")
    if s.get("encryption") == "required" and facts.get("crypto_state") != "encrypted":
        fail("not_encrypted", f"storage is {facts.get('crypto_state') or 'unknown'}")
    settings = json.loads(facts["settings"]) if facts.get("settings") else {}
    if s.get("developer_options") is False and (
            settings.get("global.development_settings_enabled") == "1"
            or settings.get("global.adb_enabled") == "1"):
        fail("developer_options_on", "developer options or USB debugging are on")
    minimum = s.get("updates.minimum_api_level")
    if minimum and (facts.get("sdk") or 0) < minimum:
        fail("os_too_old", f"Android API {facts.get('sdk') or 'unknown'} is below the"
             f" minimum {minimum}: update the OS before handover")
    for package, entry in sorted(effective.apps().items()):
        have = packages.get(package)
        if entry["type"] == "required" and have is None:
            fail("app_missing", f"{package} is not installed")
        elif entry["type"] == "required" and have < entry.get("min_version", 0):
            fail("app_outdated", f"{package} is {have}, needs {entry['min_version']}")
        elif entry["type"] == "blocked" and have is not None:
            fail("app_blocked", f"{package} is installed but blocked")
    offline = s.get("compliance.max_offline_days")
    if offline and device.get("last_seen") and _days_since(device["last_seen"], now) > offline:
        fail("not_seen", f"last seen {device['last_seen'][:10]}, more than {offline} days ago")
    return reasons
