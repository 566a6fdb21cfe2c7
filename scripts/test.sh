#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite, lint and the docs check.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check mdm tests bench inventory/examples
.venv/bin/mypy mdm
.venv/bin/cog --check docs/cli.md docs/schema.md docs/policies.md
exec .venv/bin/python -m pytest -q "$@"
