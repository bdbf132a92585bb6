#!/usr/bin/env bash
# Create/update the local virtual environment .venv (idempotent: reinstalls only when
# pyproject.toml changed since the last successful install).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $($PY --version)"
    "$PY" -m venv .venv
fi
stamp=.venv/.kdlib-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && .venv/bin/python -c "import kdlib, torch, torchvision" 2>/dev/null; then
    exit 0
fi
echo "[setup] installing kdlib and its pinned dependencies into .venv (first time: torch+CUDA wheels, ~5 GB, a few minutes)"
# PIP_FIND_LINKS is cleared so that a local CPU-only torch wheel cannot shadow the pinned build:
# torchvision's wheels on PyPI import only with the matching (CUDA) torch build.
PIP_FIND_LINKS= .venv/bin/python -m pip install --quiet --upgrade pip
PIP_FIND_LINKS= .venv/bin/python -m pip install --quiet -e ".[dev]"
.venv/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
echo "$want" > "$stamp"
echo "[setup] done"
