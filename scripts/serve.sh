#!/usr/bin/env bash
# Runs the model server of the serving image locally (training_code/serve.py, the same code and the same
# HTTP stack as the container), from the project's virtual environment.
# Usage: scripts/serve.sh MODEL [--port N] [other serve.py options, e.g. --workers 2 --backend onnx]
#   MODEL: a model.tar.gz (unpacked into a temporary folder, removed on exit) or an unpacked model folder,
#          as train.py writes them (model.onnx, preprocessing.json, ...).
#   Listens on 127.0.0.1:8080 unless --host/--port say otherwise; Ctrl-C or SIGTERM stops it gracefully.
#   e.g. curl -s -H 'Content-Type: text/csv' --data '17.99,10.38,...' localhost:8080/invocations
set -euo pipefail
if [ $# -lt 1 ] || [ "${1:0:1}" = - ]; then
  echo "usage: scripts/serve.sh MODEL [--port N] [serve.py options]  (MODEL: model.tar.gz or a model folder)" >&2
  exit 2
fi
model="$1"
shift
case "$model" in /*) ;; *) model="$PWD/$model" ;; esac
cd "$(dirname "$0")/.."

if [ -d "$model" ]; then
  model_dir="$model"
elif [ -f "$model" ]; then
  model_dir="$(mktemp -d "${TMPDIR:-/tmp}/serve-model.XXXXXX")"
  trap 'rm -rf "$model_dir"' EXIT
  if ! tar -xzf "$model" -C "$model_dir" --no-same-owner; then
    echo "serve.sh: $model is not a readable gzipped tarball (expected a model.tar.gz or a folder)" >&2
    exit 2
  fi
else
  echo "serve.sh: $model: no such file or folder (expected a model.tar.gz or a model folder)" >&2
  exit 2
fi

bash scripts/bootstrap.sh dev
source scripts/env.sh
python training_code/serve.py serve --model-dir "$model_dir" --host 127.0.0.1 "$@" &
server=$!
# Forward a stop to the server (it finishes in-flight requests), then wait for its own exit status.
trap 'kill -TERM "$server" 2>/dev/null || true' TERM INT
status=0
wait "$server" || status=$?
if kill -0 "$server" 2>/dev/null; then
  status=0
  wait "$server" || status=$?
fi
exit "$status"
