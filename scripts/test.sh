#!/usr/bin/env bash
# Runs the whole test suite (set-up included). pytest's exit code 5 ("no tests collected") is a failure here.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# The liveness training code is tested too (on a tiny subset): torch comes from the [train] extra.
.venv/bin/python -m pip install --quiet -e ".[dev,train]"
if [ -f tests/sdk/package.json ]; then (cd tests/sdk && npm ci --no-audit --no-fund --silent); fi
if [ -f tests/capture/package.json ]; then (cd tests/capture && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent); fi
.venv/bin/ruff check src tests
.venv/bin/mypy
set +e
.venv/bin/pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi
exit "$rc"
