#!/usr/bin/env bash
# Set up (or refresh) the project's virtual environment at .venv: Python 3.11, torch 2.13.0 (CPU
# build), OpenImageIO, numpy 1.26, and the test extra (pytest, bpy 5.0.1, hypothesis, scipy).
# Idempotent: a second run with an unchanged pyproject.toml does nothing.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
  echo "ldr2hdr needs Python 3.11 (bpy 5.0 and the pinned torch build are for 3.11); set PYTHON=/path/to/python3.11" >&2
  exit 1
}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.ldr2hdr-setup
want=$(cat pyproject.toml setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
  echo "$want" > "$stamp"
fi
