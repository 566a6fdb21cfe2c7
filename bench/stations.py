"""End-to-end benchmark of the station route: `mdm policy push` against an OpenSSH floor.

    .venv/bin/python bench/stations.py [--devices 200] [--stations 4] [--limit 8]

One lab of N devices, plugged in equal shares into S lab stations (each a real sshd with
the lab's `adb` stand-in), registered and enrolled through the stations; then, in the
same run:
  mdm      `mdm policy push --json` as a fresh process: start-up, the plan, compiling,
           the per-device work (one SSH connection per station, each device's push one
           channel on it running `adb get-state` and one `adb shell` with the push
           script, at most --limit at once per station) and recording every result;
  openssh  the same per-device work with the plain OpenSSH client: one ControlMaster
           connection per station (curve25519, host key pinned), then per device one
           `ssh` over that master, fanned out with `xargs -P LIMIT` per station, running
           on the station `adb -s SERIAL get-state` and one `adb -s SERIAL shell` with a
           script that reads the DPC status and the policy file's sha256, uploads the
           policy from stdin to a temporary name, checks its sha256, renames it,
           broadcasts the apply action and reads the status back.
mdm runs first (every device then really changes); the floor then does the whole write
path again with the same policy bytes. It prints wall time, client CPU (user + system,
of the process and its children: the masters included) per device, peak memory and the
ratio. Aims: within 1.15x of the floor, under 10 ms client CPU per device, under 150 MB.
"""

from __future__ import annotations

import argparse
import getpass
import json
import shlex
import tempfile
from pathlib import Path

from compare import HEADER, compare, worker_arguments
from push import APPLY, INBOX, MDM, STATUS, _mdm, _pushed_policy, _timed, prepare_env

STATIONS_FILE = "stations.json"


def prepare(lab_root: Path, key: Path, tmp: Path, stations: int) -> dict[str, str]:
    """Import the delivery, register the stations, enrol every device through them."""
    from mdm import examples
    from mdm.lab.lab import Lab

    env = prepare_env(tmp, key)
    lab = Lab(lab_root)
    manifest = tmp / "manifest.csv"
    examples.write_csv(manifest, lab.manifest(), examples.MANIFEST_COLUMNS)
    _mdm(env, "operators", "add", "admin")
    _mdm(env, "enrol", "import", str(manifest))
    rows = {r["name"]: r for r in lab.station_status()}
    for name in sorted(rows):
        _mdm(env, "stations", "add", name, "--address", rows[name]["address"], "--host-key",
             rows[name]["fingerprint"])
        _mdm(env, "enrol", "station", name, "--json")
    return env


def run_mdm(env: dict[str, str]) -> dict[str, float]:
    """The whole `mdm policy push` command, as IT staff run it at the bench."""
    done, wall, cpu, peak = _timed([str(MDM), "policy", "push", "--json"], env)
    out = json.loads(done.stdout) if done.stdout.strip() else {"done": [], "unchanged": []}
    return {"wall": wall, "cpu": cpu, "peak_mb": peak,
            "ok": len(out.get("done", [])) + len(out.get("unchanged", []))}


def run_openssh(lab_root: Path, key: Path, tmp: Path, policy: bytes, limit: int
                ) -> dict[str, float]:
    """The same per-device work: a ControlMaster per station, one `ssh` per device."""
    import hashlib

    from mdm.lab.lab import Lab

    lab = Lab(lab_root)
    payload = tmp / "policy.json"
    payload.write_bytes(policy)
    sha = hashlib.sha256(policy).hexdigest()
    device = (f'cat "{STATUS}" ; sha256sum "{INBOX}" ; t="{INBOX}.tmp" ;'
              f' cat > "$t" && h=$(sha256sum "$t") && [ "${{h%% *}}" = {sha} ]'
              f' && chmod 0644 "$t" && mv -f "$t" "{INBOX}" && {APPLY} >/dev/null'
              f' && cat "{STATUS}" && echo mdm-floor-ok')
    known = tmp / "known_hosts"
    lines: list[str] = []
    closing: list[str] = []
    script = ["fans="]
    user = getpass.getuser()
    common = (f"-i {key} -o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes"
              " -o KexAlgorithms=curve25519-sha256 -o BatchMode=yes -o LogLevel=ERROR")
    for i, s in enumerate(lab.station_status()):
        host, port = s["address"].split(":")
        lines.append(f"[{host}]:{port} {s['host_key']}\n")
        serials = tmp / f"serials-{i}"
        serials.write_text("".join(f"{d}\n" for d in s["devices"]))
        ctl = tmp / f"ctl-{i}"
        # On the station, per device: adb's own state check, then one shell with the script.
        helper = lab.station(s["name"]).path / "bin" / "floor-push"
        helper.write_text("#!/bin/sh\nadb -s \"$1\" get-state >/dev/null &&"
                          f" exec adb -s \"$1\" shell {shlex.quote(device)}\n")
        helper.chmod(0o700)
        per_device = (f"ssh {common} -S {ctl} -o ControlMaster=no -p {port} {user}@{host}"
                      f" floor-push $0 < {payload}")
        script += [
            f"ssh {common} -S {ctl} -o ControlMaster=yes -N -p {port} {user}@{host} &",
            f"n=0; until ssh -S {ctl} -O check {user}@{host} 2>/dev/null; do"
            f" n=$((n+1)); [ $n -lt 500 ] || exit 1; sleep 0.01; done",
            f"xargs -P {limit} -L 1 sh -c {shlex.quote(per_device)} < {serials}"
            f" > {tmp}/out-{i} & fans=\"$fans $!\"",
        ]
        closing.append(f"ssh -S {ctl} -O exit {user}@{host} 2>/dev/null")
    known.write_text("".join(lines))
    # Wait for the fan-outs, then close each master and wait for it too (its CPU counts).
    script += ["wait $fans", *closing, "wait"]
    count = len(closing)
    done, wall, cpu, peak = _timed(["bash", "-c", "\n".join(script)], {"PATH": "/usr/bin:/bin"})
    ok = sum(1 for i in range(count) for line in (tmp / f"out-{i}").read_text().splitlines()
             if line == "mdm-floor-ok")
    if done.returncode != 0 and not ok:
        raise SystemExit(f"the OpenSSH floor failed: {done.stderr[-800:]}")
    return {"wall": wall, "cpu": cpu, "peak_mb": peak, "ok": ok}


def worker(args: argparse.Namespace) -> None:
    """One measurement in a fresh process, so its children's totals are its own."""
    tmp = Path(args.tmp)
    if args.worker == "mdm":
        result = run_mdm(json.loads((tmp / "env.json").read_text()))
    else:
        result = run_openssh(Path(args.lab), Path(args.key), tmp,
                             (tmp / "pushed.json").read_bytes(), args.concurrency)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--stations", type=int, default=4)
    parser.add_argument("--limit", type=int, default=8, help="devices at once per station")
    parser.add_argument("--concurrency", type=int, default=8, help=argparse.SUPPRESS)
    worker_arguments(parser)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    from mdm.fleet.keys import generate_ed25519
    from mdm.lab.lab import Lab, become_subreaper

    become_subreaper()
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        key = t / "id_ed25519"
        generate_ed25519(key)
        public = Path(str(key) + ".pub").read_text()
        lab = Lab(t / "lab")
        try:
            devices = lab.up(args.devices, public)
            for i in range(args.stations):
                lab.station_up(f"station-{i + 1}", public)
            for n, d in enumerate(devices):
                lab.plug(d.serial, f"station-{n % args.stations + 1}")
            env = prepare(lab.root, key, t, args.stations)
            (t / "env.json").write_text(json.dumps(env))

            def before(name: str) -> None:
                if name == "openssh":  # the policy mdm compiled and stored, for ssh to send
                    (t / "pushed.json").write_bytes(_pushed_policy(env))

            compare(__file__, ("mdm", "openssh"), args.devices, lab.root, key, tmp,
                    args.limit, before)
        finally:
            lab.down()


if __name__ == "__main__":
    main()

