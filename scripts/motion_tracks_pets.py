"""PETS09's people as the node's default detector tracks them: tags only, so from the change backend's motion boxes
(BENCHMARKS "The learned change method by default").

    .venv/bin/python scripts/motion_tracks_pets.py classical learned [--frames 795] [--gt gt.txt]
        [--pose-jitter-deg 0.1] [--pose-jitter-m 0.01] [--shake-px 1.0] [--pan-deg 8 [--turn-period-s 20]]

`evaluate pets09` needs a class detector (it scores the person tracks); with `detector.backend: apriltag` the
only dynamic tracks are the motion boxes' ("object"). This runs the pipeline over vtest.avi once per change method
and scores its confirmed dynamic tracks against the MOTChallenge truth the way `evaluate pets09` scores its
people (don't-care regions dropped). Needs opencv-doc's vtest.avi and PETS09-S2L1's gt.txt.

--pose-jitter-deg S gives every frame a pose and intrinsics, as a node on a robot gets them: the camera stands
still (evaluate.turning_view's assumed mounting, 6 m up, pitched 25 deg down; 60 deg wide), but the pose it is
told is off by a Gaussian rotation of S deg about each axis, drawn anew every frame (a localiser's jitter: the
bench's bench.pose_error.PoseError, seed 0). --pose-jitter-m M adds a Gaussian offset of M m along the map's x and
y (as `bench --pose-noise-m`; implies a pose). --pan-deg D: the turning view of `evaluate pets09 --pan-deg D`
instead (512 x 384, panning +-D deg and tilting 2 deg, its pose and intrinsics given; the truth's boxes re-projected,
those less than half in view not scored): a pan-tilt head, or a robot turning in place; --turn-period-s: seconds
per pan cycle, as there (the peak rate is 2 pi D / period deg/s, at the clip's 7 frames/s).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from spatial_memory_ros.bench.metrics import TrackingAccumulator
from spatial_memory_ros.bench.pose_error import PoseError
from spatial_memory_ros.core.config import ChangeConfig, DetectorConfig, MemoryConfig, PipelineConfig
from spatial_memory_ros.core.item_memory import ItemMemory
from spatial_memory_ros.core.pipeline import Pipeline
from spatial_memory_ros.core.store import MemoryStore
from spatial_memory_ros.core.types import CameraIntrinsics, Frame, TrackState
from spatial_memory_ros.evaluate.pets import (
    CAPTURE_FPS,
    DEFAULT_GT,
    VTEST_AVI,
    GroundTruth,
    read_mot_gt,
)
from spatial_memory_ros.evaluate.turning_view import TurningView


def score(method: str, frames: int, gt: dict[int, GroundTruth], jitter_deg: float | None = None,
          jitter_m: float = 0.0, shake_px: float = 0.0, pan_deg: float = 0.0,
          period_s: float = 20.0) -> dict[str, Any]:
    """The tracking summary (det P/R/F1, HOTA, IDF1, MOTA, ID switches) of one change method's dynamic tracks;
    jitter_deg (and jitter_m): with a pose off by that much (see the module's docstring), else with none;
    shake_px: every frame shifted by N(0, shake_px) px each way (seed 0), the truth's boxes with it; pan_deg: through
    the turning view instead (see the module's docstring)."""
    config = PipelineConfig(detector=DetectorConfig(backend="apriltag"), change=ChangeConfig(method=method),
                            memory=MemoryConfig(db_path=":memory:")).validate()
    acc = TrackingAccumulator()
    cap = cv2.VideoCapture(str(VTEST_AVI))
    turning = TurningView(source_size=(768, 576), pan_deg=pan_deg, tilt_deg=2.0, period_s=period_s) if pan_deg else None
    view = TurningView(source_size=(768, 576), pan_deg=0.0, tilt_deg=0.0)
    still = view.pose(0.0)
    error = PoseError(jitter_deg or 0.0, jitter_m)  # the bench's pose error (`bench --pose-noise-deg/-m`), seed 0
    K = view.K_source
    shake = np.random.default_rng(0)
    intrinsics = CameraIntrinsics(K[0, 0], K[1, 1], K[0, 2], K[1, 2], 768, 576) if jitter_deg is not None else None
    if turning is not None:
        intrinsics = turning.intrinsics
    with Pipeline(config, ItemMemory(config.memory, MemoryStore(":memory:"))) as pipeline:
        for index in range(frames):
            ok, image = cap.read()
            if not ok:
                break
            stamp = index / CAPTURE_FPS
            if turning is not None:
                image = turning.frame(image, stamp)
            dx, dy = shake.normal(0.0, shake_px, 2) if shake_px > 0 else (0.0, 0.0)
            if shake_px > 0:
                image = cv2.warpAffine(image, np.array([[1, 0, dx], [0, 1, dy]], np.float32), image.shape[1::-1],
                                       flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            pose = None if jitter_deg is None and turning is None else error.apply(
                still if turning is None else turning.pose(stamp), index)
            result = pipeline.update(Frame(image=image, stamp=stamp, intrinsics=intrinsics, T_map_cam=pose))
            ours = [t for t in result.tracks
                    if t.is_dynamic and t.state == TrackState.CONFIRMED and t.last_seen == result.stamp]
            g = gt.get(index + 1)
            if g is not None and turning is not None:
                boxes, inside = turning.boxes(g.boxes, stamp)
                g = GroundTruth(g.ids, boxes, g.scored & inside)
            if g is not None and shake_px > 0:
                g = dataclasses.replace(g, boxes=g.boxes + np.array([dx, dy, dx, dy]))
            boxes = np.array([t.box for t in ours]).reshape(-1, 4)
            ids = np.array([t.track_id for t in ours], np.int64)
            acc.add(index + 1, g.ids[g.scored] if g is not None else np.zeros(0, np.int64),
                    g.boxes[g.scored] if g is not None else np.zeros((0, 4)), ids, boxes,
                    g.boxes[~g.scored] if g is not None else np.zeros((0, 4)))
    cap.release()
    return acc.summary().as_dict()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("methods", nargs="+", choices=["classical", "learned"])
    p.add_argument("--frames", type=int, default=795, help="frames from the start (default: all 795)")
    p.add_argument("--gt", type=Path, default=DEFAULT_GT, help="PETS09-S2L1 gt.txt (MOTChallenge)")
    p.add_argument("--pose-jitter-deg", type=float, default=None,
                   help="give each frame a pose off by this much rotation per axis (deg; default: no pose)")
    p.add_argument("--pose-jitter-m", type=float, default=0.0,
                   help="and off by this much along the map's x and y (m; default 0; gives a pose even alone)")
    p.add_argument("--shake-px", type=float, default=0.0,
                   help="shake every frame by N(0, S) px each way, the pose unchanged (BENCHMARKS 'A shaking still "
                        "camera'; default 0)")
    p.add_argument("--pan-deg", type=float, default=0.0,
                   help="through the turning view of `evaluate pets09 --pan-deg` (deg; default 0: the still video)")
    p.add_argument("--turn-period-s", type=float, default=20.0,
                   help="with --pan-deg: seconds per pan cycle (default 20)")
    args = p.parse_args()
    if args.pose_jitter_m > 0 and args.pose_jitter_deg is None:
        args.pose_jitter_deg = 0.0
    gt = read_mot_gt(args.gt)
    for method in args.methods:
        summary = score(method, args.frames, gt, args.pose_jitter_deg, args.pose_jitter_m, args.shake_px,
                        args.pan_deg, args.turn_period_s)
        print(method, {k: round(v, 3) if isinstance(v, float) else v for k, v in summary.items()}, flush=True)


if __name__ == "__main__":
    main()
