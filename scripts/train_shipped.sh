#!/usr/bin/env bash
# The shipped model, start to end: bash scripts/train_shipped.sh [OUT_DIR [SEED]]   (about 40 min on the 2-core CPU: 14 + 24 min, the checkpoint's meta)
# Run 1: the default training command, seed SEED. Run 2: the still-camera head on top of it, every other weight
# frozen (its photo streams need Debian's opencv-doc: scripts/setup_venv.sh --data). Both runs are
# reproducible from their seed (the learning rate follows the steps) and resume where they stopped: run this
# again after a stop and it goes on. The result is OUT_DIR/still.pt; copying it to
# spatial_memory_ros/data/spatial_memory_model.pt ships it. SEED (default 1000) draws another network of the same
# recipe, which may fail where the shipped one did not (four of six so far failed a validation run: BENCHMARKS,
# "A second draw of the fixed predictive loss"); judge a draw by the validation rule there.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-out}"
seed="${2:-1000}"
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
