"""The change mask on PETS09-S2L1 (a still camera over people walking), scored against the people's boxes.

The MOTChallenge truth gives boxes, not silhouettes, so the scores are box-level and say so:
- ``box_coverage_mean``: per scored person box (flag 1, at least MIN_BOX_PX inside the image), the fraction
  of its pixels in the mask, averaged over boxes. A person fills about half of a box, so even a perfect
  silhouette scores about 0.5 here; the figure compares methods, it is not an IoU.
- ``box_found_fraction``: the share of those boxes with at least FOUND coverage (0.2: about 40 % of the
  person's silhouette).
- ``false_px_per_frame``: mask pixels outside every person box (don't-care ones included), each box grown
  by GROW of its width and height on every side first (loose boxes, feet, a step between frames); shadows on
  the ground fall there too, so this counts them as false, as a planner would.
- ``off_people_fraction``: those pixels over all mask pixels.
- ``box_found_fraction_by_height``: box_found_fraction for boxes shorter than SMALL_BOX_H px and the rest: a
  model that sees the frame shrunk (128 x 96 for the shipped one) loses the far, small people first.
FOUND and GROW were set before any method was scored with them; SMALL_BOX_H after a first look at the learned
mask on PETS09 (BENCHMARKS "The change mask on PETS09").
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..core.geometry import pixel_span

FOUND = 0.2
GROW = 0.1
MIN_BOX_PX = 200
SMALL_BOX_H = 90  # px: PETS09's people are 60-90 px tall far from the camera (10-15 px at a 96-row model input)


@dataclasses.dataclass
class PeopleChangeScore:
    """Accumulates box-level change scores frame by frame; summary() gives the figures above."""

    coverages: list[float] = dataclasses.field(default_factory=list)
    heights: list[int] = dataclasses.field(default_factory=list)  # px, of each scored box (in the image)
    false_px: list[int] = dataclasses.field(default_factory=list)
    mask_px: int = 0

    def add(self, mask: np.ndarray, boxes: np.ndarray, scored: np.ndarray) -> None:
        """mask (H, W) bool; boxes (N, 4) x1y1x2y2 px, 0-based, every person in the frame; scored (N,) bool."""
        if mask.ndim != 2 or mask.dtype != bool:
            raise ValueError(f"mask must be (H, W) bool, got {mask.shape} {mask.dtype}")
        h, w = mask.shape
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        people = np.zeros((h, w), bool)
        for box, is_scored in zip(boxes, np.asarray(scored, bool).reshape(-1)):
            x1, y1, x2, y2 = pixel_span(box, w, h)
            if is_scored and (x2 - x1) * (y2 - y1) >= MIN_BOX_PX:
                self.coverages.append(float(mask[y1:y2, x1:x2].mean()))
                self.heights.append(y2 - y1)
            gx, gy = GROW * (box[2] - box[0]), GROW * (box[3] - box[1])
            x1, y1, x2, y2 = pixel_span(box + np.array([-gx, -gy, gx, gy]), w, h)
            people[y1:y2, x1:x2] = True
        false = int(np.count_nonzero(mask & ~people))
        self.false_px.append(false)
        self.mask_px += int(np.count_nonzero(mask))

    def summary(self) -> dict[str, Any]:
        cov, tall = np.asarray(self.coverages), np.asarray(self.heights) >= SMALL_BOX_H
        by_height = {f"under_{SMALL_BOX_H}px": cov[~tall], f"{SMALL_BOX_H}px_and_over": cov[tall]}
        return {
            "frames": len(self.false_px),
            "boxes": int(cov.size),
            "box_coverage_mean": float(cov.mean()) if cov.size else 0.0,
            "box_found_fraction": float((cov >= FOUND).mean()) if cov.size else 0.0,
            "false_px_per_frame": float(np.mean(self.false_px)) if self.false_px else 0.0,
            "off_people_fraction": float(sum(self.false_px) / self.mask_px) if self.mask_px else 0.0,
            "box_found_fraction_by_height": {k: float((v >= FOUND).mean()) if v.size else 0.0
                                             for k, v in by_height.items()},
            "boxes_by_height": {k: int(v.size) for k, v in by_height.items()},
            "found_threshold": FOUND,
            "box_grow": GROW,
        }
