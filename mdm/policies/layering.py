"""Which layers apply to whom, and how they merge into one effective policy.

The rules (docs/policies.md):
- Layers apply by kind, lowest precedence first: baseline, worker_type, rank, area,
  station, group, device. A higher kind overrides a lower one, setting by setting.
- Settings are merged one key at a time (`password.min_length` from one layer,
  `password.quality` from another). `apps.install` merges one package at a time; a layer
  that sets a package to null removes it.
- Two layers of the same kind that both apply and set one key to different values
  conflict: validation refuses the tree rather than pick one by file name.
- A device exception past its expiry no longer applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

from mdm.policies.loader import Layer


class Subject(NamedTuple):
    """Whom a policy is for: a device and the officer who holds it (either may be absent).

    A named tuple, not a dataclass: a fleet-wide view makes one for each of 50,000 devices.
    """

    serial: str | None = None
    officer_id: str | None = None
    worker_type: str | None = None
    rank: str | None = None
    area: str | None = None
    station: str | None = None
    groups: frozenset[str] = frozenset()

    def label(self) -> str:
        return self.serial or self.officer_id or "(nobody)"


def applies(layer: Layer, subject: Subject, today: date) -> bool:
    """Say whether a layer applies to a subject."""
    wanted = {m.upper() for m in layer.match}
    if layer.kind == "baseline":
        return True
    if layer.kind == "device":
        return subject.serial in layer.match and not layer.expired(today)
    if layer.kind == "group":
        return bool({g.upper() for g in subject.groups} & wanted)
    value = getattr(subject, layer.kind)
    return value is not None and value.upper().replace(" ", "_") in {
        w.replace(" ", "_") for w in wanted}


@dataclass
class Effective:
    """A subject's merged policy: each setting, the layer that set it, the layers applied and
    any same-rank conflicts."""

    settings: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    layers: list[str] = field(default_factory=list)
    conflicts: list[tuple[str, Layer, Layer]] = field(default_factory=list)

    def apps(self) -> dict[str, dict[str, Any]]:
        """Return the apps in force (removed ones dropped), by package name."""
        return {p: e for p, e in self.settings.get("apps.install", {}).items() if e is not None}


def merge(layers: list[Layer], subject: Subject, today: date) -> Effective:
    """Merge every layer that applies to the subject into its effective policy."""
    unique = {(layer.kind, layer.file, layer.name): layer for layer in layers}
    chosen = sorted((layer for layer in unique.values() if applies(layer, subject, today)),
                    key=lambda layer: (layer.rank, layer.file, layer.name))
    out = Effective(layers=[layer.name for layer in chosen])
    setter: dict[str, Layer] = {}
    for layer in chosen:
        for path, value in layer.settings.items():
            if path == "apps.install":
                apps = dict(out.settings.get("apps.install", {}))
                for package, entry in value.items():
                    key = f"apps.install.{package}"
                    _note_conflict(out, setter, key, layer, apps.get(package), entry)
                    apps[package] = entry
                    out.sources[key] = layer.name
                    setter[key] = layer
                out.settings["apps.install"] = apps
                continue
            _note_conflict(out, setter, path, layer, out.settings.get(path), value)
            out.settings[path] = value
            out.sources[path] = layer.name
            setter[path] = layer
    return out


def _note_conflict(out: Effective, setter: dict[str, Layer], key: str, layer: Layer,
                   old: Any, new: Any) -> None:
    previous = setter.get(key)
    if previous is not None and previous.rank == layer.rank and previous is not layer \
            and old != new:
        out.conflicts.append((key, previous, layer))
