#!/usr/bin/env bash
# tests/tools/test_onnx_ort.sh — `noiseflow export onnx` end to end: the exported unet-small, run in ONNX Runtime
# (onnxruntime-node, installed by tools/setup.sh into tools/ort/), computes what noiseflow computes.
#
#   tests/tools/test_onnx_ort.sh NOISEFLOW SOURCE_DIR        (ctest runs it; exit 77 = skipped)
#
# 1. a checkpoint with non-trivial weights: 5 AdamW steps at lr 1e-2 of pipelines/bench_unet_adam.json (a fresh
#    net outputs exactly 0: its last conv starts at zero);
# 2. noiseflow's output for x ~ N(0, 1) and 8 timesteps (0 .. 999, two fractional): tests/tools/onnx_reference.json;
# 3. the export with a symbolic batch and with --batch 8;
# 4. tests/tools/onnx_compare.mjs: max |ORT - noiseflow| / max |noiseflow| <= 1e-4 for both.
set -euo pipefail
nf="$1"
root="$2"
if [[ ! -f "$root/tools/ort/node_modules/onnxruntime-node/package.json" ]]; then
  echo "skipped: onnxruntime-node is not installed in tools/ort/ (tools/setup.sh installs it)"
  exit 77
fi
if ! command -v node >/dev/null; then
  echo "skipped: no node (Node.js) on the PATH (tools/setup.sh installs npm and node)"
  exit 77
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$root"
export OMP_WAIT_POLICY=passive

"$nf" run pipelines/bench_unet_adam.json --set batch=4 --set lr=0.01 --set save=true \
  --set checkpoint="$tmp/ck.safetensors" --ticks 5 -q --threads 2 --run-folder "$tmp/train" > /dev/null
"$nf" run tests/tools/onnx_reference.json --set checkpoint="$tmp/ck.safetensors" --set weights=raw \
  --set out="$tmp" -q --threads 2 --run-folder "$tmp/reference" > /dev/null
"$nf" export onnx "$tmp/ck.safetensors" -o "$tmp/unet.onnx" --weights raw
"$nf" export onnx "$tmp/ck.safetensors" -o "$tmp/unet_b8.onnx" --weights raw --batch 8
node tests/tools/onnx_compare.mjs "$tmp/unet.onnx" "$tmp" 1e-4
node tests/tools/onnx_compare.mjs "$tmp/unet_b8.onnx" "$tmp" 1e-4
