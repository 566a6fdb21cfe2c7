"""End-to-end benchmark: the whole `mdm policy push` command against an OpenSSH floor.

    .venv/bin/python bench/push.py [--sizes 50,200,500] [--concurrency 32]

For each lab size, on the same lab, in the same run:
  mdm      `mdm policy push --json --concurrency 32` as a fresh process: start-up, the plan,
           compiling each device's policy, the per-device work (one exec per device over
           the pinned SSH connection), and recording every result with its audit row;
  openssh  the same per-device work with the plain OpenSSH client: one `ssh` per device
           fanned out with `xargs -P 32` (curve25519 key exchange, host keys pinned in a
           known_hosts file), running one script that reads the DPC status and the policy
           file's sha256, uploads the policy from stdin to a temporary name, checks its
           sha256, renames it, broadcasts the apply action and reads the status back.
mdm runs first (every device then really changes); the floor then does the whole write
path again with the same policy bytes, so it never does less than mdm did.
It prints wall time, client CPU (user + system, of the process and its children) per
device and peak memory (the mdm process's own maximum resident set), and the ratio.
Aims: within 1.15x of the floor at 500 devices, under 10 ms client CPU per device, under
150 MB peak.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from compare import HEADER, compare, lab_of, worker_arguments

ROOT = Path(__file__).resolve().parent.parent
MDM = Path(sys.executable).parent / "mdm"
INBOX = "$HOME/mdm-dpc/inbox/policy.json"
STATUS = "$HOME/mdm-dpc/status.json"
APPLY = "am broadcast -a uk.police.mdm.action.APPLY_POLICY -n uk.police.mdm.dpc/.PolicyReceiver"


def _timed(argv: list[str], env: dict[str, str], stdin: Path | None = None
           ) -> tuple[subprocess.CompletedProcess[str], float, float, float]:
    """Run a command; return it with its wall time, CPU (with children) and peak MB."""
    wall0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=stdin.open("rb") if stdin else subprocess.DEVNULL, text=True)
    out, err = proc.communicate()
    wall = time.perf_counter() - wall0
    # wait4 is gone once communicate() has reaped it: the children's totals tell instead.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    return done, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _mdm(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(MDM), *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"mdm {' '.join(args)} exited {done.returncode}: {done.stderr[-800:]}")
    return done


def prepare_env(tmp: Path, key: Path) -> dict[str, str]:
    """Return the environment of a fresh inventory and project file for the benchmark."""
    project = tmp / "mdm.toml"
    project.write_text(f'policies = "{ROOT / "playbooks" / "policies"}"\n'
                       '[policy]\nenterprise_id = "LC04mdmbench"\n'
                       '[policy.tracks]\npilot = "4697000000000000001"\n')
    return {**os.environ, "MDM_DB": str(tmp / "mdm.db"), "MDM_KEY": str(key),
            "MDM_CONFIG": str(project), "MDM_OPERATOR": "admin", "COLUMNS": "120"}


def prepare(lab_root: Path, key: Path, tmp: Path, concurrency: int) -> dict[str, str]:
    """Import the lab's delivery into a fresh inventory and enrol every device."""
    from mdm import examples
    from mdm.lab.lab import Lab

    env = prepare_env(tmp, key)
    lab = Lab(lab_root)
    manifest = tmp / "manifest.csv"
    examples.write_csv(manifest, lab.manifest(), examples.MANIFEST_COLUMNS)
    plan = tmp / "plan.csv"
    plan.write_text("serial_number,address,host_key\n" + "".join(
        f"{s['serial']},{s['address']},{s['fingerprint']}\n" for s in lab.status()))
    _mdm(env, "operators", "add", "admin")
    _mdm(env, "enrol", "import", str(manifest))
    _mdm(env, "enrol", "devices", "--from", str(plan), "--concurrency", str(concurrency))
    return env


def run_mdm(env: dict[str, str], concurrency: int) -> dict[str, float]:
    """The whole `mdm policy push` command, as IT staff run it."""
    done, wall, cpu, peak = _timed([str(MDM), "policy", "push", "--json", "--concurrency",
                                    str(concurrency)], env)
    out = json.loads(done.stdout) if done.stdout.strip() else {"done": [], "unchanged": []}
    return {"wall": wall, "cpu": cpu, "peak_mb": peak,
            "ok": len(out.get("done", [])) + len(out.get("unchanged", []))}


def run_openssh(lab_root: Path, key: Path, tmp: Path, policy: bytes, concurrency: int
                ) -> dict[str, float]:
    """The same per-device work: one `ssh` per device through `xargs -P`."""
    import hashlib

    from mdm.lab.lab import Lab

    status = Lab(lab_root).status()
    known = tmp / "known_hosts"
    known.write_text("".join(f"[{s['address'].split(':')[0]}]:{s['address'].split(':')[1]}"
                             f" {s['host_key']}\n" for s in status))
    payload = tmp / "policy.json"
    payload.write_bytes(policy)
    sha = hashlib.sha256(policy).hexdigest()
    hosts = tmp / "hosts"
    hosts.write_text("".join(s["address"].replace(":", " ") + "\n" for s in status))
    remote = (f'cat "{STATUS}" ; sha256sum "{INBOX}" ; t="{INBOX}.tmp" ;'
              f' cat > "$t" && h=$(sha256sum "$t") && [ "${{h%% *}}" = {sha} ]'
              f' && chmod 0644 "$t" && mv -f "$t" "{INBOX}" && {APPLY} >/dev/null'
              f' && cat "{STATUS}" && echo mdm-floor-ok')
    ssh = (f"ssh -i {key} -o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes"
           " -o KexAlgorithms=curve25519-sha256 -o BatchMode=yes -o LogLevel=ERROR"
           f' -p $1 {getpass.getuser()}@$0 "$FLOOR_REMOTE" < {payload}')
    env = {**os.environ, "FLOOR_REMOTE": remote}
    done, wall, cpu, peak = _timed(["xargs", "-P", str(concurrency), "-L", "1", "sh", "-c",
                                    ssh], env, hosts)
    ok = sum(1 for line in done.stdout.splitlines() if line == "mdm-floor-ok")
    return {"wall": wall, "cpu": cpu, "peak_mb": peak, "ok": ok}


def worker(args: argparse.Namespace) -> None:
    """One measurement in a fresh process, so its children's totals are its own."""
    tmp = Path(args.tmp)
    if args.worker == "mdm":
        env = json.loads((tmp / "env.json").read_text())
        result = run_mdm(env, args.concurrency)
    else:
        result = run_openssh(Path(args.lab), Path(args.key), tmp,
                             (tmp / "pushed.json").read_bytes(), args.concurrency)
    print(json.dumps(result))


def _pushed_policy(env: dict[str, str]) -> bytes:
    import sqlite3

    conn = sqlite3.connect(env["MDM_DB"])
    try:
        return str(conn.execute("SELECT body FROM policy_versions ORDER BY rowid LIMIT 1")
                   .fetchone()[0]).encode()
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="50,200,500")
    parser.add_argument("--concurrency", type=int, default=32)
    worker_arguments(parser)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    from mdm.lab.lab import become_subreaper

    become_subreaper()
    print(HEADER, flush=True)
    for size in (int(s) for s in args.sizes.split(",")):
        with lab_of(size) as (t, key, lab):
            env = prepare(lab.root, key, t, args.concurrency)
            (t / "env.json").write_text(json.dumps(env))

            def before(name: str, t: Path = t, env: dict[str, Any] = env) -> None:
                if name == "openssh":  # the policy mdm compiled and stored, for ssh to send
                    (t / "pushed.json").write_bytes(_pushed_policy(env))

            compare(__file__, ("mdm", "openssh"), size, lab.root, key, str(t),
                    args.concurrency, before)


if __name__ == "__main__":
    main()
