#!/usr/bin/env bash
# The main job: set up .venv, generate the embedded SynthPose dataset, execute every notebook on
# its headline table through papermill and write results/<profile>/REPORT.md.
# Usage: scripts/reproduce.sh [paper|all] [--profile quick|classroom|gpu|paper] [--table T] [--seeds N] [--jobs J]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
if [ $# -eq 0 ]; then set -- all --profile quick --jobs 2; fi
exec .venv/bin/python -m kdlib.reproduce "$@"
