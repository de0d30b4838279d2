"""Screen change detectors on photo streams that no training run draws: real textures, a still camera.

    .venv/bin/python scripts/photo_screen.py out/ft12/model.pt [shipped] [classical] [--seeds 9000 --count 12]

For each detector, the change-mask IoU over all frames of `count` photo streams (model/photo_stream.py, seeds
from 9000: `train` draws its streams from --seed upwards, 1000-1300 in the runs so far, so these are never
trained on), the recall of movers' and of scene-change pixels, and the false pixels per frame. The detectors
run as the node builds them (`change.method` learned with its defaults, or classical), on the streams at
twice the model's input size. A screen on synthetic composites, not a score: the real clips (`evaluate cup|box`)
are the test.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from spatial_memory_ros.core.change import ChangeDetector
from spatial_memory_ros.core.change_backend import make_change_backend
from spatial_memory_ros.core.config import ChangeConfig
from spatial_memory_ros.core.types import CameraIntrinsics
from spatial_memory_ros.model.config import ModelConfig
from spatial_memory_ros.model.photo_stream import photo_training_size, render_photo_scene
from spatial_memory_ros.model.runtime import LearnedChangeDetector


def _detector(name: str) -> ChangeDetector | LearnedChangeDetector:
    """The backend as the node builds it: 'classical', 'shipped' (learned, the packaged model) or a model file."""
    if name == "classical":
        return make_change_backend(ChangeConfig(method="classical"), device="cpu")
    model_path = "" if name == "shipped" else name
    return make_change_backend(replace(ChangeConfig(), method="learned", model_path=model_path), device="cpu")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("detectors", nargs="+", help="model files, 'shipped' or 'classical'")
    p.add_argument("--seeds", type=int, default=9000, help="first stream seed (default 9000)")
    p.add_argument("--count", type=int, default=12, help="streams (default 12)")
    p.add_argument("--frames", type=int, default=200)
    args = p.parse_args()
    size = photo_training_size(ModelConfig())
    seeds = range(args.seeds, args.seeds + args.count)
    scenes = [render_photo_scene(s, args.frames, size, settle_frames=20) for s in seeds]
    print(f"{args.count} photo streams from seed {args.seeds}, {args.frames} frames, {size[0]}x{size[1]}")
    print("| detector | chg IoU | rec movers | rec scene | false px / frame |")
    print("|---|---|---|---|---|")
    for name in args.detectors:
        inter = union = movers = movers_hit = scene_px = scene_hit = false = 0
        for sc in scenes:
            det = _detector(name)
            K = sc.K
            intr = CameraIntrinsics(K[0, 0], K[1, 1], K[0, 2], K[1, 2], size[0], size[1])
            for t, image in enumerate(sc.images):
                pred = det.update(image, sc.T_map_cam, intrinsics=intr, stamp=t / 10).mask > 0
                truth, agent = sc.masks[t], sc.agents[t]
                inter += int((pred & truth).sum())
                union += int((pred | truth).sum())
                movers += int(agent.sum())
                movers_hit += int((pred & agent).sum())
                scene_px += int((truth & ~agent).sum())
                scene_hit += int((pred & truth & ~agent).sum())
                false += int((pred & ~truth).sum())
        frames = args.count * args.frames
        print(f"| {name} | {inter / max(union, 1):.3f} | {movers_hit / max(movers, 1):.3f} | "
              f"{scene_hit / max(scene_px, 1):.3f} | {false / frames:.0f} |")


if __name__ == "__main__":
    main()
