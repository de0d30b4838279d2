#!/usr/bin/env bash
# The shipped model's recipe, start to end: bash scripts/train_shipped.sh [OUT_DIR [SEED]]
# (35-85 min on the 2-core CPU, by the box: run 1 took 23 and 40 min on two boxes, run 2 5 to 44; the checkpoint's
# meta records both runs' minutes)
# Run 1: the default training command (2,400 steps), seed SEED. Run 2: the still-camera head on top of it, every
# other weight frozen (its photo streams need Debian's opencv-doc: scripts/setup_venv.sh --data). Both runs are
# reproducible from their seed on one box (the learning rate follows the steps) and resume where they stopped: run this
# again after a stop and it goes on. The result is OUT_DIR/still.pt; copying it to
# spatial_memory_ros/data/spatial_memory_model.pt ships it. SEED (default 3000) draws another network of the
# same recipe; judge a draw by the validation rule (BENCHMARKS, "A second draw of the fixed predictive loss"),
# never by its loss: at 1,200 steps four draws of six failed a validation run, at 2,400 one of four (BENCHMARKS,
# "Twice the steps", "The remake is another network"). The weights are the same on one box, not across boxes: seed
# 3000 passed every validation run on one box and marked the depot's floor on another.
# The shipped file is not this script's defaults: it was made at f3e4c02 (1,200 steps, seed 1000; README).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-out}"
seed="${2:-3000}"
bin="${SPATIAL_MEMORY_VENV:-.venv}/bin/spatial-memory"
mkdir -p "$out"

run() {  # run OUT ARGS...: train, or resume a run that stopped; skip a run that is done
  local model="$1"; shift
  if [[ -f "$model.state" ]]; then
    if "${SPATIAL_MEMORY_VENV:-.venv}/bin/python" - "$model" <<'PY'
import sys
from spatial_memory_ros.model.checkpoint import checkpoint_meta
sys.exit(0 if checkpoint_meta(sys.argv[1]).get("final") else 1)
PY
    then
      echo "$model: done already"
      return
    fi
    "$bin" train --out "$model" "$@" --resume
  else
    "$bin" train --out "$model" "$@"
  fi
}

run "$out/spatial_memory_model.pt" --seed "$seed"
run "$out/still.pt" --seed "$seed" --init "$out/spatial_memory_model.pt" --background --background-skips-changes \
  --still-head 16 --freeze-base --recolour 0.5 --recolour-patrol 0 --photos 0.3 --edge-weight 4 --steps 2000 \
  --threads 2
echo "shipped model candidate: $out/still.pt"
