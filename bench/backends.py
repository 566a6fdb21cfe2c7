"""The same inventory work on SQLite and on PostgreSQL, in one run, side by side.

    .venv/bin/python bench/backends.py [--people 45000] [--devices 50000] [--repeat 3]
                                       [--pg postgresql://ROLE@HOST:PORT/postgres]

At the size of the largest force (45,000 people, 50,000 devices) it times whole `mdm`
processes on each backend: the roster and manifest imports, `devices show SERIAL`, one
station's officers, the full officers list read through a pipe, a 1,500-row allocation
(`assign --from`), and recording a 500-device policy push (the inventory's half of a
push: the events, device rows and audit rows of 500 devices that took a policy, in the
push's batches). Without --pg it starts a throw-away PostgreSQL cluster on loopback
(tests/pgcluster.py) and stops it after. A step that fails on a backend is reported with
its error instead of a time; if an import fails on PostgreSQL, the PostgreSQL inventory
is seeded with `mdm inventory copy` from the SQLite one, so the later steps still run.
The PostgreSQL database is made as README's "Several sites" says (`--locale=C`), and
the load average before and after the run is printed beside the figures (the machine's
other work moves them). Aim: PostgreSQL within 2x of SQLite for every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from mdm import examples

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RECORD_PUSH = """
import sys, time
from mdm.driver import Applied
from mdm.policies import push
from mdm.runs.record import Outcome
from mdm.store import connect, transaction

class Compiled:
    sha256 = "ab" * 32
    document = {"name": "base+force"}

db = connect(sys.argv[1], create=False)
rows = [{**r, "compiled": Compiled()} for r in db.query(
    "SELECT id, serial, applied_policy FROM devices ORDER BY id LIMIT 500")]
outcome, unchanged = Outcome(), []
status = {"state": "applied", "nonComplianceDetails": []}
start = time.perf_counter()
for first in range(0, len(rows), 25):  # the push records its results in batches
    with transaction(db):
        for row in rows[first:first + 25]:
            push.record_applied(db, "bench", row, Applied(True, status, "cd" * 32),
                                "2026-01-01T00:00:00Z", outcome, unchanged)
print(len(outcome.done), time.perf_counter() - start)
"""


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Time one whole process; return (seconds, '') or (nan, its error's first line)."""
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode == 0:
        return took, ""
    return float("nan"), _error(done.stderr, done.returncode)


def _error(stderr: str, code: int) -> str:
    """Return the error line of a failed command's output (its first, else its last)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    said = [ln for ln in lines if ln.startswith("error:")]
    return ((said or lines or [f"exit {code}"])[0 if said else -1])[:200]


def best(cmd: list[str], env: dict[str, str], repeat: int) -> tuple[float, str]:
    runs = []
    for _ in range(repeat):
        took, error = run(cmd, env)
        if error:
            return took, error
        runs.append(took)
    return statistics.median(runs), ""


class Backend:
    def __init__(self, name: str, inventory: str, folder: Path) -> None:
        self.name = name
        self.inventory = inventory
        self.env = {**os.environ, "MDM_DB": inventory, "MDM_OPERATOR": "bench",
                    "MDM_CONFIG": str(folder / "mdm.toml")}
        self.times: dict[str, tuple[float, str]] = {}


def measure(backend: Backend, inputs: dict[str, Any], repeat: int,
            seed_from: str | None = None, snapshot: Path | None = None) -> None:
    mdm = [sys.executable, "-m", "mdm"]
    env, t = backend.env, backend.times
    run(mdm + ["operators", "add", "bench"], env)
    t["import roster"] = run(mdm + ["officers", "import", str(inputs["roster"])], env)
    t["import manifest"] = run(mdm + ["enrol", "import", str(inputs["manifest"])], env)
    if snapshot:  # the imported inventory, before allocation: the other backend's seed
        run(mdm + ["inventory", "copy", backend.inventory, str(snapshot)], env)
    if seed_from and (t["import roster"][1] or t["import manifest"][1]):
        t["(seed by inventory copy)"] = run(
            mdm + ["inventory", "copy", seed_from, backend.inventory, "--replace"], env)
    t["devices show SERIAL"] = best(mdm + ["devices", "show", inputs["serial"], "--json"],
                                    env, repeat)
    t[f"officers list --station {inputs['station']}"] = best(
        mdm + ["officers", "list", "--station", inputs["station"]], env, repeat)
    t["officers list (every officer)"] = best(mdm + ["officers", "list"], env, repeat)
    t["assign --from (1,500 rows)"] = run(mdm + ["assign", "--from",
                                                 str(inputs["allocation"])], env)
    done = subprocess.run([sys.executable, "-c", RECORD_PUSH, backend.inventory], env=env,
                          capture_output=True, text=True)
    t["record a 500-device push"] = ((float(done.stdout.split()[1]), "")
                                     if done.returncode == 0 else
                                     (float("nan"), _error(done.stderr, done.returncode)))


def inputs_in(folder: Path, people: int, devices: int) -> dict[str, Any]:
    roster = examples.generate_roster(people, seed=45)
    examples.write_csv(folder / "roster.csv", roster, examples.ROSTER_COLUMNS)
    delivery = examples.generate_manifest(devices, seed=50)
    examples.write_csv(folder / "manifest.csv", delivery, examples.MANIFEST_COLUMNS)
    pairs = zip(delivery, (p for p in roster if p["status"] == "ACTIVE"
                           and p["device_eligible"] == "true"), strict=False)
    with open(folder / "allocation.csv", "w", newline="") as f:
        f.write("serial_number,officer\n")
        for _, (d, p) in zip(range(1500), pairs, strict=False):
            f.write(f"{d['serial_number']},{p['collar_number'] or p['payroll_no']}\n")
    station = max({p["station"] for p in roster if p["station"]},
                  key=lambda s: sum(p["station"] == s for p in roster))
    return {"roster": folder / "roster.csv", "manifest": folder / "manifest.csv",
            "allocation": folder / "allocation.csv", "station": station,
            "serial": delivery[devices // 2]["serial_number"]}


def report(sqlite: Backend, pg: Backend) -> None:
    print(f"{'step':<36}{'sqlite s':>10}{'postgresql s':>14}{'ratio':>8}")
    for step in dict.fromkeys([*sqlite.times, *pg.times]):
        a, a_err = sqlite.times.get(step, (float("nan"), "not run"))
        b, b_err = pg.times.get(step, (float("nan"), "not run"))
        ratio = f"{b / a:.2f}" if not (a_err or b_err) and a > 0 else "-"
        shown = [("-" if err == "not run" else "fails") if err else f"{secs:.3f}"
                 for secs, err in ((a, a_err), (b, b_err))]
        print(f"{step:<36}{shown[0]:>10}{shown[1]:>14}{ratio:>8}")
    for backend in (sqlite, pg):
        for step, (_, error) in backend.times.items():
            if error and error != "not run":
                print(f"  {backend.name}: {step}: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=45_000)
    parser.add_argument("--devices", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg", help="a PostgreSQL server's maintenance database URL"
                                     " (default: a throw-away cluster on loopback)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    import psycopg

    from tests import pgcluster

    cluster = None
    server = args.pg
    if not server:
        cluster = pgcluster.start(Path(tempfile.mkdtemp(prefix="mdm-bench-pg-")))
        server = cluster.url
    name = f"mdm_bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(server, autocommit=True) as admin:  # as README says to
            admin.execute(f"CREATE DATABASE {name} TEMPLATE template0 LOCALE 'C'"
                          " ENCODING 'UTF8'")
        load_before = os.getloadavg()
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "mdm.toml").write_text("")
            inputs = inputs_in(folder, args.people, args.devices)
            sqlite = Backend("sqlite", str(folder / "bench.db"), folder)
            pg = Backend("postgresql", server.rsplit("/", 1)[0] + "/" + name, folder)
            seed = folder / "seed.db"  # the SQLite inventory before its allocation
            measure(sqlite, inputs, args.repeat, snapshot=seed)
            measure(pg, inputs, args.repeat, seed_from=str(seed) if seed.exists() else None)
            report(sqlite, pg)
            load = {"before": load_before, "after": os.getloadavg()}
            print("load average (1, 5, 15 min): before "
                  + ", after ".join(" ".join(f"{x:.2f}" for x in v) for v in load.values()))
            if args.json:
                figures: dict[str, Any] = {b.name: {k: v[0] if not v[1] else v[1]
                                                    for k, v in b.times.items()}
                                           for b in (sqlite, pg)}
                print(json.dumps({**figures, "load average": load}, indent=2))
    finally:
        if args.pg:
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if cluster:
            pgcluster.stop(cluster.pid, cluster.folder)


if __name__ == "__main__":
    main()
