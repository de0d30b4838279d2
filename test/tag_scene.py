"""Test helper: render AprilTags into a pinhole image with exactly known geometry.

Each tag (with a white quiet zone one cell wide) is warped by the homography that the camera
induces on the tag's plane, at 3x resolution, then box-filtered down, so edges are anti-aliased like
a real sensor's and the true corners are the projections of the 3D corners.
"""

from __future__ import annotations

import cv2
import numpy as np

from spatial_memory_ros.core.tags import render_tag, tag_object_points
from spatial_memory_ros.core.types import CameraIntrinsics

_SRC_CELL_PX = 32  # source resolution of one tag cell
_SUPERSAMPLE = 3


def make_intrinsics(width: int = 640, height: int = 480, f: float = 600.0) -> CameraIntrinsics:
    return CameraIntrinsics(
        fx=f, fy=f, cx=(width - 1) / 2.0, cy=(height - 1) / 2.0, width=width, height=height
    )


def pose(rotvec_deg: tuple[float, float, float], t: tuple[float, float, float]) -> np.ndarray:
    """T_cam_tag (4, 4) of a tag at t (m) that faces the camera upright, then turned by rotvec_deg.

    Facing the camera means the tag's z points back at it, so rotvec 0 is a 180 degree turn about x
    from the camera frame (an identity rotation would show the tag's back, mirrored).
    """
    R_tilt, _ = cv2.Rodrigues(np.radians(np.asarray(rotvec_deg, dtype=np.float64)))
    T = np.eye(4)
    T[:3, :3] = R_tilt @ np.diag([1.0, -1.0, -1.0])
    T[:3, 3] = t
    return T


def project_corners(T_cam_tag: np.ndarray, tag_size_m: float, intr: CameraIntrinsics) -> np.ndarray:
    """(4, 2) true pixel corners, aruco order."""
    rvec, _ = cv2.Rodrigues(T_cam_tag[:3, :3])
    pts, _ = cv2.projectPoints(tag_object_points(tag_size_m), rvec, T_cam_tag[:3, 3], intr.K, None)
    return pts.reshape(4, 2)


def render_scene(
    intr: CameraIntrinsics,
    tags: list[tuple[int, np.ndarray]],
    tag_size_m: float,
    background: np.ndarray | int = 128,
) -> np.ndarray:
    """(H, W, 3) uint8 BGR image of the tags [(tag_id, T_cam_tag)] over a grey background.

    background: a grey level or an (H, W) uint8 image to draw the tags over.
    """
    ss = _SUPERSAMPLE
    H, W = intr.height, intr.width
    if isinstance(background, np.ndarray):
        canvas = cv2.resize(background, (W * ss, H * ss), interpolation=cv2.INTER_NEAREST)
    else:
        canvas = np.full((H * ss, W * ss), int(background), dtype=np.uint8)
    tag_px = 8 * _SRC_CELL_PX
    src = np.full((tag_px + 2 * _SRC_CELL_PX,) * 2, 255, dtype=np.uint8)
    n = src.shape[0]
    src_corners = np.array([[-0.5, -0.5], [n - 0.5, -0.5], [n - 0.5, n - 0.5], [-0.5, n - 0.5]], np.float32)
    for tag_id, T_cam_tag in tags:
        src[_SRC_CELL_PX:-_SRC_CELL_PX, _SRC_CELL_PX:-_SRC_CELL_PX] = render_tag(tag_id, tag_px)
        # The quiet zone makes the warped square 10/8 of the tag.
        outer = project_corners(T_cam_tag, tag_size_m * 10.0 / 8.0, intr)
        dst = (ss * (outer + 0.5) - 0.5).astype(np.float32)  # pixel centres at 3x resolution
        Hm = cv2.getPerspectiveTransform(src_corners, dst)
        cv2.warpPerspective(
            src, Hm, (W * ss, H * ss), dst=canvas, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT
        )
    small = cv2.resize(canvas, (W, H), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
