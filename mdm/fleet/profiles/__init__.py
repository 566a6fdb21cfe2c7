"""Device profiles: which shell command or path carries each operation on a device build.

Features never hard-code a device command: they ask the profile. The built-in `android`
profile ships with mdm; a force can supply its own YAML with the same keys.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mdm.errors import InputError

BUILTIN = Path(__file__).parent
SEPARATOR = "----mdm-section----"
FACT_SECTIONS = ("props", "packages", "settings", "dpc_status", "policy_file")
_PROP = re.compile(r"^\[(?P<key>[^\]]+)\]: \[(?P<value>.*)\]$")
_PKG = re.compile(r"^package:(?P<name>\S+)(?: versionCode:(?P<code>\d+))?")


@dataclass(frozen=True)
class Profile:
    name: str
    facts: dict[str, str]
    paths: dict[str, str]
    actions: dict[str, str]

    def facts_command(self) -> str:
        """One command that prints every fact section, so facts cost one round trip."""
        parts = [self.facts[k] for k in FACT_SECTIONS]
        return f" ; echo {SEPARATOR} ; ".join(f"{{ {p} ; }}" for p in parts)

    def status_command(self) -> str:
        """One command that prints the DPC status and the policy file's sha256."""
        parts = [self.facts["dpc_status"], self.facts["policy_file"]]
        return f" ; echo {SEPARATOR} ; ".join(f"{{ {p} ; }}" for p in parts)

    def parse_facts(self, output: str) -> dict[str, Any]:
        """Parse the facts command's output: props, packages, settings, DPC status."""
        sections = output.split(SEPARATOR + "\n")
        if len(sections) != len(FACT_SECTIONS):
            raise ValueError("the device's facts output has the wrong number of sections")
        props = {m["key"]: m["value"] for line in sections[0].splitlines()
                 if (m := _PROP.match(line))}
        packages = {m["name"]: int(m["code"] or 0) for line in sections[1].splitlines()
                    if (m := _PKG.match(line))}
        settings = dict(line.split("=", 1) for line in sections[2].splitlines() if "=" in line)
        status, policy_file = parse_status(sections[3] + SEPARATOR + "\n" + sections[4])
        return {"props": props, "packages": packages, "settings": settings,
                "dpc_status": status, "policy_file_sha256": policy_file}


def parse_status(output: str) -> tuple[dict[str, Any] | None, str | None]:
    """Parse the status command's output: the DPC's status JSON and the policy file's hash."""
    status_text, _, file_text = output.partition(SEPARATOR + "\n")
    try:
        status = json.loads(status_text) if status_text.strip() else None
    except ValueError:
        status = {"state": "UNREADABLE"}
    digest = file_text.split()[0] if file_text.split() else None
    return status, digest


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
    return Profile(str(data.get("name") or path.stem), data["facts"], data["paths"],
                   data["actions"])
