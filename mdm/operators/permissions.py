"""The built-in table of roles and what each action needs: data only, imported by both
the role check (`roles.py`) and the project file's `[roles]` validation (`config.py`)."""

from __future__ import annotations

ROLES = ("admin", "it", "rollout", "helpdesk")

PERMISSIONS: dict[str, frozenset[str]] = {
    "operators.add": frozenset({"admin"}),
    "operators.remove": frozenset({"admin"}),
    "ca.manage": frozenset({"admin"}),
    "officers.import": frozenset({"admin", "rollout"}),
    "officers.export": frozenset({"admin", "rollout", "helpdesk"}),
    "devices.import": frozenset({"admin", "it"}),
    "devices.export": frozenset({"admin", "it", "rollout", "helpdesk"}),
    "devices.enrol": frozenset({"admin", "it"}),
    "devices.refresh": frozenset({"admin", "it"}),
    "custody.assign": frozenset({"admin", "it", "rollout", "helpdesk"}),
    "custody.unassign": frozenset({"admin", "it", "rollout", "helpdesk"}),
    "custody.reassign": frozenset({"admin", "it", "rollout", "helpdesk"}),
    "policy.push": frozenset({"admin", "it"}),
    "groups.manage": frozenset({"admin", "rollout"}),
    "devices.provision": frozenset({"admin", "it"}),
    "stations.manage": frozenset({"admin", "it"}),
    "helpdesk.report": frozenset({"admin", "helpdesk"}),
    "helpdesk.approve_wipe": frozenset({"admin", "helpdesk"}),
    "incidents.export": frozenset({"admin", "helpdesk"}),
    "queue.run": frozenset({"admin", "it"}),
    "queue.cancel": frozenset({"admin", "it", "helpdesk"}),
    "queue.release": frozenset({"admin"}),
    "rollout.manage": frozenset({"admin", "rollout"}),
    "rollout.override": frozenset({"admin"}),
    "rollout.ignore_window": frozenset({"admin", "it"}),
    "training.record": frozenset({"admin", "rollout"}),
    "feedback.manage": frozenset({"admin", "rollout", "helpdesk"}),
    "devices.handover": frozenset({"admin", "it", "rollout", "helpdesk"}),
    "apps.manage": frozenset({"admin", "it"}),
    "apps.push": frozenset({"admin", "it"}),
    "ca.rollout": frozenset({"admin", "it"}),
    "inventory.copy": frozenset({"admin"}),
}
