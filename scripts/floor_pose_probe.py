"""The floor memory alone under a pose error (BENCHMARKS "A pose a little off, on patrol"), on a training seed.

    .venv/bin/python scripts/floor_pose_probe.py warehouse|home jitter|bias DEG M [--minutes 5] [--trusting]

A bench patrol (seed 1004) through core.floor_change.FloorChangeMap, the agents' pixels excluded by the truth (so
that only the floor memory is judged, not the network that excludes them in the learned backend). The pose is off
by N(0, DEG) about each camera axis and N(0, M) along the map's x and y: ``jitter`` draws a new error every frame
(bench --pose-noise-*), ``bias`` every 30 s and keeps it in between (a localiser's correction now and then).
--trusting: the memory as it was before it allowed for a pose error. Prints the share of the scene changes' pixels
found and the false pixels a frame.
"""

from __future__ import annotations

import argparse

import numpy as np

from spatial_memory_ros.bench.pose_error import PoseError
from spatial_memory_ros.bench.scene import make_bench_scene
from spatial_memory_ros.core.floor_change import FloorChangeMap
from spatial_memory_ros.core.floor_change_config import FloorChangeConfig

BIAS_PERIOD_S = 30.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("preset", choices=["warehouse", "home"])
    p.add_argument("kind", choices=["jitter", "bias"])
    p.add_argument("deg", type=float)
    p.add_argument("m", type=float)
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--trusting", action="store_true")
    args = p.parse_args()
    config = FloorChangeConfig(align=False, pose_tolerance_deg=0.0, pose_tolerance_m=0.0) if args.trusting \
        else FloorChangeConfig()
    fmap = FloorChangeMap(config)
    error = PoseError(args.deg, args.m, seed=1004)
    found = missed = false = frames = 0
    for f in make_bench_scene(args.preset, "patrol", args.minutes, 1004).frames():
        # jitter: a new error each frame (the bench's); bias: one error per 30 s period, the period its index
        T = error.apply(f.T_map_cam, f.index if args.kind == "jitter" else int(f.stamp // BIAS_PERIOD_S))
        agents = f.truth.instance_mask > 0
        mask = fmap.update(f.image, f.intrinsics.K, T, f.stamp, exclude=agents.astype(np.uint8)) > 0
        truth = (f.truth.change_mask > 0) & ~agents
        found += int((mask & truth).sum())
        missed += int((~mask & truth).sum())
        false += int((mask & ~truth & ~agents).sum())
        frames += 1
    memory = "trusting the pose" if args.trusting else "allowing for its error"
    print(f"{args.preset} patrol 1004, {args.kind} {args.deg} deg {args.m} m, {memory}: scene changes found "
          f"{found / max(found + missed, 1):.3f} ({found + missed} px), {false / max(frames, 1):.0f} false px a frame"
          f" (measured error {fmap.pose_error_deg:.2f} deg)")


if __name__ == "__main__":
    main()
