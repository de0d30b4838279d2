"""A still camera whose pose is a little off: how the change mask takes it (BENCHMARKS "A pose a little off").

    .venv/bin/python scripts/pose_error_probe.py classical|learned on|off JUMP_DEG NOISE_DEG

PETS09-S2L1 through the standing 512 x 384 view of `evaluate pets09 --pan-deg` (the picture never moves), while the
pose given with it is turned by JUMP_DEG of yaw from frame 200 to 499 (a localiser's correction) plus Gaussian
noise of NOISE_DEG on every frame; change.follow_turns on or off. Prints people found and false pixels a frame
over the run and over the 6 s after each jump (evaluate.people_change). Needs opencv-doc's vtest.avi and the
PETS09 gt.txt.
"""

from __future__ import annotations

import argparse
import math

import cv2
import numpy as np

from spatial_memory_ros.core.change import ChangeDetector
from spatial_memory_ros.core.change_backend import ChangeBackend
from spatial_memory_ros.core.config import ChangeConfig
from spatial_memory_ros.evaluate import pets
from spatial_memory_ros.evaluate.people_change import PeopleChangeScore
from spatial_memory_ros.evaluate.turning_view import TurningView

JUMP_FRAMES = range(200, 500)


def _yaw(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("method", choices=["classical", "learned"])
    p.add_argument("follow", choices=["on", "off"])
    p.add_argument("jump_deg", type=float)
    p.add_argument("noise_deg", type=float)
    args = p.parse_args()
    view = TurningView(source_size=(768, 576), pan_deg=0.0, tilt_deg=0.0)
    intr = view.intrinsics
    follow = args.follow == "on"
    if args.method == "classical":
        det: ChangeBackend = ChangeDetector(ChangeConfig(follow_turns=follow))
    else:
        from spatial_memory_ros.core.floor_change_config import FloorChangeConfig
        from spatial_memory_ros.core.still_edges import StillEdgesConfig
        from spatial_memory_ros.model.runtime import LearnedChangeDetector

        det = LearnedChangeDetector(None, device="cpu", follow_turns=follow, floor_memory=FloorChangeConfig(),
                                    still_edges=StillEdgesConfig())
    gt = pets.read_mot_gt(pets.DEFAULT_GT)
    cap = cv2.VideoCapture(str(pets.VTEST_AVI))
    rng = np.random.default_rng(0)
    run, after = PeopleChangeScore(), PeopleChangeScore()
    for i in range(795):
        ok, image = cap.read()
        if not ok:
            break
        t = i / pets.CAPTURE_FPS
        T = view.pose(t).copy()
        T[:3, :3] = T[:3, :3] @ _yaw((args.jump_deg if i in JUMP_FRAMES else 0.0) + rng.normal(0.0, args.noise_deg))
        out = det.update(view.frame(image, t), T, intr, t)
        g = gt.get(i + 1)
        boxes, inside = view.boxes(g.boxes, t) if g is not None else (np.zeros((0, 4)), np.zeros(0, bool))
        scored = g.scored & inside if g is not None else inside
        run.add(out.mask > 0, boxes, scored)
        if any(0 <= i - start < 6 * pets.CAPTURE_FPS for start in (JUMP_FRAMES.start, JUMP_FRAMES.stop)):
            after.add(out.mask > 0, boxes, scored)
    s, a = run.summary(), after.summary()
    print(f"{args.method} follow {args.follow}, jump {args.jump_deg} deg, noise {args.noise_deg} deg: found "
          f"{s['box_found_fraction'] * 100:.1f} %, {s['false_px_per_frame']:.0f} false px a frame; in the 6 s after "
          f"each jump {a['box_found_fraction'] * 100:.1f} %, {a['false_px_per_frame']:.0f}")


if __name__ == "__main__":
    main()
