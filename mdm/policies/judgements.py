"""Each device's compliance judgement, stored when its facts are recorded and read back
only while it still says what judging the device now would say.

The rollout's gates count compliant devices; judging a whole wave live on every
`rollout status` costs seconds at force scale. A refresh judges each device it reached
(the same `Judge` as `mdm compliance report`, without the app releases, as the gates
count) and stores the result with what it depends on. A reader uses a stored judgement
only if all of it still holds, and otherwise judges the device live:

- its facts are the ones judged (any write to them deletes the judgement: a trigger);
- its policy is the one judged against: `policy_key` digests the compiled policy's sha256
  and every effective setting, compared with the device's policy resolved now (so a
  policy edit, a new holder, a group change or a release makes it stale);
- its status (quarantined or not), last seen and last contact error are as judged;
- time alone has not changed it: `valid_until` is the first instant at which its
  security patch would be too old, or its last contact too long ago.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from mdm.policies.compliance import FACTS, Judge
from mdm.policies.layering import Effective
from mdm.store import judgements as stored
from mdm.store.db import Database
from mdm.store.rollout import Part

STATUSES = ("enrolled", "provisioned", "quarantined")
_PATCH = FACTS.index("security_patch")
_NONE: frozenset[str] = frozenset()


def policy_key(effective: Effective, sha256: str) -> str:
    """Digest what a judgement reads of a policy: its compiled sha256 and its settings."""
    text = json.dumps([sha256, effective.settings], sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stamp(moment: datetime) -> str:
    """Write an instant as stored: UTC, fixed width, so that text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def valid_until(effective: Effective, facts: tuple[Any, ...] | None, seen: Any,
                now: datetime) -> tuple[bool, str | None]:
    """Say whether a judgement made now may be stored, and until when it holds.

    Two reasons depend on the clock (compliance.py): a security patch older than
    `updates.max_patch_age_days` (whole days, by the UTC date) and a last contact longer
    ago than `compliance.max_offline_days`. Each, not yet true, becomes true at one
    instant; once true it stays true. Values a judge could not compare are not stored.
    """
    if not facts:  # a device with no facts is judged without the clock
        return True, None
    settings = effective.settings
    limits: list[datetime] = []
    max_age = settings.get("updates.max_patch_age_days")
    patch_text = facts[_PATCH]
    if max_age:
        if not _number(max_age):
            return False, None
        try:
            patch = date.fromisoformat(patch_text) if isinstance(patch_text, str) \
                and patch_text else None
        except ValueError:
            patch = None
        if patch is not None and (now.date() - patch).days <= max_age:
            try:  # the first whole number of days that is more than max_age
                limits.append(datetime.combine(patch + timedelta(days=math.floor(max_age) + 1),
                                               time(), UTC))
            except OverflowError:
                return False, None
    offline = settings.get("compliance.max_offline_days")
    if offline and seen:
        if not _number(offline) or not isinstance(seen, str):
            return False, None
        try:
            moment = datetime.fromisoformat(seen.replace("Z", "+00:00"))
            until = moment + timedelta(days=offline)
        except (ValueError, OverflowError):
            return False, None
        if moment.tzinfo is None:
            return False, None
        if (now - moment).total_seconds() / 86400 <= offline:
            limits.append(until)
    if not limits:
        return True, None
    first = min(limits)
    if not 1000 <= first.astimezone(UTC).year <= 9999:
        return False, None
    return True, stamp(first)


class _Policies:
    """Each device's effective policy and key, resolved once per kind of holder."""

    def __init__(self, db: Database, folder: Path) -> None:
        from mdm.policies import service
        from mdm.store.groups import memberships

        self.resolver = service.Resolver(service.load(folder, db=db))
        self.exceptions = self.resolver.exception_serials
        found: dict[str, set[str]] = {}
        for group, officer in memberships(db):
            found.setdefault(officer, set()).add(group)
        self.groups = {o: frozenset(names) for o, names in found.items()}
        self._keys: dict[int, str] = {}
        self._kinds: dict[tuple[Any, ...], tuple[Effective, str, str]] = {}

    def of(self, row: tuple[Any, ...]) -> tuple[Effective, str, str]:
        """Return (effective, sha256, policy key) for a row of `store.judgements.devices`."""
        _, serial, _, _, _, officer, worker_type, rank, area, station = row[:10]
        groups = self.groups.get(officer, _NONE) if officer else _NONE
        kind = (worker_type, rank, area, station, groups)
        found = self._kinds.get(kind) if serial not in self.exceptions else None
        if found is not None:
            return found
        effective, compiled = self.resolver.for_device(
            {"serial": serial, "officer_id": officer, "worker_type": worker_type,
             "rank": rank, "area": area, "station": station, "groups": groups})
        key = self._keys.get(id(effective))
        if key is None:
            key = self._keys[id(effective)] = policy_key(effective, compiled.sha256)
        found = (effective, compiled.sha256, key)
        if serial not in self.exceptions:
            self._kinds[kind] = found
        return found


def _holds(row: tuple[Any, ...], key: str, now: str) -> bool:
    """Say whether a device's stored judgement still holds (see the module's list)."""
    (_, _, status, seen, error, *_), judged = row[:10], row[10:]
    j_key, j_status, j_seen, j_error, _, j_until = judged
    return (j_key == key and (j_status == "quarantined") == (status == "quarantined")
            and j_seen == seen and j_error == error and (j_until is None or now < j_until))


def compliant(db: Database, folder: Path, wanted: set[int],
              moment: datetime | None = None,
              policies: _Policies | None = None) -> dict[int, bool]:
    """Say which of the wanted enrolled or provisioned devices are compliant (reads only).

    A stored judgement that still holds (at `moment`, default now) is read; any other
    device is judged live.
    """
    if not wanted:
        return {}
    moment = moment or datetime.now(UTC)
    now = stamp(moment)
    policies = policies or _Policies(db, folder)
    out: dict[int, bool] = {}
    live: list[tuple[Any, ...]] = []
    for row in stored.devices(db, ("enrolled", "provisioned"), wanted):
        _, _, key = policies.of(row)
        if _holds(row, key, now):
            out[row[0]] = bool(row[14])
        else:
            live.append(row)
    return {**out, **_judged(db, policies, live, moment)}


def _judged(db: Database, policies: _Policies, rows: Sequence[tuple[Any, ...]],
            moment: datetime) -> dict[int, bool]:
    """Judge these devices live from their facts: compliant or not, by device id (`rows`:
    as `store.judgements.devices` gives them, the first ten columns)."""
    if not rows:
        return {}
    facts = stored.facts(db, FACTS, (row[0] for row in rows))
    judge = Judge(moment)
    out = {}
    for row in rows:
        effective, sha, _ = policies.of(row)
        out[row[0]] = not judge.judge(row[2], row[4], row[3], facts.get(row[0]), effective,
                                      sha)
    return out


def compliant_counts(db: Database, folder: Path, columns: Sequence[str],
                     pick: tuple[str, list[Any]], where: Sequence[Part],
                     moment: datetime | None = None) -> Counter[tuple[Any, ...]]:
    """Count the compliant enrolled or provisioned devices of device-eligible holders, per
    (hand-picked officer id or None, *the holder's values of `columns`) (reads only).

    The same answer as `compliant` device by device, for a fraction of the rows: stored
    judgements whose status, last seen, last contact error and time still hold are counted
    in SQL per kind of holder, and each kind's policy is resolved once (a device a layer
    names, by itself). A kind whose devices all hold a judgement made against the policy
    now is counted as stored; in any other kind each device is looked at, and one with
    nothing stored that holds, or stored against another policy, is judged by `compliant`.
    """
    if not stored.any_in_scope(db, where):
        return Counter()  # nothing to judge: the policy tree is not needed (nor read)
    moment = moment or datetime.now(UTC)
    now = stamp(moment)
    policies = _Policies(db, folder)
    exceptions = sorted(policies.exceptions)
    width = 1 + len(columns)
    out: Counter[tuple[Any, ...]] = Counter()
    mixed: dict[tuple[Any, ...], str] = {}  # kind (with holder and serial) -> key wanted
    for row in stored.grouped(db, columns, pick, where, exceptions, now):
        kind, (worker_type, rank, area, station, member, serial) = row[:-5], row[width:-5]
        count, held, ok, low, high = row[-5:]
        _, _, wanted = policies.of((None, serial, None, None, None, member, worker_type, rank,
                                    area, station))
        if held == count and low == high == wanted:
            out[row[:width]] += ok
        else:
            mixed[kind] = wanted
    live: list[tuple[Any, ...]] = []  # as store.judgements.devices gives them
    kind_of: dict[int, tuple[Any, ...]] = {}
    if mixed:
        for row in stored.each(db, columns, pick, where, exceptions, now):
            policy = mixed.get(row[:-7])
            if policy is None:
                continue
            key, ok, device = row[-7:-4]
            if key == policy:
                out[row[:width]] += int(ok)
            else:  # nothing stored that holds, or stored against another policy
                (worker_type, rank, area, station, member), (serial, status, seen, error) = \
                    row[width:width + 5], row[-4:]
                live.append((device, serial, status, seen, error, member, worker_type, rank,
                             area, station))
                kind_of[device] = row[:width]
    for device, ok in _judged(db, policies, live, moment).items():  # from the rows read
        out[kind_of[device]] += ok
    return out


def record(db: Database, folder: Path, ids: Iterable[int],
           moment: datetime | None = None) -> int:
    """Judge these devices from their facts and store each judgement; return how many.

    Inside the caller's transaction. Devices not enrolled, provisioned or quarantined,
    and judgements that could not be compared later (see `valid_until`), are not stored.
    """
    wanted = set(ids)
    if not wanted:
        return 0
    moment = moment or datetime.now(UTC)
    now = stamp(moment)
    policies = _Policies(db, folder)
    rows = stored.devices(db, STATUSES, wanted)
    facts = stored.facts(db, FACTS, (r[0] for r in rows))
    judge = Judge(moment)
    out = []
    for row in rows:
        effective, sha, key = policies.of(row)
        found = facts.get(row[0])
        reasons = judge.judge(row[2], row[4], row[3], found, effective, sha)
        storable, until = valid_until(effective, found, row[3], moment)
        if storable:
            out.append((row[0], key, row[2], row[3], row[4], int(not reasons),
                        json.dumps(reasons), until, now))
    stored.store(db, out)
    return len(out)
