"""Read the policy tree (playbooks/policies/*.yaml) into layers, or say what is wrong where.

YAML is read by `mdm.yamlio` (a strict SafeLoader), which also gives the line of every
key, so each problem names file, line and key. It refuses duplicate keys, anchors and
aliases (how YAML bombs are built), impossible dates and numbers, and files over 256 KiB.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from mdm.errors import Problem
from mdm.policies.schema import APP_FIELDS, FIELDS, KINDS, SECTIONS

MAX_BYTES = 256 * 1024
TOP_KEYS = ("layer", "kind", "match", "description", "settings", "reason", "expires")
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_PACKAGE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$")


def default_dir() -> Path:
    """Return the policy folder: MDM_POLICIES, else playbooks/policies."""
    return Path(os.environ.get("MDM_POLICIES") or Path("playbooks") / "policies")


@dataclass
class Layer:
    """One policy layer file: whom it applies to, its settings and the line of each."""

    name: str
    kind: str
    file: str
    match: tuple[str, ...] = ()
    description: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    reason: str = ""
    expires: date | None = None
    line: int = 1

    @property
    def rank(self) -> int:
        return KINDS.index(self.kind)

    def where(self, key: str | None = None) -> str:
        return f"{self.file}, line {self.lines.get(key or '', self.line)}"

    def expired(self, today: date) -> bool:
        return self.expires is not None and self.expires < today


def load_file(path: Path) -> tuple[Layer | None, list[Problem]]:
    """Read one layer file; return the layer (if usable) and every problem found."""
    from mdm import yamlio

    try:
        doc = yamlio.load_document(path, MAX_BYTES)
    except yamlio.YamlError as exc:
        return None, [exc.problem]
    if not isinstance(doc.data, dict):
        return None, [Problem(str(path), "must be a mapping with layer, kind and settings",
                              "see playbooks/policies/00-baseline.yaml")]
    return _build(path, doc.data, doc.lines)


def _build(path: Path, data: dict[str, Any],
           lines: dict[tuple[str, ...], int]) -> tuple[Layer | None, list[Problem]]:
    name = str(path)
    problems: list[Problem] = []

    def at(*keys: str) -> str:
        return f"{name}, line {lines.get(tuple(keys), 1)}"

    def bad(keys: tuple[str, ...], message: str, hint: str = "") -> None:
        problems.append(Problem(at(*keys), message, hint, ".".join(keys)))

    for key in data:
        if key not in TOP_KEYS:
            bad((str(key),), "is not a layer key", _suggest(str(key), TOP_KEYS))
    kind = data.get("kind")
    if kind not in KINDS:
        bad(("kind",), f"{kind!r} is not a layer kind", "use one of: " + ", ".join(KINDS))
    layer_name = data.get("layer")
    if not isinstance(layer_name, str) or not layer_name:
        bad(("layer",), "every layer needs a name", "add e.g. layer: force-baseline")
    match = data.get("match", [])
    if isinstance(match, str):
        match = [match]
    if not isinstance(match, list) or not all(isinstance(m, str | int) for m in match):
        bad(("match",), "must be a list of values", "e.g. match: [PCSO]")
        match = []
    match = [str(m) for m in match]
    if kind == "baseline" and match:
        bad(("match",), "a baseline applies to everyone and has no match")
    if kind in KINDS and kind != "baseline" and not match:
        bad(("match",), f"a {kind} layer needs match: [...]", "say whom it applies to")
    reason, expires = data.get("reason") or "", data.get("expires")
    if kind == "device":
        if not reason:
            bad(("reason",), "a device exception needs a reason", "say why it is allowed")
        if isinstance(expires, str):
            from mdm.yamlio import not_a_date

            bad(("expires",), *not_a_date(expires))
        elif not isinstance(expires, date):
            bad(("expires",), "a device exception needs an expiry date",
                "add e.g. expires: 2015-06-30")
    elif expires is not None or reason:
        bad(("expires" if expires is not None else "reason",),
            "only device exceptions have a reason and an expiry")
    settings = data.get("settings")
    flat: dict[str, Any] = {}
    line_of: dict[str, int] = {}
    if not isinstance(settings, dict) or not settings:
        bad(("settings",), "every layer needs settings", "add the settings it changes")
    else:
        _flatten(settings, lines, name, flat, line_of, problems)
    if problems or not isinstance(layer_name, str) or kind not in KINDS:
        return None, problems
    line_of.update({key: lines[(key,)] for key in TOP_KEYS if (key,) in lines})
    return Layer(layer_name, str(kind), name, tuple(match), str(data.get("description") or ""),
                 flat, line_of, str(reason), expires if isinstance(expires, date) else None,
                 lines.get(("layer",), 1)), problems


def _flatten(settings: dict[str, Any], lines: dict[tuple[str, ...], int], name: str,
             flat: dict[str, Any], line_of: dict[str, int], problems: list[Problem]) -> None:
    def line(*keys: str) -> int:
        return lines.get(("settings",) + keys, 1)

    def bad(keys: tuple[str, ...], message: str, hint: str = "") -> None:
        problems.append(Problem(f"{name}, line {line(*keys)}", message, hint,
                                ".".join(keys)))

    for key, value in settings.items():
        key = str(key)
        candidates: list[tuple[tuple[str, ...], str, Any]]
        if key in FIELDS:
            candidates = [((key,), key, value)]
        elif key in SECTIONS and isinstance(value, dict):
            candidates = [((key, str(sub)), f"{key}.{sub}", v) for sub, v in value.items()]
        elif key in SECTIONS:
            bad((key,), "must be a mapping of settings")
            continue
        else:
            bad((key,), "is not a policy setting", _suggest(key, FIELDS) or
                "see docs/policies.md for every setting")
            continue
        for keys, path, v in candidates:
            spec = FIELDS.get(path)
            if spec is None:
                bad(keys, "is not a policy setting", _suggest(path, FIELDS))
                continue
            error = spec.check(v)
            if error:
                bad(keys, error, spec.doc)
                continue
            if path == "apps.install":
                v = _check_apps(v, keys, bad)
                for package in v:
                    line_of[f"apps.install.{package}"] = line(*keys, package)
            if path == "updates.window" and not _WINDOW.match(v):
                bad(keys, f"{v!r} is not HH:MM-HH:MM", "e.g. 02:00-04:00")
                continue
            flat[path] = v
            line_of[path] = line(*keys)


def _check_apps(apps: dict[str, Any], keys: tuple[str, ...], bad: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for package, entry in apps.items():
        sub = keys + (str(package),)
        if not _PACKAGE.match(str(package)):
            bad(sub, f"{package!r} is not an Android package name", "e.g. com.example.app")
            continue
        if entry is None:
            out[str(package)] = None  # removes the app set by a lower layer
            continue
        if not isinstance(entry, dict):
            bad(sub, "must be a mapping like {type: required}")
            continue
        for field_name, value in entry.items():
            spec = APP_FIELDS.get(str(field_name))
            if spec is None:
                bad(sub + (str(field_name),), "is not an app setting", _suggest(
                    str(field_name), APP_FIELDS))
            elif error := spec.check(value):
                bad(sub + (str(field_name),), error, spec.doc)
        if "type" not in entry:
            bad(sub, "needs a type", "required, available or blocked")
        out[str(package)] = dict(entry)
    return out


def _suggest(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f"did you mean {close[0]!r}?" if close else ""


def load_tree(folder: Path) -> tuple[list[Layer], list[Problem]]:
    """Read every *.yaml layer in a folder, in name order; check names and the baseline."""
    if not folder.is_dir():
        return [], [Problem(str(folder), "is not a folder of policy layers",
                            "point --policies (or MDM_POLICIES) at playbooks/policies")]
    layers, problems = [], []
    for path in sorted(folder.glob("*.y*ml")):
        layer, found = load_file(path)
        problems += found
        if layer:
            layers.append(layer)
    names: dict[str, Layer] = {}
    for layer in layers:
        if layer.name in names:
            problems.append(Problem(layer.where("layer"), f"layer name {layer.name!r} is also"
                                    f" used by {names[layer.name].file}", "names are unique",
                                    "layer"))
        names[layer.name] = layer
    baselines = [layer for layer in layers if layer.kind == "baseline"]
    if len(baselines) != 1 and not problems:
        problems.append(Problem(str(folder), f"has {len(baselines)} baseline layers",
                                "keep exactly one layer with kind: baseline"))
    return layers, problems
