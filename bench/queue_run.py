"""Benchmark: `mdm queue run` against a plain `mdm policy push` of the same devices.

    .venv/bin/python bench/queue_run.py [--size 500] [--offline 100] [--concurrency 32]

On one lab of SIZE enrolled devices, in the same run:
  push      `mdm policy push SERIAL… --json` over the SIZE - OFFLINE devices that answer;
  queue     a policy push queued for every device (`mdm queue policy all`), OFFLINE of them
            switched off, then `mdm queue run --json`: the same pushes to the same devices,
            plus marking every command sent first, recording each answer on its command
            row, and trying (and re-queueing) the devices that do not answer;
  offline   `mdm queue run --json` again, when only the switched-off devices have work:
            what unreachable devices cost (their connect deadline is 10 s; a refused
            connection on a LAN fails at once, and is retried twice with backoff).
Before the queue run, each answering device's DPC forgets the policy the push left (its
status, inbox and record), so the queue does the whole write path again, as the push did.
It prints wall time, client CPU (user + system of the process and its children), CPU per
device and peak memory, and the queue : push ratio. Aim: the queue adds no more than 10 %
over a plain push, and an offline device costs no more than its connect deadline.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

from push import MDM, _mdm, _timed, prepare


def run(env: dict[str, str], argv: list[str]) -> dict[str, Any]:
    """Run one mdm command as a fresh process; return its figures and JSON answer."""
    done, wall, cpu, peak = _timed([str(MDM), *argv], env)
    if done.returncode not in (0, 1):
        raise SystemExit(f"mdm {' '.join(argv[:3])} exited {done.returncode}:"
                         f" {done.stderr[-800:]}")
    out = json.loads(done.stdout) if done.stdout.strip() else {}
    return {"wall": wall, "cpu": cpu, "peak_mb": peak, "out": out}


def worker(args: argparse.Namespace) -> None:
    """One measurement in a fresh process, so its children's totals are its own."""
    tmp = Path(args.tmp)
    env = json.loads((tmp / "env.json").read_text())
    if args.worker == "push":
        serials = json.loads((tmp / "online.json").read_text())
        r = run(env, ["policy", "push", *serials, "--json", "--concurrency",
                      str(args.concurrency)])
        r["ok"] = len(r["out"].get("done", [])) + len(r["out"].get("unchanged", []))
    else:
        r = run(env, ["queue", "run", "--json", "--concurrency", str(args.concurrency)])
        r["ok"] = len(r["out"].get("done", []))
        r["waiting"] = len(r["out"].get("waiting", []))
    r.pop("out")
    print(json.dumps(r))


def _forget_policy(lab: Any, serials: list[str]) -> None:
    """Make each device's DPC forget its policy, so the next push writes it again."""
    for serial in serials:
        dpc = lab.device(serial).path / "mdm-dpc"
        for name in ("status.json", "reported.json", "inbox/policy.json"):
            (dpc / name).unlink(missing_ok=True)


def _measure(name: str, size: int, tmp: str, concurrency: int, count: int) -> dict[str, Any]:
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--worker", name, "--tmp", tmp,
                          "--concurrency", str(concurrency)],
                         capture_output=True, text=True, check=True)
    r: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{size:>8} {name:>8} {count:>8} {r['wall']:>8.2f} {r['cpu']:>7.2f}"
          f" {1000 * r['cpu'] / count:>10.1f} {r['peak_mb']:>8.1f} {r['ok']:>5}", flush=True)
    return r


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--offline", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    from mdm.fleet.keys import generate_ed25519
    from mdm.lab.lab import Lab, become_subreaper

    become_subreaper()
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        key = t / "id_ed25519"
        generate_ed25519(key)
        lab = Lab(t / "lab")
        try:
            devices = lab.up(args.size, Path(str(key) + ".pub").read_text())
            env = prepare(lab.root, key, t, args.concurrency)
            (t / "env.json").write_text(json.dumps(env))
            offline = [d.serial for d in devices[:args.offline]]
            online = [d.serial for d in devices[args.offline:]]
            (t / "online.json").write_text(json.dumps(online))
            _mdm(env, "queue", "policy", "all")
            for serial in offline:
                lab.fault(serial, "offline")
            print(f"{'devices':>8} {'run':>8} {'worked':>8} {'wall s':>8} {'cpu s':>7}"
                  f" {'cpu ms/dev':>10} {'peak MB':>8} {'ok':>5}", flush=True)
            push = _measure("push", args.size, tmp, args.concurrency, len(online))
            _forget_policy(lab, online)
            # A direct push settles the pushes queued for the devices it reached: queue them
            # again, so the queue does the same 400 pushes.
            _mdm(env, "queue", "policy", *online)
            queue = _measure("queue", args.size, tmp, args.concurrency, len(online))
            conn = sqlite3.connect(env["MDM_DB"])
            left = conn.execute("SELECT COUNT(*) FROM commands WHERE state = 'queued'"
                                ).fetchone()[0]
            conn.close()
            rest = _measure("offline", args.size, tmp, args.concurrency, args.offline)
            print(f"{args.size:>8} {'ratio':>8} {'':>8} {queue['wall'] / push['wall']:>8.2f}x"
                  f" {queue['cpu'] / push['cpu']:>6.2f}x  (queue : push)", flush=True)
            print(f"queued after the run: {left} (the offline devices'); the {args.offline}"
                  f" offline devices alone took {rest['wall']:.2f} s wall, {args.concurrency}"
                  " at a time, whole process: each well inside its 10 s connect deadline",
                  flush=True)
        finally:
            lab.down()


if __name__ == "__main__":
    main()
