#!/usr/bin/env bash
# Sets up (tools/setup.sh), then the main job on the defaults: train unet-small on the MNIST training
# split (pipelines/train.json, its sample quality logged every 500 ticks), then sample digits from it
# (pipelines/sample.json: 64 with DDPM over all 1000 steps) and score 1000 samples of the 20-step trailing
# DPM-Solver++(2M) SDE with the project's metric (pipelines/eval/fd.json). The digit classifier the
# metric uses is trained first (pipelines/eval/train_classifier.json, about 5 minutes).
# Training is a 30-minute budget (train.json's minutes): its step count is sized to this machine by a
# probe of its first ticks and printed at the end. Extra arguments go to the training run (e.g.
# --set minutes=10, or --set steps=200 for a fixed count).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
B=build/tools/noiseflow
# The classifier is (re)trained when missing or not the one train_classifier.json makes now (its step count
# differs: an older recipe, or a split the data no longer has).
cls=runs/mnist_classifier/classifier.safetensors
want=$(python3 -c "import json; print(json.load(open('pipelines/eval/train_classifier.json'))['params']['steps'])")
have=$(python3 - "$cls" <<'EOF' 2>/dev/null || echo none
import json, struct, sys
f = open(sys.argv[1], "rb"); n = struct.unpack("<Q", f.read(8))[0]
print(json.loads(f.read(n))["__metadata__"]["step"])
EOF
)
[ "$have" = "$want" ] || $B run pipelines/eval/train_classifier.json
t0=$(date +%s)
$B run pipelines/train.json --set fd=true "$@"
train_s=$(( $(date +%s) - t0 ))
$B run pipelines/sample.json
$B run pipelines/sample.json --set n=1000 --set sampler=dpmpp_2m_sde --set steps=20 --set spacing=trailing \
  --set samples=runs/mnist/samples_dpmpp_2m_sde_20.png --set trajectory=runs/mnist/trajectory_dpmpp_2m_sde_20.png
$B run pipelines/eval/fd.json
python3 - <<'EOF'
import json
r = json.load(open("runs/mnist_fd/fd.json"))
print(f"sample quality against the held-out digits, n = 1000 (docs/QUALITY.md): FD {r['fd']:.1f} +- {r['fd_se']:.1f} "
      f"(sets of 1000 real digits: 50-84), KID {r['kid']:.4f} +- {r['kid_se']:.4f}, precision {r['precision']:.3f}, "
      f"recall {r['recall']:.3f}")
EOF
python3 - "$train_s" <<'EOF'
import json, sys
run = json.load(open("runs/mnist/pipeline.json"))["run"]
z = run.get("sized")
how = (f"sized to the {z['minutes']:g}-minute budget (a tick took {z['tick_seconds']:.3f} s in the probe)"
       if z else "a fixed step count")
print(f"training: {run['ticks']} steps of batch 64 in {int(sys.argv[1]) / 60:.1f} minutes, {how}")
EOF
