"""Where a tracking method's identities part on a bench scene: IDF1's loss split into boxes and ids, per agent.

    .venv/bin/python scripts/id_breaks.py --preset depot --camera patrol --seed 202 [--model ctrl2400.pt] \
        [--minutes 10] [--method learned]

Runs `bench` on one scene with one tracking method and, frame by frame, keeps which track matched which truth
agent (det F1's one-to-one matching at IoU >= 0.5, after the don't-care boxes are left out). Then it takes IDF1's
global assignment of track ids to agents (the largest sum of frames an agent and a track share, as TrackEval's
Identity does) and prints:
- IDF1 and what it would be with every matched box's id right (the loss to missed and false boxes alone);
- per agent whose matched frames are not all on its assigned track: its frames, the tracks it was matched to (in
  order, with their first and last second), and the frames lost to ids;
- tracks that matched more than one agent (one id carried from one agent to another).

A diagnosis, not a score (it watches the bench's tracks through run_bench's watch). A held-out seed (100-199)
needs --allow-held-out and must tune nothing.
"""

from __future__ import annotations

import collections

import numpy as np
from scipy.optimize import linear_sum_assignment

from spatial_memory_ros.bench import tracking_metrics
from spatial_memory_ros.bench.diagnosis import parse_scene, run_scene, scene_parser
from spatial_memory_ros.bench.runner import TrackedFrame
from spatial_memory_ros.core.tracker import box_iou


def main() -> None:
    args = parse_scene(scene_parser(__doc__.split("\n")[0]))
    pairs: list[tuple[int, int, int]] = []  # (frame index, agent id, track id) of every matched box
    counts = {"gt": 0, "pred": 0}
    stamps: dict[int, float] = {}  # frame index -> s

    def note(t: TrackedFrame) -> None:
        truth = np.asarray(t.gt_boxes, float).reshape(-1, 4)
        pred = np.asarray(t.track_boxes, float).reshape(-1, 4)
        keep = tracking_metrics.dont_care_kept(truth, t.dont_care, pred)
        pred, kept_ids = pred[keep], np.asarray(t.track_ids)[keep]
        counts["gt"] += len(truth)
        counts["pred"] += len(pred)
        stamps[t.frame.index] = t.frame.stamp
        if len(truth) and len(pred):
            rows, cols = tracking_metrics.match_boxes(box_iou(truth, pred))
            pairs.extend((t.frame.index, int(t.gt_ids[r]), int(kept_ids[c])) for r, c in zip(rows, cols))

    result = run_scene(args, note)
    reported = result.methods[args.method]["tracking"]

    shared = collections.Counter((g, p) for _, g, p in pairs)
    agents = sorted({g for _, g, _ in pairs})
    tracks = sorted({p for _, _, p in pairs})
    table = np.zeros((len(agents), len(tracks)))
    for (g, p), n in shared.items():
        table[agents.index(g), tracks.index(p)] = n
    rows, cols = linear_sum_assignment(-table)
    assigned = {agents[r]: tracks[c] for r, c in zip(rows, cols) if table[r, c] > 0}
    idtp = sum(table[r, c] for r, c in zip(rows, cols))
    den = counts["gt"] + counts["pred"]
    print(f"{args.method} on {args.preset}/{args.camera} seed {args.seed}: {counts['gt']} truth boxes, "
          f"{counts['pred']} scored boxes, {len(pairs)} matched")
    print(f"IDF1 {2 * idtp / den:.4f} (the bench's, TrackEval: {reported['idf1']:.4f})")
    print(f"IDF1 with every matched box's id right: {2 * len(pairs) / den:.4f}; lost to ids: "
          f"{2 * (len(pairs) - idtp) / den:.4f} ({len(pairs) - int(idtp)} frames)")
    for g in agents:
        mine = [(f, p) for f, gg, p in pairs if gg == g]
        lost = sum(1 for _, p in mine if p != assigned.get(g))
        if not lost:
            continue
        runs: list[list[int]] = []  # [track, first frame, last frame, frames]
        for f, p in mine:
            if runs and runs[-1][0] == p:
                runs[-1][2], runs[-1][3] = f, runs[-1][3] + 1
            else:
                runs.append([p, f, f, 1])
        desc = ", ".join(f"track {p}{'*' if p == assigned.get(g) else ''} {stamps[a]:.1f}-{stamps[b]:.1f} s "
                         f"({n} frames)" for p, a, b, n in runs)
        print(f"agent {g}: {len(mine)} matched frames, {lost} lost to ids: {desc}")
    for p in tracks:
        owners = collections.Counter(g for _, g, pp in pairs if pp == p)
        if len(owners) > 1:
            print(f"track {p} matched agents " + ", ".join(f"{g} ({n} frames)" for g, n in owners.most_common()))
    print("(* = the track IDF1 assigns to the agent)")


if __name__ == "__main__":
    main()
