"""Pick a pilot whose mix mirrors the force: stratified, proportional, reproducible.

The force's device-eligible people (active, not leavers) are split into strata by the
chosen roster columns (e.g. rank × worker type × area). Each stratum gets its share of
the pilot by largest remainder, so every stratum is within one person of its exact
share, and its members are drawn at random with a seed that is always reported: the
same seed and roster give the same pilot. `--apply` fills the `pilot` group (which the
pilot policy layer targets) in one transaction with one audit row.
"""

from __future__ import annotations

import random
from typing import Any

from mdm.errors import InputError
from mdm.operators import roles
from mdm.rollout.membership import eligible
from mdm.store import audit, groups, transaction
from mdm.store import rollout as store
from mdm.store.db import Database
from mdm.timeutil import now

STRATA_KEYS = ("rank", "worker_type", "area", "district", "station", "team")
GROUP = "pilot"


def _keys(text: str) -> list[str]:
    keys = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in keys if k not in STRATA_KEYS]
    if not keys or bad:
        raise InputError(f"--stratify {text!r}: {', '.join(bad) or 'no column'} cannot"
                         " stratify", "use a comma-separated list of: "
                         + ", ".join(STRATA_KEYS))
    return keys


Strata = dict[tuple[str, ...], int]


def _allocate(sizes: Strata, total: int, size: int) -> Strata:
    """Share `size` places among strata in proportion (largest remainder, ties by name)."""
    exact = {k: size * n / total for k, n in sizes.items()}
    quota = {k: int(v) for k, v in exact.items()}
    left = size - sum(quota.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - quota[k]), k))[:left]:
        quota[k] += 1
    return quota


def mix(people: list[dict[str, Any]], picked: list[dict[str, Any]],
        keys: list[str]) -> list[dict[str, Any]]:
    """Return each stratum value's count and share in the force and in the pilot."""
    rows = []
    for key in keys:
        values = sorted({p.get(key) or "-" for p in people})
        for value in values:
            force = sum(1 for p in people if (p.get(key) or "-") == value)
            pilot = sum(1 for p in picked if (p.get(key) or "-") == value)
            force_share = 100.0 * force / len(people) if people else 0.0
            pilot_share = 100.0 * pilot / len(picked) if picked else 0.0
            rows.append({"column": key, "value": value, "force": force,
                         "force_percent": round(force_share, 1), "pilot": pilot,
                         "pilot_percent": round(pilot_share, 1),
                         "deviation_points": round(pilot_share - force_share, 1)})
    return rows


def select(db: Database, operator: str, size: int, stratify: str, seed: int | None,
           apply: bool) -> dict[str, Any]:
    """Propose (and with `apply`, record) a stratified pilot of `size` people."""
    keys = _keys(stratify)
    if apply:
        roles.require(db, operator, "rollout.manage")
    people = [p for p in store.people(db)
              if p["status"] == "ACTIVE" and eligible(p)]
    if not 1 <= size <= len(people):
        raise InputError(f"--size {size} is not between 1 and the {len(people)}"
                         " device-eligible active people in the roster")
    if seed is None:
        seed = random.SystemRandom().randrange(10**6)
    rng = random.Random(seed)
    strata: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for p in people:
        strata.setdefault(tuple(p.get(k) or "-" for k in keys), []).append(p)
    quota = _allocate({k: len(v) for k, v in strata.items()}, len(people), size)
    picked: list[dict[str, Any]] = []
    for key in sorted(strata):
        picked += rng.sample(strata[key], quota[key])
    picked.sort(key=lambda p: (p["area"] or "", p["station"] or "", p["surname"]))
    table = mix(people, picked, keys)
    worst = max(table, key=lambda r: abs(r["deviation_points"]))
    result = {"size": len(picked), "seed": seed, "stratify": keys, "force": len(people),
              "strata": len(strata), "mix": table,
              "largest_deviation": {k: worst[k] for k in ("column", "value",
                                                          "deviation_points")},
              "pilot": [{"officer_id": p["officer_id"], "collar_number": p["collar_number"],
                         "name": f"{p['forename']} {p['surname']}", "rank": p["rank"],
                         "worker_type": p["worker_type"], "area": p["area"],
                         "station": p["station"], "team": p["team"]} for p in picked],
              "applied": False}
    if apply:
        _apply(db, operator, picked, result)
        result["applied"] = True
    return result


def _apply(db: Database, operator: str, picked: list[dict[str, Any]],
           result: dict[str, Any]) -> None:
    """Fill the empty `pilot` group with the picked people, audited."""
    with transaction(db):
        roles.require(db, operator, "rollout.manage")
        members = groups.member_count(db, GROUP)
        if members:
            raise InputError(f"group {GROUP} already has {members} member(s); nothing changed",
                             "review it with mdm groups show pilot; remove them first"
                             " (mdm groups remove pilot … --reason) to pick again")
        at = now()
        if not groups.exists(db, GROUP):
            groups.insert(db, GROUP, "the rollout pilot", at, operator)
        groups.add_members(db, GROUP, [p["officer_id"] for p in picked], at, operator)
        audit.record(db, operator, "rollout.pilot_select", f"group:{GROUP}", None,
                     {"added": [p["officer_id"] for p in picked], "seed": result["seed"],
                      "stratify": result["stratify"],
                      "largest_deviation": result["largest_deviation"]})
