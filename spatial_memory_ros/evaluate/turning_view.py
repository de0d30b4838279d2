"""A turning camera made from a still video: real footage seen by a camera that pans and tilts, with its pose.

No recording here has a moving camera and truth. A camera that only turns about its own centre sees, at any
rotation, an exact re-projection of what a still camera at the same place sees (a rotation homography
H = K_out R^T K_src^-1 holds for every depth), so a still video with truth becomes a turning camera's video
with truth: each frame is re-projected into a narrower virtual camera whose yaw and pitch follow sinusoids,
the truth's boxes go through the same homography, and the pose is known exactly. This is what a pan-tilt
head, or a robot turning in place with its camera on the turning axis, sees. It is not a robot driving past
things (no parallax) and the light of real motion is absent: a test of what change detection does when the
view turns, on real pixels. Motion blur can be added (`exposure_s`): the picture is then the mean of the
re-projections over the exposure, which is what a global shutter open that long records of a turning camera
(the source's own blur aside). A rolling shutter is not modelled.

The source camera's intrinsics are not in the video: a pinhole with `hfov_deg` and the principal point at
the centre is assumed; the virtual camera keeps its focal length and is smaller, so that it stays inside the
source picture (`fraction_outside` says whether it did). The pose puts the camera `height_m` above a floor
z = 0 and pitched down by `pitch_deg` (also assumed), so the floor memory gets a plausible plane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..core.types import CameraIntrinsics


def _rot_x(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rot_y(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


@dataclass(frozen=True)
class TurningView:
    """Yaw(t) = pan_deg sin(2 pi t / period_s), pitch(t) = tilt_deg sin(2 pi t / (1.7 period_s)), in the
    camera's own frame (optical: x right, y down, z forward); t in s of the source video."""

    source_size: tuple[int, int]  # (W, H) px of the source video
    out_size: tuple[int, int] = (512, 384)  # (w, h) px of the turning camera
    pan_deg: float = 8.0
    tilt_deg: float = 2.0
    period_s: float = 20.0
    hfov_deg: float = 60.0  # of the source camera (assumed)
    height_m: float = 6.0  # assumed mounting, for the pose only
    pitch_deg: float = 25.0
    exposure_s: float = 0.0  # shutter open this long around each frame's time: motion blur (0 = none)

    def __post_init__(self) -> None:
        if (min(*self.source_size, *self.out_size) <= 0 or self.period_s <= 0 or not 0 < self.hfov_deg < 180
                or self.exposure_s < 0):
            raise ValueError(f"bad turning view {self}")
        # past this the view's edge turns away from the video's plane (--pan-deg 500 was scored)
        if not (abs(self.pan_deg) < 90.0 - self.hfov_deg / 2.0 and abs(self.tilt_deg) < 45.0):
            raise ValueError(f"pan must be within +-{90.0 - self.hfov_deg / 2.0:g} deg and tilt within +-45 deg "
                             f"(got {self.pan_deg:g}, {self.tilt_deg:g})")

    @property
    def K_source(self) -> np.ndarray:
        W, H = self.source_size
        f = W / (2.0 * math.tan(math.radians(self.hfov_deg) / 2.0))
        return np.array([[f, 0.0, W / 2.0], [0.0, f, H / 2.0], [0.0, 0.0, 1.0]])

    @property
    def K(self) -> np.ndarray:
        """(3, 3) the turning camera's intrinsics: the source's focal length, centred in the smaller picture."""
        K = self.K_source.copy()
        K[0, 2], K[1, 2] = self.out_size[0] / 2.0, self.out_size[1] / 2.0
        return K

    @property
    def intrinsics(self) -> CameraIntrinsics:
        """K as the pipeline takes it (camera_info), with the turning camera's size."""
        K, (w, h) = self.K, self.out_size
        return CameraIntrinsics(K[0, 0], K[1, 1], K[0, 2], K[1, 2], w, h)

    def rotation(self, t: float) -> np.ndarray:
        """(3, 3) the turning camera's orientation in the still camera's frame at time t."""
        yaw = self.pan_deg * math.sin(2.0 * math.pi * t / self.period_s)
        pitch = self.tilt_deg * math.sin(2.0 * math.pi * t / (1.7 * self.period_s))
        return _rot_y(yaw) @ _rot_x(pitch)

    def homography(self, t: float) -> np.ndarray:
        """(3, 3) source pixel -> turning camera pixel at time t."""
        return self.K @ self.rotation(t).T @ np.linalg.inv(self.K_source)

    def pose(self, t: float) -> np.ndarray:
        """(4, 4) T_map_cam: the still camera's mounting (assumed) times the turn; the optical centre stays put."""
        # optical frame of a camera looking along map +x, level: x_cam = -y_map, y_cam = -z_map, z_cam = x_map
        level = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
        T = np.eye(4)
        T[:3, :3] = level @ _rot_x(-self.pitch_deg) @ self.rotation(t)
        T[2, 3] = self.height_m
        return T

    def frame(self, image: np.ndarray, t: float) -> np.ndarray:
        """The source frame as the turning camera sees it at time t (bilinear), blurred by the turn during
        exposure_s: the mean of re-projections at times spread over the exposure, about one per pixel of blur."""
        times = self._exposure_times(t)
        if len(times) == 1:
            return cv2.warpPerspective(image, self.homography(t), self.out_size, flags=cv2.INTER_LINEAR,
                                       borderMode=cv2.BORDER_CONSTANT)
        total = np.zeros((self.out_size[1], self.out_size[0], *image.shape[2:]), np.float32)
        for u in times:
            total += cv2.warpPerspective(image, self.homography(u), self.out_size, flags=cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_CONSTANT)
        return np.rint(total / len(times)).astype(image.dtype)

    def blur_px(self, t: float) -> float:
        """How far (px) the centre of the picture moves while the shutter is open around time t."""
        if self.exposure_s <= 0:
            return 0.0
        half = self.exposure_s / 2.0
        centre = np.array([[[self.out_size[0] / 2.0, self.out_size[1] / 2.0]]])
        a, b = (cv2.perspectiveTransform(centre, self.homography(u) @ np.linalg.inv(self.homography(t)))
                for u in (t - half, t + half))
        return float(np.linalg.norm(a - b))

    def _exposure_times(self, t: float) -> np.ndarray:
        n = int(np.clip(np.ceil(self.blur_px(t)) + 1, 1, 64))  # about a sample per pixel of travel
        if n == 1:
            return np.array([t])
        return t + self.exposure_s * (np.arange(n) / (n - 1) - 0.5)

    def fraction_outside(self, t: float) -> float:
        """The share of the turning camera's picture that falls outside the source picture at time t."""
        W, H = self.source_size
        inside = cv2.warpPerspective(np.full((H, W), 255, np.uint8), self.homography(t), self.out_size,
                                     flags=cv2.INTER_NEAREST)
        return float(np.mean(inside == 0))

    def boxes(self, boxes: np.ndarray, t: float, min_inside: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
        """(N, 4) source x1y1x2y2 px -> (the boxes around their corners in the turning camera, clipped to it;
        (N,) bool: at least min_inside of the re-projected box lies in the picture)."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            return boxes, np.zeros(0, bool)
        corners = np.stack([boxes[:, [0, 1]], boxes[:, [2, 1]], boxes[:, [2, 3]], boxes[:, [0, 3]]], axis=1)
        moved = cv2.perspectiveTransform(corners.reshape(-1, 1, 2), self.homography(t)).reshape(-1, 4, 2)
        full = np.column_stack([moved[..., 0].min(1), moved[..., 1].min(1), moved[..., 0].max(1), moved[..., 1].max(1)])
        w, h = self.out_size
        clipped = np.column_stack([np.clip(full[:, 0], 0, w), np.clip(full[:, 1], 0, h),
                                   np.clip(full[:, 2], 0, w), np.clip(full[:, 3], 0, h)])
        area = lambda b: np.maximum(b[:, 2] - b[:, 0], 0) * np.maximum(b[:, 3] - b[:, 1], 0)  # noqa: E731
        inside = area(clipped) >= min_inside * np.maximum(area(full), 1e-9)
        return clipped, inside
