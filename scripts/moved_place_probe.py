"""Where a change mask covers a moved object: over the place the object stood at frame 0, or elsewhere
(BENCHMARKS "Where the learned mask loses cup.mp4's thermos").

    .venv/bin/python scripts/moved_place_probe.py cup|box [--still-head-scale K]

Runs the clip as `evaluate cup|box` does (the node's coco pipeline, the assumed camera) once with
change.method classical and once with learned (the shipped model, change.still_head_scale K, default the
pipeline's), and scores the moved frames as it does
(object region by colour, moved = IoU with frame 0 under 0.5). Prints, per method, the object's mean coverage
(`object_recall_mean`), then its pixels split into those over its frame-0 place and the rest, and into the
object's own colour (dark thermos, yellow print) and the rest of its hull (a hand across it, lighter parts).
The split sums pixels over all moved frames. Needs opencv-doc's cup.mp4 / box.mp4.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import cv2
import numpy as np

from spatial_memory_ros.core.config import STILL_HEAD_SCALES, ChangeConfig, MemoryConfig, PipelineConfig
from spatial_memory_ros.core.pipeline import Pipeline
from spatial_memory_ros.core.types import Frame
from spatial_memory_ros.evaluate.config import default_config
from spatial_memory_ros.evaluate.moved import (
    ASSUMED_CAMERA,
    OBJECT_HSV,
    clip_path,
    has_moved,
    object_colour,
    object_region,
)


def _config(method: str, still_head_scale: int) -> PipelineConfig:
    base = default_config()
    change = dataclasses.replace(base.change, method=method, still_head_scale=still_head_scale)
    return dataclasses.replace(base, change=change, memory=MemoryConfig(db_path=":memory:"))


def score(clip: str, method: str, still_head_scale: int = ChangeConfig().still_head_scale) -> dict[str, float]:
    """Mean coverage over moved frames, and covered shares of the pixel groups summed over them."""
    covered = {k: [0, 0] for k in ("first_place", "elsewhere", "own_colour", "rest_of_hull")}
    per_frame: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, Pipeline.open(_config(method, still_head_scale)) as pipeline:
        cap = cv2.VideoCapture(str(clip_path(clip, Path(tmp))))
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        first: np.ndarray | None = None
        index = 0
        while True:
            ok, image = cap.read()
            if not ok:
                break
            h, w = image.shape[:2]
            result = pipeline.update(Frame(image=image, stamp=index / fps, intrinsics=ASSUMED_CAMERA.intrinsics(w, h),
                                           T_map_cam=ASSUMED_CAMERA.T_map_cam, depth=ASSUMED_CAMERA.depth(w, h)))
            index += 1
            region = object_region(image, clip)
            first = region if first is None else first
            if not has_moved(region, first):
                continue
            changed = result.change_mask > 0
            per_frame.append(float(changed[region].mean()))
            colour = object_colour(image, clip) > 0
            for key, part in (("first_place", region & first), ("elsewhere", region & ~first),
                              ("own_colour", region & colour), ("rest_of_hull", region & ~colour)):
                covered[key][0] += int((changed & part).sum())
                covered[key][1] += int(part.sum())
        cap.release()
    out = {"object_recall_mean": float(np.mean(per_frame)) if per_frame else 0.0, "moved_frames": len(per_frame)}
    total = covered["first_place"][1] + covered["elsewhere"][1]
    for key, (hit, n) in covered.items():
        out[key] = hit / n if n else float("nan")
        out[f"{key}_share"] = n / total if total else float("nan")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clip", choices=sorted(OBJECT_HSV))
    parser.add_argument("--still-head-scale", type=int, choices=STILL_HEAD_SCALES,
                        default=ChangeConfig().still_head_scale)
    args = parser.parse_args()
    for method in ("classical", "learned"):
        s = score(args.clip, method, args.still_head_scale)
        print(f"{args.clip} {method:9s} (K {args.still_head_scale}): covered {s['object_recall_mean']:.3f} "
              f"over {s['moved_frames']} moved frames; "
              f"over its frame-0 place {s['first_place']:.3f} ({s['first_place_share']:.0%} of its pixels), "
              f"elsewhere {s['elsewhere']:.3f}; its own colour {s['own_colour']:.3f} "
              f"({s['own_colour_share']:.0%}), the rest of its hull {s['rest_of_hull']:.3f}")


if __name__ == "__main__":
    main()
