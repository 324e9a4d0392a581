#!/usr/bin/env bash
# Runs the whole test suite (lint, types, pytest). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh dev
source scripts/env.sh
ruff check .
ruff format --check .
mypy
exec python -m pytest "$@"
