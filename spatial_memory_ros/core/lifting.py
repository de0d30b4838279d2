"""Image boxes -> map-frame points: aligned depth first, else a ground-plane assumption.

Both need the intrinsics and the camera pose T_map_cam; without them a detection stays unpositioned.
Tag detections are not lifted here: their PnP pose is better than either.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from .config import LiftingConfig
from .geometry import pixel_span, transform_points
from .types import CameraIntrinsics, Detection, Frame, PositionSource

# Depth is read in the box's central part only (this fraction of its width and height): the corners of
# a person's or a cup's box are mostly background, and the median is only robust below half outliers.
DEPTH_CORE_FRACTION = 0.5
_MIN_RAY_SLOPE = 1e-6  # |ray z| below this is parallel to the plane: no intersection


def pixel_rays(pixels: np.ndarray, intr: CameraIntrinsics) -> np.ndarray:
    """(N, 2) px -> (N, 3) camera-frame rays with z = 1 (so a ray times a z-depth is the 3D point)."""
    uv = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    if len(intr.distortion) > 0:
        xy = cv2.undistortPoints(uv.reshape(-1, 1, 2), intr.K, intr.dist_coeffs).reshape(-1, 2)
    else:
        xy = np.column_stack([(uv[:, 0] - intr.cx) / intr.fx, (uv[:, 1] - intr.cy) / intr.fy])
    return np.column_stack([xy, np.ones(len(xy))])


def depth_position(
    box: np.ndarray, depth: np.ndarray, intr: CameraIntrinsics, T_map_cam: np.ndarray
) -> np.ndarray | None:
    """(3,) map-frame point (m) on the box-centre ray at the median valid z-depth of the box's core.

    box (4,) px x1, y1, x2, y2; depth (H, W) float m (NaN or <= 0 invalid). None if no valid depth.
    """
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    half_w = max((box[2] - box[0]) * DEPTH_CORE_FRACTION / 2.0, 0.5)
    half_h = max((box[3] - box[1]) * DEPTH_CORE_FRACTION / 2.0, 0.5)
    core = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
    x1, y1, x2, y2 = pixel_span(core, depth.shape[1], depth.shape[0])
    if x2 == x1 or y2 == y1:  # the core lies off the image
        return None
    patch = depth[y1:y2, x1:x2]
    valid = patch[np.isfinite(patch) & (patch > 0)]
    if valid.size == 0:
        return None
    z = float(np.median(valid))
    # Pixel centres are at integer coordinates and x2 is exclusive: the centre pixel is at (x1 + x2 - 1) / 2.
    ray = pixel_rays(np.array([(box[0] + box[2] - 1) / 2.0, (box[1] + box[3] - 1) / 2.0]), intr)[0]
    return transform_points(T_map_cam, ray * z)[0]


def ground_plane_position(
    box: np.ndarray,
    intr: CameraIntrinsics,
    T_map_cam: np.ndarray,
    plane_height_m: float = 0.0,
    max_range_m: float = 20.0,
) -> np.ndarray | None:
    """(3,) map point where the ray through the box's bottom centre meets z = plane_height_m, or None.

    None when the ray points away from the plane (above the horizon), runs parallel to it, or hits it
    farther than max_range_m from the camera.
    """
    bottom = np.array([(box[0] + box[2] - 1) / 2.0, box[3] - 1.0])  # last pixel row inside the box
    return plane_point(bottom, intr, T_map_cam, plane_height_m, max_range_m)


def plane_point(
    pixel: np.ndarray,
    intr: CameraIntrinsics,
    T_map_cam: np.ndarray,
    plane_height_m: float = 0.0,
    max_range_m: float = 20.0,
) -> np.ndarray | None:
    """(3,) map point where the ray through pixel (2,) meets z = plane_height_m; None as for ground_plane_position."""
    ray_cam = pixel_rays(np.asarray(pixel, dtype=np.float64), intr)[0]
    origin = T_map_cam[:3, 3]
    ray = T_map_cam[:3, :3] @ ray_cam  # map frame, not normalised
    if abs(ray[2]) < _MIN_RAY_SLOPE:
        return None
    t = (plane_height_m - origin[2]) / ray[2]
    if t <= 0 or t * np.linalg.norm(ray) > max_range_m:
        return None
    return origin + t * ray


def lift(det: Detection, frame: Frame, config: LiftingConfig, *, seen_box: np.ndarray | None = None) -> Detection:
    """det with a map-frame position from depth (DEPTH) or the ground plane (GROUND_PLANE) if it has none.

    seen_box: (4,) px, the part of det.box that shows the object, where the box was grown past it (a
    learned motion box completed to the whole agent beyond the image border, model.boxes); depth and the
    floor contact are read there. The grown box's central part can be mostly floor beside or behind the
    visible part, and its bottom centre off the feet. None = det.box.
    """
    intr, T = frame.intrinsics, frame.T_map_cam
    if det.position is not None or intr is None or T is None:
        return det
    box = det.box if seen_box is None else seen_box
    if frame.depth is not None:
        p = depth_position(box, frame.depth, intr, T)
        if p is not None:
            return dataclasses.replace(det, position=p, position_source=PositionSource.DEPTH)
    if config.ground_plane:
        p = ground_plane_position(box, intr, T, config.plane_height_m, config.max_range_m)
        if p is not None:
            return dataclasses.replace(det, position=p, position_source=PositionSource.GROUND_PLANE)
    return det
