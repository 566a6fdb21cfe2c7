"""The policy vocabulary: every setting a layer may set, its type, its allowed range.

Settings use the force's words (`password.min_length`, `lock.auto_lock_seconds`);
`compile.py` turns them into the Android Management API's. Ranges follow the NCSC /
Cyber Essentials baseline (docs/policies.md): a PIN of at least 6, at most 10 failed
attempts before wipe, a lock of at most 5 minutes (2 for the front line).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Layer kinds, lowest precedence first: a later kind overrides an earlier one.
KINDS = ("baseline", "worker_type", "rank", "area", "station", "group", "device")
FRONT_LINE = ("OFFICER", "PCSO", "SPECIAL")
FRONT_LINE_MAX_LOCK = 120


@dataclass(frozen=True)
class Field:
    """One known setting: its type, what it means, and its allowed values or range."""

    type: type | tuple[type, ...]
    doc: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None

    def check(self, given: object) -> str | None:
        """Say what is wrong with a value, or None."""
        expected = self.type if isinstance(self.type, tuple) else (self.type,)
        if isinstance(given, bool) and bool not in expected:
            return f"must be {_names(expected)}, not yes/no"
        if not isinstance(given, expected):
            return f"must be {_names(expected)}, not {type(given).__name__}"
        value: Any = given  # its type is now one of `expected`
        if self.choices and value not in self.choices:
            return f"{value!r} is not one of: {', '.join(self.choices)}"
        if self.minimum is not None and value < self.minimum:
            return f"{value} is below the minimum of {self.minimum}"
        if self.maximum is not None and value > self.maximum:
            return f"{value} is above the maximum of {self.maximum}"
        if self.max_length is not None and len(value) > self.max_length:
            return f"is longer than {self.max_length} characters"
        return None


def _names(types: tuple[type, ...]) -> str:
    words = {bool: "true or false", int: "a whole number", str: "text", dict: "a mapping"}
    return " or ".join(words.get(t, t.__name__) for t in types)


FIELDS: dict[str, Field] = {
    "password.quality": Field(str, "PIN or password strength",
                              ("NUMERIC_COMPLEX", "ALPHANUMERIC", "COMPLEX")),
    "password.min_length": Field(int, "minimum PIN/password length (CE v3.1: 6+)", minimum=6,
                                 maximum=16),
    "password.max_failed_attempts_before_wipe": Field(int, "wrong PINs before the device"
                                                      " wipes (CE / CIS: 10 or fewer)",
                                                      minimum=3, maximum=10),
    "password.strong_auth_every_day": Field(bool, "require the PIN at least every 24 h"),
    "lock.auto_lock_seconds": Field(int, "idle seconds before the screen locks (≤ 300;"
                                    " front line ≤ 120)", minimum=15, maximum=300),
    "lock.hide_notification_content": Field(bool, "no notification text on the lock screen"),
    "lock.message": Field(str, "lock-screen message (owner and phone number)", max_length=200),
    "encryption": Field(str, "storage encryption", ("required", "not_required")),
    "developer_options": Field(bool, "developer options and USB debugging allowed"),
    "unknown_sources": Field(bool, "apps from outside the allow-list may be installed"),
    "usb_file_transfer": Field(bool, "files may be copied over USB"),
    "screen_capture": Field(bool, "screenshots allowed"),
    "camera": Field(str, "camera", ("allowed", "disabled", "enforced")),
    "factory_reset": Field(bool, "users may factory-reset the device"),
    "auto_date_time": Field(str, "automatic date and time (evidential timestamps)",
                            ("enforced", "user_choice")),
    "location": Field(str, "location services", ("enforced", "user_choice", "disabled")),
    "vpn.package": Field(str, "always-on VPN app", max_length=200),
    "vpn.lockdown": Field(bool, "no traffic outside the VPN"),
    "apps.mode": Field(str, "allow_list: only listed apps; open: any app", ("allow_list",
                                                                           "open")),
    "apps.channel": Field(str, "release channel of the force's own builds", ("stable",
                                                                             "pilot")),
    "apps.install": Field(dict, "package name → {type, min_version, follows_channel}"),
    "updates.system_update": Field(str, "OS updates", ("automatic", "windowed", "postpone")),
    "updates.window": Field(str, "daily update window HH:MM-HH:MM (windowed)", max_length=11),
    "updates.minimum_api_level": Field(int, "lowest Android API level allowed", minimum=19,
                                       maximum=40),
    "updates.max_patch_age_days": Field(int, "security patch at most this old (compliance)",
                                        minimum=1, maximum=90),
    "compliance.max_offline_days": Field(int, "days a device may go unseen (compliance)",
                                         minimum=1, maximum=90),
    "compliance.block_after_days": Field(int, "days non-compliant before apps are blocked",
                                         minimum=0, maximum=30),
    "compliance.wipe_after_days": Field(int, "days non-compliant before a wipe", minimum=1,
                                        maximum=90),
}

APP_FIELDS: dict[str, Field] = {
    "type": Field(str, "required, available or blocked", ("required", "available", "blocked")),
    "min_version": Field(int, "lowest versionCode allowed", minimum=1),
    "follows_channel": Field(bool, "gets pilot builds when apps.channel is pilot"),
}
SECTIONS = {key.split(".")[0] for key in FIELDS if "." in key}
