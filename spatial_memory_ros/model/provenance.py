"""Where a training run ran: the machine facts a checkpoint's meta keeps, one entry per session of the run.

Training is deterministic on one box but not across boxes (BENCHMARKS "The remake is another network": the same
command, torch build and thread count on another 2-core AMD EPYC made another network), so a file records the
facts that can make its arithmetic differ: the versions, the CPU and the kernels torch picked for it."""

from __future__ import annotations

import os
import platform

import numpy as np
import torch

from ..core.machine import cpu_name


def machine(device: torch.device, threads: int) -> dict[str, str | int]:
    """This process's machine as a training session saw it (strings and ints only: the meta is JSON-like)."""
    info: dict[str, str | int] = {
        "torch": str(torch.__version__),  # a TorchVersion, which a weights_only load refuses
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        # the kernels torch dispatches to (e.g. AVX2, AVX512): a box with other ones sums in another order
        "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
        "cpu_count": os.cpu_count() or 0,
        "threads": threads,
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    try:  # OpenCV renders the training frames
        import cv2

        info["opencv"] = str(cv2.__version__)
    except ImportError:
        pass
    return info
