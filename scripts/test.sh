#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite, lint and the docs check.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# On the second core while the first lints: the tests' real APKs are built (once per
# machine, cached in pytest's cache folder), and the tests collected once, so that pytest
# keeps its rewritten test modules as bytecode (even where PYTHONDONTWRITEBYTECODE is set)
# for both test processes to read. In a process group of their own, stopped by its id if
# the run ends early.
# (A collection error is left for the test run itself to report.)
setsid sh -c '.venv/bin/python tests/apks.py .pytest_cache/d && { env -u \
  PYTHONDONTWRITEBYTECODE .venv/bin/python -m pytest -q --collect-only >/dev/null || true; }' &
early=$!
trap 'kill -- -"$early" 2>/dev/null || true' EXIT
.venv/bin/ruff check mdm tests bench inventory/examples
.venv/bin/mypy mdm
.venv/bin/cog --check docs/cli.md docs/schema.md docs/policies.md
wait "$early"
# A throw-away PostgreSQL cluster on loopback for the tests marked to run on both backends
# (in memory where /dev/shm is), stopped by its PID however the run ends.
pgdir=$(.venv/bin/python tests/pgcluster.py folder)
read -r MDM_TEST_PG pgpid < <(.venv/bin/python tests/pgcluster.py start "$pgdir")
trap '.venv/bin/python tests/pgcluster.py stop "$pgpid"; rm -rf "$pgdir"' EXIT
export MDM_TEST_PG
# Two test processes (pytest-xdist), each with its own lab and temporary folders, sharing
# the cluster: most tests wait on sshd, subprocesses or PostgreSQL, so one process leaves
# a core idle. `bash scripts/test.sh -n 0` runs them all in this one process.
.venv/bin/python -m pytest -q -n 2 "$@"
