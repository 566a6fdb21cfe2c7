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
The PostgreSQL database is made as README's "Several sites" says (`--locale=C`). Each
step gives its wall time and its CPU time: the mdm process's, and on PostgreSQL also the
server's over the same span (the throw-away cluster's processes; not measured with
--pg), since the server's work is part of what a command costs there. The load average
before and after the run is printed beside them: on a shared machine the wall times
follow it, the CPU times much less. The three reads run after both backends' writes,
round by round (`--repeat` rounds, each backend in turn), each figure the median of its
rounds, so a slow minute of the machine falls on both backends alike. Aim: PostgreSQL
within 2x of SQLite for every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
print("start", flush=True)
sys.stdin.readline()  # the parent reads the server's CPU time here
start, cpu = time.perf_counter(), time.process_time()
for first in range(0, len(rows), 25):  # the push records its results in batches
    with transaction(db):
        for row in rows[first:first + 25]:
            push.record_applied(db, "bench", row, Applied(True, status, "cd" * 32),
                                "2026-01-01T00:00:00Z", outcome, unchanged)
print(len(outcome.done), time.perf_counter() - start, time.process_time() - cpu, flush=True)
sys.stdin.readline()
"""

# One step's figures: wall seconds, the mdm process's CPU seconds, the PostgreSQL server's
# CPU seconds over the same span (0 for SQLite; NaN when the server is not local), and
# an error ('' when it ran).
Figures = tuple[float, float, float, str]
NAN = float("nan")


class Server:
    """The CPU time of a local PostgreSQL cluster: its postmaster's own and its children's
    (the backends that serve mdm's connections, reaped ones included). `pid` 0: no server
    (SQLite); None: a server elsewhere, not measured."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid

    def cpu(self) -> float:
        if self.pid is None:
            return NAN
        if self.pid == 0:
            return 0.0
        tick = os.sysconf("SC_CLK_TCK")
        total = _ticks(self.pid, reaped=True)
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == self.pid:
                    total += _ticks(int(entry.name), reaped=True)
        return total / tick


def _ticks(pid: int, reaped: bool) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0  # it has just ended (its time goes to its parent's reaped children)
    # utime, stime, then the times of its reaped children (cutime, cstime)
    return int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if reaped
                                                 else 0)


def run(cmd: list[str], env: dict[str, str], server: Server) -> Figures:
    """Time one whole process; its error's first line instead, if it fails."""
    before, served = resource.getrusage(resource.RUSAGE_CHILDREN), server.cpu()
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if done.returncode == 0:
        return took, cpu, server.cpu() - served, ""
    return NAN, NAN, NAN, _error(done.stderr, done.returncode)


def _error(stderr: str, code: int) -> str:
    """Return the error line of a failed command's output (its first, else its last)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    said = [ln for ln in lines if ln.startswith("error:")]
    return ((said or lines or [f"exit {code}"])[0 if said else -1])[:200]


def record_push(backend: Backend) -> Figures:
    """Record a 500-device push, timed inside its process (not its start-up)."""
    with subprocess.Popen([sys.executable, "-c", RECORD_PUSH, backend.inventory],
                          env=backend.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as child:
        assert child.stdin and child.stdout and child.stderr
        ready = child.stdout.readline()
        served = backend.server.cpu()
        if ready.strip() == "start":
            child.stdin.write("go\n")
            child.stdin.flush()
            said = child.stdout.readline().split()
            served = backend.server.cpu() - served
            child.stdin.write("done\n")
            child.stdin.flush()
        error = child.stderr.read()
        child.wait(timeout=600)
    if child.returncode != 0 or ready.strip() != "start" or len(said) != 3:
        return NAN, NAN, NAN, _error(error, child.returncode)
    return float(said[1]), float(said[2]), served, ""


class Backend:
    def __init__(self, name: str, inventory: str, folder: Path, server: Server) -> None:
        self.name = name
        self.inventory = inventory
        self.env = {**os.environ, "MDM_DB": inventory, "MDM_OPERATOR": "bench",
                    "MDM_CONFIG": str(folder / "mdm.toml")}
        self.server = server
        self.times: dict[str, Figures] = {}


def settle(url: str) -> None:
    """Bring a freshly imported PostgreSQL inventory to its steady state before the steps
    that follow are timed: VACUUM (ANALYZE), the work autovacuum would otherwise be doing
    on the same two cores during them (untimed; a long-lived inventory has had it)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


def measure(backend: Backend, inputs: dict[str, Any], seed_from: str | None = None,
            snapshot: Path | None = None) -> None:
    mdm = [sys.executable, "-m", "mdm"]
    env, t, server = backend.env, backend.times, backend.server
    run(mdm + ["operators", "add", "bench"], env, server)
    t["import roster"] = run(mdm + ["officers", "import", str(inputs["roster"])], env, server)
    t["import manifest"] = run(mdm + ["enrol", "import", str(inputs["manifest"])], env,
                               server)
    if snapshot:  # the imported inventory, before allocation: the other backend's seed
        run(mdm + ["inventory", "copy", backend.inventory, str(snapshot)], env, server)
    if seed_from and (t["import roster"][3] or t["import manifest"][3]):
        t["(seed by inventory copy)"] = run(
            mdm + ["inventory", "copy", seed_from, backend.inventory, "--replace"], env,
            server)
    if backend.inventory.startswith(("postgresql://", "postgres://")):
        settle(backend.inventory)
    for step in reads(inputs):  # placed here in the table; timed by `alternate`
        t[step] = (NAN, NAN, NAN, "not run")
    t["assign --from (1,500 rows)"] = run(mdm + ["assign", "--from",
                                                 str(inputs["allocation"])], env, server)
    t["record a 500-device push"] = record_push(backend)


def reads(inputs: dict[str, Any]) -> dict[str, list[str]]:
    """The read commands timed on both backends, by step name."""
    return {"devices show SERIAL": ["devices", "show", inputs["serial"], "--json"],
            f"officers list --station {inputs['station']}": [
                "officers", "list", "--station", inputs["station"]],
            "officers list (every officer)": ["officers", "list"]}


def alternate(backends: list[Backend], inputs: dict[str, Any], repeat: int) -> None:
    """Time the read commands round by round, each backend in turn within a round (both
    inventories in the same state), so a slow minute of the machine falls on both alike;
    each figure is the median of its rounds."""
    mdm = [sys.executable, "-m", "mdm"]
    runs: dict[tuple[str, str], list[Figures]] = {}
    for _ in range(repeat):
        for step, argv in reads(inputs).items():
            for backend in backends:
                runs.setdefault((backend.name, step), []).append(
                    run(mdm + argv, backend.env, backend.server))
    for (name, step), figures in runs.items():
        failed = [f for f in figures if f[3]]
        backend = next(b for b in backends if b.name == name)
        backend.times[step] = failed[0] if failed else (
            statistics.median(f[0] for f in figures), statistics.median(f[1] for f in figures),
            statistics.median(f[2] for f in figures), "")


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
    """Wall seconds and their ratio; then CPU seconds: SQLite's process, PostgreSQL's
    process + its server's, and the ratio of those sums."""
    print(f"{'step':<34}{'sqlite s':>9}{'pg s':>8}{'ratio':>7}   {'sqlite cpu':>10}"
          f"{'pg cpu':>8}{'+server':>8}{'ratio':>7}")
    for step in dict.fromkeys([*sqlite.times, *pg.times]):
        a = sqlite.times.get(step, (NAN, NAN, NAN, "not run"))
        b = pg.times.get(step, (NAN, NAN, NAN, "not run"))
        ok = not (a[3] or b[3])

        def shown(value: float, error: str) -> str:
            return ("-" if error == "not run" else "fails") if error else f"{value:.3f}"

        wall = f"{b[0] / a[0]:.2f}" if ok and a[0] > 0 else "-"
        cpu = f"{(b[1] + b[2]) / a[1]:.2f}" if ok and a[1] > 0 and b[2] == b[2] else "-"
        print(f"{step:<34}{shown(a[0], a[3]):>9}{shown(b[0], b[3]):>8}{wall:>7}   "
              f"{shown(a[1], a[3]):>10}{shown(b[1], b[3]):>8}{shown(b[2], b[3]):>8}{cpu:>7}")
    for backend in (sqlite, pg):
        for step, figures in backend.times.items():
            if figures[3] and figures[3] != "not run":
                print(f"  {backend.name}: {step}: {figures[3]}")


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
            sqlite = Backend("sqlite", str(folder / "bench.db"), folder, Server(0))
            pg = Backend("postgresql", server.rsplit("/", 1)[0] + "/" + name, folder,
                         Server(cluster.pid if cluster else None))
            seed = folder / "seed.db"  # the SQLite inventory before its allocation
            measure(sqlite, inputs, snapshot=seed)
            measure(pg, inputs, seed_from=str(seed) if seed.exists() else None)
            alternate([sqlite, pg], inputs, args.repeat)
            report(sqlite, pg)
            load = {"before": load_before, "after": os.getloadavg()}
            print("load average (1, 5, 15 min): before "
                  + ", after ".join(" ".join(f"{x:.2f}" for x in v) for v in load.values()))
            if args.json:
                figures: dict[str, Any] = {b.name: {
                    k: {"wall": v[0], "cpu": v[1], "server cpu": v[2]} if not v[3] else v[3]
                    for k, v in b.times.items()} for b in (sqlite, pg)}
                print(json.dumps({**figures, "load average": load}, indent=2))
    finally:
        if args.pg:
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if cluster:
            pgcluster.stop(cluster.pid, cluster.folder)


if __name__ == "__main__":
    main()
