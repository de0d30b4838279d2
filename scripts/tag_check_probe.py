"""Which tag-place checks the depth test's 5 x 5 grid refuses that its earlier five probes passed (BENCHMARKS "The
classical pipeline's seven answers").

    .venv/bin/python scripts/tag_check_probe.py --minutes 120 --seed 1005 --out tag_checks.jpg [--method pipeline]

Runs `bench` on one scene with one method and, at every tag place the depth test (core.visibility) is asked
about, also asks the rule before `a8fcf0a` (the centre and the corners pulled 25 % inward, single pixels). Prints
how many checks the two rules split and at which places, and draws the first --draw of them: the camera's crop
around the tag (today's probes blue, the ones that found something nearer red) beside its depth.

A diagnosis, not a score: it patches the depth test in this process only. A held-out seed needs
--allow-held-out and must tune nothing.
"""

from __future__ import annotations

import argparse
import collections
from typing import Any

import cv2
import numpy as np

from spatial_memory_ros.bench.cli import add_scene_arguments
from spatial_memory_ros.bench.runner import BenchConfig, run_bench
from spatial_memory_ros.bench.seeds import TRAIN_SEED_MIN
from spatial_memory_ros.core import pipeline, visibility

SCALE = 6  # crop magnification in the picture


def five_probes(depth: np.ndarray, uv: np.ndarray, z: np.ndarray, margin_m: float) -> bool:
    """The depth test before a8fcf0a: nearer than the tag by margin_m at the centre or a corner pulled 25 % in."""
    centre = uv.mean(axis=0)
    probes = np.vstack([centre, centre + 0.75 * (uv - centre)])
    expected = np.concatenate([[float(z.mean())], z])
    cols = np.clip(np.round(probes[:, 0]).astype(int), 0, depth.shape[1] - 1)
    rows = np.clip(np.round(probes[:, 1]).astype(int), 0, depth.shape[0] - 1)
    return bool(np.any(depth[rows, cols] < expected - margin_m))


def tile(image: np.ndarray, depth: np.ndarray, uv: np.ndarray, z: np.ndarray, margin_m: float, label: str
         ) -> np.ndarray:
    """Crop around the tag, magnified: the camera with the tag's outline and probes | its depth, nearer = warmer."""
    height, width = depth.shape
    x0, y0 = np.clip(np.floor(uv.min(axis=0)).astype(int) - 4, 0, None)
    x1, y1 = np.ceil(uv.max(axis=0)).astype(int) + 5
    x1, y1 = min(x1, width), min(y1, height)
    crop = image[y0:y1, x0:x1].copy()
    cv2.polylines(crop, [np.round(uv - [x0, y0]).astype(np.int32)], True, (0, 255, 0), 1)
    probes, expected = visibility.probe_grid(uv, z)
    near = visibility.probe_depths(depth, probes) < expected - margin_m
    for (u, v), red in zip(np.round(probes).astype(int), near):
        if 0 <= v - y0 < crop.shape[0] and 0 <= u - x0 < crop.shape[1]:
            crop[v - y0, u - x0] = (0, 0, 255) if red else (255, 0, 0)
    d = depth[y0:y1, x0:x1]
    lo, hi = np.nanmin(d), np.nanmax(d)
    d8 = np.nan_to_num(255 * (hi - d) / max(hi - lo, 1e-6)).astype(np.uint8)
    pair = np.hstack([crop, cv2.applyColorMap(d8, cv2.COLORMAP_JET)])
    pair = cv2.resize(pair, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST)
    cv2.putText(pair, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return cv2.resize(pair, (480, max(1, int(480 * pair.shape[0] / pair.shape[1]))))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_scene_arguments(p, seed=1005)
    p.add_argument("--method", default="pipeline", help="one memory method of bench (default pipeline)")
    p.add_argument("--out", default="tag_checks.jpg", help="the picture (default tag_checks.jpg)")
    p.add_argument("--draw", type=int, default=8, help="how many split checks to draw (default 8)")
    p.add_argument("--place", action="append", default=[], metavar="X,Y",
                   help="draw only splits at this place (within 0.3 m, map frame; repeatable; default: any)")
    p.add_argument("--each", type=int, default=0, help="draw at most this many splits of one place (default 0: any)")
    p.add_argument("--allow-held-out", action="store_true", help="allow a benchmark seed (diagnosis only)")
    args = p.parse_args()
    if args.seed < TRAIN_SEED_MIN and not args.allow_held_out:
        raise SystemExit(f"seed {args.seed} is not a training seed (>= {TRAIN_SEED_MIN}); pass --allow-held-out")

    wanted = [np.array([float(v) for v in xy.split(",")]) for xy in args.place]
    now: dict[str, Any] = {}
    splits: collections.Counter[tuple[float, float]] = collections.Counter()
    tiles: list[np.ndarray] = []
    asked = [0]
    grid_test = visibility._occluded_in_depth
    checkable = visibility.tag_checkable
    empty_places = pipeline.empty_places

    def depth_test(depth: np.ndarray, uv: np.ndarray, z: np.ndarray, margin_m: float) -> bool:
        today = grid_test(depth, uv, z, margin_m)
        asked[0] += 1
        if today != five_probes(depth, uv, z, margin_m):
            place = (round(float(now["position"][0]), 1), round(float(now["position"][1]), 1))
            splits[place] += 1
            at = np.asarray(now["position"], np.float64)[:2]
            wanted_here = not wanted or min(np.hypot(*(at - w)) for w in wanted) < 0.3
            if len(tiles) < args.draw and wanted_here and (not args.each or splits[place] <= args.each):
                verdict = "refused" if today else "checked"
                label = f"t {now['stamp']:.1f} s, place {place}: today {verdict}"
                tiles.append(tile(now["image"], depth, uv, z, margin_m, label))
        return today

    def tag_checkable(position: np.ndarray, *rest: Any, **kw: Any) -> bool:
        now["position"] = position
        return checkable(position, *rest, **kw)

    def empty(candidates: Any, seen: Any, tagged: Any, tag_size_m: float, frame: Any, *rest: Any, **kw: Any) -> Any:
        now["stamp"], now["image"] = frame.stamp, frame.image
        return empty_places(candidates, seen, tagged, tag_size_m, frame, *rest, **kw)

    visibility._occluded_in_depth = depth_test
    visibility.tag_checkable = tag_checkable
    pipeline.empty_places = empty
    run_bench(BenchConfig(preset=args.preset, camera=args.camera, minutes=args.minutes, seed=args.seed,
                          methods=(args.method,)))
    print(f"{asked[0]} depth tests; the 5 x 5 grid and the earlier five probes split {sum(splits.values())}")
    for place, n in splits.most_common():
        print(f"  place {place}: {n}")
    if tiles:
        cv2.imwrite(args.out, np.vstack(tiles))
        print(f"wrote {args.out} ({len(tiles)} of them)")


if __name__ == "__main__":
    main()
