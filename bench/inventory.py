"""Inventory benchmark at the size of the largest force: 45,000 people, 50,000 devices.

    .venv/bin/python bench/inventory.py [--people 45000] [--devices 50000] [--repeat 5]

Times whole `mdm` processes (what a user waits for): each import, allocating 1,500
devices from one file (`assign --from`), `devices show SERIAL`, `devices find COLLAR`,
`officers list --name`, `devices list station=…`, and `mdm --help`, against
`python -c pass` as the floor.
Aims: each import under 5 s; the 1,500-row allocation well under 2 s; each lookup under 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mdm import examples


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)  # no timeout: it polls
    return time.perf_counter() - start


def best(cmd: list[str], env: dict[str, str], repeat: int) -> tuple[float, float]:
    runs = [timed(cmd, env) for _ in range(repeat)]
    return min(runs), statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=45_000)
    parser.add_argument("--devices", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    mdm = [sys.executable, "-m", "mdm"]
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        env = {**os.environ, "MDM_DB": str(t / "big.db"), "MDM_OPERATOR": "bench"}
        roster = examples.generate_roster(args.people, seed=45)
        examples.write_csv(t / "roster.csv", roster, examples.ROSTER_COLUMNS)
        delivery = examples.generate_manifest(args.devices, seed=50)
        examples.write_csv(t / "manifest.csv", delivery, examples.MANIFEST_COLUMNS)
        subprocess.run(mdm + ["operators", "add", "bench"], env=env, check=True,
                       capture_output=True)
        rows = [("import roster", args.people, timed(mdm + ["officers", "import",
                                                           str(t / "roster.csv")], env)),
                ("import manifest", args.devices, timed(mdm + ["enrol", "import",
                                                              str(t / "manifest.csv")], env))]
        serial = delivery[args.devices // 2]["serial_number"]
        officer = next(p for p in roster[args.people // 2:] if p["collar_number"])
        subprocess.run(mdm + ["assign", serial, officer["officer_id"], "--reason", "bench"],
                       env=env, check=True, capture_output=True)
        pairs = zip((d for d in delivery if d["serial_number"] != serial),
                    (p for p in roster if p["status"] == "ACTIVE" and p is not officer
                     and p["device_eligible"] == "true"), strict=False)
        with open(t / "allocation.csv", "w", newline="") as f:
            f.write("serial_number,officer\n")
            for _, (d, p) in zip(range(1500), pairs, strict=False):
                f.write(f"{d['serial_number']},{p['collar_number'] or p['payroll_no']}\n")
        rows.append(("assign --from (one file)", 1500, timed(
            mdm + ["assign", "--from", str(t / "allocation.csv")], env)))
        print(f"{'step':<28}{'rows':>8}{'seconds':>10}")
        for name, n, secs in rows:
            print(f"{name:<28}{n:>8}{secs:>10.2f}")
        print(f"\n{'whole process, cold':<28}{'best s':>8}{'median s':>10}")
        for name, cmd in (("python -c pass", [sys.executable, "-c", "pass"]),
                          ("mdm --help", mdm + ["--help"]),
                          ("mdm devices show SERIAL", mdm + ["devices", "show", serial]),
                          ("mdm devices find COLLAR", mdm + ["devices", "find",
                                                             officer["collar_number"]]),
                          ("mdm officers list --name", mdm + ["officers", "list", "--name",
                                                              officer["surname"][:4],
                                                              "--json"]),
                          ("mdm devices list station=", mdm + ["devices", "list",
                                                               f"station={officer['station']}",
                                                               "--json"])):
            low, mid = best(cmd, env, args.repeat)
            print(f"{name:<28}{low:>8.3f}{mid:>10.3f}")


if __name__ == "__main__":
    main()
