#!/usr/bin/env bash
# Installs what the project needs into .venv (Python) and node_modules (CDK CLI).
# Idempotent: reinstalls only when a requirements file or package.json changed.
# Usage: scripts/bootstrap.sh [runtime|dev]
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-runtime}"
python="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi

req_files=(requirements.txt)
[ "$profile" = dev ] && req_files+=(requirements-dev.txt)
stamp=".venv/.installed-$profile"
digest=$(cat "${req_files[@]}" constructs/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip setuptools wheel
  args=()
  for f in "${req_files[@]}"; do args+=(-r "$f"); done
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "${args[@]}"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e constructs
  echo "$digest" > "$stamp"
fi

npm_digest=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [ ! -x node_modules/.bin/cdk ] || [ "$(cat node_modules/.installed 2>/dev/null)" != "$npm_digest" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$npm_digest" > node_modules/.installed
fi
