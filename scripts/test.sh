#!/usr/bin/env bash
# The tests: set up .venv, then run pytest. Default: the fast suite (no GPU needed, ~10 min on
# 2 cores). `scripts/test.sh --slow` runs only the slow tests; other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
if [ "${1:-}" = "--slow" ]; then shift; set -- -m slow "$@"; fi
export MPLBACKEND=Agg
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
