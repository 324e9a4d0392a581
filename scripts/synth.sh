#!/usr/bin/env bash
# Synthesizes every stack of a stage (default: dev) into cdk.out with the pinned CDK CLI.
# Usage: scripts/synth.sh [stage] [extra cdk args...]
#   e.g. scripts/synth.sh prod; scripts/synth.sh dev -c name_prefix=MlPlatformB
#   An empty stage ("") is passed on as -c stage= and refused, never read as dev.
set -euo pipefail
cd "$(dirname "$0")/.."
stage="${1-dev}"
shift || true
bash scripts/bootstrap.sh runtime
source scripts/env.sh
exec cdk synth --quiet -c "stage=$stage" "$@"
