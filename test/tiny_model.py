"""A tiny SpatialMemoryModel for tests: its config (32x24 input, 4x3 patches) and seeded, untrained weights; and a
tiny training run of the default model."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from spatial_memory_ros.core.types import CameraIntrinsics
from spatial_memory_ros.model.config import ModelConfig, TrainConfig
from spatial_memory_ros.model.model import SpatialMemoryModel

TINY = ModelConfig(
    image_width=32, image_height=24, patch_size=8, dim=16, depth=1, heads=2, memory_slots=4, read_tokens=2,
    embed_dim=8, mask_channels=4, pose_frequencies=2, predict_k=2,
)
INTR = CameraIntrinsics(100.0, 100.0, 80.0, 60.0, 160, 120)  # for the 160 x 120 frames the tests give it


def tiny_model(seed: int = 0, config: ModelConfig = TINY) -> SpatialMemoryModel:
    """config's model (TINY by default) in eval mode, its weights drawn from torch seed `seed`."""
    torch.manual_seed(seed)
    return SpatialMemoryModel.from_config(config).eval()


def tiny_train(out: Path, *, stop_after: int | None = None, resume: bool = False,
               seen: dict[str, Any] | None = None, **changes: object) -> None:
    """A 6-step run on the default model (2 lanes, 2-frame chunks of 6-frame streams each walked twice; warm-up 2,
    so steps 0 and 1 take the same learning rate whatever `steps` is), Ctrl-C'd before step `stop_after` (counted
    from where it starts) if given. `seen`, if given, gets the step the run starts at (the progress hook's
    `initial`) and the steps it takes."""
    from spatial_memory_ros.model.train import train

    settings: dict[str, Any] = dict(steps=6, batch=2, clip=2, stream_frames=6, reuse=2, warmup=2, workers=0,
                                    threads=1, checkpoint_every=100, device="cpu", memory_dropout=0.3,
                                    pose_dropout=0.3)
    tc = dataclasses.replace(TrainConfig(), **{**settings, **changes})

    def progress(steps: Any, total: int, initial: int) -> Any:
        taken: list[int] = []
        if seen is not None:
            seen.update(initial=initial, taken=taken)
        for n, step in enumerate(steps):
            if n == stop_after:
                raise KeyboardInterrupt
            taken.append(step)
            yield step

    train(tc, out, resume=resume, progress=progress)
