"""A localiser's error on the simulator's camera pose: the bench's methods get a pose a little off.

The simulator hands every method the exact camera pose, which no robot has: a localiser (AMCL, a SLAM
system) gives a pose that jitters by a fraction of a degree and a centimetre or two from frame to frame,
and a camera on a moving base shakes. Anything that compares what it sees now with what it saw from
another pose (the floor memory, a turning background, the item memory's places) is only as good as that
pose, and a benchmark with exact poses cannot say how much it relies on them.

This adds independent Gaussian jitter to each frame's pose: a rotation about each of the camera's three
axes (vibration and heading error) and a shift along the map's x and y (a ground robot knows its height).
The truth stays exact; only the methods' input moves. Independent per frame is the harsh case for a
frame-to-frame comparison (a smooth bias would move the whole view together), so it bounds what a real
localiser's error of that size costs. Seeded by the scene seed and the frame index: every method sees the
same error, and a rerun the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..core.errors import BadInputError

_STREAM = 0x905E  # the rng stream of the pose error, apart from the scene's own


@dataclass(frozen=True)
class PoseError:
    """Standard deviations of the error; zero for both gives the exact pose back."""

    rotation_deg: float = 0.0  # about each camera axis
    translation_m: float = 0.0  # along each of the map's x and y
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("rotation_deg", "translation_m"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0.0):
                raise BadInputError(f"pose error {name} must be a finite number >= 0, got {value}")

    @property
    def active(self) -> bool:
        return self.rotation_deg > 0.0 or self.translation_m > 0.0

    def apply(self, T_map_cam: np.ndarray, index: int) -> np.ndarray:
        """The pose of frame `index` as the localiser reports it: T_map_cam (4, 4) with this frame's error."""
        if not self.active:
            return T_map_cam.copy()
        rng = np.random.default_rng([self.seed, _STREAM, index])
        rotvec = np.radians(self.rotation_deg) * rng.standard_normal(3)
        shift = self.translation_m * rng.standard_normal(2)
        R_err, _ = cv2.Rodrigues(rotvec)
        out = T_map_cam.copy()
        out[:3, :3] = T_map_cam[:3, :3] @ R_err  # about the camera's own axes
        out[:2, 3] += shift
        return out
