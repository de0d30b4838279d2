"""What the learned network keys on: its agent recall on a bench scene with the agents or the palette repainted.

Each model runs over the same frames four times (the recurrent memory on; no floor memory, no still-camera
edges, so only the network is measured): as rendered, agents painted mid grey (their shading kept),
agents covered by a striped texture, and the whole frame's colour channels swapped (BGR -> RGB). An agent
moves the same way in all four, so a network that finds what changes finds it in each; one that learned
the simulator's agent colours finds it only as rendered.

    .venv/bin/python scripts/appearance_probe.py --seed 1005 --minutes 1 \
        --model spatial_memory_ros/data/spatial_memory_model.pt --model out/recolour.pt

A training seed by default: a diagnosis, not a score. A held-out seed needs --allow-held-out.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
from tqdm import tqdm

from spatial_memory_ros.bench.cli import add_scene_arguments
from spatial_memory_ros.bench.scene import make_bench_scene
from spatial_memory_ros.bench.stream import sim_frames
from spatial_memory_ros.model.config import TRAIN_SEED_MIN
from spatial_memory_ros.model.runtime import DEFAULT_CHECKPOINT, LearnedChangeDetector

Repaint = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (image, agent mask) -> image


def _grey(image: np.ndarray, agents: np.ndarray) -> np.ndarray:
    if not agents.any():
        return image
    out = image.copy()
    shade = image[agents].mean(axis=1, keepdims=True)  # each pixel's own brightness, as a grey
    out[agents] = np.clip(128.0 * shade / max(float(shade.mean()), 1.0), 0, 255).astype(np.uint8)
    return out


def _stripes(image: np.ndarray, agents: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    band = ((xx + yy) // 4) % 2 == 0  # diagonal stripes 4 px wide, fixed in the image
    texture = np.where(band[..., None], np.array([40, 160, 220], np.uint8), np.array([200, 60, 90], np.uint8))
    out = image.copy()
    out[agents] = texture[agents]
    return out


REPAINTS: dict[str, Repaint] = {
    "as rendered": lambda image, agents: image,
    "agents grey": _grey,
    "agents striped": _stripes,
    "channels swapped": lambda image, agents: np.ascontiguousarray(image[:, :, ::-1]),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scene_arguments(p, seed=1005)
    p.add_argument("--model", action="append", default=None, help="model file (repeatable; default the shipped one)")
    p.add_argument("--allow-held-out", action="store_true", help="allow a benchmark seed (diagnosis only)")
    args = p.parse_args()
    if args.seed < TRAIN_SEED_MIN and not args.allow_held_out:
        raise SystemExit(f"seed {args.seed} is not a training seed (>= {TRAIN_SEED_MIN}); pass --allow-held-out")
    models = args.model or [str(DEFAULT_CHECKPOINT)]
    scene = make_bench_scene(args.preset, args.camera, args.minutes, args.seed)
    detectors = {(m, r): LearnedChangeDetector(m, intrinsics=scene.intrinsics, device="cpu")
                 for m in models for r in REPAINTS}
    found = dict.fromkeys(detectors, 0)
    false = dict.fromkeys(detectors, 0)
    agent_px = pixels = 0
    for f in tqdm(sim_frames(scene), total=len(scene), unit="frame", mininterval=2.0):
        agents = f.truth.instance_mask > 0
        truth = f.truth.change_mask > 0
        agent_px += int(agents.sum())
        pixels += agents.size
        for name, repaint in REPAINTS.items():
            image = repaint(f.image, agents)
            for m in models:
                mask = detectors[(m, name)].update(image, f.T_map_cam, f.intrinsics, f.stamp).mask > 0
                found[(m, name)] += int((mask & agents).sum())
                false[(m, name)] += int((mask & ~truth).sum())
    print(f"{args.preset} {args.camera} seed {args.seed}, {len(scene)} frames, "
          f"agents {agent_px / pixels:.2%} of pixels")
    for m in models:
        print(m)
        for name in REPAINTS:
            print(f"  {name:<17} agent recall {found[(m, name)] / max(agent_px, 1):.3f}   "
                  f"false px {false[(m, name)] / pixels:.4%} of all")


if __name__ == "__main__":
    main()
