"""The rollout manager's views at force scale: `rollout status` and `rollout report`.

    .venv/bin/python bench/rollout.py [--people 45000] [--devices 50000] [--repeat 3]
                                      [--keep DIR]

Builds the fleet-wide views' inventory (bench/views.py: a 45,000-person roster and
50,000 enrolled devices with facts and policy, 90% held, a pilot group of 60), then,
straight through SQL (a benchmark set-up, not a product path), a rollout in flight on the
shipped five-wave plan (playbooks/rollout.yaml): the pilot and north waves open, 60% of the
devices provisioned with every provisioning step recorded, half the people trained, 40% of
the held devices handed over, 300 feedback items (some open blockers, minutes saved).
Each device's compliance judgement is then stored as the refresh that collected its
facts stores it (mdm.policies.judgements.record, in a process with the bench's settings).
It then times whole `mdm` processes, as a user waits for them: `rollout status` on a
terminal, piped and as JSON, `rollout status --by station -f csv`, and `rollout report`,
and the same `rollout status` again with no judgement stored (each device judged live).
Aim: status under 0.5 s, report under 2 s.

`--src DIR` also runs another checkout of mdm (`PYTHONPATH=DIR`, this virtualenv's
dependencies) on a copy of the same inventory, old and new alternating run by run, and
prints both: how the figures were before. The copy is marked with the schema version
the old checkout knows (`--src-schema`, default 17: before each person's kept rollout
progress, m018); the tables it does not know are invisible to it (their triggers keep
working, and the views only read).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import views  # bench/views.py: the fleet-wide inventory and the whole-process timers

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("refresh", "identity", "policy", "apps", "compliance", "provision")


def rollout_state(db_path: Path) -> None:
    """Open two waves; provision, train, hand over; raise feedback (SQL, for the bench)."""
    rng = random.Random(12)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    db = sqlite3.connect(db_path)
    for wave in ("pilot", "north"):
        db.execute("INSERT INTO rollout_waves (name, state, opened_at, opened_by)"
                   " VALUES (?, 'open', ?, 'bench')", [wave, stamp])
    held = db.execute("SELECT id, device_id, officer_id FROM assignments"
                      " WHERE closed_at IS NULL").fetchall()
    devices = [r[0] for r in db.execute("SELECT id FROM devices")]
    provisioned = rng.sample(devices, int(len(devices) * 0.6))
    db.executemany("UPDATE devices SET status = 'provisioned' WHERE id = ?",
                   [(d,) for d in provisioned])
    db.executemany("INSERT INTO provision_steps (device_id, step, result, at, operator)"
                   " VALUES (?, ?, 'ok', ?, 'bench')",
                   [(d, s, stamp) for d in provisioned for s in STEPS])
    failed = rng.sample(sorted(set(devices) - set(provisioned)), 500)
    db.executemany("INSERT INTO provision_steps (device_id, step, result, detail, at,"
                   " operator) VALUES (?, 'policy', 'failed', 'unreachable', ?, 'bench')",
                   [(d, stamp) for d in failed])
    people = [r[0] for r in db.execute("SELECT officer_id FROM officers")]
    db.executemany("INSERT INTO training (officer_id, trained_on, trainer, recorded_at,"
                   " recorded_by) VALUES (?, '2015-04-01', 'bench', ?, 'bench')",
                   [(o, stamp) for o in rng.sample(people, len(people) // 2)])
    is_provisioned = set(provisioned)
    handed = [r for r in held if r[1] in is_provisioned][: int(len(held) * 0.4)]
    db.executemany("INSERT INTO handovers (assignment_id, device_id, officer_id,"
                   " handed_over_at, handed_over_by) VALUES (?, ?, ?, ?, 'bench')",
                   [(a, d, o, f"2015-0{4 + i % 3}-{1 + i % 28:02d}T10:00:00.000000Z")
                    for i, (a, d, o) in enumerate(handed)])
    db.executemany("INSERT INTO feedback (officer_id, severity, text, minutes_saved,"
                   " raised_at, raised_by, resolved_at) VALUES (?, ?, ?, ?, ?, 'bench', ?)",
                   [(o, rng.choice(("blocker", "major", "minor", "minor")),
                     f"bench feedback {i}", rng.choice((None, 20, 30, 45, 60)), stamp,
                     None if i % 10 == 0 else stamp)
                    for i, o in enumerate(rng.sample(people, 300))])
    db.commit()
    db.close()


COMMANDS = [("rollout status", ["rollout", "status"], ("terminal", "piped", "json")),
            ("rollout status --by station -f csv",
             ["rollout", "status", "--by", "station", "-f", "csv"], ("piped",)),
            ("rollout report -o report.html --force",
             ["rollout", "report", "-o", "report.html", "--force"], ("piped",))]
# What `rollout status` costs where no judgement is stored (each open wave's device
# judged live): after a policy edit, say, until the next refresh.
UNJUDGED = [("rollout status, nothing stored", ["rollout", "status"], ("terminal", "json"))]

JUDGE_ALL = """
from pathlib import Path
from mdm.policies import judgements
from mdm.store import connect, transaction
db = connect(Path("big.db"))
with transaction(db):
    judgements.record(db, Path("policies"), [r[0] for r in db.execute("SELECT id FROM devices")])
"""


def judge_all(mdm_env: dict[str, str]) -> None:
    """Store every device's judgement, as the refreshes that collected its facts did."""
    subprocess.run([sys.executable, "-c", JUDGE_ALL], env=mdm_env, check=True)


def _cell(runs: list[tuple[float, float]], limit: float) -> str:
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    return f"{wall:.2f} ({cpu:.2f})" if wall < math.inf else f">{limit:g}"


def time_all(commands: list[tuple[str, list[str], tuple[str, ...]]],
             runners: dict[str, tuple[list[str], dict[str, str]]],
             args: argparse.Namespace) -> None:
    """Time each command in each mode with each runner, round by round: each round runs
    every command once with each runner (old and new alternating), so a slow minute of the
    machine falls on all of them alike, not on one command's runs."""
    cases = [(name, argv, mode) for name, argv, modes in commands for mode in modes]
    runs: dict[tuple[str, str, str], list[tuple[float, float]]] = {
        (name, mode, label): [] for name, _, mode in cases for label in runners}
    for _ in range(args.repeat):
        for name, argv, mode in cases:
            timer, extra = views.MODES[mode]
            for label, (mdm, env) in runners.items():
                runs[(name, mode, label)].append(timer(mdm + argv + extra, env, args.limit))
    for name, _, mode in cases:
        cells = "   ".join(f"{label} {_cell(runs[(name, mode, label)], args.limit)}"
                           for label in runners)
        print(f"{name + ' (' + mode + ')':<52}{cells}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=45_000)
    parser.add_argument("--devices", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build in (or reuse) this folder")
    parser.add_argument("--src", type=Path, help="also time this checkout of mdm (before)")
    parser.add_argument("--src-schema", type=int, default=17,
                        help="the schema version the --src checkout knows")
    parser.add_argument("--limit", type=float, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tmp = (args.keep or Path(scratch)).resolve()
        tmp.mkdir(parents=True, exist_ok=True)
        os.chdir(tmp)  # `python -m mdm` looks in the current folder first: not in a checkout
        env = {**os.environ, "MDM_DB": str(tmp / "big.db"), "MDM_OPERATOR": "bench",
               "MDM_POLICIES": str(tmp / "policies"), "MDM_CONFIG": str(tmp / "mdm.toml"),
               "MDM_PLAN": str(tmp / "rollout.yaml"),
               "MDM_ENTERPRISE_ID": "LC04bench", "MDM_TRACKS": "pilot=4697000000000000001",
               "COLUMNS": "120", "LINES": "40", "PYTHONPATH": str(ROOT)}
        env.setdefault("TERM", "xterm-256color")
        mdm = [sys.executable, "-m", "mdm"]
        if not (tmp / "big.db").exists():
            shutil.copytree(ROOT / "playbooks" / "policies", tmp / "policies",
                            dirs_exist_ok=True)
            shutil.copy(ROOT / "playbooks" / "rollout.yaml", tmp / "rollout.yaml")
            (tmp / "mdm.toml").write_text("")
            print(f"building {args.people:,} people / {args.devices:,} devices…", flush=True)
            views.build(tmp, mdm, env, args.people, args.devices)
            rollout_state(tmp / "big.db")
            views.run(mdm, ["rollout", "validate"], env)
        runners = {"new": (mdm, env)}
        if args.src:
            old = tmp / "old.db"
            shutil.copy(tmp / "big.db", old)
            with sqlite3.connect(old) as conn:
                conn.execute(f"PRAGMA user_version = {args.src_schema}")
            runners = {"old": (mdm, {**env, "MDM_DB": str(old),
                                     "PYTHONPATH": str(args.src.resolve())}),
                       "new": (mdm, env)}
        print(f"whole process, median of {args.repeat}: wall seconds (CPU seconds)")
        judge_all(env)
        time_all(COMMANDS, runners, args)
        with sqlite3.connect(tmp / "big.db") as conn:
            conn.execute("DELETE FROM device_judgements")
        time_all(UNJUDGED, {"new": (mdm, env)}, args)
        judge_all(env)


if __name__ == "__main__":
    main()
