"""The provisioning playbook (`playbooks/provision.yaml`): which steps, in which order.

Each step calls the command that already does that job (refresh, policy push, devices
provision) or judges what the inventory already knows (identity, apps, compliance); none
is re-implemented here. The file only orders them; its mistakes are named by line.
"""

from __future__ import annotations

from pathlib import Path

from mdm import yamlio
from mdm.errors import InputError, Problem

STEPS = ("refresh", "identity", "trust", "policy", "apps", "compliance", "provision")
# A step that judges facts needs facts first; the last step is always the move itself.
AFTER = {"identity": "refresh", "compliance": "policy"}


def load(path: Path) -> list[str]:
    """Read the playbook's steps; raise InputError naming every problem with its line."""
    if not path.exists():
        raise InputError(f"there is no provisioning playbook at {path}",
                         "write one (see playbooks/provision.yaml) or give --steps FILE")
    doc = yamlio.load_document(path)
    data = doc.data
    line = doc.lines.get(("steps",))
    where = f"{path}, line {line}" if line else str(path)
    if not isinstance(data, dict) or set(data) != {"steps"} or \
            not isinstance(data["steps"], list) or not data["steps"]:
        raise InputError(f"{path}: the playbook must be a mapping with one key, `steps:`, a"
                         " list of step names", "see playbooks/provision.yaml")
    steps = [str(s) for s in data["steps"]]
    problems = []
    for i, name in enumerate(steps):
        at = f"{where} (step {i + 1})"
        if name not in STEPS:
            problems.append(Problem(at, f"unknown step {name!r}", "use " + ", ".join(STEPS)))
        elif steps.index(name) != i:
            problems.append(Problem(at, f"step {name!r} is given twice", "keep one"))
        elif name in AFTER and AFTER[name] not in steps[:i]:
            problems.append(Problem(at, f"step {name!r} needs {AFTER[name]!r} before it"))
    if "provision" not in steps or steps[-1] != "provision":
        problems.append(Problem(where, "the last step must be `provision`",
                                "end the list with provision"))
    if problems:
        raise InputError(f"the provisioning playbook {path} has {len(problems)} problem(s);"
                         " nothing was done", "fix each one", problems=problems)
    return steps
