"""Draw what the still-camera edges (core.still_edges) do to the learned change mask: crops around agents on a
static bench camera, enlarged, each as camera | network's mask | with the edges set by the background model,
the true outline in green, the mask tinted red.

    .venv/bin/python scripts/draw_still_edges.py --out docs/bench/still_edges.png

Defaults to a training seed of the warehouse mast camera (1004): a picture, not a score.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
from tqdm import tqdm

from spatial_memory_ros.bench.cli import add_scene_arguments
from spatial_memory_ros.bench.scene import make_bench_scene
from spatial_memory_ros.bench.stream import sim_frames
from spatial_memory_ros.core.still_edges import StillEdgesConfig
from spatial_memory_ros.model.runtime import LearnedChangeDetector

CROP = 64  # px around an agent's centre, at the bench's 320 x 240
ZOOM = 4


def _panel(image: np.ndarray, mask: np.ndarray, truth: np.ndarray, label: str) -> np.ndarray:
    out = image.copy()
    on = mask > 0
    out[on] = (0.5 * out[on] + 0.5 * np.array((0, 0, 230))).astype(np.uint8)
    out = cv2.resize(out, None, fx=ZOOM, fy=ZOOM, interpolation=cv2.INTER_NEAREST)
    outline = cv2.resize(truth, None, fx=ZOOM, fy=ZOOM, interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(outline, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, (0, 220, 0), 1)
    cv2.putText(out, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 2, cv2.LINE_AA)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scene_arguments(p, seed=1004)
    p.set_defaults(camera="static", minutes=3.0)
    p.add_argument("--frames", type=int, default=3, help="rows in the picture")
    p.add_argument("--out", default="still_edges.png")
    args = p.parse_args()
    scene = make_bench_scene(args.preset, args.camera, args.minutes, args.seed)
    network = LearnedChangeDetector(intrinsics=scene.intrinsics, device="cpu")
    edges = LearnedChangeDetector(intrinsics=scene.intrinsics, device="cpu", still_edges=StillEdgesConfig())
    rows: list[np.ndarray] = []
    last = -1e9
    for f in tqdm(sim_frames(scene), total=len(scene), unit="frame", mininterval=2.0):
        plain = network.update(f.image, f.T_map_cam, f.intrinsics, f.stamp).mask
        set_ = edges.update(f.image, f.T_map_cam, f.intrinsics, f.stamp).mask
        agents = (f.truth.instance_mask > 0).astype(np.uint8) * 255
        if f.stamp - last < 20.0 or agents.sum() < 255 * 800 or np.array_equal(plain, set_):
            continue
        last = f.stamp
        ys, xs = np.nonzero(agents)
        h, w = agents.shape
        x0 = int(np.clip(xs.mean() - CROP // 2, 0, w - CROP))
        y0 = int(np.clip(ys.mean() - CROP // 2, 0, h - CROP))
        crop = (slice(y0, y0 + CROP), slice(x0, x0 + CROP))
        rows.append(np.hstack([
            _panel(f.image[crop], np.zeros((CROP, CROP), np.uint8), agents[crop], f"t={f.stamp:.0f}s"),
            _panel(f.image[crop], plain[crop], agents[crop], "network"),
            _panel(f.image[crop], set_[crop], agents[crop], "still-camera edges"),
        ]))
        if len(rows) == args.frames:
            break
    if not rows:
        raise SystemExit("no frame with an agent whose mask the edges changed; try more --minutes")
    cv2.imwrite(args.out, np.vstack(rows))
    print(f"wrote {args.out} ({len(rows)} frames)")


if __name__ == "__main__":
    main()
