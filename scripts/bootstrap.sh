#!/usr/bin/env bash
# Installs what the project needs into .venv (Python) and node_modules (CDK CLI).
# Idempotent: reinstalls only when a requirements file or package.json changed, or when the checkout was
# copied or moved. A venv is not relocatable (its scripts' shebangs hold its absolute path) and the editable
# install of constructs/ holds the absolute path of the checkout it was made in, so a copy would otherwise
# run the ORIGINAL folder's constructs: a venv created in another folder is recreated, and a construct
# library that resolves outside this checkout is reinstalled.
# Usage: scripts/bootstrap.sh [--dry-run] [runtime|dev]
#   --dry-run  print what would be done (reasons on stderr, "would ..." lines on stdout); change nothing
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd -P)"
dry_run=false
if [ "${1:-}" = --dry-run ]; then
  dry_run=true
  shift
fi
profile="${1:-runtime}"
python="${PYTHON:-python3}"
venv="$root/.venv"
location_file=.venv/.bootstrap-location # the absolute path the venv was created at

say() { echo "bootstrap: $*" >&2; }
run() { if $dry_run; then echo "would run: $*"; else "$@"; fi; }
record() { if $dry_run; then echo "would record: $1 in $2"; else echo "$1" > "$2"; fi; }

# Where .venv was created: its record, else the interpreter path in its pip script's shebang
# ("#!/p/.venv/bin/python", or for long paths pip's "#!/bin/sh" + "'''exec' "/p/.venv/bin/python" ...").
venv_origin() {
  local first interpreter=""
  if [ -f "$location_file" ]; then
    cat "$location_file"
    return
  fi
  [ -f .venv/bin/pip ] || return 0
  first=$(head -n 1 .venv/bin/pip)
  if [ "$first" = "#!/bin/sh" ]; then
    interpreter=$(sed -n "2,3s/^'''exec' \"\\([^\"]*\\)\".*/\\1/p" .venv/bin/pip | head -n 1)
  elif [ "${first:0:2}" = "#!" ]; then
    interpreter="${first:2}"
  fi
  [ -n "$interpreter" ] && echo "${interpreter%/bin/*}"
  return 0
}

fresh=false # .venv is (or, in a dry run, would be) created by this run
if [ -d .venv ] && [ ! -L .venv ]; then
  origin="$(venv_origin)"
  if [ -n "$origin" ] && [ "$origin" != "$venv" ]; then
    say ".venv was created at $origin, not at $venv (the checkout was copied or moved): recreating it"
    run rm -rf .venv
    fresh=true
  elif [ -n "$origin" ] && [ ! -f "$location_file" ] && ! $dry_run; then
    echo "$venv" > "$location_file" # a venv from before the record, verified by its pip script
  fi
fi
if $fresh || [ ! -x .venv/bin/python ]; then
  run "$python" -m venv .venv
  record "$venv" "$location_file"
  fresh=true
fi

req_files=(requirements.txt)
[ "$profile" = dev ] && req_files+=(requirements-dev.txt)
stamp=".venv/.installed-$profile"
digest=$(cat "${req_files[@]}" constructs/pyproject.toml | sha256sum | cut -d' ' -f1)
if $fresh || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  run .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip setuptools wheel
  args=()
  for f in "${req_files[@]}"; do args+=(-r "$f"); done
  run .venv/bin/python -m pip install --quiet --disable-pip-version-check "${args[@]}"
  run .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e constructs
  record "$digest" "$stamp"
else
  # Up to date; still check that the construct library is this checkout's (an editable install made in
  # another folder points there). -I: neither the cwd nor PYTHONPATH, only the venv's site-packages.
  installed=$(.venv/bin/python -I -c '
import importlib.util, os
spec = importlib.util.find_spec("ml_platform")
print(os.path.realpath(os.path.dirname(spec.origin)) if spec and spec.origin else "")
' 2>/dev/null || true)
  if [ "$installed" != "$root/constructs/ml_platform" ]; then
    say "the construct library resolves to '${installed:-nothing}', not $root/constructs/ml_platform: reinstalling it"
    run .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e constructs
  fi
fi

npm_digest=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [ ! -x node_modules/.bin/cdk ] || [ "$(cat node_modules/.installed 2>/dev/null)" != "$npm_digest" ]; then
  run npm ci --no-audit --no-fund --loglevel=error
  record "$npm_digest" node_modules/.installed
fi
