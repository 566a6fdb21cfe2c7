"""The rollout manager's views at force scale: `rollout status` and `rollout report`.

    .venv/bin/python bench/rollout.py [--people 45000] [--devices 50000] [--repeat 3]
                                      [--keep DIR]

Builds the fleet-wide views' inventory (bench/views.py: a 45,000-person roster and
50,000 enrolled devices with facts and policy, 90% held, a pilot group of 60), then,
straight through SQL (a benchmark set-up, not a product path), a rollout in flight on the
shipped five-wave plan (playbooks/rollout.yaml): the pilot and north waves open, 60% of the
devices provisioned with every provisioning step recorded, half the people trained, 40% of
the held devices handed over, 300 feedback items (some open blockers, minutes saved).
It then times whole `mdm` processes, as a user waits for them: `rollout status` on a
terminal, piped and as JSON, `rollout status --by station -f csv`, and `rollout report`.
Aim: status under 0.5 s, report under 2 s.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import sqlite3
import statistics
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=45_000)
    parser.add_argument("--devices", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build in (or reuse) this folder")
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
        print(f"whole process, median of {args.repeat}: wall seconds (CPU seconds)")
        for name, argv, modes in COMMANDS:
            cells = []
            for mode in modes:
                timer, extra = views.MODES[mode]
                runs = [timer(mdm + argv + extra, env, args.limit) for _ in range(args.repeat)]
                wall = statistics.median(r[0] for r in runs)
                cpu = statistics.median(r[1] for r in runs)
                cells.append(f"{mode} {wall:.2f} ({cpu:.2f})" if wall < math.inf
                             else f"{mode} >{args.limit:g}")
            print(f"{name:<40}" + "   ".join(cells), flush=True)


if __name__ == "__main__":
    main()
