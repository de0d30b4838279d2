"""Can the predictive (InfoNCE) loss be lowered without looking at the picture? (BENCHMARKS.md, "The predictive loss
has a shortcut")

Training asks PredictHead to turn the memory after frame t, with the camera at t + k, into the target of frame t + k.
That target was the mean of forward()'s output tokens (model/heads.py), which carry frame t + k's pose features and
the memory read there, so the positive could be told from the negatives by pose and memory alone. This probe trains a
tiny model on the predictive loss alone over chunks in which every frame of every lane is ONE picture, so that
nothing visual tells the frames apart: a loss that falls far below chance (ln of the candidates) found a shortcut.
Run once with poses (random per frame) and once without (has_pose False): then only the memory read is left.

    .venv/bin/python scripts/cpc_shortcut_probe.py [--steps 200]

Since 5b91196 the target is the frame alone (SpatialMemoryModel.frame_tokens: the encoder without pose, with the
initial memory, no gradient), and both runs stay at chance (test/test_predictive_loss.py holds it). Before, the
loss fell from 2.800 to 0.44 with poses and to ln 4 = 1.39 without (the memory read told the 4 time steps apart).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

from spatial_memory_ros.model.config import ModelConfig
from spatial_memory_ros.model.losses import LossWeights
from spatial_memory_ros.model.model import SpatialMemoryModel
from spatial_memory_ros.model.train import chunk_loss

# test/tiny_model.py's model: small enough for a CPU to train a few hundred steps in a minute
TINY = ModelConfig(image_width=32, image_height=24, patch_size=8, dim=16, depth=1, heads=2, memory_slots=4,
                   read_tokens=2, embed_dim=8, mask_channels=4, pose_frequencies=2, predict_k=2)
T, B = 6, 4  # frames per chunk, lanes
ONLY_CPC = LossWeights(mask=0.0, dice=0.0, patch=0.0, consistency=0.0, reid=0.0, cpc=1.0)


def _pose(x: float, y: float, yaw: float) -> np.ndarray:
    """A camera 1.2 m up, tilted 0.4 rad down, at (x, y) turned by yaw."""
    optical = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    c, s = math.cos(yaw), math.sin(yaw)
    turn = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    tilt = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(0.4), -math.sin(0.4)], [0.0, math.sin(0.4), math.cos(0.4)]])
    T_map_cam = np.eye(4)
    T_map_cam[:3, :3] = turn @ optical @ tilt
    T_map_cam[:3, 3] = (x, y, 1.2)
    return T_map_cam


def probe(steps: int, with_pose: bool, seed: int = 0) -> list[tuple[int, float]]:
    """(step, predictive loss) every 50 steps of training a tiny model on one picture shown in every frame."""
    rng = np.random.default_rng(seed)
    h, w = TINY.image_height, TINY.image_width
    picture = rng.integers(0, 256, (1, 1, 3, h, w), dtype=np.uint8)
    images = torch.from_numpy(np.broadcast_to(picture, (T, B, 3, h, w)).copy())
    torch.manual_seed(seed)
    model = SpatialMemoryModel.from_config(TINY).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    out = []
    for step in range(steps + 1):
        poses = np.stack([[_pose(*rng.uniform(-3, 3, 3)) for _ in range(B)] for _ in range(T)])
        batch = {"images": images, "masks": torch.zeros(T, B, 1, h, w),
                 "poses": torch.from_numpy(poses.astype(np.float32)),
                 "K": torch.tensor([[[40.0, 0.0, w / 2], [0.0, 40.0, h / 2], [0.0, 0.0, 1.0]]] * B),
                 "has_pose": torch.full((B,), with_pose),
                 "labels": torch.zeros(T, B, *TINY.grid, dtype=torch.long)}
        loss, logs, _ = chunk_loss(model, batch, model.initial_state(B), ONLY_CPC)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 50 == 0:
            out.append((step, float(logs["cpc"])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    chance = math.log((T - TINY.predict_k) * B)
    print(f"chance: ln({(T - TINY.predict_k) * B}) = {chance:.3f}; one picture in every frame")
    for with_pose in (True, False):
        losses = ", ".join(f"{step}: {loss:.3f}" for step, loss in probe(args.steps, with_pose))
        print(f"{'with poses   ' if with_pose else 'without poses'}  {losses}", flush=True)


if __name__ == "__main__":
    main()
