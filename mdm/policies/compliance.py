"""Judge one device against its effective policy, from its latest facts and DPC status.

Every reason a device fails is listed, not just the first: IT staff fix devices in one
visit. The judgement reads only the inventory (run `mdm devices refresh` first for fresh
facts); it never contacts a device.

At force scale most devices mean the same thing: the same policy reported back, the same
package list, the same patch level. A `Judge` works out the reasons that depend only on
a device's facts and its policy once for each distinct (policy, facts) and reuses them;
what is the device's own (quarantined, its last answer refused, when it was last seen)
is judged for each device.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from mdm.policies.layering import Effective

# The stored facts a judgement reads (columns of device_facts), in this order.
FACTS = ("dpc_status", "packages", "settings", "policy_file_sha256", "crypto_state",
         "security_patch", "sdk")

# Last-contact errors that mean the device answered but its answer was refused: the facts
# on record are older than what the device now says, so they cannot pass it.
REFUSED_KINDS = ("malformed_output", "output_too_large")


def _days_since(stamp: str, now: datetime) -> float:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (now - moment).total_seconds() / 86400


class _Stored:
    """A device's stored facts, each read defensively: what cannot be read becomes a reason.

    Facts stored before device output was checked (or edited since) may hold anything;
    one device's odd value must make that device non-compliant, never stop the report.
    """

    def __init__(self, facts: dict[str, Any], fail: Any) -> None:
        from mdm.fleet.deviceout import BadOutput, check_status, load_status

        self.fail = fail
        self.status: dict[str, Any] | None = None
        self.status_ok = True
        if facts.get("dpc_status"):
            try:
                self.status = check_status(load_status(str(facts["dpc_status"])), [])
            except BadOutput as exc:
                self.status_ok = False
                fail("facts_unreadable", f"the stored DPC status is unreadable: {exc}")
        self.packages = self._mapping(facts, "packages", int, "package list")
        self.settings = self._mapping(facts, "settings", str, "settings")
        self.policy_file = self._text(facts.get("policy_file_sha256"))
        self.crypto_state = self._text(facts.get("crypto_state"))
        self.patch = self._text(facts.get("security_patch"))
        sdk = facts.get("sdk")
        self.sdk = sdk if isinstance(sdk, int) and not isinstance(sdk, bool) else None

    @staticmethod
    def _text(value: Any) -> str | None:
        return value if isinstance(value, str) and value else None

    def _mapping(self, facts: dict[str, Any], key: str, kind: type,
                 what: str) -> dict[str, Any] | None:
        if not facts.get(key):
            return {}
        try:
            value = json.loads(str(facts[key]))
        except (ValueError, RecursionError):
            value = None
        if isinstance(value, dict) and all(
                isinstance(v, kind) and not isinstance(v, bool) for v in value.values()):
            return value
        self.fail("facts_unreadable", f"the stored {what} is unreadable")
        return None


def judge(device: dict[str, Any], facts: dict[str, Any] | None, effective: Effective,
          expected_sha: str, now: datetime | None = None) -> list[dict[str, str]]:
    """Return every reason the device is not compliant (empty when it is)."""
    values = tuple(facts.get(c) for c in FACTS) if facts else None
    return Judge(now)(device, values, effective, expected_sha)


class Judge:
    """Judge devices at one instant, each distinct meaning of their facts once.

    The reasons that follow from a device's facts and its policy are remembered under a
    key of what the judgement reads: the policy (its `Effective`, which must outlive the
    judge, and its sha256), the stored texts and values (`FACTS`), except the DPC status,
    which carries per-device times: it is parsed once per distinct text and keyed by what
    is judged from it (policySha256, state, error, the violations).
    """

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)
        self._status_keys: dict[tuple[type, Any], tuple[Any, ...]] = {}
        self._judged: dict[tuple[Any, ...], list[dict[str, str]]] = {}
        self._away: dict[tuple[Any, Any], bool] = {}

    def __call__(self, device: dict[str, Any], facts: tuple[Any, ...] | None,
                 effective: Effective, expected_sha: str) -> list[dict[str, str]]:
        """Judge one device from its facts (the values of `FACTS`, or None if none)."""
        return self.judge(device["status"], device.get("last_contact_error"),
                          device.get("last_seen"), facts, effective, expected_sha)

    def judge(self, status: str, error: Any, seen: Any, facts: tuple[Any, ...] | None,
              effective: Effective, expected_sha: str) -> list[dict[str, str]]:
        """Judge one device from its status, last contact error, last seen and facts.

        What `__call__` reads of a device, without the device's dict: a fleet-wide summary
        scans these as plain values.
        """
        reasons: list[dict[str, str]] = []
        if status == "quarantined":
            reasons.append({"code": "quarantined",
                            "detail": "host key changed; re-enrol the device"})
        if error:
            kind, _, why = str(error).partition(":")
            if kind in REFUSED_KINDS:
                reasons.append({"code": "output_refused", "detail": "its last answer was"
                                f" refused ({why.strip()[:200]}); fix the device, then run"
                                " mdm devices refresh"})
        if not facts:
            reasons.append({"code": "never_reported",
                            "detail": "no facts yet: run mdm devices refresh"})
            return reasons
        # With each value's type: 1, 1.0 and True are equal keys, but judged differently.
        key = (id(effective), expected_sha, self._status_key(facts[0]), facts[1:],
               tuple(map(type, facts)))
        judged = self._judged.get(key)
        if judged is None:
            judged = self._judged[key] = _from_facts(dict(zip(FACTS, facts, strict=True)),
                                                     effective, expected_sha, self.now)
        reasons += judged
        offline = effective.settings.get("compliance.max_offline_days")
        if offline and seen and self._offline(seen, offline):
            reasons.append({"code": "not_seen", "detail": f"last seen {seen[:10]}, more than"
                            f" {offline} days ago"})
        return reasons

    def _offline(self, seen: Any, days: Any) -> bool:
        """Say whether a device last seen then has been away more than `days` days.

        Worked out once per distinct time: a refresh stamps many devices alike.
        """
        away = self._away.get((seen, days))
        if away is None:
            away = self._away[seen, days] = _days_since(seen, self.now) > days
        return away

    def _status_key(self, text: Any) -> tuple[Any, ...]:
        """What the judgement reads from a stored DPC status, worked out once per text.

        Texts that differ only in the DPC's own times share one strict parse: with each
        time (a short plain string) blanked, a text parses exactly when the original does,
        to the same judgement. A text that does not parse is parsed as it is, so its error
        names its own position.
        """
        plain = _blank_times(text) if type(text) is str else text
        key = self._status_keys.get((type(plain), plain))
        if key is None:
            key = _status_key(plain)
            if key[0] == "unreadable" and plain != text:  # kept under its own text
                plain = text
                key = self._status_keys.get((type(text), text)) or _status_key(text)
            self._status_keys[type(plain), plain] = key
        return key


# The DPC's own times in its status (when it applied a policy, when it reported): different
# on every device, never read by a judgement.
_TIME_KEYS = ('"appliedAt": "', '"reportedAt": "')
_TIME_CHARS = frozenset("0123456789T:.Z+-")


def _blank_times(text: str) -> str:
    """Return a stored status with its times blanked, where they are plain keys of it.

    A key of the JSON itself is a quote not escaped by a backslash (a quote inside a
    string always is); its value is blanked only if it is 1-40 plain time characters.
    """
    for key in _TIME_KEYS:
        at = text.find(key)
        if at > 0 and text[at - 1] != "\\":
            begin = at + len(key)
            end = text.find('"', begin)
            if 0 < end - begin <= 40 and _TIME_CHARS.issuperset(text[begin:end]):
                text = text[:begin] + text[end:]
    return text


def _status_key(text: Any) -> tuple[Any, ...]:
    from mdm.fleet.deviceout import BadOutput, check_status, load_status

    if not text:
        return ("none",)
    try:
        status = check_status(load_status(str(text)), [])
    except BadOutput as exc:
        return ("unreadable", str(exc))
    return ("read", bool(status), status.get("policySha256"), status.get("state"),
            status.get("error"),
            tuple((d.get("settingName"), d.get("nonComplianceReason"), d.get("packageName"))
                  for d in status.get("nonComplianceDetails", [])))


def _from_facts(facts: dict[str, Any], effective: Effective, expected_sha: str,
                now: datetime) -> list[dict[str, str]]:
    """Return every reason that follows from a device's stored facts and its policy."""
    s = effective.settings
    reasons: list[dict[str, str]] = []

    def fail(code: str, detail: str) -> None:
        reasons.append({"code": code, "detail": detail})

    f = _Stored(facts, fail)
    status = f.status
    if f.status_ok:
        reported = (status or {}).get("policySha256")
        if not reported:
            fail("no_policy", f"no policy applied; expected {expected_sha[:12]}")
        elif reported != expected_sha:
            fail("policy_drift", f"runs {reported[:12]}, expected {expected_sha[:12]}")
        if f.policy_file and f.policy_file != reported:
            fail("policy_tampered",
                 "the policy file on the device is not the one the DPC applied")
    if status and status.get("state") not in (None, "APPLIED"):
        fail("dpc_error", f"the DPC reports {status.get('state')}: {status.get('error', '')}")
    for item in (status or {}).get("nonComplianceDetails", []):
        if item.get("settingName") == "applications" and item.get("packageName") in \
                effective.apps():
            continue  # judged below from the package list, with versions
        fail("dpc_violation", f"{item.get('settingName')}: {item.get('nonComplianceReason')}"
             + (f" ({item['packageName']})" if item.get("packageName") else ""))
    max_age = s.get("updates.max_patch_age_days")
    patch = _date(f.patch)
    if max_age and not f.patch:
        fail("patch_unknown", "the device reports no security patch level")
    elif max_age and patch is None:
        fail("patch_unreadable", f"the security patch level {str(f.patch)[:40]!r} is not a"
             " date")
    elif max_age and patch:
        age = (now.date() - patch).days
        if age > max_age:
            fail("patch_too_old", f"security patch {f.patch} is {age} days old (max {max_age})")
    if s.get("encryption") == "required" and f.crypto_state != "encrypted":
        fail("not_encrypted", f"storage is {f.crypto_state or 'unknown'}")
    settings = f.settings
    if s.get("developer_options") is False and settings is not None and (
            settings.get("global.development_settings_enabled") == "1"
            or settings.get("global.adb_enabled") == "1"):
        fail("developer_options_on", "developer options or USB debugging are on")
    minimum = s.get("updates.minimum_api_level")
    if minimum and (f.sdk or 0) < minimum:
        fail("os_too_old", f"Android API {f.sdk or 'unknown'} is below the"
             f" minimum {minimum}: update the OS before handover")
    packages = f.packages
    apps = sorted(effective.apps().items()) if packages is not None else []
    for package, entry in apps:
        have = (packages or {}).get(package)
        if entry["type"] == "required" and have is None:
            fail("app_missing", f"{package} is not installed")
        elif entry["type"] == "required" and have < entry.get("min_version", 0):
            fail("app_outdated", f"{package} is {have}, needs {entry['min_version']}")
        elif entry["type"] == "blocked" and have is not None:
            fail("app_blocked", f"{package} is installed but blocked")
    return reasons


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None
