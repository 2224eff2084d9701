#!/usr/bin/env bash
# Create the project virtualenv (.venv) when it is missing or stale, and install
# firesmoke with its test extra. Shared by the Makefile and CI (.ci/run).
#
# torch is pinned through constraints.txt: torch==2.13.0 resolves to the CPU wheel
# on the project's machines; without the pin pip pulls several GB of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
STAMP="$VENV/.firesmoke-installed"

if [[ -f "$STAMP" && "$STAMP" -nt pyproject.toml && "$STAMP" -nt constraints.txt ]]; then
    exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "[bootstrap] creating $VENV with $($PYTHON --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
fi
echo "[bootstrap] installing firesmoke[test] into $VENV (torch pinned by constraints.txt)"
"$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
"$VENV/bin/python" -m pip install --quiet --progress-bar off -c constraints.txt -e ".[test]"
touch "$STAMP"
echo "[bootstrap] done"
