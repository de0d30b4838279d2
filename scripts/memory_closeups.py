"""Where the recurrent memory costs change recall: frames of a bench scene by how much of the view agents fill.

Runs the shipped model twice over one bench scene, with its recurrent memory and without (the ablation; no
floor memory in either, so only the network differs; --blank-std 0 lets the memory step on featureless
frames too, as before that rule), and prints the agent-pixel recall of each in frames
where agents fill at least --share of the view and in all others; writes a picture of the frames where the
two differ most (camera | truth | with memory | without memory).

    .venv/bin/python scripts/memory_closeups.py --seed 1006 --out docs/bench/memory_closeups.jpg

Defaults to a training seed of the warehouse patrol (1006, where the ablation beats the full model):
a diagnosis, not a score. A held-out seed needs --allow-held-out and must tune nothing.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
from tqdm import tqdm

from spatial_memory_ros.bench.cli import add_scene_arguments
from spatial_memory_ros.bench.scene import make_bench_scene
from spatial_memory_ros.bench.stream import sim_frames
from spatial_memory_ros.model.config import TRAIN_SEED_MIN
from spatial_memory_ros.model.runtime import LearnedChangeDetector
from spatial_memory_ros.viz import contact_sheet, draw_caption, overlay_mask


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scene_arguments(p, seed=1006)
    p.add_argument("--share", type=float, default=0.5, help="a close-up: agents fill at least this much of the view")
    p.add_argument("--frames", type=int, default=3, help="rows in the picture")
    p.add_argument("--out", default="memory_closeups.jpg")
    p.add_argument("--blank-std", type=float, default=None,
                   help="the detector's blank_std (default: its own); 0 = the memory steps on featureless frames too")
    p.add_argument("--allow-held-out", action="store_true", help="allow a benchmark seed (diagnosis only)")
    args = p.parse_args()
    if args.seed < TRAIN_SEED_MIN and not args.allow_held_out:
        raise SystemExit(f"seed {args.seed} is not a training seed (>= {TRAIN_SEED_MIN}); pass --allow-held-out")
    scene = make_bench_scene(args.preset, args.camera, args.minutes, args.seed)
    full = LearnedChangeDetector(intrinsics=scene.intrinsics, device="cpu",
                                 **({} if args.blank_std is None else {"blank_std": args.blank_std}))
    ablation = LearnedChangeDetector(intrinsics=scene.intrinsics, device="cpu", use_memory=False)
    # per frame: agent pixels, found with memory, found without, false pixels with, false without
    counts: list[tuple[int, int, int, int, int]] = []
    worst: list[tuple[int, float, np.ndarray]] = []  # (pixels the memory lost, stamp, picture row)
    for f in tqdm(sim_frames(scene), total=len(scene), unit="frame", mininterval=2.0):
        truth = f.truth.change_mask > 0
        agent = truth & (f.truth.instance_mask > 0)
        a = full.update(f.image, f.T_map_cam, f.intrinsics, f.stamp).mask > 0
        b = ablation.update(f.image, f.T_map_cam, f.intrinsics, f.stamp).mask > 0
        counts.append((int(agent.sum()), int((a & agent).sum()), int((b & agent).sum()),
                       int((a & ~truth).sum()), int((b & ~truth).sum())))
        lost = counts[-1][2] - counts[-1][1]
        same = [w for w in worst if abs(f.stamp - w[1]) < 5.0]  # one row per event, not a run of frames
        if lost <= 0 or (same and same[0][0] >= lost) or (not same and len(worst) == args.frames
                                                          and lost <= worst[-1][0]):
            continue
        row = [draw_caption(f.image.copy(), f"t={f.stamp:.1f}s"),
                   draw_caption(overlay_mask(f.image.copy(), truth, (0, 200, 0)), "truth"),
                   draw_caption(overlay_mask(f.image.copy(), a, (230, 90, 0)), "with memory"),
               draw_caption(overlay_mask(f.image.copy(), b, (230, 90, 0)), "memory disabled")]
        kept = [w for w in worst if w not in same]
        worst = sorted([*kept, (lost, f.stamp, contact_sheet(row, 4))], key=lambda w: -w[0])[:args.frames]
    c = np.array(counts, dtype=np.int64)
    close = c[:, 0] >= args.share * scene.preset.width * scene.preset.height
    print(f"{args.preset} {args.camera} seed {args.seed}, {len(c)} frames; agent-pixel recall with / without memory:")
    for name, sel in (("all frames", np.ones(len(c), bool)), (f"agents >= {args.share:.0%} of view", close),
                      ("the other frames", ~close)):
        n = c[sel, 0].sum()
        print(f"  {name:<24} {int(sel.sum()):5d} frames, {n / c[:, 0].sum():6.1%} of agent px: "
              f"{c[sel, 1].sum() / max(n, 1):.4f} / {c[sel, 2].sum() / max(n, 1):.4f}")
    gap = c[:, 2].sum() - c[:, 1].sum()
    print(f"  agent px the memory loses: {gap} ({(c[close, 2] - c[close, 1]).sum() / max(gap, 1):.1%} of them in "
          f"close-ups); false px with / without memory: {c[:, 3].sum()} / {c[:, 4].sum()}")
    if worst:
        cv2.imwrite(args.out, np.vstack([w[2] for w in sorted(worst, key=lambda w: w[1])]),
                    [cv2.IMWRITE_JPEG_QUALITY, 85])
        print(f"wrote {args.out} ({len(worst)} frames)")


if __name__ == "__main__":
    main()
