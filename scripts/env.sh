# Sourced by the scripts: environment shared by synth, tests and benchmarks.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
export JSII_RUNTIME_PACKAGE_CACHE=enabled
export JSII_RUNTIME_PACKAGE_CACHE_ROOT="${JSII_RUNTIME_PACKAGE_CACHE_ROOT:-$PWD/.cache/jsii}"
export CDK_DISABLE_VERSION_CHECK=1
export CDK_CLI_NOTICES=false
export PATH="$PWD/.venv/bin:$PWD/node_modules/.bin:$PATH"
