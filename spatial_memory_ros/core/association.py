"""Association costs for the tracker: box overlap, appearance distance, and the re-identification gate.

Pure functions over arrays, so the Tracker keeps the state and this module the geometry.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

INFEASIBLE = 1e6  # cost of a forbidden pair; any real cost is in [0, 2]
# How far (in its own box heights per second unseen, plus half a height) a lost object may have gone when
# it is re-identified by looks: people walk about one body height per second; 1.5 allows a brisk walk,
# a poor velocity estimate and a box that shrinks or grows with distance.
REID_SPEED_HEIGHTS_PER_S = 1.5
# A re-identified box may be at most this many times taller or shorter than the lost one.
REID_MAX_SCALE = 2.0


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N, 4) with every box in b (M, 4): (N, M). Boxes are x1, y1, x2, y2."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)  # (N, M)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def cosine_distance(a: list[np.ndarray | None], b: list[np.ndarray | None]) -> np.ndarray:
    """1 - cosine similarity of unit vectors, (len(a), len(b)); NaN where either side has no appearance, or
    where the two come from different embedders (their lengths differ: with the learned change model and a
    class detector, a moving region's look has 64 numbers and a person's crop 1280), which say nothing of
    each other."""
    out = np.full((len(a), len(b)), np.nan)
    for size in {v.shape[-1] for v in a if v is not None}:
        ia, va = _known(a, size)
        ib, vb = _known(b, size)
        if ia and ib:
            out[np.ix_(ia, ib)] = 1.0 - np.stack(va).astype(np.float64) @ np.stack(vb).astype(np.float64).T
    return out


def _known(vectors: list[np.ndarray | None], size: int) -> tuple[list[int], list[np.ndarray]]:
    """Indices and vectors of the entries of this length (None: no appearance)."""
    picked = [(i, v) for i, v in enumerate(vectors) if v is not None and v.shape[-1] == size]
    return [i for i, _ in picked], [v for _, v in picked]


def reid_gate(predicted: np.ndarray, unseen_s: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(T, D) bool: where detection boxes (D, 4) could be lost tracks predicted at boxes (T, 4), unseen (T,) s.

    The centre must lie within a radius that grows with the time unseen, and the height must be similar.
    """
    th = np.maximum(predicted[:, 3] - predicted[:, 1], 1.0)  # (T,)
    dh = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)  # (D,)
    tc = (predicted[:, :2] + predicted[:, 2:]) / 2.0  # (T, 2)
    dc = (boxes[:, :2] + boxes[:, 2:]) / 2.0  # (D, 2)
    dist = np.linalg.norm(tc[:, None, :] - dc[None, :, :], axis=-1)  # (T, D)
    radius = th * (0.5 + REID_SPEED_HEIGHTS_PER_S * unseen_s)  # (T,)
    scale = dh[None, :] / th[:, None]
    return (dist <= radius[:, None]) & (scale <= REID_MAX_SCALE) & (scale >= 1.0 / REID_MAX_SCALE)


def solve(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost (row, column) pairs, leaving out infeasible ones."""
    if cost.size == 0:
        return []
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if cost[r, c] < INFEASIBLE]
