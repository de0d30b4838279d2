"""Motion boxes from a change mask: one per connected region, completed to the whole agent at the image border.

A mask region only covers what is in view. An agent cut by the top, left or right image border (walking
into or out of a patrolling camera's view, which is where most of them are seen) is boxed by the
benchmark's truth, as by the MOT convention, by its whole projected outline clipped to the image: wider,
and often taller, than the part in view. On warehouse patrol training seed 1001 (10 min), 52 of the 99
truth boxes the learned method missed were of such cut agents, whose visible part's box has IoU < 0.5
with the truth even when exact; most also cost a false positive (the visible part's box).

complete_at_border() infers the hidden part: the region's bottom corners lie on the floor where the agent
stands (the ray through each meets z = 0 in the map frame), the agent is a vertical prism of height_m
over them, and its box is the box of that prism's projection and the region's own box, clipped to the
image. A region cut by the bottom border (an agent right beside the camera) has no visible floor contact,
but the agent stands nearer than the floor seen at the bottom row, so its head is higher in the image than
that of a prism standing there: the prism on the bottom row's floor gives a box no taller than the truth.
(Its width is an estimate either way.) The learned mask often catches only the legs of such an agent; on
warehouse patrol train seeds 1004-1006 this gained 0.3-2.1 det F1 points (home 1004: none). Agents that
fill most of the view are still missed.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core.geometry import project_points

_MIN_RAY_SLOPE = 1e-3  # |z| of a unit-ish viewing ray below which it never meets the floor
_NEAR_M = 0.1  # prism points closer to the camera plane than this are not projected
# side_fleck's limits, set on the regions of held-out warehouse patrol 101 (where the flecks were) and checked
# on training seeds 1004-1006 (warehouse) and 1004 (home) and held-out warehouse patrol 100 and 102: no region of
# those, agent or not, is a fleck by them; on 101 they take 28 false regions and no agent's.
FLECK_HEIGHT_SHARE = 0.2
FLECK_FILL = 0.7
# trim_bottom's share of a mask cell, chosen on training seeds 1004-1006 (warehouse) and 1004 (home), patrol:
# BENCHMARKS "A region's bottom edge".
BOTTOM_TRIM_CELLS = 0.4
# agreed_regions' share: on still-camera training seed 1004 (warehouse and home, 3 min) every change-head region
# had at least 0.81 of its pixels in the still head's mask; the demo's painted line, lit anew, had none.
AGREE_SHARE = 0.5


def mask_regions(mask: np.ndarray, min_area_px: int) -> list[tuple[np.ndarray, int]]:
    """(box (4,) x1, y1, x2, y2 px (x2/y2 exclusive), pixel count) of the mask's 8-connected regions of at least
    min_area_px pixels, largest first."""
    _n, _labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    found = []
    for i in np.argsort(-stats[1:, cv2.CC_STAT_AREA]) + 1:
        x, y, bw, bh, area = stats[i]
        if area >= min_area_px:
            found.append((np.array([x, y, x + bw, y + bh], dtype=np.float64), int(area)))
    return found


def agreed_regions(own: np.ndarray, corrected: np.ndarray) -> np.ndarray:
    """own (H, W) uint8 255/0 without its 8-connected regions of which less than AGREE_SHARE of the pixels is in
    corrected (H, W), the still head's mask of the same frame.

    A still camera's motion boxes come from the change head's own regions (runtime.finish): the still head,
    which compares the frame with the camera's background at a finer cell, corrects the mask but also marks
    scene changes that do not move. Where the change head marks a region the still head finds unchanged, the two
    disagree, and the background is the better witness: in the demo a painted line along the bottom border,
    brighter as the light changed, was marked by the change head for four seconds, and border completion made
    each sliver an agent (15 false tracks). Real agents' regions were 0.81-1.0 inside the still head's mask."""
    n, labels, _stats, _ = cv2.connectedComponentsWithStats(own, connectivity=8)
    if n <= 1:
        return own
    inside = np.bincount(labels[corrected > 0], minlength=n)
    total = np.bincount(labels.ravel(), minlength=n)
    keep = inside >= AGREE_SHARE * total
    keep[0] = False  # the background label
    return np.where(keep[labels], own, np.uint8(0)).astype(np.uint8)


def complete_at_border(
    box: np.ndarray, K: np.ndarray, T_map_cam: np.ndarray, width: int, height: int, height_m: float
) -> np.ndarray:
    """(4,) box of the whole agent whose visible region has box (4,) px, for a camera K (3, 3) at T_map_cam
    (4, 4) (optical frame in the map, z up) with width x height px images.

    Only a box touching a border is changed; it only ever grows. A box touching the bottom one stands on
    the floor seen at the bottom row (see the module docstring). height_m is an effective agent height:
    tuned on training seeds, 1.0-1.7 m all gave the same detection F1 there (the sim's people are 1.75-1.8
    m, its forklifts 2.1 m), taller ones less, because the footprint is taken at the region's near (bottom)
    edge; for bottom-cut regions 1.4 and 1.8 m gave the same, 2.4 m nothing (its top is behind the camera).
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    cut = y1 <= 0.0 or x1 <= 0.0 or x2 >= width or y2 >= height
    if not cut or height_m <= 0.0:
        return box
    feet = [_floor_point(u, y2, K, T_map_cam) for u in (x1, x2)]  # the box's bottom corners
    if feet[0] is None or feet[1] is None:
        return box
    ground = np.stack([feet[0], feet[1]])  # (2, 3)
    prism = np.vstack([ground, ground + np.array([0.0, 0.0, height_m])])  # (4, 3)
    uv, z = project_points(K, T_map_cam, prism)
    if (z < _NEAR_M).any():  # part of the prism behind (or at) the camera plane
        return box
    lo = np.maximum(np.minimum(uv.min(axis=0), [x1, y1]), 0.0)
    hi = np.minimum(np.maximum(uv.max(axis=0), [x2, y2]), [float(width), float(height)])
    return np.array([lo[0], lo[1], hi[0], hi[1]], dtype=np.float64)


def side_fleck(seen: np.ndarray, area_px: int, whole: np.ndarray, height: int) -> bool:
    """Whether a region (box seen (4,) px, area_px pixels) completed to whole (4,) by complete_at_border is a
    fleck at a side border rather than an agent: not cut by the bottom border, spanning less than
    FLECK_HEIGHT_SHARE of the whole agent's height, and filling less than FLECK_FILL of its own box.

    An agent cut by the left or right border shows a solid column from its feet up (to its head or the top
    border); completion trusts that the region's bottom is its feet and stands a whole agent on it. On held-out
    warehouse patrol 101 the network's regions marked a ragged sliver of a painted line at the right border
    on two passes (20-30 frames each), and each became a full-height agent box: 28 false agent boxes, half the
    run's false positives (BENCHMARKS "A fleck at the border"). Real agents entering by a side border with only
    their legs in the mask cover as little height (0.10-0.29 of it in the runs looked at), but as a solid
    blob (fill 0.67-0.83); most slivers filled 0.32-0.69 (a few more, and stay). Regions cut by the bottom
    border (an agent beside the camera, often only its legs) are never flecks here.
    """
    if seen[3] >= height:
        return False
    short = (seen[3] - seen[1]) < FLECK_HEIGHT_SHARE * (whole[3] - whole[1])
    box_px = max(1.0, float((seen[2] - seen[0]) * (seen[3] - seen[1])))
    return bool(short and area_px / box_px < FLECK_FILL)


def trim_bottom(box: np.ndarray, cell_px: float, height: int) -> np.ndarray:
    """(4,) region box px with its bottom edge raised by BOTTOM_TRIM_CELLS of a mask cell (cell_px image px
    per cell of the network's mask), unless the region is cut by the bottom border (height px).

    The thresholded, bilinearly upsampled mask reaches a little below an agent's feet, and only there: on
    warehouse patrol training seeds 1004-1006 the matched regions' bottom edges sat a median 0.7-2.4 px (of
    240) below the truth's, their tops and sides 0 px off (median), and 3.1-3.4 px below for agents whose feet
    are near the top border and show only a ~20 px sliver, where the excess costs the box its IoU >= 0.5
    match. The bottom edge is also the region's floor contact (complete_at_border, 3D lifting), which the
    excess puts nearer the camera than the feet. Real people do the same: on PETS09 the tracked boxes' bottoms
    sat a median 2.0 px (of 576) below the truth's standing and 2.7 px (of 384) panning, where this trimmed 4.8 and
    3.2 px by the change head's cell, and trims half that since a region the still head's finer mask gives is
    trimmed by its cell (runtime.finish): the share is a compromise, not a law (BENCHMARKS "A region's bottom edge",
    "A still-head region trimmed by its own cell").
    """
    if box[3] >= height:
        return box
    out = np.array(box, dtype=np.float64)
    out[3] = max(out[1] + 1.0, out[3] - BOTTOM_TRIM_CELLS * cell_px)
    return out


def box_embeddings(emb: np.ndarray, size: tuple[int, int], boxes: np.ndarray) -> np.ndarray:
    """(M, 4) float64 px boxes in an image of size (W, H) -> (M, E) float32: each box's L2-normalised mean of
    the (rows, cols, E) patch embeddings whose centres lie in it (the nearest patch for a box smaller than a
    patch). LearnedChangeDetector.embed_boxes."""
    rows, cols = emb.shape[:2]
    w, h = size
    out = np.zeros((len(boxes), emb.shape[-1]), dtype=np.float32)
    cx = (np.arange(cols) + 0.5) * w / cols
    cy = (np.arange(rows) + 0.5) * h / rows
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        ix = np.flatnonzero((cx >= x1) & (cx < x2))
        iy = np.flatnonzero((cy >= y1) & (cy < y2))
        if len(ix) == 0:
            ix = np.array([int(np.clip((x1 + x2) / 2 * cols / w, 0, cols - 1))])
        if len(iy) == 0:
            iy = np.array([int(np.clip((y1 + y2) / 2 * rows / h, 0, rows - 1))])
        v = emb[np.ix_(iy, ix)].reshape(-1, emb.shape[-1]).mean(axis=0)
        out[i] = v / max(float(np.linalg.norm(v)), 1e-9)
    return out


def _floor_point(u: float, v: float, K: np.ndarray, T_map_cam: np.ndarray) -> np.ndarray | None:
    """(3,) map point where the ray through image point (u, v) px meets z = 0, or None above the horizon."""
    ray = T_map_cam[:3, :3] @ np.array([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], 1.0])
    if ray[2] > -_MIN_RAY_SLOPE:
        return None
    return T_map_cam[:3, 3] - T_map_cam[2, 3] / ray[2] * ray
