"""Run one benchmark's workers (mdm, OpenSSH) for a fleet size and print their figures.

Each worker runs in its own process, so its CPU time and peak memory are its own; the
last line it prints is a JSON object with wall, cpu, peak_mb and ok.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HEADER = (f"{'devices':>8} {'client':>8} {'wall s':>8} {'cpu s':>7} {'cpu ms/dev':>10}"
          f" {'peak MB':>8} {'ok':>5}")


def worker_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the hidden options `compare` passes to a worker process (--worker, --lab, …)."""
    for name in ("--worker", "--lab", "--key", "--tmp"):
        parser.add_argument(name, help=argparse.SUPPRESS)


@contextmanager
def lab_of(size: int) -> Iterator[tuple[Path, Path, Any]]:
    """A temporary folder with an operator key and a lab of `size` devices, downed after.

    Yields (folder, key, lab); the caller has made itself the subreaper of the lab's
    processes (`become_subreaper`).
    """
    from mdm.fleet.keys import generate_ed25519
    from mdm.lab.lab import Lab

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        key = folder / "id_ed25519"
        generate_ed25519(key)
        lab = Lab(folder / "lab")
        try:
            lab.up(size, Path(str(key) + ".pub").read_text())
            yield folder, key, lab
        finally:
            lab.down()


def compare(script: str, workers: Sequence[str], size: int, lab: Path, key: Path, tmp: str,
            concurrency: int, before: Callable[[str], None] | None = None) -> None:
    """Run each worker against the lab, print a row each and the mdm : OpenSSH ratio."""
    results: dict[str, dict[str, Any]] = {}
    for name in workers:
        if before is not None:
            before(name)
        out = subprocess.run(
            [sys.executable, script, "--worker", name, "--lab", str(lab), "--key", str(key),
             "--tmp", tmp, "--concurrency", str(concurrency)],
            capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        results[name] = r
        print(f"{size:>8} {name:>8} {r['wall']:>8.2f} {r['cpu']:>7.2f}"
              f" {1000 * r['cpu'] / size:>10.1f} {r['peak_mb']:>8.1f} {r['ok']:>5}", flush=True)
    m, o = results["mdm"], results["openssh"]
    print(f"{size:>8} {'ratio':>8} {m['wall'] / o['wall']:>8.2f}x"
          f" {m['cpu'] / o['cpu']:>6.2f}x", flush=True)
