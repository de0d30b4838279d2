"""A still camera's background that follows the camera when it only turns: pan-tilt heads, robots turning in place.

model.background.StillBackground starts a new mean whenever the camera moves more than 5 cm or turns more
than 2 degrees, and until it does it compares each frame with a mean taken up to 2 degrees away: on a
camera that pans, the background is missing most of the time and misaligned the rest (every edge of the
scene is marked; BENCHMARKS "A turning camera"). A camera that turns about its own centre sees, at every
rotation, a re-projection of the same picture: pixel_now ~ K R_now^T R_ref K^-1 pixel_ref, for any depth.
So the mean can live on a canvas in the reference view's image plane, larger than the view, and every frame
is warped onto it to be learned and the canvas warped into the view to be compared. Both warps start from
the canvas or the frame, never from an earlier warp, so no blur accumulates. Pixels the camera has not
shown for `min_frames` frames have no background: the validity is per pixel, and the still head adds
nothing there (its output is multiplied by the flag).

While the camera has not turned by more than `exact_deg` since the background started, everything is done
by a StillBackground (the same arithmetic, bit for bit, for a camera that never turns); the first larger turn
moves its mean onto the canvas, if the camera has not moved more than `max_move_m` since the mean started.
Moving more than that (translation brings parallax, which no warp undoes) or turning more than `max_turn_deg`
from the reference view (the canvas is a plane: far turns stretch it) starts again.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..core.geometry import pose_delta
from .background import BackgroundConfig, StillBackground


@dataclass(frozen=True)
class TurningConfig:
    # turned less than this from where the mean started: no warp, as a still camera. A pose that jitters (a
    # localisation) is not followed below it: 0.25 deg is half a pixel at the shipped model's 128 px input
    exact_deg: float = 0.25
    max_turn_deg: float = 40.0  # turned farther from the reference view: start again
    # moved farther than this from where the mean started: not a turn about the camera's centre, and the warp
    # would be off by the parallax (1 cm at 1 m: half a degree, a pixel at the model's input). StillBackground's
    # own move_m (5 cm) tolerates more, for a camera that stands: a robot that stops and turns would otherwise
    # carry a mean taken up to 5 cm back into its turn (home patrol 1004: an edge marked at every turn)
    max_move_m: float = 0.01
    # turned more than this since the last frame: start again. A fast turn blurs the frame (the simulator's
    # 40 deg/s turns, 4 deg a frame at 10 Hz: 6 px at 320 px), and the still head, trained on sharp still
    # frames, marks the blur's edges against the mean (home patrol 1004, 5 min: change mIoU 0.958 against 0.983
    # when following them). 2 deg a frame is 20 deg/s at 10 Hz
    max_step_deg: float = 2.0
    margin: float = 1.0  # the canvas extends the reference view by this share of its size on every side


class TurningBackground:
    """One camera's background, as StillBackground, but kept through turns. before() returns the background
    and a per-pixel validity (h, w) bool; learn() folds the frame in (see StillBackground)."""

    def __init__(self, config: BackgroundConfig | None = None, turning: TurningConfig | None = None) -> None:
        self.config = config or BackgroundConfig()
        self.turning = turning or TurningConfig()
        self._still = StillBackground(self.config)
        self._canvas: _Canvas | None = None
        self._ref_pose: np.ndarray | None = None  # (4, 4) where the background started
        self._view: np.ndarray | None = None  # (3, 3) canvas -> this frame's view, set by before()
        self._last_pose: np.ndarray | None = None  # the previous frame's, for the turn rate

    def reset(self) -> None:
        self._still.reset()
        self._canvas, self._ref_pose, self._view = None, None, None  # (the turn rate keeps its last pose)

    def before(self, image_bgr: np.ndarray, T_map_cam: np.ndarray | None,
               K: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """image (h, w, 3) uint8; T_map_cam (4, 4) or None (still); K (3, 3) at the image's size or None (no
        turn can be followed: as StillBackground) -> (background (h, w, 3) uint8, zero where invalid; valid
        (h, w) bool)."""
        h, w = image_bgr.shape[:2]
        T = None if T_map_cam is None else np.asarray(T_map_cam, np.float64)
        fast = T is not None and self._last_pose is not None and \
            pose_delta(self._last_pose, T)[1] > self.turning.max_step_deg
        self._last_pose = T
        if fast and self._canvas is not None:
            self.reset()  # blurred: start again (as StillBackground does past 2 deg from where it started)
        if self._canvas is not None:
            assert self._ref_pose is not None
            if (T is None or K is None or self._canvas.shape[:2] != _canvas_shape(h, w, self.turning.margin)
                    or self._beyond(T)):
                self.reset()
        if self._canvas is None and not fast and self._turned(T, K):  # the still mean goes onto a canvas
            self._ref_pose = self._still.pose
            self._canvas = _Canvas.from_still(self._still, h, w, self.turning.margin)
            self._still.reset()
        if self._canvas is None:
            bg, valid = self._still.before(image_bgr, T)
            self._view = None
            return bg, np.full((h, w), valid)
        assert K is not None and T is not None and self._ref_pose is not None
        self._view = _view_from_canvas(K, self._ref_pose, T, self._canvas.offset)
        bg, valid_px = self._canvas.view(self._view, (w, h), self.config.min_frames)
        if valid_px.any():
            bg = self._canvas.relight(image_bgr, bg, valid_px, self.config.relight)
        return bg, valid_px

    def learn(self, image_bgr: np.ndarray, skip: np.ndarray | None = None) -> None:
        """Fold the frame into the mean at the pose before() was given, except where skip is set."""
        if self._canvas is None or self._view is None:
            self._still.learn(image_bgr, skip)
            return
        self._canvas.learn(image_bgr, skip, np.linalg.inv(self._view), self.config)

    def _turned(self, T: np.ndarray | None, K: np.ndarray | None) -> bool:
        """The camera has turned beyond exact_deg, and not moved, since the still mean started there."""
        ref = self._still.pose
        if T is None or K is None or ref is None or self._still.frames == 0:
            return False
        moved_m, turned_deg = pose_delta(ref, T)
        return moved_m <= self.turning.max_move_m and self.turning.exact_deg < turned_deg <= self.turning.max_turn_deg

    def _beyond(self, T: np.ndarray) -> bool:
        """Moved, or turned farther than the canvas follows, from the reference view."""
        assert self._ref_pose is not None
        moved_m, turned_deg = pose_delta(self._ref_pose, T)
        return moved_m > self.turning.max_move_m or turned_deg > self.turning.max_turn_deg


def _canvas_shape(h: int, w: int, margin: float) -> tuple[int, int]:
    return h + 2 * round(margin * h), w + 2 * round(margin * w)


def _view_from_canvas(K: np.ndarray, T_ref: np.ndarray, T: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    """(3, 3) canvas pixel -> the current view's pixel: K R^T R_ref K^-1, after undoing the canvas offset."""
    shift = np.array([[1.0, 0.0, -offset[0]], [0.0, 1.0, -offset[1]], [0.0, 0.0, 1.0]])
    return K @ T[:3, :3].T @ T_ref[:3, :3] @ np.linalg.inv(K) @ shift


class _Canvas:
    """The mean, how many frames each pixel has learned, and how many frames in a row each was left out."""

    def __init__(self, mean: np.ndarray, count: np.ndarray, skipped: np.ndarray, offset: tuple[int, int]) -> None:
        self.mean, self.count, self.skipped, self.offset = mean, count, skipped, offset

    @property
    def shape(self) -> tuple[int, ...]:
        return self.mean.shape

    @classmethod
    def from_still(cls, still: StillBackground, h: int, w: int, margin: float) -> _Canvas:
        H, W = _canvas_shape(h, w, margin)
        ox, oy = (W - w) // 2, (H - h) // 2
        mean = np.zeros((H, W, 3), np.float32)
        count = np.zeros((H, W), np.int32)
        skipped = np.zeros((H, W), np.int32)
        if still.mean is not None and still.mean.shape[:2] == (h, w) and still.skipped is not None:
            mean[oy:oy + h, ox:ox + w] = still.mean
            count[oy:oy + h, ox:ox + w] = still.frames
            skipped[oy:oy + h, ox:ox + w] = still.skipped
        return cls(mean, count, skipped, (ox, oy))

    def view(self, view: np.ndarray, size: tuple[int, int], min_frames: int) -> tuple[np.ndarray, np.ndarray]:
        bg = cv2.warpPerspective(self.mean, view, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        # a pixel is valid if every canvas pixel its interpolation reads is: the nearest count, eroded by one
        known = (self.count >= min_frames).astype(np.uint8)
        known = cv2.erode(known, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
        valid = cv2.warpPerspective(known, view, size, flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT) > 0
        out = np.rint(bg).astype(np.uint8)
        out[~valid] = 0
        return out, valid

    def relight(self, image_bgr: np.ndarray, bg: np.ndarray, valid: np.ndarray, relight: float) -> np.ndarray:
        """As StillBackground._relight, on the pixels both show: rescale the canvas if the light changed. The
        gain is the median of the per-pixel ratios, not the ratio of the two medians: a turning view is often
        half floor, half wall, and the median of such a picture jumps from one to the other when a few pixels
        change (home patrol 1004: the whole view marked for three frames at a turn)."""
        if relight <= 0:
            return bg
        ratio = (image_bgr[valid].astype(np.float32) + 1.0) / (bg[valid].astype(np.float32) + 1.0)  # (N, 3)
        gain = np.clip(np.median(ratio, axis=0), 0.25, 4.0)
        if np.max(np.abs(gain - 1.0)) <= relight:
            return bg
        self.mean = np.clip(self.mean * gain, 0.0, 255.0)
        self.skipped[:] = 0
        out = np.clip(np.rint(bg.astype(np.float32) * gain), 0, 255).astype(np.uint8)
        out[~valid] = 0
        return out

    def learn(self, image_bgr: np.ndarray, skip: np.ndarray | None, to_canvas: np.ndarray,
              config: BackgroundConfig) -> None:
        """Fold the frame in where it covers the canvas. Unlike StillBackground, whose mean must start from
        something, a pixel here may stay unknown: what skip marks (the network's mask) is not learned until it
        is not marked, so that an agent in view when a turn starts is not taken into the background (a turning
        camera starts a background at every turn, a still one once); and until a pixel has min_frames frames its
        mean is their plain average, not the slow running mean, so a first frame's blur or noise does not last."""
        H, W = self.count.shape
        # the frame's edge replicated: a canvas pixel whose nearest frame pixel is inside is learned whole
        frame = cv2.warpPerspective(image_bgr.astype(np.float32), to_canvas, (W, H), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
        ones = np.ones(image_bgr.shape[:2], np.uint8)
        cover = cv2.warpPerspective(ones, to_canvas, (W, H), flags=cv2.INTER_NEAREST,
                                    borderMode=cv2.BORDER_CONSTANT) > 0
        left = np.zeros_like(cover)
        if skip is not None:
            left = cv2.warpPerspective((np.asarray(skip) > 0).astype(np.uint8), to_canvas, (W, H),
                                       flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT) > 0
            left &= cover
        mature = cover & (self.count >= config.min_frames)
        young = cover & ~mature & ~left  # (count 0 included): the plain average of the frames so far
        weight = np.where(young, 1.0 / (self.count + 1.0), 0.0).astype(np.float32)
        kept = mature & left
        self.skipped = np.where(kept, self.skipped + 1, np.where(cover, 0, self.skipped))
        learning = mature & ~(kept & (self.skipped <= config.max_skip_frames))
        weight[learning] = config.rate
        self.mean += weight[..., None] * (frame - self.mean)
        self.count[young | mature] += 1
