"""Does the recurrent memory forecast what the camera sees next, on the benchmark's held-out scenes?

    .venv/bin/python scripts/forecast_probe.py [--seed 100] [--minutes 3] [--window 8] [--model FILE]

Runs the shipped model (or FILE) over the four benchmark scenes (warehouse and home, patrol and static camera)
of one seed at the bench's resolution, once with its memory and once with it disabled, and prints the
predictive head's Recall@1 (model.forecast): among the candidate frames of a group, is the forecast's nearest
target the frame k steps later? Two groupings: the four scenes' frames together (as a training chunk's
negatives: the scene is easy to tell, the time less so) and each scene alone (only its neighbouring frames:
the time alone). Neither run gets a still background, so the two differ by the slot memory alone; the targets
are the frames alone (model.forecast), the same for both. A measurement, nothing is tuned on it; the seeds
100-199 are the benchmark's. A model trained before 5b91196 learned another target (the tokens with pose and
memory): score only a model trained since.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import numpy as np
import torch
from tqdm import tqdm

from spatial_memory_ros.bench.scene import make_bench_scene
from spatial_memory_ros.model.checkpoint import DEFAULT_CHECKPOINT, build_model
from spatial_memory_ros.model.forecast import StreamForecasts, forecast_recall, persistence, run_streams

SCENES = (("warehouse", "patrol"), ("home", "patrol"), ("warehouse", "static"), ("home", "static"))


def _frames(preset: str, camera: str, minutes: float, seed: int, bar: tqdm
            ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    scene = make_bench_scene(preset, camera, minutes, seed)
    K = scene.intrinsics.K
    for f in scene.frames():
        bar.update(1)
        yield f.image, K, f.T_map_cam


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=100)
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--window", type=int, default=8, help="consecutive frames per scene in a group (default 8)")
    p.add_argument("--strides", default="1,10", help="frames between a group's forecasts (default 1,10)")
    p.add_argument("--model", default=str(DEFAULT_CHECKPOINT))
    args = p.parse_args()
    if not 100 <= args.seed < 200:
        raise SystemExit("--seed must be a benchmark seed (100-199): the probe is of unseen scenes")
    torch.set_num_threads(1)
    model = build_model(args.model).eval()
    runs: dict[bool, list[StreamForecasts]] = {True: [], False: []}
    frames = int(round(args.minutes * 60 * 10))
    with tqdm(total=frames * len(SCENES), unit="frame", desc="forecast probe") as bar:
        for preset, camera in SCENES:  # one rendering of the scene for the memory and its ablation
            scene = _frames(preset, camera, args.minutes, args.seed, bar)
            with_memory, ablation = run_streams(model, scene, use_memory=(True, False))
            runs[True].append(with_memory)
            runs[False].append(ablation)
    k = runs[True][0].k
    print(f"seed {args.seed}, {args.minutes:g} min a scene, k = {k}, window {args.window}, model {args.model}")
    print("| candidates | stride | memory | no memory (ablation) | the frame itself | chance |")
    print("|---|---|---|---|---|---|")
    groups = [("the four scenes together", list(range(len(SCENES))))]
    groups += [(f"{preset} {camera} alone", [i]) for i, (preset, camera) in enumerate(SCENES)]
    for stride in (int(x) for x in args.strides.split(",")):
        for name, idx in groups:
            mem = [runs[True][i] for i in idx]
            abl = [runs[False][i] for i in idx]
            a = forecast_recall(mem, args.window, stride=stride)
            b = forecast_recall(abl, args.window, stride=stride)
            # both runs' targets are the frames alone (the same), so the frame itself is one figure
            e = forecast_recall([persistence(s) for s in mem], args.window, stride=stride)
            print(f"| {name} | {stride} | {a.recall_at_1:.3f} | {b.recall_at_1:.3f} | {e.recall_at_1:.3f} | "
                  f"{a.chance:.3f} ({a.forecasts} forecasts) |")


if __name__ == "__main__":
    main()
