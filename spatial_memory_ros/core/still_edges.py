"""Sharper edges for a coarse change mask while the camera stands still, from a per-pixel background model.

The learned network predicts change per patch; brought back to the image, its mask spills a few pixels
past an agent's outline (change precision 0.94 on the bench's mast camera). A camera that does not move
can keep a background model per pixel (OpenCV's MOG2, as the bench's mog2 baseline), whose foreground
follows outlines to the pixel but is fooled by a light switching, absorbs whatever stands still long
enough and means nothing for a moving camera. So it is only allowed to take pixels away, and only near
the mask's edge: the mask's core (the mask eroded by ``ring_px``) always stays, and in the ring between
core and edge a pixel stays when the background model calls it foreground too. Where that model is
wrong the way it usually is (a light switched, the model just started), it calls everything foreground
and the mask stays as the network made it.

A camera pose that moves more than ``move_m`` or ``move_deg`` from where the camera stood drops the model
(the pipeline's rule for its own background model); a new one starts once the camera stands still again,
so a patrolling camera costs nothing. A frame without a pose counts as still.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .errors import BadInputError
from .geometry import pose_delta

_REFERENCE_WIDTH = 320  # ring_px is given for an image this wide and scales with the width


@dataclass(frozen=True)
class StillEdgesConfig:
    """How the background model trims the mask's edges."""

    ring_px: float = 3.0  # the band inside the mask's edge that may be trimmed, px at 320 px image width
    move_m: float = 0.05  # camera moves farther than this (m) from where the model started: restart it
    move_deg: float = 2.0  # or turns more than this (deg)
    # frames a new model learns before it may trim: a model of one or two frames knows little, and a
    # camera that only paused between moves is not still
    min_frames: int = 5

    def validate(self) -> StillEdgesConfig:
        if not (self.ring_px > 0 and self.move_m > 0 and self.move_deg > 0 and self.min_frames >= 1):
            raise ValueError("still edges: ring_px, move_m and move_deg must be > 0, min_frames >= 1")
        return self


class StillEdges:
    """One camera's background model; refine() trims a mask's edges and learns the frame."""

    def __init__(self, config: StillEdgesConfig | None = None) -> None:
        self.config = (config or StillEdgesConfig()).validate()
        self._model: cv2.BackgroundSubtractorMOG2 | None = None
        self._frames = 0  # frames the model has learned
        self._pose: np.ndarray | None = None  # where the camera stands since it last moved; None: no pose yet
        self._size: tuple[int, int] | None = None
        self._kernel: tuple[int, np.ndarray] | None = None

    def reset(self) -> None:
        """Forget the background (the next frame starts a new model)."""
        self._model = self._pose = self._size = None

    def refine(self, image_bgr: np.ndarray, mask: np.ndarray, T_map_cam: np.ndarray | None = None) -> np.ndarray:
        """mask (H, W) uint8, non-zero = changed, with the pixels of its edge band that the background model
        calls background removed; the background model learns the frame. Returns a new (H, W) uint8 (0/255)."""
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
            raise BadInputError(f"image must be (H, W, 3) uint8, got {image_bgr.shape} {image_bgr.dtype}")
        h, w = image_bgr.shape[:2]
        if mask.shape[:2] != (h, w):
            raise BadInputError(f"mask is {mask.shape[:2]} but the image is {(h, w)}")
        out = (mask > 0).astype(np.uint8) * 255
        T = None if T_map_cam is None else np.asarray(T_map_cam, np.float64)
        if self._size != (w, h):
            self.reset()
            self._size = (w, h)
        if self._moved(T):  # a moving camera: no model (and no cost) until it stands still again
            self._model, self._pose = None, T
            return out
        if self._model is None:
            self._model, self._frames = cv2.createBackgroundSubtractorMOG2(detectShadows=False), 0
        foreground = self._model.apply(image_bgr)
        self._frames += 1
        if self._frames <= self.config.min_frames or not out.any():
            return out
        core = cv2.erode(out, self._ring_kernel(w))
        return np.where((core > 0) | (foreground > 0), out, 0).astype(np.uint8)

    def _moved(self, T: np.ndarray | None) -> bool:
        """Has the camera moved or turned beyond the config's limits since it last stood (its first pose
        counts as a move: it starts the still period)? A frame without a pose counts as still."""
        if T is None or self._pose is None:
            return T is not None
        moved_m, turned_deg = pose_delta(self._pose, T)
        return moved_m > self.config.move_m or turned_deg > self.config.move_deg

    def _ring_kernel(self, width: int) -> np.ndarray:
        """The elliptic structuring element of the ring's width, for an image this wide (cached)."""
        if self._kernel is None or self._kernel[0] != width:
            r = max(1, round(self.config.ring_px * width / _REFERENCE_WIDTH))
            self._kernel = (width, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        return self._kernel[1]
