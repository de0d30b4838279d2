"""A made-up camera for a video that comes with no camera_info and no depth (opencv-doc's cup.mp4, box.mp4).

The pipeline gives a class detection a position only with intrinsics, a camera pose, and depth or a
ground plane. Here all three are assumed: a level pinhole camera of a given horizontal field of view,
fixed at the map origin, looking at a wall-parallel plane at a given distance (every pixel at that
depth), so the depth lifting places each box centre on that plane. The hand in these clips holds the
object in the air in front of a wall; the ground-plane lifting would read raising it as moving it away
from the camera, so the made-up metres per pixel would change with the image row.

The positions are not metric. What is exact: projecting a remembered position back into the image with
the same camera returns the pixel it was lifted from, whatever the field of view and the distance (the
assumed fx, cx and depth cancel in that round trip), so "does the current answer lie on the object in
the image" is a fair test of the memory. What does not cancel: the memory's distances (place_radius_m,
displaced_distance_m) are metres of this assumed scale; metres_per_px says how many pixels they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.errors import BadInputError
from ..core.geometry import project_points
from ..core.types import CameraIntrinsics

# Camera optical frame (x right, y down, z forward) -> map (x forward, y left, z up): a level camera.
_R_MAP_CAM = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


@dataclass(frozen=True)
class AssumedCamera:
    """A level pinhole camera at the map origin looking at a plane distance_m away.

    hfov_deg 60: a typical phone or webcam main camera. distance_m 0.45: where a 20 cm tumbler spans the
    ~250 px the thermos in cup.mp4 does at that field of view (its real size is not known).
    """

    hfov_deg: float = 60.0
    distance_m: float = 0.45

    def __post_init__(self) -> None:
        if not 0.0 < self.hfov_deg < 180.0 or not self.distance_m > 0.0:
            raise BadInputError(f"assumed camera needs 0 < hfov_deg < 180 and distance_m > 0, got {self}")

    def intrinsics(self, width: int, height: int) -> CameraIntrinsics:
        """Square pixels, principal point at the image centre, no distortion."""
        f = (width / 2.0) / math.tan(math.radians(self.hfov_deg) / 2.0)
        return CameraIntrinsics(fx=f, fy=f, cx=(width - 1) / 2.0, cy=(height - 1) / 2.0, width=width, height=height)

    @property
    def T_map_cam(self) -> np.ndarray:  # (4, 4)
        T = np.eye(4)
        T[:3, :3] = _R_MAP_CAM
        return T

    def depth(self, width: int, height: int) -> np.ndarray:
        """(H, W) float32 m: the assumed plane's depth everywhere."""
        return np.full((height, width), self.distance_m, dtype=np.float32)

    def metres_per_px(self, width: int) -> float:
        """Assumed metres per pixel on the plane, at the image centre."""
        return self.distance_m / self.intrinsics(width, 1).fx

    def project(self, points_map: np.ndarray, width: int, height: int) -> np.ndarray:
        """(N, 3) map points (m) -> (N, 2) pixels (u, v) in this camera; NaN for points behind it."""
        points = np.asarray(points_map, dtype=np.float64).reshape(-1, 3)  # one (3,) point is one row
        uv, z = project_points(self.intrinsics(width, height).K, self.T_map_cam, points)
        uv[z <= 0] = np.nan
        return uv
