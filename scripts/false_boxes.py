"""Where a learned model's false agent boxes are on a bench scene: the frames with boxes no truth matches, drawn
(BENCHMARKS "Racks in the agents' colours, continued").

    .venv/bin/python scripts/false_boxes.py --preset depot --camera patrol --seed 200 --model base2400.pt \
        [--minutes 10] [--method learned] [--out docs/bench/decoy_depot_false_boxes.jpg]

Runs `bench` on one scene with one tracking method and, frame by frame, takes the boxes it published that overlap
no truth box at IoU >= 0.5 (bench.tracking_metrics.MATCH_IOU; the truth's agents of at least min_agent_px pixels),
less those the score leaves out, on an agent with fewer pixels (don't-care).
det F1 also counts a second box on an agent another box matched as false; this does not, so it can find fewer.
Prints how many frames and boxes, and the stretches of consecutive frames (s) they come in; draws 12 of those
frames spread over the run, truth green, false boxes red.

A diagnosis, not a score (it watches the bench's tracks through run_bench's watch). A held-out seed (100-199)
needs --allow-held-out and must tune nothing.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from spatial_memory_ros.bench import tracking_metrics
from spatial_memory_ros.bench.diagnosis import parse_scene, run_scene, scene_parser
from spatial_memory_ros.bench.runner import TrackedFrame
from spatial_memory_ros.core.tracker import box_iou
from spatial_memory_ros.viz import contact_sheet

_DRAWN = 12


def main() -> None:
    ap = scene_parser(__doc__.split("\n")[0])
    ap.add_argument("--out", default="false_boxes.jpg")
    args = parse_scene(ap)

    # (frame index, stamp s, image, truth boxes, false boxes)
    false: list[tuple[int, float, np.ndarray, np.ndarray, np.ndarray]] = []

    def note_false(t: TrackedFrame) -> None:
        pred, truth = np.asarray(t.track_boxes, float).reshape(-1, 4), np.asarray(t.gt_boxes, float).reshape(-1, 4)
        pred = pred[tracking_metrics.dont_care_kept(truth, t.dont_care, pred)]
        if len(pred):
            best = box_iou(pred, truth).max(axis=1) if len(truth) else np.zeros(len(pred))
            bad = pred[best < tracking_metrics.MATCH_IOU]
            if len(bad):
                false.append((t.frame.index, t.frame.stamp, t.frame.image.copy(), truth, bad))

    run_scene(args, note_false)

    print(f"frames with false boxes: {len(false)}; false boxes: {sum(len(b) for *_, b in false)}")
    stretches: list[list[Any]] = []  # [first index, last index, first stamp, last stamp]
    for index, stamp, *_ in false:
        if stretches and index == stretches[-1][1] + 1:
            stretches[-1][1], stretches[-1][3] = index, stamp
        else:
            stretches.append([index, index, stamp, stamp])
    print("stretches (s):", ", ".join(f"{a:.1f}-{b:.1f}" for _, _, a, b in stretches))
    if not false:
        return
    picked = [false[i] for i in np.linspace(0, len(false) - 1, min(_DRAWN, len(false))).round().astype(int)]
    tiles = []
    for _, stamp, image, truth, bad in picked:
        for boxes, colour, width in ((truth, (0, 255, 0), 1), (bad, (0, 0, 255), 2)):
            for x1, y1, x2, y2 in boxes.round().astype(int):
                cv2.rectangle(image, (x1, y1), (x2, y2), colour, width)
        cv2.putText(image, f"{stamp:.1f} s", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        tiles.append(image)
    sheet = contact_sheet(tiles, 4, cell_width=tiles[0].shape[1])
    cv2.imwrite(args.out, sheet, [cv2.IMWRITE_JPEG_QUALITY, 80])
    print("wrote", args.out)


if __name__ == "__main__":
    main()
