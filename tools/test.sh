#!/usr/bin/env bash
# Sets up (tools/setup.sh) and runs every test through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
cd build
OMP_WAIT_POLICY=passive ctest --output-on-failure --timeout 600 -j"$(nproc)"
