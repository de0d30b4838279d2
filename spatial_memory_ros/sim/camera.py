"""Camera poses and the floor-plane geometry the renderer needs (homographies, depth, projection).

Camera frame = optical frame (x right, y down, z forward); map frame z up; floor z = 0.
"""

from __future__ import annotations

import bisect
import math

import cv2
import numpy as np

from ..core.geometry import invert, transform_points
from ..core.types import CameraIntrinsics
from .spec import CameraSpec

NEAR_M = 0.05  # points closer than this in front of the camera are clipped


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """T_map_cam for a camera at `eye` whose optical axis points at `target`, image x horizontal."""
    eye = np.asarray(eye, dtype=np.float64)
    f = np.asarray(target, dtype=np.float64) - eye
    f /= np.linalg.norm(f)
    up = np.array([0.0, 0.0, 1.0])
    if abs(f @ up) > 0.999:  # looking straight down/up: any horizontal image x will do
        up = np.array([0.0, 1.0, 0.0])
    x = np.cross(f, up)
    x /= np.linalg.norm(x)
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, np.cross(f, x), f, eye
    return T


def mount_pose(x: float, y: float, yaw: float, height: float, pitch_deg: float) -> np.ndarray:
    """T_map_cam of a forward camera at `height`, tilted `pitch_deg` down, on a robot at (x, y, yaw)."""
    p = math.radians(pitch_deg)
    eye = np.array([x, y, height])
    f = np.array([math.cos(p) * math.cos(yaw), math.cos(p) * math.sin(yaw), -math.sin(p)])
    return look_at(eye, eye + f)


class CameraPath:
    """Camera pose as a function of time: fixed, or driving a closed route with turns in place (and, with
    stop_s, a stand at each corner before the turn)."""

    def __init__(self, spec: CameraSpec) -> None:
        self.spec = spec
        if spec.mode == "static":
            self._static = look_at(np.array(spec.position), np.array(spec.look_at))
            return
        if spec.mode != "patrol":
            raise ValueError(f"camera mode must be 'static' or 'patrol', not {spec.mode!r}")
        if len(spec.route) < 2 or spec.speed <= 0 or spec.yaw_rate_deg <= 0 or not 0 <= spec.stop_s < math.inf:
            raise ValueError("a patrol camera needs >= 2 route points, speed > 0, yaw_rate_deg > 0 and a finite "
                             "stop_s >= 0")
        pts = [np.asarray(p, dtype=np.float64) for p in spec.route]
        n = len(pts)
        # Legs alternate: drive segment i, (stand stop_s,) then turn in place towards segment i + 1 (the route is a
        # loop).
        self._legs: list[tuple[float, np.ndarray, np.ndarray, float, float]] = []
        starts = [0.0]
        yaws = [math.atan2(*(pts[(i + 1) % n] - pts[i])[::-1]) for i in range(n)]
        for i in range(n):
            a, b = pts[i], pts[(i + 1) % n]
            drive = float(np.linalg.norm(b - a)) / spec.speed
            self._legs.append((starts[-1], a, b, yaws[i], yaws[i]))
            starts.append(starts[-1] + drive)
            if spec.stop_s > 0:
                self._legs.append((starts[-1], b, b, yaws[i], yaws[i]))
                starts.append(starts[-1] + spec.stop_s)
            turn = (yaws[(i + 1) % n] - yaws[i] + math.pi) % (2 * math.pi) - math.pi
            self._legs.append((starts[-1], b, b, yaws[i], yaws[i] + turn))
            starts.append(starts[-1] + abs(turn) / math.radians(spec.yaw_rate_deg))
        self._starts = starts
        self.period_s = starts[-1]

    @property
    def is_static(self) -> bool:
        return self.spec.mode == "static"

    def pose(self, t: float) -> np.ndarray:
        """(4, 4) T_map_cam at time t (s)."""
        if self.spec.mode == "static":
            return self._static.copy()
        t = t % self.period_s
        i = max(0, bisect.bisect_right(self._starts, t) - 1)
        i = min(i, len(self._legs) - 1)
        t0, a, b, yaw0, yaw1 = self._legs[i]
        dur = self._starts[i + 1] - t0
        u = 0.0 if dur <= 0 else min(1.0, (t - t0) / dur)
        xy = a + u * (b - a)
        return mount_pose(xy[0], xy[1], yaw0 + u * (yaw1 - yaw0), self.spec.height_m, self.spec.pitch_deg)


def floor_homography(K: np.ndarray, T_map_cam: np.ndarray) -> np.ndarray:
    """(3, 3) H with image_px ~ H @ (x, y, 1) for floor points (x, y, 0) in the map frame."""
    T = invert(T_map_cam)
    return K @ np.column_stack([T[:3, 0], T[:3, 1], T[:3, 3]])


def floor_depth(intr: CameraIntrinsics, T_map_cam: np.ndarray, max_range_m: float = 60.0) -> np.ndarray:
    """(H, W) float32 z-depth (m) of the floor seen at each pixel centre; NaN above the horizon/too far.

    A pixel's ray is d = K^-1 (u, v, 1) (so d_z = 1 and the ray parameter is the z-depth); it hits
    z_map = 0 at s = -c_z / (R_map_cam[2] @ d), and the denominator is affine in (u, v).
    """
    R, c = T_map_cam[:3, :3], T_map_cam[:3, 3]
    r = R[2]
    a, b = r[0] / intr.fx, r[1] / intr.fy
    c0 = r[2] - a * intr.cx - b * intr.cy
    u = np.arange(intr.width, dtype=np.float32)
    v = np.arange(intr.height, dtype=np.float32)
    denom = (np.float32(b) * v)[:, None] + (np.float32(a) * u + np.float32(c0))[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.float32(-c[2]) / denom
    depth[~((depth > 0) & (depth < max_range_m))] = np.nan
    return depth


def project_hull(K: np.ndarray, T_map_cam: np.ndarray, vertices: np.ndarray) -> np.ndarray | None:
    """Convex image polygon (M, 2) float32 of a convex solid (vertices (N, 3)), clipped at the near plane.

    The clipped solid is the hull of its vertices in front of the camera plus the near-plane crossings of
    every vertex pair: crossings of inner segments lie inside the solid, so they do not change the hull.
    """
    pc = transform_points(invert(T_map_cam), vertices)
    front = pc[:, 2] >= NEAR_M
    if not front.any():
        return None
    pts = [pc[front]]
    if not front.all():
        i, j = np.nonzero(front[:, None] & ~front[None, :])
        za, zb = pc[i, 2], pc[j, 2]
        s = (za - NEAR_M) / (za - zb)
        pts.append(pc[i] + s[:, None] * (pc[j] - pc[i]))
    p = np.concatenate(pts)
    uv = (p[:, :2] / p[:, 2:3]) * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])
    uv = np.clip(uv, -1e5, 1e5).astype(np.float32)  # keeps cv2's fixed-point polygon fill in range
    return cv2.convexHull(uv).reshape(-1, 2)
