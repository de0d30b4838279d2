"""The machine a measurement or a training run ran on, as benchmarks and checkpoints record it (no torch, no ROS)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name(unknown: str = "unknown") -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what platform reports, else `unknown`."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or unknown
