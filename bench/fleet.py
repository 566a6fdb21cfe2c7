"""Fleet benchmark: push a 4 KiB file to every lab device and read back its sha256.

    .venv/bin/python bench/fleet.py [--sizes 50,200,500] [--concurrency 32]

For each lab size it runs the same work twice on the same lab, in the same run:
  mdm      the ParamikoTransport + executor, with a progress bar, recording every result in
           an inventory (one transaction per batch of 50, as fleet commands do);
  openssh  the plain OpenSSH client fanned out with `xargs -P` at the same concurrency,
           with -o KexAlgorithms=curve25519-sha256 so both sides do the same key exchange.
It prints wall time, client CPU time and peak memory for both, and the ratios.
Aims: mdm within 1.3x of the OpenSSH wall time, under 10 ms client CPU per device,
under 150 MB peak memory at 500 devices.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import resource
import subprocess
import time
from pathlib import Path

from compare import HEADER, compare, lab_of, worker_arguments

PAYLOAD = bytes(range(256)) * 16  # 4 KiB


def run_mdm(lab_dir: Path, key: Path, concurrency: int, db_path: Path) -> dict[str, float]:
    """Push to every lab device through the executor, recording results; measure ourselves."""
    from mdm import ui
    from mdm.fleet.ssh import connector, load_credentials
    from mdm.fleet.transport import Target
    from mdm.lab.lab import Lab
    from mdm.runs import record as runs
    from mdm.store import audit, connect, transaction
    from mdm.timeutil import now

    os.environ["MDM_KEY"] = str(key)
    lab = Lab(lab_dir)
    status = {s["serial"]: s for s in lab.status()}
    db = connect(db_path)
    user = getpass.getuser()
    rows = [{"serial": d.serial, "address": d.address, "id": i, "status": "enrolled",
             "host_key": status[d.serial]["host_key"]} for i, d in enumerate(lab.devices())]
    targets = [Target(r["serial"], *r["address"].split(":")[:1],
                      int(r["address"].split(":")[1]), user, r["host_key"]) for r in rows]

    def push(transport):  # type: ignore[no-untyped-def]
        return transport.put(PAYLOAD, "$HOME/mdm-staging/bench.bin")

    recorded = []

    def record(batch):  # type: ignore[no-untyped-def]
        if not batch:
            return
        with transaction(db):
            for row, result in batch:
                recorded.append((row["serial"], result.ok))
            audit.record(db, "bench", "bench.push", "devices", None,
                         {"at": now(), "ok": sum(r.ok for _, r in batch)})

    from mdm.fleet.executor import Step

    credentials = load_credentials()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with ui.progress("pushing") as bar:
        runs.run_and_record(db, rows, [Step("push", push)], connector(credentials),
                               targets, record, concurrency, bar)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    ok = sum(1 for _, good in recorded if good)
    return {"wall": wall, "cpu": cpu, "ok": ok, "n": len(rows),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_openssh(lab_dir: Path, key: Path, concurrency: int, tmp: Path) -> dict[str, float]:
    """The same work with the plain OpenSSH client, fanned out by xargs."""
    from mdm.lab.lab import Lab

    lab = Lab(lab_dir)
    status = lab.status()
    known = tmp / "known_hosts"
    known.write_text("".join(f"[{s['address'].split(':')[0]}]:{s['address'].split(':')[1]}"
                             f" {s['host_key']}\n" for s in status))
    payload = tmp / "payload.bin"
    payload.write_bytes(PAYLOAD)
    hosts = tmp / "hosts"
    hosts.write_text("".join(s["address"].replace(":", " ") + "\n" for s in status))
    ssh = (f"ssh -i {key} -o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes"
           " -o KexAlgorithms=curve25519-sha256 -o BatchMode=yes -o LogLevel=ERROR"
           f" -p $1 {getpass.getuser()}@$0"
           " 'cat > $HOME/mdm-staging/bench.bin && sha256sum $HOME/mdm-staging/bench.bin'"
           f" < {payload}")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall0 = time.perf_counter()
    out = subprocess.run(["xargs", "-P", str(concurrency), "-L", "1", "sh", "-c", ssh],
                         stdin=hosts.open(), capture_output=True, text=True)
    wall = time.perf_counter() - wall0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    ok = sum(1 for line in out.stdout.splitlines() if line.endswith("bench.bin"))
    return {"wall": wall, "cpu": cpu, "ok": ok, "n": len(status),
            "peak_mb": after.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,200,500")
    parser.add_argument("--concurrency", type=int, default=32)
    worker_arguments(parser)
    args = parser.parse_args()
    if args.worker:  # one measurement in a fresh process, so peak memory is its own
        fn = run_mdm if args.worker == "mdm" else run_openssh
        extra = Path(args.tmp) / ("bench.db" if args.worker == "mdm" else "")
        print(json.dumps(fn(Path(args.lab), Path(args.key), args.concurrency, extra)))
        return

    from mdm.lab.lab import become_subreaper

    become_subreaper()
    print(HEADER, flush=True)
    for size in (int(s) for s in args.sizes.split(",")):
        with lab_of(size) as (t, key, lab):
            compare(__file__, ("openssh", "mdm"), size, lab.root, key, str(t),
                    args.concurrency)


if __name__ == "__main__":
    main()
