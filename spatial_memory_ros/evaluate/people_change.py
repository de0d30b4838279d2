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
Both thresholds were set before any method was scored with them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

FOUND = 0.2
GROW = 0.1
MIN_BOX_PX = 200


@dataclasses.dataclass
class PeopleChangeScore:
    """Accumulates box-level change scores frame by frame; summary() gives the figures above."""

    coverages: list[float] = dataclasses.field(default_factory=list)
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
            x1, y1, x2, y2 = _clip(box, w, h)
            if is_scored and (x2 - x1) * (y2 - y1) >= MIN_BOX_PX:
                self.coverages.append(float(mask[y1:y2, x1:x2].mean()))
            gx, gy = GROW * (box[2] - box[0]), GROW * (box[3] - box[1])
            x1, y1, x2, y2 = _clip(box + np.array([-gx, -gy, gx, gy]), w, h)
            people[y1:y2, x1:x2] = True
        false = int(np.count_nonzero(mask & ~people))
        self.false_px.append(false)
        self.mask_px += int(np.count_nonzero(mask))

    def summary(self) -> dict[str, float | int]:
        cov = np.asarray(self.coverages)
        return {
            "frames": len(self.false_px),
            "boxes": int(cov.size),
            "box_coverage_mean": float(cov.mean()) if cov.size else 0.0,
            "box_found_fraction": float((cov >= FOUND).mean()) if cov.size else 0.0,
            "false_px_per_frame": float(np.mean(self.false_px)) if self.false_px else 0.0,
            "off_people_fraction": float(sum(self.false_px) / self.mask_px) if self.mask_px else 0.0,
            "found_threshold": FOUND,
            "box_grow": GROW,
        }


def _clip(box: np.ndarray, w: int, h: int) -> tuple[int, int, int, int]:
    x1, y1 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
    x2, y2 = min(int(np.ceil(box[2])), w), min(int(np.ceil(box[3])), h)
    return x1, y1, max(x2, x1), max(y2, y1)
