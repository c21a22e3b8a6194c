#!/usr/bin/env bash
# Sets up (tools/setup.sh) and runs the main job on the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
build/tools/noiseflow run pipelines/forward_process.json "$@"
