"""Draw what the floor memory adds to the learned change mask: frames of a bench scene where it marks a scene
change (an item gone or arrived since the camera last passed), each as camera | truth | network | network +
floor memory, truth in green, masks in red.

    .venv/bin/python scripts/draw_floor_changes.py --seed 1004 --out docs/bench/floor_memory_changes.jpg

Defaults to a training seed of the warehouse patrol (1004): a picture, not a score.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
from tqdm import tqdm

from spatial_memory_ros.bench.cli import add_scene_arguments
from spatial_memory_ros.bench.scene import make_bench_scene
from spatial_memory_ros.bench.stream import sim_frames
from spatial_memory_ros.core.floor_change_config import FloorChangeConfig
from spatial_memory_ros.model.runtime import LearnedChangeDetector


def _tint(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], label: str) -> np.ndarray:
    out = image.copy()
    on = mask > 0
    out[on] = (0.45 * out[on] + 0.55 * np.array(colour)).astype(np.uint8)
    cv2.putText(out, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scene_arguments(p, seed=1004)
    p.add_argument("--frames", type=int, default=4, help="rows in the picture")
    p.add_argument("--min-px", type=int, default=400, help="scene-change pixels the floor memory must add")
    p.add_argument("--out", default="floor_memory_changes.png")
    args = p.parse_args()
    scene = make_bench_scene(args.preset, args.camera, args.minutes, args.seed)
    network = LearnedChangeDetector(intrinsics=scene.intrinsics, device="cpu")
    both = LearnedChangeDetector(intrinsics=scene.intrinsics, device="cpu", floor_memory=FloorChangeConfig())
    rows: list[np.ndarray] = []
    last = -1e9
    for f in tqdm(sim_frames(scene), total=len(scene), unit="frame", mininterval=2.0):
        plain = network.update(f.image, f.T_map_cam, f.intrinsics, f.stamp).mask
        full = both.update(f.image, f.T_map_cam, f.intrinsics, f.stamp).mask
        added = (full > 0) & (plain == 0) & (f.truth.change_mask > 0) & (f.truth.instance_mask == 0)
        if added.sum() >= args.min_px and f.stamp - last > 20.0:  # one row per place, not a run of frames
            last = f.stamp
            img = f.image
            rows.append(np.hstack([
                _tint(img, np.zeros_like(plain), (0, 0, 0), f"t={f.stamp:.0f}s"),
                _tint(img, f.truth.change_mask, (0, 200, 0), "truth"),
                _tint(img, plain, (0, 0, 230), "network"),
                _tint(img, full, (0, 0, 230), "+ floor memory"),
            ]))
            if len(rows) == args.frames:
                break
    if not rows:
        raise SystemExit("no frame where the floor memory added a scene change; try more --minutes")
    cv2.imwrite(args.out, np.vstack(rows))
    print(f"wrote {args.out} ({len(rows)} frames)")


if __name__ == "__main__":
    main()
