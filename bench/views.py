"""Fleet-wide views at force scale: policy diff, push --check and compliance report.

    .venv/bin/python bench/views.py [--people 45000] [--devices 50000] [--repeat 3]
                                     [--src OTHER_CHECKOUT] [--keep DIR]

Builds a 45,000-person, 50,000-device inventory: the roster and the delivery imported
through `mdm`, then (straight through SQL: a benchmark set-up, not a product path) every
device enrolled with facts and its current policy applied, 90% of them held by an officer,
a pilot group of 60, and some devices non-compliant (no facts, an old patch, an app
missing). Each device's facts are as a refresh stores them: its DPC status carries its
own times, so no two status texts are the same. It then times whole `mdm` processes, as
a user waits for them:

  terminal   stdout is a terminal (a pseudo-terminal, 120 columns): what a person sees
  piped      stdout is a pipe (`| less`, `> file`)
  json       `--json`, piped

for `policy diff`, `policy push --check` and `compliance report`, before and after an edit
of the baseline layer (auto-lock 120 s → 90 s) that changes every device's policy.
Aim: each under 2 s whole process at 50,000 devices.

`--src DIR` runs the commands of another checkout of mdm (`PYTHONPATH=DIR`, this
virtualenv's dependencies) on the same kind of inventory, with that checkout's policy
folder: how the figures were before.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pty
import random
import resource
import select
import shutil
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mdm import examples

ROOT = Path(__file__).resolve().parent.parent
APPS = {"uk.police.cumbria.enotebook": 10402, "uk.police.cumbria.vpn": 1,
        "uk.police.mdm.dpc": 300, "uk.police.cumbria.supervisor": 1}


def run(mdm: list[str], args: list[str], env: dict[str, str]) -> str:
    """Run one mdm command for the set-up; fail loudly."""
    result = subprocess.run(mdm + args, env=env, capture_output=True, text=True)
    if result.returncode not in (0, 1):
        sys.exit(f"mdm {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def build(tmp: Path, mdm: list[str], env: dict[str, str], people: int, devices: int) -> None:
    """Import the roster and delivery, then enrol, assign and apply policy through SQL."""
    roster = examples.generate_roster(people, seed=45)
    examples.write_csv(tmp / "roster.csv", roster, examples.ROSTER_COLUMNS)
    delivery = examples.generate_manifest(devices, seed=50)
    examples.write_csv(tmp / "manifest.csv", delivery, examples.MANIFEST_COLUMNS)
    run(mdm, ["operators", "add", "bench"], env)
    run(mdm, ["officers", "import", str(tmp / "roster.csv")], env)
    run(mdm, ["enrol", "import", str(tmp / "manifest.csv")], env)
    rng = random.Random(8)
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    db = sqlite3.connect(env["MDM_DB"])
    ids = [r[0] for r in db.execute("SELECT id FROM devices ORDER BY id")]
    db.executemany(
        "UPDATE devices SET status = 'enrolled', address = ?, host_key = ?,"
        " host_key_fingerprint = ?, enrolled_at = ?, last_seen = ?, status_changed_at = ?"
        " WHERE id = ?",
        [(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}:22", f"ssh-ed25519 AAAAbench{i}",
          f"SHA256:bench{i}", stamp, stamp, stamp, i) for i in ids])
    officers = [r[0] for r in db.execute("SELECT officer_id FROM officers"
                                         " WHERE status = 'ACTIVE' ORDER BY officer_id")]
    rng.shuffle(officers)
    held = min(len(officers), int(len(ids) * 0.9))
    db.executemany("INSERT INTO assignments (device_id, officer_id, opened_at, opened_by,"
                   " open_reason) VALUES (?, ?, ?, 'bench', 'bench')",
                   [(i, o, stamp) for i, o in zip(ids, officers[:held], strict=False)])
    db.execute("INSERT INTO groups (name, description, created_at, created_by)"
               " VALUES ('pilot', 'bench', ?, 'bench')", [stamp])
    db.executemany("INSERT INTO group_members (group_name, officer_id, added_at, added_by)"
                   " VALUES ('pilot', ?, ?, 'bench')", [(o, stamp) for o in officers[:60]])
    db.commit()
    # Each device's current policy, as the product computes it; its body stored once.
    plan = json.loads(run(mdm, ["policy", "push", "--check", "--json"], env))["devices"]
    examples_of: dict[str, str] = {}
    for row in plan:
        examples_of.setdefault(row["to"], row["serial"])
    for sha, serial in examples_of.items():
        doc = json.loads(run(mdm, ["policy", "compile", "--device", serial], env))
        body = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        db.execute("INSERT INTO policy_versions (sha256, body, layers, created_at, created_by)"
                   " VALUES (?, ?, ?, ?, 'bench')", [sha, body, doc.get("name", ""), stamp])
    serial_id = dict(db.execute("SELECT serial, id FROM devices"))
    db.executemany("UPDATE devices SET applied_policy = ?, applied_policy_at = ? WHERE id = ?",
                   [(r["to"], stamp, serial_id[r["serial"]]) for r in plan])
    fresh = (now - timedelta(days=20)).date().isoformat()
    stale = (now - timedelta(days=200)).date().isoformat()
    names = {sha: json.loads(row[0]).get("name") for sha in examples_of
             for row in db.execute("SELECT body FROM policy_versions WHERE sha256 = ?", [sha])}
    facts = []
    for r in plan:
        roll = rng.random()
        if roll < 0.04:
            continue  # never reported
        packages = dict(APPS)
        if roll < 0.07:
            packages.pop("uk.police.cumbria.vpn")
        # As a device's DPC writes it and `mdm devices refresh` stores it: with its own
        # times, so no two devices' status texts are the same.
        at = (now - timedelta(seconds=rng.randrange(1, 30 * 86400))).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        status = {"policySha256": r["to"], "state": "APPLIED", "nonComplianceDetails": [],
                  "policyName": names[r["to"]], "appliedAt": at, "reportedAt": at}
        props = {"ro.serialno": r["serial"], "ro.product.manufacturer": "samsung",
                 "ro.product.model": "SM-N910F", "ro.build.version.release": "6.0.1",
                 "ro.build.version.sdk": "23", "ro.crypto.state": "encrypted",
                 "ro.build.version.security_patch": stale if 0.07 <= roll < 0.15 else fresh}
        facts.append((serial_id[r["serial"]], at, "6.0.1", 23,
                      stale if 0.07 <= roll < 0.15 else fresh, "encrypted",
                      json.dumps(packages, sort_keys=True), json.dumps(status, sort_keys=True),
                      json.dumps(props, sort_keys=True), "{}", r["to"]))
    db.executemany("INSERT INTO device_facts (device_id, collected_at, os_release, sdk,"
                   " security_patch, crypto_state, packages, dpc_status, props, settings,"
                   " policy_file_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", facts)
    db.commit()
    db.close()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def on_terminal(cmd: list[str], env: dict[str, str], limit: float) -> tuple[float, float]:
    """Run a command with stdout and stderr on a 120-column pseudo-terminal.

    Return its wall time and the CPU time it used (user + system, which a busy machine
    inflates less than the wall time); a run longer than `limit` seconds is stopped and
    counted as infinite.
    """
    import fcntl
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    cpu, start = _children_cpu(), time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=slave)
    os.close(slave)
    try:
        while (left := start + limit - time.perf_counter()) > 0:  # drain it, as a terminal
            if not select.select([master], [], [], left)[0]:
                continue
            try:
                if not os.read(master, 1 << 16):
                    break
            except OSError:  # EIO: the child closed its side
                break
    finally:
        os.close(master)
        if proc.poll() is None and time.perf_counter() - start >= limit:
            proc.kill()
        proc.wait()
    elapsed = time.perf_counter() - start
    if elapsed >= limit:
        return math.inf, _children_cpu() - cpu
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}")
    return elapsed, _children_cpu() - cpu


def piped(cmd: list[str], env: dict[str, str], limit: float) -> tuple[float, float]:
    """Run a command with stdout into a pipe that is read to the end; time it (wall, CPU)."""
    cpu, start = _children_cpu(), time.perf_counter()
    try:
        result = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                timeout=limit)
    except subprocess.TimeoutExpired:  # run() has killed and reaped it
        return math.inf, _children_cpu() - cpu
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)} exited {result.returncode}:\n{result.stderr.decode()}")
    return elapsed, _children_cpu() - cpu


COMMANDS = [("policy diff", ["policy", "diff"]),
            ("policy push --check", ["policy", "push", "--check"]),
            ("compliance report", ["compliance", "report"])]
MODES = {"terminal": (on_terminal, []), "piped": (piped, []), "json": (piped, ["--json"])}


def time_views(tmp: Path, env: dict[str, str], args: argparse.Namespace) -> None:
    """Time each command in each mode, as applied and after a baseline edit."""
    mdm = [sys.executable, "-m", "mdm"]
    modes = [m for m in args.modes.split(",") if m in MODES]
    print(f"whole process, median of {args.repeat}: wall seconds (CPU seconds)")
    print(f"{'':<44}" + "".join(f"{m:>16}" for m in modes))
    baseline = tmp / "policies" / "00-baseline.yaml"
    original = baseline.read_text()
    edited = original.replace("auto_lock_seconds: 120", "auto_lock_seconds: 90")
    assert edited != original, "the baseline no longer sets a 120 s auto-lock"
    try:
        for state, text in (("as applied", original), ("after a baseline edit", edited)):
            baseline.write_text(text)
            for name, argv in COMMANDS:
                cells = []
                for mode in modes:
                    timer, extra = MODES[mode]
                    runs = [timer(mdm + argv + extra, env, args.limit)
                            for _ in range(args.repeat)]
                    wall = statistics.median(r[0] for r in runs)
                    cpu = statistics.median(r[1] for r in runs)
                    cells.append(f"{wall:.2f} ({cpu:.2f})" if wall < math.inf
                                 else f">{args.limit:g}")
                print(f"{name + ', ' + state:<44}" + "".join(f"{c:>16}" for c in cells),
                      flush=True)
    finally:
        baseline.write_text(original)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=45_000)
    parser.add_argument("--devices", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--src", type=Path, help="time another checkout's mdm")
    parser.add_argument("--keep", type=Path, help="build in (or reuse) this folder")
    parser.add_argument("--limit", type=float, default=300,
                        help="stop a run after this many seconds (shown as >LIMIT)")
    parser.add_argument("--modes", default="terminal,piped,json",
                        help="which of terminal, piped, json to time (old code is slow)")
    args = parser.parse_args()
    src = (args.src or ROOT).resolve()
    with tempfile.TemporaryDirectory() as scratch:
        tmp = (args.keep or Path(scratch)).resolve()
        tmp.mkdir(parents=True, exist_ok=True)
        os.chdir(tmp)  # `python -m mdm` looks in the current folder first: not in a checkout
        env = {**os.environ, "MDM_DB": str(tmp / "big.db"), "MDM_OPERATOR": "bench",
               "MDM_POLICIES": str(tmp / "policies"), "MDM_CONFIG": str(tmp / "mdm.toml"),
               "MDM_ENTERPRISE_ID": "LC04bench", "MDM_TRACKS": "pilot=4697000000000000001",
               "COLUMNS": "120", "LINES": "40", "PYTHONPATH": str(src)}
        env.setdefault("TERM", "xterm-256color")
        (tmp / "mdm.toml").write_text("# bench: settings come from MDM_* variables\n")
        if not (tmp / "big.db").exists():
            shutil.rmtree(tmp / "policies", ignore_errors=True)
            shutil.copytree(src / "playbooks" / "policies", tmp / "policies")
            start = time.perf_counter()
            build(tmp, [sys.executable, "-m", "mdm"], env, args.people, args.devices)
            print(f"set-up: {args.people:,} people, {args.devices:,} devices in"
                  f" {time.perf_counter() - start:.1f} s")
        timed = subprocess.run([sys.executable, "-c", "import mdm; print(mdm.__file__)"],
                               env=env, capture_output=True, text=True, check=True)
        print(f"timing {Path(timed.stdout.strip()).parent.parent}\n")
        time_views(tmp, env, args)


if __name__ == "__main__":
    main()
