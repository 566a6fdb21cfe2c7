"""Policies as the force's users see them: validate, show, compile, diff, push, history.

Nothing is pushed from a tree that does not validate. A push sends each device its own
compiled policy through the device profile (inbox written atomically, the DPC's apply
broadcast, status read back) and records success only when the device reports the
expected sha256. A device already running its policy is not written to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from mdm.bulk import paused_gc
from mdm.errors import InputError, Problem
from mdm.officers.models import describe
from mdm.policies import compile as compiler
from mdm.policies.layering import Effective, Subject, applies, merge
from mdm.policies.loader import Layer, load_tree
from mdm.policies.schema import FRONT_LINE, FRONT_LINE_MAX_LOCK
from mdm.store import groups as group_rows
from mdm.store import policies as policy_rows
from mdm.store.db import Database

BASELINE_MUST_SET = ("password.min_length", "password.max_failed_attempts_before_wipe",
                     "lock.auto_lock_seconds", "encryption", "developer_options",
                     "unknown_sources", "updates.max_patch_age_days",
                     "compliance.max_offline_days")


@dataclass
class Tree:
    """The policy layers of one folder, their warnings, the date they apply at, the target."""

    folder: Path
    layers: list[Layer]
    warnings: list[Problem]
    today: date
    subjects_checked: int = 0
    target: compiler.Target = field(default_factory=compiler.Target)

    def problem(self, effective: Effective, issue: compiler.Issue) -> Problem:
        """Locate an API issue: the layer file and line that set it, or the settings file."""
        by_name = {layer.name: layer for layer in self.layers}
        if issue.layer and issue.layer in by_name:
            return Problem(by_name[issue.layer].where("layer"), issue.message, issue.hint,
                           "layer")
        source = by_name.get(effective.sources.get(issue.setting or "", ""))
        if issue.setting and source is not None:
            return Problem(source.where(issue.setting), issue.message, issue.hint,
                           issue.setting)
        return Problem(self.target.where(), issue.message, issue.hint,
                       "policy.enterprise_id" if issue.project else "")


def _today() -> date:
    return datetime.now(UTC).date()


def load(folder: Path, target: compiler.Target | None = None,
         db: Database | None = None) -> Tree:
    """Load the policy tree, refusing it (exit 2) if any file has a problem.

    The compile target (enterprise id, Play tracks) comes from the project settings
    unless given; with `db`, it also carries the app builds released to each channel.
    """
    layers, problems = load_tree(folder)
    if problems:
        raise InputError(f"{folder}: {len(problems)} problem(s) in the policy tree;"
                         " nothing was done", "fix them, then run mdm policy validate",
                         problems=problems)
    if target is None:
        from mdm import config

        target = compiler.Target.from_settings(config.load())
    if db is not None:
        from dataclasses import replace

        from mdm.apps import releases

        target = replace(target, releases=releases.load(db).track_map())
    return Tree(folder, layers, [], _today(), target=target)


# -- whom policies are for ------------------------------------------------------------

def _subject(row: dict[str, Any], groups: dict[str, set[str]]) -> Subject:
    return Subject(row.get("serial"), row.get("officer_id"), row.get("worker_type"),
                   row.get("rank"), row.get("area"), row.get("station"),
                   frozenset(groups.get(row.get("officer_id") or "", set())))


_NO_GROUPS: frozenset[str] = frozenset()


def devices(db: Database, selectors: list[str],
            statuses: tuple[str, ...] = ("enrolled", "provisioned")) -> list[dict[str, Any]]:
    """Return the selected devices with their holders and the holders' `groups`.

    `Resolver.for_device` turns each into its policy.
    """
    from mdm.devices import selector  # not for a view that resolves kinds of holder only

    where, args = selector.select(db, selectors, statuses)  # refuses selecting no device
    if selector.parse(selectors) is None:
        rows = _fleet(db, statuses)
    else:
        rows = policy_rows.subjects(db, where, args)
    groups = {officer: frozenset(names) for officer, names in memberships(db).items()}
    for row in rows:
        row["groups"] = groups.get(row["officer_id"], _NO_GROUPS)
    return rows


def _fleet(db: Database, statuses: tuple[str, ...]) -> list[dict[str, Any]]:
    """Return every device in these statuses with its holder, as `devices` does.

    The whole fleet is read in three scans (devices, open assignments, officers) joined
    here: at 50,000 devices about twice as fast as SQLite looking up each device's holder
    through two indexes.
    """
    return policy_rows.fleet(db, statuses)


class Resolver:
    """Effective policies and compiled versions, cached per distinct kind of subject."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self.exception_serials = {s for layer in tree.layers if layer.kind == "device"
                                  for s in layer.match}
        self._cache: dict[tuple[Any, ...], tuple[Effective, compiler.Compiled]] = {}
        self._by_layers: dict[tuple[int, ...], tuple[Effective, compiler.Compiled]] = {}

    def for_device(self, row: dict[str, Any]) -> tuple[Effective, compiler.Compiled]:
        """Resolve a device of `devices`: its holder's kind, or itself if a layer names it.

        No subject is built for a device whose kind is resolved already: at 50,000
        devices this is most of the cost of resolving.
        """
        key = (row["worker_type"], row["rank"], row["area"], row["station"], row["groups"])
        found = self._cache.get(key) if row["serial"] not in self.exception_serials else None
        return found or self.resolve(Subject(row["serial"], row["officer_id"], *key))

    def resolve(self, subject: Subject) -> tuple[Effective, compiler.Compiled]:
        # A plain tuple as the key: hashed and compared in C, once per device of the fleet.
        key: tuple[Any, ...] = (subject.serial,) if subject.serial in self.exception_serials \
            else (subject.worker_type, subject.rank, subject.area, subject.station,
                  subject.groups)
        if key not in self._cache:
            # Kinds the same layers apply to share one policy, merged and compiled once.
            chosen = tuple(i for i, layer in enumerate(self.tree.layers)
                           if applies(layer, subject, self.tree.today))
            found = self._by_layers.get(chosen)
            if found is None:
                effective = compiler.with_releases(merge(self.tree.layers, subject,
                                                         self.tree.today), self.tree.target)
                issues = compiler.check(effective, self.tree.target)
                if issues:
                    raise InputError(f"the policy for {_describe(subject)} cannot be compiled"
                                     " for the Android Management API; nothing was done",
                                     "fix what is named, then run mdm policy validate",
                                     problems=[self.tree.problem(effective, i)
                                               for i in issues])
                found = self._by_layers[chosen] = (
                    effective, compiler.compile_policy(effective, self.tree.target))
            self._cache[key] = found
        return self._cache[key]


# -- validate ---------------------------------------------------------------------------

def validate(db: Database, folder: Path) -> dict[str, Any]:
    """Check every file, then every layer against the inventory; all problems at once.

    Project settings that compile and push need (enterprise id, Play tracks) are only
    warned about here: the tree itself may be fine.
    """
    tree = checked_tree(db, folder, for_api=False)
    return {"folder": str(folder), "files": len(tree.layers),
            "layers": [{"layer": x.name, "kind": x.kind, "match": list(x.match),
                        "file": x.file} for x in tree.layers],
            "subjects_checked": tree.subjects_checked,
            "warnings": [w.as_dict() for w in tree.warnings], "ok": True}


def checked_tree(db: Database, folder: Path, for_api: bool = True) -> Tree:
    """Load the tree and check it against the inventory; refuse it (exit 2) if anything is wrong.

    With `for_api` (push, push --check), a missing enterprise id or Play track id is a
    problem too; without it (validate), a warning.
    """
    tree = load(folder, db=db)
    problems: list[Problem] = []
    warnings: list[Problem] = []
    baseline = next(layer for layer in tree.layers if layer.kind == "baseline")
    for key in BASELINE_MUST_SET:
        if key not in baseline.settings:
            problems.append(Problem(baseline.where(), f"the baseline does not set {key}",
                                    "the baseline must set every security setting", key))
    groups = memberships(db)
    member_of = {officer: frozenset(names) for officer, names in groups.items()}
    # Each distinct kind of serving officer once: (worker type, rank, area, station, groups).
    kinds = {(w, r, a, s, member_of.get(o, _NO_GROUPS))
             for o, w, r, a, s in policy_rows.serving_kinds(db)}
    named = sorted({s for layer in tree.layers if layer.kind == "device" for s in layer.match})
    serials = policy_rows.known_serials(db, named)  # only the serials device layers name
    if not kinds:
        warnings.append(Problem(str(folder), "the inventory has no officers yet: layer"
                                " selectors were not checked against anyone"))
    else:
        problems += _unmatched(tree.layers, kinds, groups, serials, db, warnings)
    for layer in tree.layers:
        if layer.kind == "device" and layer.expired(tree.today):
            warnings.append(Problem(layer.where("expires"), f"exception {layer.name!r} expired"
                                    f" on {layer.expires}; it no longer applies",
                                    "remove the file or renew it with a reason", "expires"))
    subjects = {Subject(None, None, w, r, a, s, g) for w, r, a, s, g in kinds}
    subjects.add(Subject())  # a device nobody holds
    for layer in tree.layers:
        if layer.kind == "device":
            subjects |= {Subject(serial=s) for s in layer.match}
    found, api_warnings = _check_effective(tree, subjects, for_api)
    problems += found
    warnings += api_warnings
    if problems:
        raise InputError(f"{folder}: {len(problems)} problem(s); nothing may be pushed from"
                         " this tree", "fix them and validate again", problems=problems)
    tree.warnings, tree.subjects_checked = warnings, len(subjects)
    return tree


def _unknown_serial(db: Database, value: str) -> tuple[str, str, str]:
    """Why a device layer's serial matches no device: (serial, what, what to do)."""
    from mdm.store import devices as device_rows

    spelled = [d["serial"] for d in device_rows.with_serial(db, value)]
    if spelled:  # a layer matches a serial exactly; other commands take any case
        return (value, f"device {value!r} is {spelled[0]!r} in the inventory, and a layer"
                f" matches serials exactly", f"write it as {spelled[0]}")
    return value, f"device {value!r} is not in the inventory", "check the serial"


def _unmatched(layers: list[Layer], kinds: set[tuple[Any, ...]], groups: dict[str, set[str]],
               serials: set[str], db: Database, warnings: list[Problem]) -> list[Problem]:
    known = {kind: {str(k[i]).upper().replace(" ", "_") for k in kinds if k[i]}
             for i, kind in enumerate(("worker_type", "rank", "area", "station"))}
    # A group layer matches group names in any case (layering.applies), as here.
    group_names = {g.upper() for members in groups.values() for g in members}
    all_groups = {g.upper() for g in group_rows.names(db)}
    problems = []
    for layer in layers:
        missing = []
        for value in layer.match:
            norm = value.upper().replace(" ", "_")
            if layer.kind in known and norm not in known[layer.kind]:
                missing.append((value, f"{layer.kind} {value!r} matches no serving officer",
                                "check the spelling against mdm officers list"))
            elif layer.kind == "group" and value.upper() not in group_names:
                missing.append((value, f"group {value!r} has no members",
                                "add members with mdm groups add" if value.upper() in all_groups
                                else "create it with mdm groups create"))
            elif layer.kind == "device" and value not in serials:
                missing.append(_unknown_serial(db, value))
        # A group layer names a group the rollout fills in over time: until it has
        # members its devices simply don't match, which is no reason to refuse a push.
        if layer.kind == "group" and len(missing) == len(layer.match):
            warnings += [Problem(layer.where("match"), f"{text}: layer {layer.name!r}"
                                 " applies to no one yet", hint, "match")
                         for _, text, hint in missing]
        elif layer.kind != "baseline" and len(missing) == len(layer.match):
            problems += [Problem(layer.where("match"), f"{text}: layer {layer.name!r} applies"
                                 " to no one", hint, "match") for _, text, hint in missing]
        else:
            warnings += [Problem(layer.where("match"), text, hint, "match")
                         for _, text, hint in missing]
    return problems


def _check_effective(tree: Tree, subjects: set[Subject],
                     for_api: bool) -> tuple[list[Problem], list[Problem]]:
    by_name = {layer.name: layer for layer in tree.layers}
    problems: dict[str, Problem] = {}
    warnings: dict[str, Problem] = {}
    for subject in sorted(subjects, key=repr):
        effective = merge(tree.layers, subject, tree.today)
        for issue in compiler.check(effective, tree.target):
            found = tree.problem(effective, issue)
            into = warnings if issue.project and not for_api else problems
            into.setdefault(f"a{found.where}{found.message}", found)
        for key, first, second in effective.conflicts:
            text = (f"conflicts with layer {first.name!r} ({first.where(key)}) on {key}:"
                    f" both apply to {_describe(subject)}")
            problems.setdefault(f"c{key}{first.name}{second.name}", Problem(
                second.where(key), text,
                "make one layer more specific, or agree the value", key))
        lock = effective.settings.get("lock.auto_lock_seconds")
        if subject.worker_type in FRONT_LINE and lock and lock > FRONT_LINE_MAX_LOCK:
            source = by_name[effective.sources["lock.auto_lock_seconds"]]
            problems.setdefault(f"l{source.name}", Problem(
                source.where("lock.auto_lock_seconds"),
                f"gives front-line staff ({subject.worker_type}) a {lock} s lock",
                f"front line locks within {FRONT_LINE_MAX_LOCK} s", "lock.auto_lock_seconds"))
    return list(problems.values()), list(warnings.values())


def _describe(subject: Subject) -> str:
    parts = [p for p in (subject.worker_type, subject.rank, subject.area, subject.station)
             if p] + sorted(subject.groups) + ([subject.serial] if subject.serial else [])
    return " / ".join(parts) or "devices nobody holds"


def memberships(db: Database) -> dict[str, set[str]]:
    """Map officer id → the groups they belong to (as mdm.groups.service says; read here
    so that resolving policies does not import the officers' and groups' services)."""
    out: dict[str, set[str]] = {}
    for group, officer_id in group_rows.memberships(db):
        out.setdefault(officer_id, set()).add(group)
    return out


# -- show, compile, diff, history -------------------------------------------------------

def subject_for(db: Database, serial: str | None, officer: str | None) -> tuple[Subject, str]:
    """Return the subject for a device (with its holder) or for an officer."""
    groups = memberships(db)
    if serial:
        from mdm.devices.service import get  # finds by serial (any case) or IMEI

        exact = get(db, serial)["serial"]
        row = policy_rows.subject_of(db, exact)
        return _subject(row, groups), f"device {exact}"
    if officer:
        from mdm.officers import service as officers

        person = officers.resolve(db, officer)
        return _subject(person, groups), describe(person)
    raise InputError("give --device SERIAL or --officer ID")


def show(db: Database, folder: Path, serial: str | None, officer: str | None) -> dict[str, Any]:
    """Return the effective policy for a device or officer, each setting with its layer."""
    tree = load(folder, db=db)
    subject, label = subject_for(db, serial, officer)
    effective, compiled = Resolver(tree).resolve(subject)
    rows = []
    for key, value in sorted(effective.settings.items()):
        if key == "apps.install":
            for package, entry in sorted(value.items()):
                rows.append({"setting": f"apps.install.{package}", "value": entry,
                             "layer": effective.sources[f"apps.install.{package}"]})
        else:
            rows.append({"setting": key, "value": value, "layer": effective.sources[key]})
    return {"for": label, "layers": effective.layers, "sha256": compiled.sha256,
            "settings": rows}


def compile_for(db: Database, folder: Path, serial: str | None,
                officer: str | None) -> compiler.Compiled:
    """Return the compiled policy for a device or officer."""
    tree = load(folder, db=db)
    subject, _ = subject_for(db, serial, officer)
    return Resolver(tree).resolve(subject)[1]


def _flat(doc: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(doc, dict):
        out: dict[str, Any] = {}
        for k, v in doc.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else k))
        return out
    if isinstance(doc, list) and doc and all(isinstance(v, dict) and "packageName" in v
                                             for v in doc):
        return _flat({v["packageName"]: v for v in doc}, prefix)
    if isinstance(doc, list):
        return _flat({str(i): v for i, v in enumerate(doc)}, prefix)
    return {prefix: doc}


EXAMPLES = 5  # serials shown for each distinct change


def _device_rows(db: Database, selectors: list[str], serial: str | None) -> list[dict[str, Any]]:
    """Return the devices a diff covers: the selected ones, or the one `--device` names."""
    if not serial:
        return devices(db, selectors)
    if selectors:
        raise InputError("give selectors or --device, not both",
                         "mdm policy diff --device SERIAL shows one device's change")
    from mdm.devices.service import get  # finds by serial (any case) or IMEI

    device = get(db, serial)
    if device["status"] not in ("enrolled", "provisioned"):
        raise InputError(f"device {device['serial']} is {device['status']}: policies go only"
                         " to enrolled or provisioned devices", "enrol it first")
    return devices(db, [device["serial"]])


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Return each field of the compiled policy that differs, old and new value."""
    before, after = _flat(old), _flat(new)
    return [{"field": k, "from": before.get(k), "to": after.get(k)}
            for k in sorted(before.keys() | after.keys()) if before.get(k) != after.get(k)]


def diff(db: Database, folder: Path, selectors: list[str],
         serial: str | None = None) -> dict[str, Any]:
    """Say what pushing the current tree would change: each distinct change once.

    Devices are grouped by (the version they run → the version they would get); each
    group's fields are compared once, with the number of devices and a few example
    serials. With `serial`, only that device is looked at.
    """
    tree = load(folder, db=db)
    with paused_gc():
        rows = _device_rows(db, selectors, serial)
        groups = group_changes(plan(db, tree, [], rows))
    bodies = {sha: policy_rows.version_body(db, sha)
              for sha in {g["from"] for g in groups if g["from"]}}
    stored = {sha: json.loads(body) for sha, body in bodies.items() if body is not None}
    for group in groups:
        compiled = group.pop("compiled")
        current = group["from"]
        group["from_known"] = current is None or current in stored
        group["fields"] = _changes(stored.get(current, {}), compiled.document)
    changing = sum(g["devices"] for g in groups)
    return {"device": rows[0]["serial"] if serial else None, "selected": len(rows),
            "would_change": changing, "unchanged": len(rows) - changing, "changes": groups}


def group_changes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group planned devices that would change by (current → new version), largest first."""
    groups: dict[tuple[str | None, str], dict[str, Any]] = {}
    for row in rows:
        if not row["change"]:
            continue
        compiled = row["compiled"]
        key = (row["applied_policy"], compiled.sha256)
        group = groups.get(key)
        if group is None:
            group = groups[key] = {"from": key[0], "to": key[1],
                                   "policy": compiled.document.get("name"), "devices": 0,
                                   "examples": [], "compiled": compiled}
        group["devices"] += 1
        if len(group["examples"]) < EXAMPLES:
            group["examples"].append(row["serial"])
    return sorted(groups.values(), key=lambda g: (-g["devices"], g["from"] or "", g["to"]))


def history(db: Database, serial: str) -> list[dict[str, Any]]:
    """Return a device's policy history: versions sent, applied, reported, failed."""
    from mdm.devices.service import get

    device = get(db, serial)
    rows = policy_rows.events_of(db, device["id"])
    for r in rows:
        r["detail"] = json.loads(r["detail"]) if r["detail"] else None
    return rows


# -- push ---------------------------------------------------------------------------------

def plan(db: Database, tree: Tree, selectors: list[str],
         rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Resolve which devices get which policy (old → new); contacts nobody.

    `rows` are the devices already looked up (else the selectors pick them).
    """
    resolver = Resolver(tree)
    rows = devices(db, selectors) if rows is None else rows
    for row in rows:
        _, compiled = resolver.for_device(row)
        if row.get("via"):  # at a provisioning station: USB debugging stays on
            compiled = compiler.at_station(compiled)
        row["compiled"] = compiled
        row["change"] = row["applied_policy"] != compiled.sha256
    return rows


def plan_view(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the plan as users see it: serial, holder, old → new version, change?"""
    return [{"serial": r["serial"], "holder": r["holder"], "from": r["applied_policy"],
             "to": r["compiled"].sha256, "change": r["change"]} for r in rows]


def plan_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the plan's distinct changes (current → new version): count and examples."""
    groups = group_changes(rows)
    for group in groups:
        del group["compiled"]
    return groups
