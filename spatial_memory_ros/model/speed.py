"""`spatial-memory bench-model`: the learned change step's frames/s and its memory over a long run.

fps: LearnedChangeDetector.update() on camera-sized frames (resize, model step, mask at full size, boxes),
after a warm-up, frames cycled from a test-seed scene. With cameras > 1 each step is one update_batch() of
that many frames (each camera a different point of the scene), and fps counts frames, not steps.
Memory: `long_steps` more updates (72,000 = two hours at 10 Hz) with the process's RSS sampled every
`sample_every` steps; the model's state tensor is checked to keep its size. Numbers are for this process
alone (torch itself is most of the RSS).
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..core.floor_change_config import FloorChangeConfig
from ..sim import make_scene
from .checkpoint import DEFAULT_CHECKPOINT, fp16_on_cuda, resolve_device
from .config import ModelConfig
from .model import SpatialMemoryModel
from .runtime import LearnedChangeDetector


@dataclass(frozen=True)
class SpeedResult:
    device: str
    threads: int
    cameras: int  # frames per model step (update_batch); 1 = update()
    image_size: tuple[int, int]  # (W, H) of the camera frames fed to update()
    model_size: tuple[int, int]  # (W, H) the model runs at
    parameters: int
    checkpoint: str  # path, or "untrained" when none was found
    fps: float  # frames per second through the whole step (all cameras together)
    model_fps: float  # frames per second through the network's forward alone (no resize, mask upsampling or boxes)
    state_bytes: int  # the memory's size (all cameras; with the floor memory, its maps too): it never changes
    long_steps: int
    rss_mb_start: float  # process RSS after the warm-up, MiB
    rss_mb_end: float
    rss_mb_peak: float  # the bound: peak RSS over the whole run (ru_maxrss)
    rss_mb_growth_per_hour: float  # (end - start) per simulated hour at 10 Hz, from the samples' fit
    cuda_mb_peak: float  # peak CUDA memory allocated (0 on CPU)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def measure(
    checkpoint: Path | None = None,
    *,
    device: str = "cpu",
    size: tuple[int, int] = (320, 240),
    timed_frames: int = 600,
    long_steps: int = 72000,
    threads: int = 1,
    cameras: int = 1,
    sample_every: int = 1000,
    progress: bool = True,
    floor_memory: bool = False,
    still_camera: bool = False,
    still_scale: int = 1,
) -> SpeedResult:
    """Time update() and watch RSS over long_steps; see the module docstring. floor_memory: with the floor
    memory (FloorChangeConfig defaults), as the node runs the learned backend; its maps count in state_bytes.
    still_camera: frames of the demo scene's still camera, not the warehouse patrol, so that a model with the
    background input (ModelConfig.background) runs its background and still head, which a moving camera skips.
    still_scale: the runtime's (change.still_head_scale): the still head's input that many times finer."""
    torch.set_num_threads(threads)
    dev = resolve_device(device)
    path = checkpoint if checkpoint is not None else DEFAULT_CHECKPOINT
    # timing does not depend on the weights: without a checkpoint, an untrained model of the default size
    model = path if path.is_file() else SpatialMemoryModel.from_config(ModelConfig())
    name = str(path) if path.is_file() else "untrained"
    # threads passed on: the detector sets torch's thread count itself (1 by default), which overrode the one
    # above, so `--threads 2` timed one thread and reported two
    det = LearnedChangeDetector(model, device=device, cameras=cameras, threads=threads,
                                floor_memory=FloorChangeConfig() if floor_memory else None, still_scale=still_scale)
    preset = "demo" if still_camera else "warehouse"
    scene = make_scene(preset, seed=0, width=size[0], height=size[1])  # a test seed, never the bench's
    frames = [(f.image, f.T_map_cam) for f in scene.frames(limit=50)]
    det.intrinsics = scene.intrinsics

    def step(i: int) -> None:  # camera c sees frame i + 7c: the cameras' views differ; 10 frames/s
        batch = [frames[(i + 7 * c) % len(frames)] for c in range(cameras)]
        det.update_batch([image for image, _ in batch], [T for _, T in batch], stamps=[0.1 * i] * cameras)

    for i in range(20):
        step(i)
    start = time.perf_counter()
    for i in range(timed_frames):
        step(i)
    fps = timed_frames * cameras / (time.perf_counter() - start)
    model_fps = _model_fps(det, timed_frames, dev) * cameras

    shape = det.state.shape
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    samples: list[tuple[int, float]] = [(0, _rss_mb())]
    steps = tqdm(range(1, long_steps + 1), desc="memory", mininterval=5.0, disable=not progress)
    for i in steps:
        step(i)
        if i % sample_every == 0:
            samples.append((i, _rss_mb()))
            # shown as it goes: a run cut short (a time limit) still says how far it got and what it held
            steps.set_postfix(rss_mb=round(samples[-1][1], 1), refresh=False,
                              cuda_mb=round(torch.cuda.memory_allocated() / 2**20, 1) if dev.type == "cuda" else 0)
            if det.state.shape != shape:
                raise AssertionError(f"the state changed size: {tuple(shape)} -> {tuple(det.state.shape)}")
    steps_arr = np.array([s for s, _ in samples], dtype=np.float64)
    rss = np.array([r for _, r in samples])
    slope = float(np.polyfit(steps_arr, rss, 1)[0]) if len(samples) > 2 else 0.0  # MiB per step
    return SpeedResult(
        device=str(dev), threads=threads, cameras=cameras, image_size=size,
        model_size=(det.config.image_width, det.config.image_height),
        parameters=det.model.num_parameters(), checkpoint=name, fps=round(fps, 1), model_fps=round(model_fps, 1),
        state_bytes=det.state.numel() * det.state.element_size() + det.floor_memory_bytes, long_steps=long_steps,
        rss_mb_start=round(float(rss[0]), 1), rss_mb_end=round(float(rss[-1]), 1),
        rss_mb_peak=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        rss_mb_growth_per_hour=round(slope * 36000, 2),
        cuda_mb_peak=round(torch.cuda.max_memory_allocated() / 2**20, 1) if dev.type == "cuda" else 0.0,
    )


@torch.inference_mode()
def _model_fps(det: LearnedChangeDetector, n: int, dev: torch.device) -> float:
    """Model steps per second (each of det.cameras frames)."""
    cfg, C = det.config, det.cameras
    image = torch.randint(0, 256, (C, 3, cfg.image_height, cfg.image_width), dtype=torch.uint8, device=dev)
    K = torch.tensor([[[100.0, 0, 64], [0, 100, 48], [0, 0, 1]]], device=dev).expand(C, 3, 3)
    T = torch.eye(4, device=dev)[None].expand(C, 4, 4)
    flag = torch.ones(C, dtype=torch.bool, device=dev)
    state = det.model.initial_state(C, dev)
    # a model with the background input gets one (its still-camera cost); the patrol's would be none
    extra = {"background": image, "background_valid": flag} if cfg.background else {}
    if det.still_scale > 1:  # (only with a still head and its background) it reads a finer frame and background
        fine = torch.nn.functional.interpolate(image.float(), scale_factor=det.still_scale).to(torch.uint8)
        extra |= {"still_image": fine, "still_background": fine}
    with fp16_on_cuda(dev):
        for _ in range(10):
            state = det.model(image, K, T, flag, state, **extra).state
        if dev.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(n):
            state = det.model(image, K, T, flag, state, **extra).state
        if dev.type == "cuda":
            torch.cuda.synchronize()
    return n / (time.perf_counter() - start)
