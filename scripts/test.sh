#!/usr/bin/env bash
# Runs the whole test suite (lint, types, pytest with a coverage floor). Extra args go to pytest
# (for a partial run, add --no-cov: the floor is for the whole suite).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh dev
source scripts/env.sh
ruff check .
ruff format --check .
mypy
exec python -m pytest "$@" --cov
