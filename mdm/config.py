"""Project settings: one `mdm.toml`, found by walking up from the current folder.

Running `mdm` from the wrong folder used to open (and create) an empty inventory there.
Now a project names its inventory, policy folder, builds and lab folders, the Android
Management API enterprise and Play tracks, role rules and the busy wait once, in a file
that `mdm` finds the way git and ruff find theirs, so any sub-folder of the project
works the same.

Each setting comes from, first found: a command-line option, an `MDM_*` environment
variable, the project file, the built-in default. Relative paths in the file — and the
defaults, when a file is found — are relative to the file's folder; without a file the
defaults are relative to the current folder, as they always were. The builds and lab
folders default to `builds/` and `lab/` beside the inventory, wherever it is: a project
file in `inventory/demo/` whose inventory is `inventory/demo/mdm.db` keeps its builds in
`inventory/demo/builds`, not `inventory/demo/inventory/builds`. `MDM_CONFIG` names the
file outright (and stops the walk). `tomllib` is imported only when a file is found, to
keep start-up fast.
"""

from __future__ import annotations

import difflib
import getpass
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdm.errors import InputError, Problem

FILENAME = "mdm.toml"
CONFIG_ENV = "MDM_CONFIG"
# An enterprise id is the last part of `enterprises/{id}`: letters, digits, - and _.
_ENTERPRISE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,63}$")
# A Play track id (the releaseTrackId of the Play Console) is an opaque token.
_TRACK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_PACKAGE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$")
MAX_WAIT = 3600


@dataclass(frozen=True)
class Spec:
    """One setting: its key in mdm.toml, its variable, its option, its default."""

    key: str
    env: str | None
    kind: str  # path, seconds, zone, enterprise, tracks, roles, text
    default: Any
    doc: str
    option: str | None = None
    in_file: bool = True  # personal settings (who you are, your key) stay out of the file


SPECS: tuple[Spec, ...] = (
    Spec("inventory", "MDM_DB", "path", "inventory/mdm.db", "the inventory (SQLite file,"
         " or postgresql://ROLE@HOST:PORT/DATABASE)", "--db"),
    Spec("policies", "MDM_POLICIES", "path", "playbooks/policies",
         "the folder of policy layers (YAML)", "--policies"),
    Spec("builds", "MDM_BUILDS", "path", "builds", "the folder of app builds (APKs) to install"
         " (default: builds/ beside the inventory)"),
    Spec("lab", "MDM_LAB", "path", "lab", "the lab's folder, mdm lab … (default: lab/ beside"
         " the inventory)", "--lab-dir"),
    Spec("profiles", "MDM_PROFILES", "path", "playbooks/profiles",
         "the folder of device profiles (YAML), each naming the device models it serves"),
    Spec("wait", "MDM_WAIT", "seconds", 30,
         "seconds a write waits for another operator's write before giving up"),
    Spec("timezone", "MDM_TIMEZONE", "zone", "Europe/London",
         "the zone of times typed without an offset"),
    Spec("policy.enterprise_id", "MDM_ENTERPRISE_ID", "enterprise", None,
         "Android Management API enterprise id (policies are enterprises/{id}/policies/…)"),
    Spec("policy.tracks", "MDM_TRACKS", "tracks", {},
         "release channel → Google Play track id (for accessibleTrackIds)"),
    Spec("roles", None, "roles", {}, "action → roles allowed, over the built-in table"),
    Spec("queue.expiry", None, "expiry", {},
         "command kind → how long a queued command may wait before it expires"
         " (lock 7d, wipe 30d, policy 30d)"),
    Spec("helpdesk.wipe_approval", None, "bool", True,
         "whether a wipe waits for a second operator's approval"),
    Spec("helpdesk.lost_wipe_after", None, "duration", 86400,
         "how long after a loss is reported its wipe waits (unless the device is recovered)"),
    Spec("helpdesk.burst_wipes", None, "count", 5,
         "more wipe requests than this within helpdesk.burst_minutes are held for an admin"),
    Spec("helpdesk.burst_minutes", None, "count", 10,
         "the window of helpdesk.burst_wipes, in minutes"),
    Spec("ca.dir", "MDM_CA_DIR", "path", "~/.config/mdm/ca",
         "the folder of the force's SSH user CA key (kept outside the project and the"
         " inventory)"),
    Spec("ca.max_validity", None, "duration", 43200,
         "the longest an operator's certificate may be valid (mdm login; default 12h)"),
    Spec("operator", "MDM_OPERATOR", "text", None, "who is acting (default: the login name)",
         "--operator", in_file=False),
    Spec("key", "MDM_KEY", "text", "~/.config/mdm/id_ed25519",
         "the operator's SSH private key", "--key", in_file=False),
)
BY_KEY = {spec.key: spec for spec in SPECS}
BESIDE_INVENTORY = ("builds", "lab")  # their defaults are folders in the inventory's folder
TABLES = ("policy", "queue", "helpdesk", "ca")  # tables that only group settings


@dataclass(frozen=True)
class Value:
    """One effective setting and where it came from."""

    value: Any
    source: str  # "option --db", "env MDM_DB", "path/to/mdm.toml:3" or "default"


@dataclass(frozen=True)
class Settings:
    """Every effective setting, each with where it came from."""

    file: Path | None
    values: dict[str, Value] = field(default_factory=dict)

    def get(self, key: str) -> Any:
        return self.values[key].value

    @property
    def inventory(self) -> Path | str:
        """The SQLite file's path, or a PostgreSQL URL (kept as text)."""
        value = self.get("inventory")
        return value if _is_url(value) else Path(value)

    @property
    def policies(self) -> Path:
        return Path(self.get("policies"))

    @property
    def builds(self) -> Path:
        return Path(self.get("builds"))

    @property
    def lab(self) -> Path:
        return Path(self.get("lab"))

    @property
    def wait(self) -> int:
        return int(self.get("wait"))

    @property
    def timezone(self) -> str:
        return str(self.get("timezone"))

    @property
    def enterprise_id(self) -> str | None:
        value = self.get("policy.enterprise_id")
        return str(value) if value else None

    @property
    def tracks(self) -> dict[str, dict[str, str]]:
        """Channel → {package or "*": track id}; "*" is the id for every app."""
        return dict(self.get("policy.tracks"))

    @property
    def roles(self) -> dict[str, tuple[str, ...]]:
        return dict(self.get("roles"))

    def expiry(self, kind: str, default: int) -> int:
        """Return how many seconds a queued command of this kind may wait."""
        return int(self.get("queue.expiry").get(kind, default))

    def source(self, key: str) -> str:
        return self.values[key].source

    def show(self) -> dict[str, Any]:
        """Return every setting, its value and source, as `mdm config show` prints them."""
        out: dict[str, Any] = {}
        for spec in SPECS:
            value = self.values[spec.key].value
            if isinstance(value, Path):
                value = str(value)
            elif spec.kind == "tracks":
                value = {ch: ids.get("*") if list(ids) == ["*"] else dict(ids)
                         for ch, ids in value.items()}
            elif spec.kind == "roles":
                value = {action: list(roles) for action, roles in value.items()}
            out[spec.key] = {"value": value, "source": self.values[spec.key].source,
                             "env": spec.env, "about": spec.doc}
        return {"file": str(self.file) if self.file else None, "settings": out}


# -- finding and reading the file ------------------------------------------------------------

def find_file(start: Path | None = None) -> Path | None:
    """Return the project file: MDM_CONFIG, else the nearest mdm.toml upwards, else None."""
    named = os.environ.get(CONFIG_ENV)
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise InputError(f"{CONFIG_ENV} names {path}, which is not a file",
                             "point it at an mdm.toml, or unset it to search upwards")
        return path
    here = (start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        candidate = folder / FILENAME
        if candidate.is_file():
            return candidate
    return None


_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
                  r"""(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")
_PART = re.compile(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""")


def _parts(text: str) -> tuple[str, ...]:
    return tuple(p.strip("\"'") for p in _PART.findall(text))


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Map each key path of a TOML text to its 1-based line (tables and keys alike)."""
    out: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), 1):
        if header := _HEADER.match(line):
            table = _parts(header.group(1))
            out.setdefault(table, number)
        elif key := _KEY.match(line):
            path = table + _parts(key.group(1))
            for depth in range(len(table) + 1, len(path) + 1):
                out.setdefault(path[:depth], number)
    return out


def _read(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    import tomllib

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: is not UTF-8 text", "save it as UTF-8") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: is not valid TOML: {exc}",
                         "fix the line it names (mdm init --force writes a fresh one)") from None
    return data, key_lines(text)


# -- checking values ---------------------------------------------------------------------------

class EntryError(ValueError):
    """A bad entry of a table setting (a channel of policy.tracks, an action of roles)."""

    def __init__(self, entry: str, message: str) -> None:
        super().__init__(f"{entry}: {message}")
        self.entry = entry

def _suggest(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f"did you mean {close[0]!r}?" if close else ""


def check_enterprise(value: object) -> str:
    """Return the enterprise id, or say what is wrong with it."""
    if not isinstance(value, str) or not value:
        raise ValueError("must be text, e.g. \"LC0123abcd\"")
    if value.startswith("enterprises/"):
        raise ValueError(f"give only the id, without enterprises/ (e.g. {value[12:]!r})")
    if not _ENTERPRISE.match(value):
        raise ValueError(f"{value!r} is not an enterprise id (letters, digits, - and _)")
    return value


def _release_channels() -> tuple[str, ...]:
    from mdm.policies.schema import FIELDS

    return FIELDS["apps.channel"].choices


def _check_channel(channel: str) -> None:
    if channel == "stable":
        raise ValueError("stable is Google Play's production track, which every device"
                         " reaches: it needs no track id")
    others = [c for c in _release_channels() if c != "stable"]
    if channel not in others:
        raise ValueError(f"{channel!r} is not a release channel; apps.channel allows"
                         f" {', '.join(others)} besides stable")


def _check_track(value: object) -> str:
    if not isinstance(value, str) or not _TRACK.match(value):
        raise ValueError(f"{value!r} is not a Play track id (the releaseTrackId the Play"
                         " Console shows for the track)")
    return value


def check_tracks(value: object) -> dict[str, dict[str, str]]:
    """Return channel → {package or "*": track id} from a TOML table."""
    if not isinstance(value, dict):
        raise ValueError("must be a table: channel = \"track id\"")
    out: dict[str, dict[str, str]] = {}
    for channel, ids in value.items():
        try:
            _check_channel(str(channel))
            if isinstance(ids, dict):
                per_app = {}
                for package, track in ids.items():
                    if not _PACKAGE.match(str(package)):
                        raise ValueError(f"{package!r} is not an Android package name")
                    per_app[str(package)] = _check_track(track)
                out[str(channel)] = per_app
            else:
                out[str(channel)] = {"*": _check_track(ids)}
        except ValueError as exc:
            raise EntryError(str(channel), str(exc)) from None
    return out


def _tracks_from_env(text: str) -> dict[str, dict[str, str]]:
    table: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, track = item.partition("=")
        if not sep:
            raise ValueError(f"{item!r} is not CHANNEL=ID or CHANNEL/PACKAGE=ID")
        channel, _, package = name.strip().partition("/")
        if package:
            table.setdefault(channel, {})
            if not isinstance(table[channel], dict):
                raise ValueError(f"{channel} has both one id and per-app ids")
            table[channel][package] = track.strip()
        else:
            table[channel] = track.strip()
    return check_tracks(table)


def check_roles(value: object) -> dict[str, tuple[str, ...]]:
    """Return action → roles from a TOML table, refusing unknown actions and roles."""
    from mdm.operators.permissions import PERMISSIONS, ROLES

    if not isinstance(value, dict):
        raise ValueError("must be a table: \"action\" = [\"role\", …]")
    out: dict[str, tuple[str, ...]] = {}
    for action, roles in value.items():
        if action not in PERMISSIONS:
            raise EntryError(action, f"is not an action. {_suggest(action, PERMISSIONS)}"
                             f" Actions: {', '.join(sorted(PERMISSIONS))}")
        if not isinstance(roles, list) or not roles or \
                not all(isinstance(r, str) and r in ROLES for r in roles):
            raise EntryError(action, f"give a list of roles from {', '.join(ROLES)}")
        out[action] = tuple(roles)
    return out


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION = 366 * 86400


def check_duration(value: object) -> int:
    """Return seconds from a whole number of seconds or text such as "90m", "24h", "7d"."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text[-1:] in _UNITS and text[:-1].isdigit():
            value = int(text[:-1]) * _UNITS[text[-1]]
        elif text.isdigit():
            value = int(text)
    if isinstance(value, bool) or not isinstance(value, int) or \
            not 0 <= value <= MAX_DURATION:
        raise ValueError("must be a duration up to 366d: seconds, or text such as \"90m\","
                         " \"24h\" or \"7d\"")
    return value


def check_expiry(value: object) -> dict[str, int]:
    """Return command kind → seconds from a TOML table, refusing unknown kinds."""
    from mdm.queue.kinds import KINDS

    if not isinstance(value, dict):
        raise ValueError("must be a table: kind = \"7d\"")
    out: dict[str, int] = {}
    for kind, duration in value.items():
        if kind not in KINDS:
            raise EntryError(str(kind), f"is not a command kind. Kinds: {', '.join(KINDS)}")
        try:
            out[str(kind)] = check_duration(duration)
        except ValueError as exc:
            raise EntryError(str(kind), str(exc)) from None
        if out[str(kind)] == 0:
            raise EntryError(str(kind), "a command that expires at once is never sent")
    return out


def check_zone(value: object) -> str:
    """Return a time zone name that this machine knows."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(value, str) or not value:
        raise ValueError("must be a zone name, e.g. \"Europe/London\"")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a time zone (e.g. Europe/London)") from None
    return value


def _check_seconds(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_WAIT:
        raise ValueError(f"must be a whole number of seconds, 0 to {MAX_WAIT}")
    return value


def _convert(spec: Spec, value: object, base: Path | None, from_env: bool) -> Any:
    """Check one value and return it in its working form (ValueError says what is wrong)."""
    if spec.kind == "path":
        if not isinstance(value, str) or not value.strip():
            raise ValueError("must be a path, as text")
        if spec.key == "inventory" and _is_url(value):
            return value  # PostgreSQL (mdm/store/pg.py), not a path
        path = Path(value).expanduser()
        return path if base is None or path.is_absolute() else base / path
    if spec.kind == "seconds":
        if from_env:
            if not str(value).strip().isdigit():
                raise ValueError(f"must be a whole number of seconds, 0 to {MAX_WAIT}")
            value = int(str(value))
        return _check_seconds(value)
    if spec.kind == "zone":
        return check_zone(value)
    if spec.kind == "enterprise":
        return check_enterprise(value)
    if spec.kind == "tracks":
        return _tracks_from_env(str(value)) if from_env else check_tracks(value)
    if spec.kind == "roles":
        return check_roles(value)
    if spec.kind == "expiry":
        return check_expiry(value)
    if spec.kind == "duration":
        return check_duration(value)
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if spec.kind == "count":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
            raise ValueError("must be a whole number, 1 to 100000")
        return value
    if not isinstance(value, str):
        raise ValueError("must be text")
    return value


# -- the effective settings ------------------------------------------------------------------

def _flatten(data: dict[str, Any], lines: dict[tuple[str, ...], int], path: Path,
             problems: list[Problem]) -> dict[str, tuple[Any, int]]:
    """Return dotted key → (value, line) for every known setting; name every unknown key."""
    found: dict[str, tuple[Any, int]] = {}

    def walk(table: dict[str, Any], prefix: tuple[str, ...]) -> None:
        for key, value in table.items():
            keys = prefix + (str(key),)
            dotted = ".".join(keys)
            line = lines.get(keys, 1)
            spec = BY_KEY.get(dotted)
            if spec is not None and spec.in_file:
                found[dotted] = (value, line)
            elif spec is not None:
                problems.append(Problem(f"{path}:{line}", "is personal, so it is not read"
                                        " from the shared project file",
                                        f"use {spec.option} or {spec.env}", dotted))
            elif dotted in TABLES and isinstance(value, dict):
                walk(value, keys)
            else:
                known = [s.key for s in SPECS if s.in_file]
                problems.append(Problem(f"{path}:{line}", "is not a setting",
                                        _suggest(dotted, known) or "settings: "
                                        + ", ".join(known), dotted))

    walk(data, ())
    return found


def load(options: dict[str, Any] | None = None, start: Path | None = None) -> Settings:
    """Return the effective settings: option, then MDM_* variable, then mdm.toml, then default."""
    options = options or {}
    path = find_file(start)
    base = path.parent if path else None
    in_file: dict[str, tuple[Any, int]] = {}
    problems: list[Problem] = []
    lines: dict[tuple[str, ...], int] = {}
    if path is not None:
        data, lines = _read(path)
        in_file = _flatten(data, lines, path, problems)
    values: dict[str, Value] = {}
    for spec in SPECS:
        file_value: Any = None
        if spec.key in in_file:
            raw, line = in_file[spec.key]
            try:
                file_value = Value(_convert(spec, raw, base, False), f"{path}:{line}")
            except ValueError as exc:
                if isinstance(exc, EntryError):  # point at the entry's own line
                    line = lines.get((*spec.key.split("."), exc.entry), line)
                problems.append(Problem(f"{path}:{line}", str(exc), spec.doc, spec.key))
        env_value = os.environ.get(spec.env) if spec.env else None
        if options.get(spec.key) not in (None, ""):
            values[spec.key] = Value(_convert(spec, str(options[spec.key]), None, True)
                                     if spec.kind == "path" else options[spec.key],
                                     f"option {spec.option}")
        elif env_value:
            try:
                values[spec.key] = Value(_convert(spec, env_value, None, True),
                                         f"env {spec.env}")
            except ValueError as exc:
                problems.append(Problem(f"environment variable {spec.env}", str(exc),
                                        spec.doc))
        elif file_value is not None:
            values[spec.key] = file_value
        elif spec.key in BESIDE_INVENTORY and not _is_url(values["inventory"].value):
            values[spec.key] = Value(Path(values["inventory"].value).parent / spec.default,
                                     "default")
        else:
            values[spec.key] = Value(_default(spec, base), "default")
    if problems:
        where = str(path) if path else "the environment"
        raise InputError(f"{where}: {len(problems)} problem(s) in the settings",
                         "fix them (mdm config show lists every setting)", problems=problems)
    return Settings(path, values)


def _is_url(value: object) -> bool:
    """Say whether an inventory setting is a PostgreSQL URL (store.is_url, without importing it)."""
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))


def _default(spec: Spec, base: Path | None) -> Any:
    if spec.key == "operator":
        return getpass.getuser()
    if spec.kind == "path" and str(spec.default).startswith("~"):
        return Path(spec.default).expanduser()  # the user's own folder, not the project's
    if spec.kind == "path" and spec.default is not None:
        return base / spec.default if base else Path(spec.default)
    return spec.default


# -- mdm init ----------------------------------------------------------------------------------

_TEMPLATE = '''\
# mdm.toml: this project's settings for `mdm` (written by `mdm init`).
#
# mdm finds this file by walking up from the current folder, as git does, so every command
# run anywhere below this folder uses the same inventory, policies and lab. Relative paths
# are relative to this file's folder. Command-line options and MDM_* environment variables
# override what is set here; `mdm config show` prints every effective setting and where it
# came from. Unknown keys are refused.

# The inventory (SQLite). It holds names, payroll numbers and e-mail addresses: keep it on
# an encrypted disk, readable only by the device team.            (--db, MDM_DB)
# Several sites sharing one inventory: a PostgreSQL URL instead, no password in it
# (~/.pgpass, PGPASSWORD or a service file), e.g. "postgresql://mdm@db.example:5432/mdm".
inventory = "inventory/mdm.db"

# The policy layers (YAML), version-controlled like an Ansible control repo. (MDM_POLICIES)
policies = "playbooks/policies"

# App builds (APKs) to install on devices; by default builds/ beside the inventory.
#                                                                               (MDM_BUILDS)
# builds = "inventory/builds"

# The lab of simulated devices, for rehearsals (mdm lab ...); by default lab/ beside the
# inventory.                                                                      (MDM_LAB)
# lab = "inventory/lab"

# Seconds a write waits for another operator's write before giving up.          (MDM_WAIT)
wait = 30

# The zone of times typed without an offset (mdm custody --at ...).         (MDM_TIMEZONE)
timezone = "Europe/London"

[policy]
# The Android Management API enterprise the compiled policies belong to: each is named
# enterprises/{{enterprise_id}}/policies/{{policy id}}. mdm policy compile, show, diff, push
# and compliance report refuse to run without it.                     (MDM_ENTERPRISE_ID)
{enterprise}

# Google Play track ids of the release channels other than stable (production, which
# every device reaches). A device whose policy says apps.channel: pilot gets the pilot
# track's id in accessibleTrackIds for each app that follows the channel. Play track ids
# are per app: give one id for every app, or a table of ids per app.
#                          (MDM_TRACKS="pilot=ID" or "pilot/uk.police.app=ID,...")
[policy.tracks]
{tracks}
# [policy.tracks.pilot]
# "uk.police.cumbria.enotebook" = "4697324522958512346"
# "uk.police.cumbria.custody" = "4697324522958519876"

# Who may run what, over the built-in table (docs/operations.md): "action" = [roles].
# In the inventory these are accountability; on a device that trusts the force's CA, each
# role's certificate principal (mdm-admin, mdm-it, ...) is enforced by the device itself.
[roles]
# "policy.push" = ["admin", "it"]

# Lost and stolen devices (mdm lost, mdm incidents approve-wipe).
[helpdesk]
# wipe_approval = true       # a wipe waits for a second operator's approval
# lost_wipe_after = "24h"    # a lost device's wipe waits this long, unless it is recovered
# burst_wipes = 5            # more wipe requests than this within burst_minutes are held
# burst_minutes = 10         #   for an admin's review (mdm queue release)

# The force's SSH user CA (mdm ca init, mdm login). Its private key stays outside the
# project and the inventory: by default in ~/.config/mdm/ca of whoever runs mdm ca init.
[ca]
# dir = "/media/ca-token/mdm-ca"   # where the CA key is kept               (MDM_CA_DIR)
# max_validity = "12h"            # the longest an operator's certificate may be valid

# How long a queued command may wait for its device before it expires (mdm queue).
[queue.expiry]
# lock = "7d"
# wipe = "30d"
# policy = "30d"
'''


def template(enterprise_id: str | None = None, tracks: dict[str, str] | None = None) -> str:
    """Return a commented mdm.toml, with the given enterprise id and track ids filled in."""
    enterprise = (f'enterprise_id = "{check_enterprise(enterprise_id)}"' if enterprise_id
                  else '# enterprise_id = "LC0123abcd"')
    checked = check_tracks(dict(tracks or {}))
    lines = [f'{channel} = "{ids["*"]}"' for channel, ids in checked.items()]
    return _TEMPLATE.format(enterprise=enterprise,
                            tracks="\n".join(lines) or '# pilot = "4697324522958512346"')


def parse_track_options(items: list[str]) -> dict[str, str]:
    """Turn `--track CHANNEL=ID` options into a channel → id map (exit 2 if malformed)."""
    out: dict[str, str] = {}
    for item in items:
        channel, sep, track = item.partition("=")
        if not sep or not channel.strip() or not track.strip():
            raise InputError(f"--track {item!r} is not CHANNEL=ID", "e.g. --track pilot=4697…")
        out[channel.strip()] = track.strip()
    return out


def init(folder: Path, enterprise_id: str | None, tracks: dict[str, str],
         force: bool = False) -> dict[str, Any]:
    """Write a commented mdm.toml in a folder; refuse to overwrite one unless forced."""
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder", "create it first, or name another")
    path = folder / FILENAME
    if path.exists() and not force:
        raise InputError(f"{path} already exists; nothing was changed",
                         "edit it, or pass --force to replace it with a fresh one")
    try:
        text = template(enterprise_id, tracks)
    except ValueError as exc:
        raise InputError(f"cannot write {path}: {exc}",
                         "--enterprise-id ID (letters, digits, - and _) and"
                         " --track CHANNEL=ID (CHANNEL: pilot)") from None
    tmp = path.with_name(f".{FILENAME}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return {"file": str(path), "enterprise_id": enterprise_id, "tracks": tracks}
