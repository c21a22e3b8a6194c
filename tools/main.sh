#!/usr/bin/env bash
# Sets up (tools/setup.sh), then the main job on the defaults: train unet-small
# on MNIST (pipelines/train.json), then sample digits from it (pipelines/sample.json).
# Extra arguments go to the training run (e.g. --set steps=200).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
build/tools/noiseflow run pipelines/train.json "$@"
build/tools/noiseflow run pipelines/sample.json
