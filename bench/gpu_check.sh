#!/usr/bin/env bash
# One prepared GPU check for a session that is lent a device (the budget is ~15 minutes per task, all
# calls together: run this once, with timeout_s 540, and read $OUT/gpu_check.log).
#
# What it does, in order, each step time-boxed so that one failure does not eat the budget:
#   1. environment: nvidia-smi, torch / CUDA versions, the GPU's name;
#   2. the CUDA paths of the test suite (tests that run on CUDA when it is there);
#   3. `--device auto` picks the GPU (the first lines of a run name the device);
#   4. the seed SinGAN configuration end to end on CUDA (hubble 250x200, min 16, max 200, lr 4e-4,
#      2000 steps per scale; goal: at most 5 minutes on one H100/H200-class GPU), wall time;
#   5. StyleGAN2 img/s at the seed configuration on CUDA, fewgan and (when its tree was carried) the
#      NVlabs peer through ../shared/peers' harness, alternately.
#
# Before the call, on the developer machine (the device machine has no internet and no pypng):
#   echo /.gpu/ >> .git/info/exclude; mkdir -p .gpu
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 -d .gpu/whl pypng==0.20220715.0
#   cp -r ../shared/peers .gpu/peers                  # the harness (../shared does not travel)
#   git --git-dir=<mirror of NVlabs/stylegan3> archive HEAD | (mkdir -p .gpu/peer_stylegan && tar -x -C .gpu/peer_stylegan)
# then: run(command="bash bench/gpu_check.sh", carry=[".gpu"], timeout_s=540)
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
exec > >(tee "$LOG") 2>&1
export PYTHONUNBUFFERED=1
PY=${PY:-python3}

if [ -d .gpu/whl ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
fi
FEWGAN="$PY -m fewgan"
step() { echo; echo "=== $(date +%T) $*"; }

step "1. environment"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv || true
$PY - <<'EOF'
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(), "capability", torch.cuda.get_device_capability())
EOF

step "2. CUDA paths of the test suite"
timeout 120 $PY -m pytest -q -x -k "cuda or device" tests 2>&1 | tail -15

step "3. --device auto picks the GPU"
mkdir -p /tmp/gpu_runs
$PY - <<'EOF'
import numpy as np
from skimage import data
from PIL import Image
Image.fromarray(data.hubble_deep_field()[0:250, 250:450]).save("/tmp/gpu_runs/hubble.png")
EOF
timeout 60 $FEWGAN singan train /tmp/gpu_runs/hubble.png --dry-run 2>&1 | head -12

step "4. seed SinGAN end to end on CUDA (2000 steps per scale)"
t0=$(date +%s.%N)
timeout 330 $FEWGAN singan train /tmp/gpu_runs/hubble.png --device cuda --min-size 16 --max-size 200 --lr 4e-4 \
    --steps 2000 --seed 0 --results /tmp/gpu_runs/singan --quiet
rc=$?
t1=$(date +%s.%N)
echo "singan seed run: exit $rc, wall $(echo "$t1 - $t0" | bc) s (timeout 330 s counts as not met)"
cp /tmp/gpu_runs/singan/*/log.txt "$OUT/singan_log.txt" 2>/dev/null || true

step "5. StyleGAN2 img/s on CUDA, fewgan beside the NVlabs peer"
PEERARGS=()
if [ -d .gpu/peer_stylegan ] && [ -d .gpu/peers ]; then
  mkdir -p ../shared && ln -sfn "$PWD/.gpu/peers" ../shared/peers
  PEERARGS=(--peer "$PWD/.gpu/peer_stylegan" --peer-python "$PY" --peer-kimg 4 --rounds 1)
fi
timeout 150 $PY bench/stylegan2_speed.py --device cuda --aug none --warmup 16 --window 64 --windows 2 \
    "${PEERARGS[@]}" --json "$OUT/stylegan2_cuda_noaug.json"
echo "=== $(date +%T) done"
