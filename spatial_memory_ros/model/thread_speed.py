"""`spatial-memory bench-model --camera-threads shared|separate`: cameras on their own threads, as the node runs them.

`bench-model --cameras N` times update_batch(), N frames handed over together: the best a shared network can do.
The node does not batch that way. Each camera's frames come on that camera's thread, and either the threads share
one network that batches the frames that meet (`shared`: model.camera_batch.SharedCameras, change.batch_cameras
always, what `auto` picks on CUDA) or each camera has a network of its own (`separate`: batch_cameras never, what
`auto` picks on a CPU). This times both ways over the same frames, each thread stepping as fast as it can, so
the figure is what the node can sustain, and frames_per_step says how full the shared steps were.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ..core.floor_change_config import FloorChangeConfig
from ..sim import make_scene
from .camera_batch import SharedCameras
from .checkpoint import DEFAULT_CHECKPOINT, resolve_device
from .config import ModelConfig
from .model import SpatialMemoryModel
from .runtime import LearnedChangeDetector

Sharing = Literal["shared", "separate"]


@dataclass(frozen=True)
class ThreadSpeedResult:
    device: str
    sharing: Sharing
    cameras: int
    image_size: tuple[int, int]
    frames_per_camera: int  # timed frames each camera's thread stepped
    fps: float  # frames per second of all cameras together
    slowest_camera_fps: float  # the camera that got fewest frames through per second
    frames_per_step: float  # shared: frames a network step carried on average (1.0 for separate)
    latency_ms_p50: float  # one update(), as its camera's thread saw it (waiting for the shared step included)
    latency_ms_p95: float
    cuda_mb_peak: float  # peak CUDA memory allocated (0 on CPU)


def measure_camera_threads(
    checkpoint: Path | None = None,
    *,
    sharing: Sharing,
    device: str = "cpu",
    size: tuple[int, int] = (640, 480),
    cameras: int = 2,
    timed_frames: int = 100,
    floor_memory: bool = True,
) -> ThreadSpeedResult:
    """Each of `cameras` threads warms up, then steps `timed_frames` frames through its camera's backend (see
    the module docstring); the clock runs from when all threads start their timed frames until the last ends."""
    if sharing not in ("shared", "separate"):
        raise ValueError(f"sharing must be shared or separate, got {sharing!r}")
    dev = resolve_device(device)
    path = checkpoint if checkpoint is not None else DEFAULT_CHECKPOINT
    floor = FloorChangeConfig() if floor_memory else None

    def detector(n: int) -> LearnedChangeDetector:
        model = path if path.is_file() else SpatialMemoryModel.from_config(ModelConfig())
        return LearnedChangeDetector(model, device=device, cameras=n, floor_memory=floor)

    scene = make_scene("warehouse", seed=0, width=size[0], height=size[1])  # a test seed, never the bench's
    frames = [(f.image, f.T_map_cam) for f in scene.frames(limit=50)]
    shared: SharedCameras | None = None
    if sharing == "shared":
        shared = SharedCameras(detector(cameras))
        shared.detector.intrinsics = scene.intrinsics
        backends = list(shared.views())
    else:
        separate = [detector(1) for _ in range(cameras)]
        for d in separate:
            d.intrinsics = scene.intrinsics
        backends = separate  # type: ignore[assignment]  # both have update(image, T, intrinsics, stamp)

    warmup = 10
    mark: dict[str, float] = {}

    def go() -> None:  # once all threads are warm, before any timed frame: the clock and the step counts
        mark["t0"] = time.perf_counter()
        mark["steps"], mark["frames"] = shared.counts if shared is not None else (0, 0)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()

    start = threading.Barrier(cameras + 1, action=go)
    done = threading.Barrier(cameras + 1)
    latencies: list[list[float]] = [[] for _ in range(cameras)]
    ends = [0.0] * cameras
    errors: list[BaseException] = []

    def run(c: int) -> None:
        try:
            backend = backends[c]
            for i in range(warmup):  # camera c sees frame i + 7c: the cameras' views differ; 10 frames/s
                image, T = frames[(i + 7 * c) % len(frames)]
                backend.update(image, T, None, 0.1 * i)
            start.wait()
            for i in range(warmup, warmup + timed_frames):
                image, T = frames[(i + 7 * c) % len(frames)]
                t = time.perf_counter()
                backend.update(image, T, None, 0.1 * i)
                latencies[c].append(time.perf_counter() - t)
            ends[c] = time.perf_counter()
        except BaseException as e:  # noqa: BLE001 - raised below, on the caller's thread
            errors.append(e)
            start.abort()
        finally:
            with contextlib.suppress(threading.BrokenBarrierError):
                done.wait()

    threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in range(cameras)]
    for t in threads:
        t.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        start.wait()
    done.wait()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    t0 = mark["t0"]
    per_camera = [timed_frames / (end - t0) for end in ends]
    all_ms = np.array([x for lat in latencies for x in lat]) * 1000.0
    if shared is not None:
        steps_now, frames_now = shared.counts
        steps, carried = steps_now - mark["steps"], frames_now - mark["frames"]
        per_step = carried / steps if steps else 0.0
    else:
        per_step = 1.0
    return ThreadSpeedResult(
        device=str(dev), sharing=sharing, cameras=cameras, image_size=size, frames_per_camera=timed_frames,
        fps=round(cameras * timed_frames / (max(ends) - t0), 1), slowest_camera_fps=round(min(per_camera), 1),
        frames_per_step=round(per_step, 2), latency_ms_p50=round(float(np.percentile(all_ms, 50)), 1),
        latency_ms_p95=round(float(np.percentile(all_ms, 95)), 1),
        cuda_mb_peak=round(torch.cuda.max_memory_allocated() / 2**20, 1) if dev.type == "cuda" else 0.0,
    )
