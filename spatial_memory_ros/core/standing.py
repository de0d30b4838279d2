"""Does a moving region stand up from the floor? Aligned depth says, where a camera has it.

Everything the tracker follows as a mover (a person, a forklift, a robot) stands up from the floor; a mark on
the floor does not: a stain, a patch of light or a shadow that a background model calls changed, or floor
texture that a learned mask takes for an agent: some training runs of the shipped recipe box an unseen map's
floor by the hundreds (BENCHMARKS.md, "Another training run of the shipped recipe"). Depth tells the two apart
without learning anything: a floor mark's pixels, put in the map frame, all lie within a few centimetres of the
supporting plane.

A region lies flat when its box's pixels lie within ``min_standing_m`` of the plane: their 90th percentile height
under it and their 10th above minus it. Quantiles, not the extremes, so that a few noisy or mismatched depth
pixels decide nothing; the box, floor beside a mover included, can only make a region stand more easily. A
region below the plane (a ramp down, a map whose z = 0 is not the floor: ``lifting.plane_height_m``) is no
evidence and is kept. So is a region cut by the top border: a down-pitched camera sees an agent walking out
of its far edge by its feet alone, as low as a floor mark (on depot validation seed 200, 6 of the 7 regions
the check dropped from the shipped model were such slivers of agents). A low mover (a robot vacuum, about
9 cm) is shorter than the default limit: lower ``lifting.min_standing_m`` for such a site, or set it to 0.
"""

from __future__ import annotations

import numpy as np

from .geometry import pixel_span, transform_points
from .lifting import pixel_rays
from .types import CameraIntrinsics

HEIGHT_QUANTILES = (0.1, 0.9)  # the region's lowest and highest heights above the plane: these quantiles
MIN_DEPTH_SHARE = 0.3  # fewer of the box's pixels with depth than this: no verdict (the region is kept)
MAX_SAMPLES_PER_SIDE = 24  # the box is read on a grid of at most this many pixels a side (576 points)


def height_above_plane(
    box: np.ndarray,
    depth: np.ndarray,
    intr: CameraIntrinsics,
    T_map_cam: np.ndarray,
    plane_height_m: float = 0.0,
) -> tuple[float, float] | None:
    """The HEIGHT_QUANTILES (low, high), m, of the heights above z = plane_height_m (map frame) of box's pixels.

    box (4,) px x1, y1, x2, y2 (x2, y2 exclusive); depth (H, W) z-depth in m, aligned with the image (NaN or
    <= 0 invalid). None when the box lies off the image or under MIN_DEPTH_SHARE of its sampled pixels have
    depth: no evidence either way.
    """
    x1, y1, x2, y2 = pixel_span(box, depth.shape[1], depth.shape[0])
    if x2 == x1 or y2 == y1:
        return None
    xs = np.unique(np.linspace(x1, x2 - 1, min(x2 - x1, MAX_SAMPLES_PER_SIDE)).round().astype(np.int64))
    ys = np.unique(np.linspace(y1, y2 - 1, min(y2 - y1, MAX_SAMPLES_PER_SIDE)).round().astype(np.int64))
    gx, gy = np.meshgrid(xs, ys)
    z = depth[gy, gx].astype(np.float64).ravel()
    valid = np.isfinite(z) & (z > 0)
    if valid.sum() < MIN_DEPTH_SHARE * z.size:
        return None
    pixels = np.column_stack([gx.ravel()[valid], gy.ravel()[valid]])
    points = transform_points(T_map_cam, pixel_rays(pixels, intr) * z[valid, None])
    low, high = np.quantile(points[:, 2] - plane_height_m, HEIGHT_QUANTILES)
    return float(low), float(high)


def lies_flat(
    box: np.ndarray,
    depth: np.ndarray | None,
    intr: CameraIntrinsics | None,
    T_map_cam: np.ndarray | None,
    plane_height_m: float,
    min_standing_m: float,
) -> bool:
    """True when depth shows box's region within min_standing_m of the plane: a floor mark, not a mover. False
    without depth, intrinsics or pose, with too little depth in the box, for a region cut by the top border
    (box y1 <= 0: maybe an agent's feet), or with the check off (min_standing_m 0): a region is dropped only
    on evidence."""
    if min_standing_m <= 0 or depth is None or intr is None or T_map_cam is None or box[1] <= 0:
        return False
    heights = height_above_plane(box, depth, intr, T_map_cam, plane_height_m)
    return heights is not None and -min_standing_m < heights[0] and heights[1] < min_standing_m
