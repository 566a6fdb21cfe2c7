#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite, lint and the docs check.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The tests' real APKs (made once per machine, cached in pytest's cache folder) are built
# on the second core while the first lints; in a process group of their own, stopped by
# its id if the run ends early.
setsid .venv/bin/python tests/apks.py .pytest_cache/d &
apks=$!
trap 'kill -- -"$apks" 2>/dev/null || true' EXIT
.venv/bin/ruff check mdm tests bench inventory/examples
.venv/bin/mypy mdm
.venv/bin/cog --check docs/cli.md docs/schema.md docs/policies.md
wait "$apks"
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
