#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install stablenn with
# everything the tests and the report need.  Usage: scripts/env.sh  (prints the venv's python path)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv >&2
fi
stamp=.venv/.stablenn-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip >&2
    .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[test]" >&2
    echo "$want" > "$stamp"
fi
echo "$PWD/.venv/bin/python"
