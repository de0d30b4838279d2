"""A still camera that shakes while its pose stays exact (vibration, wind on a mast): how the change mask takes it
(BENCHMARKS "A shaking still camera").

    .venv/bin/python scripts/shake_probe.py classical|learned SIGMA_PX [--pan-deg 8] [--gt gt.txt]

PETS09-S2L1 through the standing 512 x 384 view of `evaluate pets09 --pan-deg` (evaluate.turning_view), every
frame shifted by N(0, SIGMA_PX) px each way (seed 0; the truth's boxes with it), the pose the view's exact standing
one. Prints people found and false pixels a frame (evaluate.people_change). The learned backend as the node runs it
(floor memory, still edges, still head at 2). Also prints the motion boxes a frame (what the node makes tracks of)
and how many of them lie on no person (centre outside every truth box). Needs opencv-doc's vtest.avi and the
PETS09 gt.txt. --pan-deg D: the turning view of `evaluate pets09 --pan-deg D` instead (tilt 2 deg, as there), shaken
the same way: a pan-tilt head that shakes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from spatial_memory_ros.core.change_backend import ChangeBackend
from spatial_memory_ros.evaluate import pets
from spatial_memory_ros.evaluate.people_change import PeopleChangeScore
from spatial_memory_ros.evaluate.turning_view import TurningView


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("method", choices=["classical", "learned"])
    p.add_argument("sigma_px", type=float)
    p.add_argument("--gt", type=Path, default=pets.DEFAULT_GT)
    p.add_argument("--pan-deg", type=float, default=0.0, help="a turning view panning this far (default 0: standing)")
    args = p.parse_args()
    view = TurningView(source_size=(768, 576), pan_deg=args.pan_deg, tilt_deg=2.0 if args.pan_deg else 0.0)
    if args.method == "classical":
        from spatial_memory_ros.core.change import ChangeDetector
        from spatial_memory_ros.core.config import ChangeConfig

        det: ChangeBackend = ChangeDetector(ChangeConfig())
    else:
        from spatial_memory_ros.core.floor_change_config import FloorChangeConfig
        from spatial_memory_ros.core.still_edges import StillEdgesConfig
        from spatial_memory_ros.model.runtime import LearnedChangeDetector

        det = LearnedChangeDetector(None, device="cpu", floor_memory=FloorChangeConfig(),
                                    still_edges=StillEdgesConfig(), still_scale=2)
    gt = pets.read_mot_gt(args.gt)
    cap = cv2.VideoCapture(str(pets.VTEST_AVI))
    rng = np.random.default_rng(0)
    score = PeopleChangeScore()
    stray = total = frames = 0  # motion boxes (what becomes a track) off every person, all of them, frames
    for i in range(795):
        ok, image = cap.read()
        if not ok:
            break
        t = i / pets.CAPTURE_FPS
        dx, dy = rng.normal(0.0, args.sigma_px, 2) if args.sigma_px > 0 else (0.0, 0.0)
        frame = view.frame(image, t)
        frame = cv2.warpAffine(frame, np.array([[1, 0, dx], [0, 1, dy]], np.float32), frame.shape[1::-1],
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        out = det.update(frame, view.pose(t), view.intrinsics, t)
        g = gt.get(i + 1)
        boxes, inside = view.boxes(g.boxes, t) if g is not None else (np.zeros((0, 4)), np.zeros(0, bool))
        scored = g.scored & inside if g is not None else inside
        truth = boxes + np.array([dx, dy, dx, dy]) if len(boxes) else boxes
        score.add(out.mask > 0, truth, scored)
        stray += sum(not _on_someone(b, truth) for b in out.motion_boxes)
        total += len(out.motion_boxes)
        frames += 1
    s = score.summary()
    print(f"{args.method}, pan {args.pan_deg} deg, shaken by {args.sigma_px} px: "
          f"found {s['box_found_fraction'] * 100:.1f} %, {s['false_px_per_frame']:.0f} false px a frame; "
          f"motion boxes {total / frames:.2f} a frame, "
          f"{stray / frames:.3f} of them on no person")


def _on_someone(box: np.ndarray, truth: np.ndarray) -> bool:
    """The box's centre lies in a truth box (any, scored or not: a person is a person)."""
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    return bool(len(truth)) and bool(np.any((truth[:, 0] <= cx) & (cx <= truth[:, 2]) & (truth[:, 1] <= cy)
                                            & (cy <= truth[:, 3])))


if __name__ == "__main__":
    main()
