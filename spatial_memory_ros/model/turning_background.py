"""A still camera's background that follows the camera when it only turns: pan-tilt heads, robots turning in place.

model.background.StillBackground starts a new mean whenever the camera moves more than 5 cm or turns more
than 2 degrees, and until it does it compares each frame with a mean taken up to 2 degrees away: on a
camera that pans, the background is missing most of the time and misaligned the rest (every edge of the
scene is marked; BENCHMARKS "A turning camera on real footage"). Here the mean lives on a canvas that follows
a camera that only turns (core.turning: the geometry, and the limits on what counts as such a turn). Pixels
the camera has not shown for `min_frames` frames have no background: the validity is per pixel, and the still
head adds nothing there (its output is multiplied by the flag).

While the camera has not turned by more than `exact_deg` since the background started, everything is done
by a StillBackground (the same arithmetic, bit for bit, for a camera that never turns); the first larger turn
moves its mean onto the canvas if core.turning.is_turn says it is a turn to follow and the picture moved with
it (a pose that jitters on a standing robot says it turned; the picture says it did not); one that is not
(moved, or turned too far) starts again. A frame that turned too fast since the last
(core.turning.is_blurred_step) is blurred: it gets no background and is not learned, and the canvas waits for
the next frame. A camera on the canvas that stands where its mean started for _SETTLE_FRAMES frames, by the pose
and by the picture, goes back to the still background with the mean of that view. A turn small enough for the
still background to follow as a shake (BackgroundConfig.shake_px) stays with it; on the canvas, a picture shaken
against the view the pose gives is followed the same way.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core.turning import (
    TurnLimits,
    canvas_offset,
    canvas_shape,
    centre_shift,
    coverage,
    footprint,
    hw,
    is_blurred_step,
    is_turn,
    known_in_view,
    off_canvas,
    view_from_canvas,
    warp,
)
from .background import BackgroundConfig, StillBackground, grey_shift, light_gain, same_picture, shake_shift, shifted

# A pose past exact_deg from where the still mean started is a turn to follow only if the picture agrees: its
# measured shift against the mean (core.turning.measured_shift) is at least _TURN_SHIFT_PX and lies nearer the
# shift the pose's turn predicts than no shift at all. A localiser's jitter moves the picture not at all; a real
# turn by what the pose says (exact_deg: about 1 px at 256 px across a 60 deg view, 0.5 px at 128). People
# walking pull a still picture's shift by up to 0.5-0.7 px (PETS09): under _TURN_SHIFT_PX the picture did not
# move, whatever the pose (a roll, which moves the centre not at all, predicts no shift to compare with); above
# it, the nearer of the two is the fairer call. Set before any run.
_TURN_SHIFT_PX = 0.5
# Frames in a row a camera on the canvas must stand where its mean started, by the pose (within the still
# background's move_m and move_deg) and by the picture (shifted under _TURN_SHIFT_PX against the mean there),
# before the mean goes back to the still background: 1 s at 10 Hz. Without a way back, one wrong call by the
# picture above (movers pull its shift) left a standing camera following its pose's jitter for good (PETS09 at
# 128 px: 508 false px a frame against 411 never following). Set before any run.
_SETTLE_FRAMES = 10


class TurningBackground:
    """One camera's background, as StillBackground, but kept through turns. before() returns the background
    and a per-pixel validity (h, w) bool; learn() folds the frame in (see StillBackground)."""

    def __init__(self, config: BackgroundConfig | None = None, turning: TurnLimits | None = None) -> None:
        self.config = config or BackgroundConfig()
        self.turning = turning or TurnLimits()
        self._still = StillBackground(self.config)
        self._canvas: _Canvas | None = None
        self._ref_pose: np.ndarray | None = None  # (4, 4) where the background started
        self._view: np.ndarray | None = None  # (3, 3) canvas -> this frame's view, set by before()
        self._last_pose: np.ndarray | None = None  # the previous frame's, for the turn rate
        self._settled = 0  # frames in a row on the canvas standing where its mean started (_SETTLE_FRAMES)

    def reset(self) -> None:
        self._still.reset()
        self._canvas, self._ref_pose, self._view = None, None, None  # (the turn rate keeps its last pose)
        self._settled = 0

    def before(self, image_bgr: np.ndarray, T_map_cam: np.ndarray | None,
               K: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """image (h, w, 3) uint8; T_map_cam (4, 4) or None (still); K (3, 3) at the image's size or None (no
        turn can be followed: as StillBackground) -> (background (h, w, 3) uint8, zero where invalid; valid
        (h, w) bool)."""
        h, w = image_bgr.shape[:2]
        T = None if T_map_cam is None else np.asarray(T_map_cam, np.float64)
        last, self._last_pose = self._last_pose, T
        if self._canvas is not None and not (
                K is not None and self._canvas.shape[:2] == canvas_shape(h, w, self.turning.margin)
                and is_turn(self.turning, self._ref_pose, T, following=True)):
            self.reset()  # moved, or turned too far: start again, as StillBackground does
        if self._canvas is not None and T is not None:
            self._settled = self._settled + 1 if self._back_at_start(image_bgr, T) else 0
            if self._settled >= _SETTLE_FRAMES:
                self._leave_canvas(h, w)
        if (self._canvas is None and K is not None and T is not None and self._still.frames > 0
                and is_turn(self.turning, self._still.pose, T)
                and not self._picture_stood(image_bgr, K, T)):  # the still mean goes onto a canvas
            self._ref_pose = self._still.pose
            self._canvas = _Canvas.from_still(self._still, h, w, self.turning.margin)
            self._still.reset()
        if self._canvas is None:
            bg, valid = self._still.before(image_bgr, T)
            self._view = None
            return bg, np.full((h, w), valid)
        assert K is not None and T is not None and self._ref_pose is not None
        if is_blurred_step(self.turning, last, T):  # this frame is the one unfit to compare: the canvas waits
            self._view = None
            return np.zeros_like(image_bgr), np.zeros((h, w), bool)
        self._view = view_from_canvas(K, self._ref_pose, T, self._canvas.offset)
        if off_canvas(self._view, (w, h), self._canvas.shape):  # turned past the canvas: a new still background
            self.reset()
            bg, valid = self._still.before(image_bgr, T)
            return bg, np.full((h, w), valid)
        bg, valid_px = self._canvas.view(self._view, (w, h), self.config.min_frames)
        if valid_px.any():
            bg = self._canvas.relight(image_bgr, bg, valid_px, self.config.relight)
            bg, valid_px = self._follow_shake(image_bgr, bg, valid_px)
        return bg, valid_px

    def _follow_shake(self, image_bgr: np.ndarray, bg: np.ndarray,
                      valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """On the canvas, as StillBackground does standing: the frame's picture shaken against the view the pose
        gives (background.shake_shift, where valid) moves that view onto it, and learn() takes the frame moved
        back. The pose turns the view; a head that shakes as it turns moves the picture by more, and the canvas
        compared it unaligned (PETS09 panning 8 deg, shaken by 1 px: BENCHMARKS "A shaking camera that turns")."""
        if self.config.shake_px <= 0 or self._view is None:
            return bg, valid
        grey = [cv2.cvtColor(x, cv2.COLOR_BGR2GRAY).astype(np.float32) for x in (bg, image_bgr)]
        shake = shake_shift(grey[0], grey[1], valid, self.config.shake_min_px, self.config.shake_px)
        if shake is None:
            return bg, valid
        # the view's pixel p shows in the frame at p + shake: canvas -> frame is the view, then the shake
        self._view = _translation(shake) @ self._view
        moved = shifted(bg, shake)
        moved_valid = shifted(valid.astype(np.float32), shake) > 0.999  # none blended with an unknown pixel
        return np.where(moved_valid[..., None], moved, 0).astype(np.uint8), moved_valid

    def _picture_stood(self, image_bgr: np.ndarray, K: np.ndarray, T: np.ndarray) -> bool:
        """The frame's picture lies within _TURN_SHIFT_PX of where the still mean's does, or nearer it than where
        the pose's turn since the mean started (T against StillBackground.pose; K at the image's size) would put
        it: a pose that says the camera turned past exact_deg is a localiser's jitter, and following it would
        misalign the mean by the jitter. False when the picture cannot tell (too plain): then the pose decides."""
        mean, T_ref = self._still.mean, self._still.pose
        if mean is None or T_ref is None or mean.shape != image_bgr.shape:
            return False
        h, w = image_bgr.shape[:2]
        skipped = self._still.skipped
        # judged where the mean last learned the frame: a pixel the mask left out was a mover, and people walking
        # pulled the shift of the whole picture by up to 0.5 px (PETS09)
        known = np.ones((h, w), bool) if skipped is None or skipped.shape != (h, w) else skipped == 0
        shift = grey_shift(mean, image_bgr, known, max_px=8.0)
        if shift is None:
            return False
        predicted = centre_shift(view_from_canvas(K, T_ref, T, (0, 0)), (w, h))  # where the turn puts the centre
        measured = np.asarray(shift)
        if np.hypot(*measured) < max(_TURN_SHIFT_PX, np.hypot(*(measured - predicted))):
            return True
        # A turn so small that the still background follows the picture's shift as a shake (BackgroundConfig.
        # shake_px, by pose and by picture) needs no canvas yet: the still background aligns its mean by the
        # measured shift, and a turn that goes on is past shake_px within a few frames and then goes onto the
        # canvas by the rule above, with the still mean unmoved. A shake and a turn differ only over time: on a
        # shaking picture under a localiser's jitter the shake's shift lay nearer the jitter's predicted shift
        # than 0 about half the time, and the canvas then followed the jitter for long stretches (PETS09 tags-only,
        # 0.1 deg + 1 px: 623 of 795 frames on the canvas, det F1 0.548 against 0.663 not following turns).
        return bool(max(np.hypot(*predicted), np.hypot(*measured)) <= self.config.shake_px
                    and self._still.follows_as_shake(image_bgr, shift))

    def _back_at_start(self, image_bgr: np.ndarray, T: np.ndarray) -> bool:
        """On the canvas: the camera stands where its mean started, by the pose (within the still background's
        move_m and move_deg of the canvas's reference pose) and by the picture (shifted under _TURN_SHIFT_PX
        against the canvas's reference view, where it is known). False when the picture cannot tell."""
        assert self._canvas is not None and self._ref_pose is not None
        if self.config.moved_from(self._ref_pose, T):
            return False
        h, w = image_bgr.shape[:2]
        ox, oy = self._canvas.offset
        count = self._canvas.count[oy:oy + h, ox:ox + w]
        if count.shape != (h, w):
            return False
        shift = grey_shift(self._canvas.mean[oy:oy + h, ox:ox + w], image_bgr, count > 0, max_px=8.0)
        return shift is not None and bool(np.hypot(*shift) < _TURN_SHIFT_PX)

    def _leave_canvas(self, h: int, w: int) -> None:
        """The canvas's reference view goes back to the still background (what it knew beyond it is dropped)."""
        assert self._canvas is not None
        ox, oy = self._canvas.offset
        c = self._canvas
        self._still.resume(c.mean[oy:oy + h, ox:ox + w], int(c.count[oy:oy + h, ox:ox + w].min()), self._ref_pose,
                           c.skipped[oy:oy + h, ox:ox + w])
        self._canvas, self._ref_pose, self._view, self._settled = None, None, None, 0

    def learn(self, image_bgr: np.ndarray, skip: np.ndarray | None = None) -> None:
        """Fold the frame into the mean at the pose before() was given, except where skip is set (a blurred
        frame: nothing)."""
        if self._canvas is None:
            self._still.learn(image_bgr, skip)
            return
        if self._view is None:
            return
        self._canvas.learn(image_bgr, skip, np.linalg.inv(self._view), self.config)


def _translation(shift: tuple[float, float]) -> np.ndarray:
    """(3, 3) the homography that moves a picture by shift (dx, dy) px."""
    return np.array([[1.0, 0.0, shift[0]], [0.0, 1.0, shift[1]], [0.0, 0.0, 1.0]])


class _Canvas:
    """The mean, how many frames each pixel has learned, and how many frames in a row each was left out."""

    def __init__(self, mean: np.ndarray, count: np.ndarray, skipped: np.ndarray, offset: tuple[int, int]) -> None:
        self.mean, self.count, self.skipped, self.offset = mean, count, skipped, offset

    @property
    def shape(self) -> tuple[int, ...]:
        return self.mean.shape

    @classmethod
    def from_still(cls, still: StillBackground, h: int, w: int, margin: float) -> _Canvas:
        H, W = canvas_shape(h, w, margin)
        ox, oy = canvas_offset(h, w, margin)
        mean = np.zeros((H, W, 3), np.float32)
        count = np.zeros((H, W), np.int32)
        skipped = np.zeros((H, W), np.int32)
        if still.mean is not None and still.mean.shape[:2] == (h, w) and still.skipped is not None:
            mean[oy:oy + h, ox:ox + w] = still.mean
            count[oy:oy + h, ox:ox + w] = still.frames
            skipped[oy:oy + h, ox:ox + w] = still.skipped
        return cls(mean, count, skipped, (ox, oy))

    def view(self, view: np.ndarray, size: tuple[int, int], min_frames: int) -> tuple[np.ndarray, np.ndarray]:
        bg = warp(self.mean, view, size)
        valid = known_in_view(self.count >= min_frames, view, size)
        out = np.rint(bg).astype(np.uint8)
        out[~valid] = 0
        return out, valid

    def relight(self, image_bgr: np.ndarray, bg: np.ndarray, valid: np.ndarray, relight: float) -> np.ndarray:
        """As StillBackground._relight, on the pixels both show: rescale the canvas if the light changed
        (background.light_gain; with the ratio of two medians, home patrol 1004 had the whole view marked for
        three frames at a turn) and the frame still shows the canvas's picture (background.same_picture)."""
        if relight <= 0:
            return bg
        gain = light_gain(image_bgr[valid], bg[valid])
        if np.max(np.abs(gain - 1.0)) <= relight or not same_picture(image_bgr, bg, valid):
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
        # only the frame's footprint on the canvas (core.turning.footprint): the canvas is nine times the view, and
        # the whole of it, warped and updated, was 11 of a turning frame's 16 ms at 256 x 192; nothing outside the
        # footprint is covered, so nothing there changes
        rows, cols, to_box = footprint(to_canvas, hw(image_bgr), hw(self.count))
        size = (cols.stop - cols.start, rows.stop - rows.start)
        if size[0] <= 0 or size[1] <= 0:
            return
        frame = warp(image_bgr.astype(np.float32), to_box, size, replicate=True)
        cover = coverage(to_box, hw(image_bgr), size)
        left = np.zeros_like(cover)
        if skip is not None:
            left = warp((np.asarray(skip) > 0).astype(np.uint8), to_box, size, nearest=True) > 0
            left &= cover
        count, skipped, mean = self.count[rows, cols], self.skipped[rows, cols], self.mean[rows, cols]  # views
        mature = cover & (count >= config.min_frames)
        young = cover & ~mature & ~left  # (count 0 included): the plain average of the frames so far
        weight = np.where(young, 1.0 / (count + 1.0), 0.0).astype(np.float32)
        kept = mature & left
        skipped[...] = np.where(kept, skipped + 1, np.where(cover, 0, skipped))
        learning = mature & ~(kept & (skipped <= config.max_skip_frames))
        weight[learning] = config.rate
        mean += weight[..., None] * (frame - mean)
        count[young | mature] += 1
