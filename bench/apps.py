"""End-to-end benchmark: `mdm apps push` of a 5 MiB APK against an OpenSSH floor.

    .venv/bin/python bench/apps.py [--sizes 200] [--concurrency 32] [--mib 5]

For each lab size, on the same lab, in the same run:
  mdm      `mdm apps push --json --concurrency 32` as a fresh process: start-up, the plan
           (each device's channel and release), re-hashing the build, the per-device work
           (list packages; stream the APK to a temporary name, check its sha256 on the
           device, `pm install -r`, list packages again, remove it: two execs over one
           pinned SSH connection) and recording every result with its audit row;
  openssh  the same per-device work with the plain OpenSSH client, fanned out with
           `xargs -P 32` (curve25519 key exchange, host keys pinned in a known_hosts
           file): `scp -O` of the APK to the staging folder, then one `ssh` that checks
           its sha256, runs `pm install -r`, lists the packages and removes the file.
mdm runs first (every device really installs the build: it comes from its factory
version); the floor then installs the same file again (`pm install -r` of the same
versionCode is accepted), so it never does less than mdm did.
It prints wall time, client CPU (user + system, of the process and its children) per
device and peak memory (the largest resident set of the process or any child), and the
ratio. Aims: within 1.3x of the floor; mdm's memory not growing with the APK's size.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from compare import HEADER, compare, lab_of, worker_arguments
from push import _mdm, _timed, prepare

ROOT = Path(__file__).resolve().parent.parent
MDM = Path(sys.executable).parent / "mdm"
PACKAGE = "uk.police.cumbria.enotebook"


def make_apk(tmp: Path, mib: int) -> Path:
    """Make a real signed APK of about `mib` MiB with scripts/make-apks.sh."""
    out = tmp / "apks"
    subprocess.run(["bash", str(ROOT / "scripts" / "make-apks.sh"), str(out), str(mib)],
                   check=True, capture_output=True)
    return out / "enotebook-20000-big.apk"


def run_mdm(env: dict[str, str], concurrency: int) -> dict[str, float]:
    """The whole `mdm apps push` command, as IT staff run it."""
    done, wall, cpu, peak = _timed([str(MDM), "apps", "push", "--json", "--concurrency",
                                    str(concurrency)], env)
    out = json.loads(done.stdout) if done.stdout.strip() else {}
    if done.returncode:
        print(done.stderr[-2000:], file=sys.stderr)
    return {"wall": wall, "cpu": cpu, "peak_mb": peak, "ok": len(out.get("done", []))}


def run_openssh(lab_root: Path, key: Path, tmp: Path, concurrency: int) -> dict[str, float]:
    """The same per-device work: `scp` then one `ssh` per device, through `xargs -P`."""
    import hashlib

    from mdm.lab.lab import Lab

    apk = tmp / "apks" / "enotebook-20000-big.apk"
    sha = hashlib.sha256(apk.read_bytes()).hexdigest()
    status = Lab(lab_root).status()
    known = tmp / "known_hosts"
    known.write_text("".join(f"[{s['address'].split(':')[0]}]:{s['address'].split(':')[1]}"
                             f" {s['host_key']}\n" for s in status))
    hosts = tmp / "hosts"
    hosts.write_text("".join(s["address"].replace(":", " ") + "\n" for s in status))
    staged = f"mdm-staging/{sha}.apk"
    remote = (f'h=$(sha256sum {staged}) && [ "${{h%% *}}" = {sha} ] &&'
              f' pm install -r {staged} | grep -q Success ; r=$? ; rm -f {staged} ;'
              f' pm list packages --show-versioncode | grep -q "{PACKAGE} versionCode:20000"'
              ' && [ $r = 0 ] && echo mdm-floor-ok')
    opts = (f"-i {key} -o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes"
            " -o KexAlgorithms=curve25519-sha256 -o BatchMode=yes -o LogLevel=ERROR")
    user = getpass.getuser()
    script = (f"scp -O -q {opts} -P $1 {apk} {user}@$0:{staged} &&"
              f' ssh {opts} -p $1 {user}@$0 "$FLOOR_REMOTE"')
    env = {**os.environ, "FLOOR_REMOTE": remote}
    done, wall, cpu, peak = _timed(["xargs", "-P", str(concurrency), "-L", "1", "sh", "-c",
                                    script], env, hosts)
    ok = sum(1 for line in done.stdout.splitlines() if line == "mdm-floor-ok")
    return {"wall": wall, "cpu": cpu, "peak_mb": peak, "ok": ok}


def worker(args: argparse.Namespace) -> None:
    """One measurement in a fresh process, so its children's totals are its own."""
    tmp = Path(args.tmp)
    if args.worker == "mdm":
        result = run_mdm(json.loads((tmp / "env.json").read_text()), args.concurrency)
    else:
        result = run_openssh(Path(args.lab), Path(args.key), tmp, args.concurrency)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="200")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--mib", type=int, default=5)
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
            apk = make_apk(t, args.mib)
            env: dict[str, Any] = prepare(lab.root, key, t, args.concurrency)
            _mdm(env, "apps", "add", str(apk))
            _mdm(env, "apps", "release", PACKAGE, "20000", "--channel", "stable")
            (t / "env.json").write_text(json.dumps(env))
            print(f"# {apk.stat().st_size / (1 << 20):.1f} MiB APK", flush=True)
            compare(__file__, ("mdm", "openssh"), size, lab.root, key, str(t),
                    args.concurrency)
    os.sync()


if __name__ == "__main__":
    main()
