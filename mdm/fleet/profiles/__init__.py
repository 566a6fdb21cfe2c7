"""Device profiles: which shell command or path carries each operation on a device build.

Features never hard-code a device command: they ask the profile. The built-in `android`
profile ships with mdm; a force can supply its own YAML with the same keys, in its
profiles folder (`profiles` in mdm.toml, default playbooks/profiles/): a profile listing
`models:` serves devices of those models, and an `android.yaml` there replaces the
built-in one for every other device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdm.errors import InputError
from mdm.fleet import deviceout
from mdm.fleet.deviceout import FACT_SECTIONS, StatusReading

BUILTIN = Path(__file__).parent


@dataclass(frozen=True)
class Profile:
    name: str
    facts: dict[str, str]
    paths: dict[str, str]
    actions: dict[str, str]
    models: tuple[str, ...] = ()  # the device models it serves (none: any)
    # Made afresh each time a profile is loaded (once per command run): device output
    # cannot pose as a section boundary it never saw.
    boundary: str = field(default_factory=deviceout.new_boundary, repr=False, compare=False)

    def _joined(self, sections: tuple[str, ...]) -> str:
        return f" ; echo {self.boundary} ; ".join(f"{{ {self.facts[k]} ; }}" for k in sections)

    def facts_command(self) -> str:
        """One command that prints every fact section, so facts cost one round trip."""
        return self._joined(FACT_SECTIONS)

    def status_command(self) -> str:
        """One command that prints the DPC status and the policy file's sha256."""
        return self._joined(deviceout.STATUS_SECTIONS)

    def parse_facts(self, output: str, device: str = "the device") -> dict[str, Any]:
        """Parse the facts command's output; MalformedOutput says why a device's is refused."""
        return deviceout.parse_facts(output, self.boundary, device)

    def parse_status(self, output: str, device: str = "the device") -> StatusReading:
        """Parse the status command's output: the DPC status and the policy file's sha256."""
        return deviceout.parse_status(output, self.boundary, device)


def load(name_or_path: str = "android") -> Profile:
    """Load a built-in profile by name, or a profile YAML file by path."""
    from mdm import yamlio

    path = Path(name_or_path)
    if not path.suffix:
        path = BUILTIN / f"{name_or_path}.yaml"
    if not path.is_file():
        raise InputError(f"no device profile {name_or_path!r}",
                         "use 'android' or the path of a profile YAML file")
    data = yamlio.load(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: a device profile must be a mapping of facts, paths and"
                         " actions", "copy the built-in android profile and edit it")
    missing = [f"{section}.{key}" for section, keys in
               (("facts", FACT_SECTIONS),
                ("paths", ("dpc_inbox", "dpc_status", "staging")),
                ("actions", ("apply_policy", "lock", "wipe")))
               for key in keys if not isinstance(data.get(section), dict)
               or not isinstance(data[section].get(key), str)]
    if missing:
        raise InputError(f"{path}: the profile lacks " + ", ".join(missing),
                         "copy the built-in android profile and edit it")
    models = data.get("models", [])
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise InputError(f"{path}: models must be a list of device models",
                         "e.g. models: [SM-N910F, SM-G900F]")
    return Profile(str(data.get("name") or path.stem), data["facts"], data["paths"],
                   data["actions"], tuple(models))


def chooser(folder: Path | None) -> Callable[[str | None], Profile]:
    """Return a function giving the profile for a device model (loaded once per run).

    A profile in `folder` that lists the model wins; else the folder's `android.yaml`;
    else the built-in android profile.
    """
    found = [load(str(p)) for p in sorted(folder.glob("*.yaml"))] if folder and \
        folder.is_dir() else []
    by_model: dict[str, Profile] = {}
    for profile in found:
        for model in profile.models:
            by_model.setdefault(model, profile)
    fallback = next((p for p in found if p.name == "android" and not p.models), None) \
        or load("android")

    def choose(model: str | None) -> Profile:
        return by_model.get(model or "", fallback)

    return choose
