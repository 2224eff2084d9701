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
if [[ -z "$EXTRAS" ]]; then
    # make demo: skip pip's byte-compilation of every installed file (about 45 s of CPU
    # for torch, scipy, pandas...); Python writes the .pyc of what the demo imports on
    # first use
    "$VENV/bin/python" -m pip install --quiet --progress-bar off --no-compile \
        -c constraints.txt -e "$TARGET"
else
    "$VENV/bin/python" -m pip install --quiet --progress-bar off -c constraints.txt -e "$TARGET"
    # the suite starts many processes: compile what a runtime-only install left as source
    # (on every core; a no-op when everything is compiled), so that no process pays it,
    # also under PYTHONDONTWRITEBYTECODE
    site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    "$VENV/bin/python" -m compileall -q -j 0 "$site" >/dev/null 2>&1 || true
fi
touch "$STAMP"
echo "[bootstrap] done in $((SECONDS - start)) s"
