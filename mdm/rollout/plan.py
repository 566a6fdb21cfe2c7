"""The rollout plan (`playbooks/rollout.yaml`): waves, cohorts, gates, rotas and windows.

The force keeps its plan in version control beside its policies, so a mistake in it must
be named with its file and line, all at once, before anything uses it: a wave that starts
before the last one ends, a gate figure outside 0–100 %, a shift that does not parse, a
cohort key nobody knows. What the plan means against the roster (who falls in which wave)
is `membership.py`; this module only reads and checks the file itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any

from mdm import yamlio
from mdm.errors import InputError, Problem

DEFAULT_PATH = Path("playbooks") / "rollout.yaml"
COHORT_KEYS = ("group", "area", "district", "station", "team", "worker_type", "rank",
               "officers")
GATE_KEYS = {"min_handed_over_percent": 0.0, "min_compliant_percent": 0.0,
             "max_open_blockers": 0, "max_failed_provisioning_percent": 100.0}
_SPAN = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_RATIO = re.compile(r"^1\s*:\s*(\d{1,3})$")


@dataclass(frozen=True)
class Span:
    """A daily span of local time, minutes from midnight; `end` past 1440 runs overnight."""

    start: int
    end: int

    def text(self) -> str:
        def hm(m: int) -> str:
            return f"{(m // 60) % 24 if m != 1440 else 24:02d}:{m % 60:02d}"
        return f"{hm(self.start)}-{hm(self.end)}"


def parse_span(text: Any) -> Span | None:
    """Read `HH:MM-HH:MM` (24:00 allowed as an end; an end before the start runs overnight)."""
    match = _SPAN.match(str(text).strip()) if isinstance(text, str) else None
    if not match:
        return None
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
        return None
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end == start:
        return None
    return Span(start, end if end > start else end + 1440)


@dataclass(frozen=True)
class Pattern:
    """A shift rota: a cycle of day codes from `start`; each code is a span, or a rest day."""

    name: str
    start: date
    cycle: tuple[str, ...]
    shifts: dict[str, Span]

    def shift_on(self, day: date, offset: int) -> Span | None:
        """Return the shift a team at `offset` days into the cycle works on `day`, if any."""
        code = self.cycle[((day - self.start).days + offset) % len(self.cycle)]
        return self.shifts.get(code)


@dataclass(frozen=True)
class Rota:
    """A team's place on a pattern."""

    team: str
    pattern: Pattern
    offset: int


@dataclass(frozen=True)
class Gate:
    """What must hold in a wave before the next wave opens (percentages of its cohort)."""

    min_handed_over_percent: float = 0.0
    min_compliant_percent: float = 0.0
    max_open_blockers: int = 0
    max_failed_provisioning_percent: float = 100.0


@dataclass(frozen=True)
class Wave:
    """One wave: who (cohort filters, OR-ed), when, its gate and its fixed windows."""

    name: str
    start: date
    end: date
    cohort: tuple[dict[str, tuple[str, ...]], ...]
    gate: Gate
    windows: tuple[Span, ...]
    line: int  # where the wave starts in the file, for problems found against the roster

    @property
    def picks(self) -> bool:
        """Say whether the cohort hand-picks people (a group or ids) rather than filters."""
        return all(set(f) <= {"group", "officers"} for f in self.cohort)


@dataclass
class Plan:
    """The whole plan as read from one file."""

    path: Path
    waves: list[Wave]
    rotas: dict[str, Rota]
    trainer_ratio: int = 6
    session_hours: float = 3.0
    training_hours: Span = field(default_factory=lambda: Span(8 * 60, 18 * 60))

    def wave(self, name: str) -> Wave:
        """Return the wave called `name`, or refuse naming the waves there are."""
        for wave in self.waves:
            if wave.name == name:
                return wave
        raise InputError(f"the plan {self.path} has no wave {name!r}",
                         "use one of: " + ", ".join(w.name for w in self.waves))

    def previous(self, name: str) -> Wave | None:
        """Return the wave before `name` (None for the first)."""
        names = [w.name for w in self.waves]
        index = names.index(self.wave(name).name)
        return self.waves[index - 1] if index else None


class _Reader:
    """Collects every problem in the file, each with its line."""

    def __init__(self, path: Path, lines: dict[tuple[str, ...], int]) -> None:
        self.path, self.lines = path, lines
        self.problems: list[Problem] = []

    def where(self, *keys: str | int) -> str:
        path = tuple(str(k) for k in keys)
        while path and path not in self.lines:
            path = path[:-1]
        line = self.lines.get(path)
        return f"{self.path}, line {line}" if line else str(self.path)

    def bad(self, keys: tuple[str | int, ...], message: str, hint: str = "") -> None:
        self.problems.append(Problem(self.where(*keys), message, hint,
                                     ".".join(str(k) for k in keys)))


def load(path: Path) -> Plan:
    """Read and check the plan file; raise InputError listing every problem with its line."""
    if not path.exists():
        raise InputError(f"there is no rollout plan at {path}",
                         "write one (see playbooks/rollout.yaml in mdm's repository) or"
                         " give --plan FILE")
    doc = yamlio.load_document(path)
    r = _Reader(path, doc.lines)
    data = doc.data
    if not isinstance(data, dict):
        raise InputError(f"{path}: the plan must be a mapping with a `waves:` list",
                         "see playbooks/rollout.yaml")
    unknown = set(data) - {"waves", "shifts", "training"}
    for key in sorted(unknown, key=str):
        r.bad((str(key),), f"unknown key {key!r}", "use waves, shifts and training")
    rotas = _rotas(r, data.get("shifts"))
    ratio, hours, day = _training(r, data.get("training"))
    waves = _waves(r, data.get("waves"))
    if r.problems:
        raise InputError(f"the rollout plan {path} has {len(r.problems)} problem(s);"
                         " nothing was done", "fix each one, then run mdm rollout validate",
                         problems=r.problems)
    return Plan(path, waves, rotas, ratio, hours, day)


def _percent(r: _Reader, keys: tuple[str | int, ...], value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        r.bad(keys, f"{value!r} is not a number", "give a percentage, 0 to 100")
        return None
    if not 0 <= value <= 100:
        r.bad(keys, f"{value:g} % is outside 0–100 %", "give a percentage, 0 to 100")
        return None
    return float(value)


def _gate(r: _Reader, keys: tuple[str | int, ...], raw: Any) -> Gate:
    if raw is None:
        return Gate()
    if not isinstance(raw, dict):
        r.bad(keys, "the gate must be a mapping", "e.g. {min_handed_over_percent: 90}")
        return Gate()
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in GATE_KEYS:
            r.bad((*keys, key), f"unknown gate condition {key!r}",
                  "use " + ", ".join(GATE_KEYS))
        elif key == "max_open_blockers":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                r.bad((*keys, key), f"{value!r} is not a count of 0 or more")
            else:
                values[key] = value
        else:
            figure = _percent(r, (*keys, key), value)
            if figure is not None:
                values[key] = figure
    return Gate(**values)


def _cohort(r: _Reader, keys: tuple[str | int, ...],
            raw: Any) -> tuple[dict[str, tuple[str, ...]], ...]:
    items = raw if isinstance(raw, list) else [raw]
    if raw is None or not items:
        r.bad(keys, "the wave has no cohort", "e.g. cohort: {area: NORTH}")
        return ()
    out = []
    for i, item in enumerate(items):
        at = (*keys, i) if isinstance(raw, list) else keys
        if not isinstance(item, dict) or not item:
            r.bad(at, "a cohort is a mapping of filters (or a list of them)",
                  "e.g. {area: NORTH, worker_type: [OFFICER, PCSO]}")
            continue
        filters: dict[str, tuple[str, ...]] = {}
        for key, value in item.items():
            values = value if isinstance(value, list) else [value]
            if key not in COHORT_KEYS:
                r.bad((*at, key), f"unknown cohort filter {key!r}",
                      "use " + ", ".join(COHORT_KEYS))
            elif not values or not all(isinstance(v, str | int) and str(v).strip()
                                       for v in values):
                r.bad((*at, key), f"{key} needs one value or a list of values")
            else:
                filters[key] = tuple(str(v).strip() for v in values)
        out.append(filters)
    return tuple(out)


def _date(r: _Reader, keys: tuple[str | int, ...], value: Any) -> date | None:
    if isinstance(value, date):
        return value
    r.bad(keys, *yamlio.not_a_date(value))
    return None


def _waves(r: _Reader, raw: Any) -> list[Wave]:
    if not isinstance(raw, list) or not raw:
        r.bad(("waves",), "the plan has no waves", "add a `waves:` list")
        return []
    waves: list[Wave] = []
    seen: dict[str, int] = {}
    previous: tuple[str, date] | None = None
    for i, item in enumerate(raw):
        at: tuple[str | int, ...] = ("waves", i)
        if not isinstance(item, dict):
            r.bad(at, "each wave is a mapping", "name, start, end, cohort, gate, windows")
            continue
        for key in item:
            if key not in ("name", "start", "end", "cohort", "gate", "windows", "description"):
                r.bad((*at, key), f"unknown wave key {key!r}",
                      "use name, start, end, cohort, gate, windows, description")
        name = str(item.get("name", ""))
        if not _NAME.match(name):
            r.bad((*at, "name"), f"wave name {name!r} is not allowed",
                  "lower-case letters, digits, - and _ (e.g. north)")
        elif name in seen:
            r.bad((*at, "name"), f"wave {name!r} is named twice (first at wave {seen[name]})")
        seen.setdefault(name, i + 1)
        start = _date(r, (*at, "start"), item.get("start"))
        end = _date(r, (*at, "end"), item.get("end"))
        if start and end and end < start:
            r.bad((*at, "end"), f"wave {name} ends ({end}) before it starts ({start})",
                  "put the end on or after the start")
        if start and previous and start <= previous[1]:
            r.bad((*at, "start"), f"wave {name} starts on {start}, which overlaps wave"
                  f" {previous[0]} (it ends on {previous[1]})",
                  "waves run one after another: start the day after the previous ends")
        cohort = _cohort(r, (*at, "cohort"), item.get("cohort"))
        gate = _gate(r, (*at, "gate"), item.get("gate"))
        windows = []
        raw_windows = item.get("windows", [])
        for j, text in enumerate(raw_windows if isinstance(raw_windows, list)
                                 else [raw_windows]):
            span = parse_span(text)
            if span is None:
                r.bad((*at, "windows", j), f"window {text!r} does not parse",
                      "write HH:MM-HH:MM, e.g. 02:00-06:00")
            else:
                windows.append(span)
        if start and end:
            previous = (name, end)
        if start and end and cohort is not None:
            waves.append(Wave(name, start, end, cohort, gate, tuple(windows),
                              r.lines.get(("waves", str(i)), 0)))
    return waves


def _rotas(r: _Reader, raw: Any) -> dict[str, Rota]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        r.bad(("shifts",), "shifts must be a mapping", "with patterns: and teams:")
        return {}
    patterns: dict[str, Pattern] = {}
    raw_patterns = raw.get("patterns") or {}
    if not isinstance(raw_patterns, dict):
        r.bad(("shifts", "patterns"), "patterns must be a mapping of name → pattern")
        raw_patterns = {}
    for name, body in raw_patterns.items():
        at: tuple[str | int, ...] = ("shifts", "patterns", name)
        if not isinstance(body, dict):
            r.bad(at, f"shift pattern {name!r} must be a mapping",
                  "with start, cycle and shifts")
            continue
        start = _date(r, (*at, "start"), body.get("start"))
        cycle = body.get("cycle")
        if isinstance(cycle, str):
            cycle = cycle.split()
        shifts_raw = body.get("shifts")
        shifts: dict[str, Span] = {}
        if not isinstance(shifts_raw, dict) or not shifts_raw:
            r.bad((*at, "shifts"), f"shift pattern {name!r} has no shifts",
                  "e.g. shifts: {E: 07:00-15:00, L: 15:00-23:00}")
        else:
            for code, text in shifts_raw.items():
                span = parse_span(text)
                if span is None:
                    r.bad((*at, "shifts", code), f"shift {code} = {text!r} does not parse",
                          "write HH:MM-HH:MM, e.g. 23:00-07:00")
                else:
                    shifts[str(code)] = span
        if not isinstance(cycle, list) or not cycle or len(cycle) > 366:
            r.bad((*at, "cycle"), f"shift pattern {name!r} needs a cycle of day codes",
                  "e.g. cycle: E E L L N N R R R R (R: rest day)")
            continue
        codes = [str(c) for c in cycle]
        for code in sorted(set(codes) - set(shifts) - {"R"}):
            r.bad((*at, "cycle"), f"the cycle uses {code!r}, which is not a shift",
                  "define it under shifts:, or use R for a rest day")
        if start and shifts:
            patterns[str(name)] = Pattern(str(name), start, tuple(codes), shifts)
    rotas: dict[str, Rota] = {}
    teams = raw.get("teams") or {}
    if not isinstance(teams, dict):
        r.bad(("shifts", "teams"), "teams must be a mapping of team → pattern")
        teams = {}
    for team, body in teams.items():
        at = ("shifts", "teams", team)
        body = body if isinstance(body, dict) else {"pattern": body}
        pattern_name = str(body.get("pattern"))
        offset = body.get("offset", 0)
        if pattern_name not in patterns:
            if pattern_name not in raw_patterns:
                r.bad((*at, "pattern"), f"team {team} uses unknown pattern {pattern_name!r}",
                      "use one of: " + ", ".join(map(str, raw_patterns)) if raw_patterns
                      else "define it under shifts.patterns")
            continue
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            r.bad((*at, "offset"), f"offset {offset!r} is not a whole number of days")
            continue
        rotas[str(team).upper()] = Rota(str(team).upper(), patterns[pattern_name], offset)
    return rotas


def _training(r: _Reader, raw: Any) -> tuple[int, float, Span]:
    ratio, hours, day = 6, 3.0, Span(8 * 60, 18 * 60)
    if raw is None:
        return ratio, hours, day
    if not isinstance(raw, dict):
        r.bad(("training",), "training must be a mapping", "ratio, session_hours, hours")
        return ratio, hours, day
    for key in raw:
        if key not in ("ratio", "session_hours", "hours"):
            r.bad(("training", key), f"unknown training key {key!r}",
                  "use ratio, session_hours, hours")
    if "ratio" in raw:
        match = _RATIO.match(str(raw["ratio"]))
        if not match or not 1 <= int(match[1]) <= 100:
            r.bad(("training", "ratio"), f"ratio {raw['ratio']!r} does not parse",
                  "write 1:N trainees per trainer, e.g. \"1:6\"")
        else:
            ratio = int(match[1])
    if "session_hours" in raw:
        value = raw["session_hours"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 10:
            r.bad(("training", "session_hours"), f"{value!r} is not 0–10 hours")
        else:
            hours = float(value)
    if "hours" in raw:
        span = parse_span(raw["hours"])
        if span is None or span.end > 1440:
            r.bad(("training", "hours"), f"hours {raw['hours']!r} do not parse",
                  "write HH:MM-HH:MM within one day, e.g. 08:00-18:00")
        else:
            day = span
    return ratio, hours, day


def has_rota(plan: Plan, team: str | None) -> bool:
    """Say whether the plan knows this team's shifts."""
    return (team or "").upper() in plan.rotas


def on_shift(plan: Plan, team: str | None, moment_local: Any) -> Span | None:
    """Return the shift `team` is working at a local datetime (None: off, or no rota).

    A night shift that began the evening before still counts: the day before is checked.
    """
    from datetime import timedelta

    rota = plan.rotas.get((team or "").upper())
    if rota is None:
        return None
    minute = moment_local.hour * 60 + moment_local.minute
    today = moment_local.date()
    for day, shift_minute in ((today, minute), (today - timedelta(days=1), minute + 1440)):
        span = rota.pattern.shift_on(day, rota.offset)
        if span and span.start <= shift_minute < span.end:
            return span
    return None


def in_window(windows: tuple[Span, ...], moment_local: Any) -> bool:
    """Say whether a local time falls inside one of the fixed daily windows."""
    minute = moment_local.hour * 60 + moment_local.minute
    return any(w.start <= m < w.end for w in windows for m in (minute, minute + 1440))


def clock(minutes: int) -> time:
    """Return the local time of day `minutes` after midnight."""
    return time((minutes // 60) % 24, minutes % 60)


def busy(plan: Plan, team: str | None, day: date, start: int, end: int) -> bool:
    """Say whether a team's shift overlaps [start, end) minutes of local `day`.

    A night shift begun the evening before counts; a team with no rota is never busy.
    """
    from datetime import timedelta

    rota = plan.rotas.get((team or "").upper())
    if rota is None:
        return False
    for shift_day, shift_at in ((day, 0), (day - timedelta(days=1), -1440)):
        span = rota.pattern.shift_on(shift_day, rota.offset)
        if span and span.start + shift_at < end and start < span.end + shift_at:
            return True
    return False
