"""Rigid transforms as (4, 4) matrices; quaternions (x, y, z, w) as in ROS; a box's pixels in an image.

scipy's Rotation does the quaternion work so that normalisation and slerp are not hand-written.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial.transform import Rotation, Slerp


def make_transform(translation: ArrayLike, quaternion: ArrayLike) -> np.ndarray:
    """(3,) m + (4,) xyzw -> (4, 4). The quaternion is normalised; a zero quaternion raises ValueError."""
    T = np.eye(4)
    T[:3, :3] = Rotation.from_quat(np.asarray(quaternion, dtype=np.float64)).as_matrix()
    T[:3, 3] = np.asarray(translation, dtype=np.float64)
    return T


# Farther from the map origin than any map on Earth (UTM northings are ~1e7 m): a broken pose. The pipeline and the
# learned model's step both refuse it; in the model it made the memory NaN for good.
MAX_POSE_OFFSET_M = 1e8


def is_rigid(T: np.ndarray) -> bool:
    """Whether a finite (4, 4) T is a rigid transform: its 3 x 3 part a rotation (orthonormal, determinant 1, to
    1e-3; a float32 quaternion's is ~1e-7 off) and its last row 0 0 0 1. A scaled or mirrored one would put every
    sighting somewhere else, and in the learned model's step made the memory NaN."""
    R = T[:3, :3]
    return (np.allclose(R @ R.T, np.eye(3), atol=1e-3) and abs(float(np.linalg.det(R)) - 1.0) <= 1e-3
            and np.allclose(T[3], [0.0, 0.0, 0.0, 1.0]))


def split_transform(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(4, 4) -> ((3,) translation m, (4,) quaternion xyzw)."""
    return T[:3, 3].copy(), Rotation.from_matrix(T[:3, :3]).as_quat()


def invert(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid transform, without a general matrix inverse."""
    R = T[:3, :3]
    out = np.eye(4)
    out[:3, :3] = R.T
    out[:3, 3] = -R.T @ T[:3, 3]
    return out


def transform_points(T: np.ndarray, points: ArrayLike) -> np.ndarray:
    """Apply T to (N, 3) points; returns (N, 3)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return pts @ T[:3, :3].T + T[:3, 3]


def project_points(K: np.ndarray, T_map_cam: np.ndarray, points: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Pinhole projection of map points (N, 3) -> (pixels (N, 2), z-depth (N,) m); the pixels mean nothing
    where z <= 0 (behind the camera), which the caller checks. K (3, 3); distortion is not applied."""
    pc = transform_points(invert(T_map_cam), points)
    z = pc[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = (pc[:, :2] / z[:, None]) * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])
    return uv, z


def scale_intrinsics(K: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """(3, 3) intrinsics of the image resized by sx, sy. Pixel centres map to pixel centres:
    u_small + 0.5 = (u + 0.5) * s, so cx_small = (cx + 0.5) * s - 0.5."""
    return np.array([[K[0, 0] * sx, 0.0, (K[0, 2] + 0.5) * sx - 0.5],
                     [0.0, K[1, 1] * sy, (K[1, 2] + 0.5) * sy - 0.5],
                     [0.0, 0.0, 1.0]])


def same_intrinsics(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two (3, 3) camera matrices of one image size are the same lens setting. The tolerance (1e-6,
    relative and absolute) passes a calibration's float round trips and nothing a zoom could do: every user (change
    reference, still background, the tracker's turn compensation) restarts or stops on a zoom, so all must agree."""
    return bool(np.allclose(a, b, rtol=1e-6, atol=1e-6))


def interpolate(T0: np.ndarray, T1: np.ndarray, alpha: float) -> np.ndarray:
    """Pose between T0 (alpha=0) and T1 (alpha=1): linear translation, slerp rotation."""
    rots = Rotation.from_matrix(np.stack([T0[:3, :3], T1[:3, :3]]))
    out = np.eye(4)
    out[:3, :3] = Slerp([0.0, 1.0], rots)([float(alpha)]).as_matrix()[0]
    out[:3, 3] = (1.0 - alpha) * T0[:3, 3] + alpha * T1[:3, 3]
    return out


def pose_delta(T0: np.ndarray, T1: np.ndarray) -> tuple[float, float]:
    """(translation m, rotation deg) between two poses. The angle comes from the relative rotation's trace
    (the same angle as its rotation vector, to 1e-9 deg): every camera-moved check calls this each frame, and
    scipy's matrix-to-rotation-vector round trip cost about 9 times as much."""
    R = T0[:3, :3].T @ T1[:3, :3]
    cos = float(np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0))
    return float(np.linalg.norm(T1[:3, 3] - T0[:3, 3])), float(np.degrees(np.arccos(cos)))


def pixel_span(box: ArrayLike, width: int, height: int) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) ints: the pixels box (x1, y1, x2, y2 px, x2/y2 exclusive) touches, clipped to a width x
    height image, for slicing [y1:y2, x1:x2]; x2 >= x1 and y2 >= y1 (empty off the image, never a negative end,
    which would slice from the far side)."""
    b = np.asarray(box, dtype=np.float64)
    x1, y1 = max(int(np.floor(b[0])), 0), max(int(np.floor(b[1])), 0)
    x2, y2 = min(int(np.ceil(b[2])), width), min(int(np.ceil(b[3])), height)
    return x1, y1, max(x2, x1), max(y2, y1)
