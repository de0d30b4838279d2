#!/usr/bin/env bash
# The README's test command: set up (idempotent), then run every test. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_venv.sh --data
# Own DDS domain range and loopback-only discovery: tests never talk to other ROS graphs on the machine.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
exec "${SPATIAL_MEMORY_VENV:-.venv}/bin/python" -m pytest "$@"
