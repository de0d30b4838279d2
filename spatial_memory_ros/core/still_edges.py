"""Sharper edges for a coarse change mask while the camera stands still, from a per-pixel background model.

The learned network predicts change per patch; brought back to the image, its mask misses an agent's
outline by a few pixels, spilling past it in places (change precision 0.94 on the bench's mast camera) and
falling short in others. A camera that does not move can keep a background model per pixel (OpenCV's MOG2,
as the bench's mog2 baseline), whose foreground follows outlines to the pixel but is fooled by a light
switching, absorbs whatever stands still long enough and means nothing for a moving camera. So it decides
only near the network's edge: the mask's core (the mask eroded by ``ring_px``) always stays, nothing
farther than ``grow_px`` outside the mask is ever added, and in the band between the two a pixel is
changed when the background model calls it foreground. Where that model is wrong the way it usually is (a
light switched), it calls the whole band foreground: the mask grows by ``grow_px`` and no more.

A camera pose that moves more than ``move_m`` or ``move_deg`` from where the camera stood drops the model
(the pipeline's rule for its own background model); a new one starts once the camera stands still again,
so a patrolling camera costs nothing. A pose that moved less than that drops it too if the picture moved against
the model's background image (``picture_px``): a localiser's jitter moves the pose, a robot creeping forward
moves the picture. A frame without a pose counts as still.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .config import ChangeConfig
from .errors import BadInputError
from .geometry import pose_delta
from .turning import picture_moved, translated

_REFERENCE_WIDTH = 320  # ring_px and grow_px are given for an image this wide and scale with the width
# the model's background image for that question is taken again after this many frames: MOG2 learns at 1/500 a
# frame, and taking it costs 2 ms of a 640 x 480 frame
_REFERENCE_FRAMES = 10


@dataclass(frozen=True)
class StillEdgesConfig:
    """Where the background model may move the mask's edges."""

    ring_px: float = 3.0  # the band inside the mask's edge that may be trimmed, px at 320 px image width
    grow_px: float = 4.0  # the band outside it that may be added, px at 320 px image width
    move_m: float = 0.05  # camera moves farther than this (m) from where the model started: restart it
    move_deg: float = 2.0  # or turns more than this (deg)
    # frames a new model learns before it may decide: a model of one or two frames knows little, and a
    # camera that only paused between moves is not still
    min_frames: int = 5
    # a pose moved from where the model started, within move_m, is checked against the picture: two quarters of
    # the view shifted this far (px at 320 px image width, as ring_px) against the model's background image (not
    # its first frame: people walking in it made the check restart a jittered still camera's model, warehouse
    # static 1004 0.2 deg + 1 cm: change mIoU 0.9962 against 0.9991), or a picture that cannot tell, and the
    # camera moved (core.turning.picture_moved; model.background's rule). A robot creeping forward at 2 cm/s stays
    # within move_m for 25 frames while its picture grows (warehouse patrol 1004 at 2 cm/s, the still background
    # already checked: change mIoU 0.848 without this check, 0.859 with it, as without these edges: BENCHMARKS "A
    # creeping camera"). A pose that only turned is not asked. About 2.5 ms a 640 x 480 frame, only while the pose
    # is off where the model started. 0 = off.
    picture_px: float = 0.5

    @classmethod
    def following(cls, change: ChangeConfig) -> StillEdgesConfig:
        """The defaults with the camera-move limits of change.pose_reset_*: one rule for when a camera stands
        still, in the classical reference, MOG2 and these edges, set by one pair of parameters."""
        return cls(move_m=change.pose_reset_translation_m, move_deg=change.pose_reset_rotation_deg)

    def validate(self) -> StillEdgesConfig:
        if not (self.ring_px > 0 and self.grow_px >= 0 and self.move_m > 0 and self.move_deg > 0
                and self.min_frames >= 1 and self.picture_px >= 0):
            raise ValueError("still edges: ring_px, move_m and move_deg must be > 0, grow_px and picture_px >= 0, "
                             "min_frames >= 1")
        return self


class StillEdges:
    """One camera's background model; refine() moves a mask's edges to the foreground's and learns the frame."""

    def __init__(self, config: StillEdgesConfig | None = None) -> None:
        self.config = (config or StillEdgesConfig()).validate()
        self._model: cv2.BackgroundSubtractorMOG2 | None = None
        self._frames = 0  # frames the model has learned
        self._reference: tuple[int, np.ndarray] | None = None  # (at self._frames, its background image in grey)
        self._pose: np.ndarray | None = None  # where the camera stands since it last moved; None: no pose yet
        self._size: tuple[int, int] | None = None
        self._kernels: tuple[int, np.ndarray, np.ndarray | None] | None = None  # width, erode, dilate

    def reset(self) -> None:
        """Forget the background (the next frame starts a new model)."""
        self._model = self._pose = self._size = None

    def refine(self, image_bgr: np.ndarray, mask: np.ndarray, T_map_cam: np.ndarray | None = None) -> np.ndarray:
        """mask (H, W) uint8, non-zero = changed, with its edge band (ring_px inside, grow_px outside) set to
        what the background model calls foreground; the background model learns the frame. Returns a new
        (H, W) uint8 (0/255); the mask as it was while the camera moves or the model is new."""
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
        grey = None
        if self._model is not None and self._pose_off(T):
            grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
        if self._moved(T) or (grey is not None and self._picture_moved(grey, out)):
            # a moving camera: no model (and no cost) until it stands still again
            self._model, self._pose = None, T
            return out
        if self._model is None:
            self._model, self._frames = cv2.createBackgroundSubtractorMOG2(detectShadows=False), 0
            self._reference = None
        foreground = self._model.apply(image_bgr)
        self._frames += 1
        if self._frames <= self.config.min_frames or not out.any():
            return out
        erode, dilate = self._band_kernels(w)
        core = cv2.erode(out, erode) > 0
        reach = out if dilate is None else cv2.dilate(out, dilate)
        return np.where(core | ((reach > 0) & (foreground > 0)), 255, 0).astype(np.uint8)

    def _moved(self, T: np.ndarray | None) -> bool:
        """Has the camera moved or turned beyond the config's limits since it last stood (its first pose
        counts as a move: it starts the still period)? A frame without a pose counts as still."""
        if T is None or self._pose is None:
            return T is not None
        moved_m, turned_deg = pose_delta(self._pose, T)
        return moved_m > self.config.move_m or turned_deg > self.config.move_deg

    def _pose_off(self, T: np.ndarray | None) -> bool:
        """The pose moved from where the model started (picture_px on; a turn alone is not asked, as in
        model.background): the picture is to be asked."""
        return (self.config.picture_px > 0 and T is not None and self._pose is not None
                and translated(self._pose, T))

    def _picture_moved(self, grey: np.ndarray, mask: np.ndarray) -> bool:
        """The picture moved against the model's background image (MOG2's most likely colour per pixel: the movers
        and the noise of single frames left out), judged off the mask (what changed now), or cannot tell."""
        assert self._model is not None
        if self._reference is None or self._frames >= self._reference[0] + _REFERENCE_FRAMES:
            background = self._model.getBackgroundImage()  # 2 ms at 640 x 480: not every frame
            if background is None or background.shape[:2] != grey.shape:
                return True
            self._reference = (self._frames, cv2.cvtColor(background, cv2.COLOR_BGR2GRAY).astype(np.float32))
        tol_px = self.config.picture_px * grey.shape[1] / _REFERENCE_WIDTH  # as ring_px: at 320 px, scaled
        return picture_moved(self._reference[1], grey, mask == 0, tol_px) is not False

    def _band_kernels(self, width: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Elliptic structuring elements of the band's inner and outer widths for an image this wide (cached);
        None for an outer width of 0."""
        if self._kernels is None or self._kernels[0] != width:
            def ellipse(px: float) -> np.ndarray:
                r = max(1, round(px * width / _REFERENCE_WIDTH))
                return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
            self._kernels = (width, ellipse(self.config.ring_px),
                             ellipse(self.config.grow_px) if self.config.grow_px > 0 else None)
        return self._kernels[1], self._kernels[2]
