"""Where a learned model's false change pixels lie on a bench scene: beside a change (a halo) or away from any.

    .venv/bin/python scripts/change_halo.py MODEL warehouse static 1004 2 [RING_PX]

Runs the learned detector as the bench builds it (floor memory, still-camera edges with RING_PX, default
3) over MINUTES of the bench scene and counts its false pixels within 6 px of a changed pixel or an agent
("near") and farther ("far"). BENCHMARKS "A fine-tune anchored to the shipped model". Use training seeds.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from spatial_memory_ros.bench.scene import make_bench_scene
from spatial_memory_ros.core.config import STILL_HEAD_SCALES
from spatial_memory_ros.core.floor_change_config import FloorChangeConfig
from spatial_memory_ros.core.still_edges import StillEdgesConfig
from spatial_memory_ros.model.runtime import LearnedChangeDetector

_NEAR = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (13, 13))  # 6 px around a changed pixel or an agent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("preset", choices=["warehouse", "home"])
    p.add_argument("camera", choices=["static", "patrol"])
    p.add_argument("seed", type=int)
    p.add_argument("minutes", type=float)
    p.add_argument("ring_px", type=float, nargs="?", default=StillEdgesConfig().ring_px)
    p.add_argument("--still-head-scale", type=int, choices=STILL_HEAD_SCALES, default=1,
                   help="change.still_head_scale (default 1)")
    args = p.parse_args()
    scene = make_bench_scene(args.preset, args.camera, args.minutes, args.seed)
    det = LearnedChangeDetector(args.model, device="cpu", floor_memory=FloorChangeConfig(),
                                still_edges=StillEdgesConfig(ring_px=args.ring_px), still_scale=args.still_head_scale)
    tp = fn = near = far = 0
    for f in scene.frames():
        pred = det.update(f.image, f.T_map_cam, intrinsics=f.intrinsics, stamp=f.stamp).mask > 0
        truth = f.truth.change_mask > 0
        beside = cv2.dilate((truth | (f.truth.instance_mask > 0)).astype(np.uint8), _NEAR) > 0
        false = pred & ~truth
        tp += int((pred & truth).sum())
        fn += int((truth & ~pred).sum())
        near += int((false & beside).sum())
        far += int((false & ~beside).sum())
    print(f"{args.model} ring {args.ring_px} px: true {tp}, missed {fn}, false near {near}, false far {far}; "
          f"precision {tp / max(tp + near + far, 1):.4f}, IoU of changed {tp / max(tp + near + far + fn, 1):.4f}")


if __name__ == "__main__":
    main()
