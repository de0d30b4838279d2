#!/usr/bin/env bash
# The learned model's CUDA path on a lent GPU, as one run (the lease is minutes: BENCHMARKS 'On a GPU').
# Runs with the machine's own python3 (torch with CUDA), the repository on PYTHONPATH; writes logs to $OUT
# (or ./device_out). Order: speed first, alone on the GPU; then the two-hour memory run in the background while
# the CUDA tests and a short end-to-end bench share the GPU (their timings are not reported).
#   bash scripts/device_check.sh [LONG_RUN_SECONDS]
set -u
OUT=${OUT:-device_out}
mkdir -p "$OUT"
LONG_S=${1:-360}
DEV=${DEV:-cuda}  # cpu: a dry run of this script on a machine without a GPU
# .devsite: pure-Python packages the machine lacks (trackeval, for the bench's HOTA), copied from our venv
export PYTHONPATH=$PWD:$PWD/.devsite PYTHONUNBUFFERED=1
SM="python3 -m spatial_memory_ros.cli"
t0=$(date +%s)
stamp() { echo "== $(($(date +%s) - t0)) s: $*"; }

{
  stamp "machine"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  python3 -c "import torch, numpy, cv2; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'numpy', numpy.__version__, 'cv2', cv2.__version__)"
  lscpu | grep -m1 "Model name"; nproc
  git log -1 --format="commit %h %s" 2>/dev/null || true
} 2>&1 | tee "$OUT/machine.txt"

# 1. frames/s and CUDA memory at the node's 640 x 480, as the node runs the model (floor memory on)
{
  for cams in 1 4 16; do
    n=$((1200 / (cams + 3)))  # 300, 171, 63 steps: a few seconds each
    stamp "bench-model cameras=$cams"
    timeout 90 $SM bench-model --device "$DEV" --width 640 --height 480 --floor-memory --cameras "$cams" \
      --frames "$n" --steps "$n" --json "$OUT/speed_$cams.json" 2>&1 | grep -v "^memory"
  done
  stamp "bench-model still camera"
  timeout 60 $SM bench-model --device "$DEV" --width 640 --height 480 --floor-memory --still-camera \
    --frames 300 --steps 300 --json "$OUT/speed_still.json" 2>&1 | grep -v "^memory"
  # the node's way: each camera on its own thread, one shared network (what batch_cameras auto picks on CUDA)
  # against a network per camera
  for cams in 4 16; do
    for sharing in shared separate; do
      stamp "bench-model camera threads=$cams $sharing"
      timeout 90 $SM bench-model --device "$DEV" --width 640 --height 480 --floor-memory --cameras "$cams" \
        --camera-threads "$sharing" --frames $((240 / cams + 20)) --json "$OUT/threads_${cams}_$sharing.json"
    done
  done
} > "$OUT/speed.log" 2>&1

# 2. two hours of steps (72,000) on one camera, 320 x 240: the memory bound on the GPU
stamp "long run starts" >> "$OUT/speed.log"
timeout "$LONG_S" $SM bench-model --device "$DEV" --frames 100 --steps 72000 --json "$OUT/long.json" \
  > "$OUT/long.log" 2>&1 &
long=$!

# 3. the CUDA tests (and the camera-batch tests on CPU there), then the pipeline end to end on CUDA (device auto)
#    for comparison with the CPU's figures
{
  stamp "CUDA tests"
  timeout 240 python3 -m pytest -q -p no:cacheprovider test/test_model_cuda.py test/test_model.py \
    test/test_camera_batch.py -k "cuda or test_model_cuda or camera_threads" 2>&1 | tail -15
  for run in "warehouse patrol"; do
    set -- $run
    stamp "bench $1 $2 (2 min, seed 100, learned)"
    timeout 150 $SM bench --preset "$1" --camera "$2" --minutes 2 --seed 100 --methods learned --jobs 1 \
      --out "/tmp/bench_$1_$2" 2>&1 | grep -v "it/s\]" | tail -25
  done
} > "$OUT/tests.log" 2>&1

wait $long; echo "long run exit $?" >> "$OUT/long.log"
stamp "done" | tee -a "$OUT/speed.log"
