#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite, lint and the docs check.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check mdm tests bench inventory/examples
.venv/bin/mypy mdm
.venv/bin/cog --check docs/cli.md docs/schema.md docs/policies.md
# A throw-away PostgreSQL cluster on loopback for the PostgreSQL half of the store tests,
# stopped by its PID however the run ends.
pgdir=$(mktemp -d)
read -r MDM_TEST_PG pgpid < <(.venv/bin/python tests/pgcluster.py start "$pgdir")
trap '.venv/bin/python tests/pgcluster.py stop "$pgpid"; rm -rf "$pgdir"' EXIT
export MDM_TEST_PG
.venv/bin/python -m pytest -q "$@"
