"""A tiny SpatialMemoryModel for tests: its config (32x24 input, 4x3 patches) and seeded, untrained weights."""

from __future__ import annotations

import torch

from spatial_memory_ros.core.types import CameraIntrinsics
from spatial_memory_ros.model.config import ModelConfig
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
