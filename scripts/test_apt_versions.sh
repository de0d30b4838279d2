#!/usr/bin/env bash
# The test suite against the versions README's ROS install gives, not requirements.txt's pins: numpy 1.26
# (apt's ROS message packages are built against it), OpenCV 4.11 (README's `<4.12`) and torch 2.1.2 (an apt
# python3-torch's age). Not part of CI: a second venv and a second run of the suite (~15-25 min on 2 cores).
#
#   bash scripts/test_apt_versions.sh [VENV] [pytest args...]    # VENV default /tmp/spatial_memory_apt_venv
#
# It tests the committed tree (git archive HEAD), in a copy whose pins are rewritten; the venv is kept for the
# next run (setup_venv.sh skips what is done).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=$(realpath -m "${1:-/tmp/spatial_memory_apt_venv}")
[ $# -gt 0 ] && shift
WORK=$(mktemp -d)
chmod 755 "$WORK"  # mktemp's 0700 kept test_store's other user out of the package itself
trap 'rm -rf "$WORK"' EXIT
git -C "$ROOT" archive HEAD | tar x -C "$WORK"
cd "$WORK"
sed -i -e 's/^numpy==.*/numpy==1.26.4/' -e 's/^opencv-python-headless==.*/opencv-python-headless==4.11.0.86/' \
  -e 's/^pandas==.*/pandas==3.0.6/' requirements.txt  # pandas 3.1 wants numpy 2
sed -i 's/torch==2\.13\.0/torch==2.1.2/g' scripts/setup_venv.sh
grep -q '^numpy==1\.26\.4$' requirements.txt && grep -q 'torch==2\.1\.2' scripts/setup_venv.sh \
  || { echo "error: the pins to rewrite were not found; update this script" >&2; exit 1; }
# mypy included: the code type-checks against numpy 1's stubs too (core.turning.hw / wh give shapes as pairs)
SPATIAL_MEMORY_VENV=$VENV bash scripts/test.sh -p no:cacheprovider "$@"
