#!/usr/bin/env bash
# Create the project virtualenv (.venv) when it is missing and install firesmoke into it,
# with the extras asked for. Shared by the Makefile and CI (.ci/run):
#
#   bash ci/bootstrap.sh              # make demo: the package and its runtime deps only
#   bash ci/bootstrap.sh test,docs    # make test: + the test suite and docs tools
#
# Each set of extras has its own stamp (.venv/.firesmoke-installed[-EXTRAS]), newer than
# pyproject.toml and constraints.txt when up to date, so a second run costs nothing.
#
# torch is pinned through constraints.txt: torch==2.13.0 resolves to the CPU wheel on
# the project's machines; without the pin pip pulls several GB of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=${1:-}
STAMP="$VENV/.firesmoke-installed${EXTRAS:+-${EXTRAS//,/-}}"
TARGET="."
if [[ -n "$EXTRAS" ]]; then
    TARGET=".[$EXTRAS]"
fi

if [[ -f "$STAMP" && "$STAMP" -nt pyproject.toml && "$STAMP" -nt constraints.txt ]]; then
    exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "[bootstrap] creating $VENV with $($PYTHON --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
fi
echo "[bootstrap] installing firesmoke${EXTRAS:+[$EXTRAS]} into $VENV (torch pinned by constraints.txt)"
start=$SECONDS
"$VENV/bin/python" -m pip install --quiet --progress-bar off -c constraints.txt -e "$TARGET"
touch "$STAMP"
echo "[bootstrap] done in $((SECONDS - start)) s"
