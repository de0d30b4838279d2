"""The still camera's background, at the model's input size: a second picture for the network to compare with.

The shipped network finds agents by how they look in one frame (the simulator's colours: BENCHMARKS "What
the network keys on"), so it sees nothing of a hand moving a cup in real footage. A model built with
``ModelConfig.background`` also gets, beside the frame, a running mean of the frames the camera saw while it
stood still, and a flag saying whether there is one. Where the frame differs from it something changed,
whatever its colour. A camera that moves (more than ``move_m`` or ``move_deg`` from where it stood, or less
but with its picture moved against the mean: ``picture_px``, a robot creeping forward) starts a new mean; it is
given to the network only after ``min_frames`` frames, so a patrolling camera gets none.
The same class makes the training streams' backgrounds (model.data) and the runtime's, so the network is
trained on what it is given. A frame without a pose counts as still (as in core.still_edges). With
``ModelConfig.background_skips_changes`` the mean leaves out what changed (the truth in training, the
network's mask at run time), so that an agent standing still is not absorbed and leaves no ghost when it goes.
A pixel left out for more than ``max_skip_frames`` frames in a row is learned again until it is no longer left
out: at run time the network's own mask decides what is skipped, and after a light is switched it marked the
whole room, which then never entered the mean and stayed marked (home static 1004, change mIoU 0.47:
BENCHMARKS "What the network keys on"). Training applies the same limit, so the two still agree. And a light
switched on or off (the median of the frame's per-pixel ratios to the mean off 1 by more than ``relight``)
rescales the mean to the new light at once, as core.floor_change matches a frame's brightness before it compares: a room
that only got brighter has not changed. A picture that shakes while the camera stands (``shake_px``) has the mean moved
onto each frame before it is given, and the frame moved back before it is learned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from ..core.geometry import pose_delta
from ..core.turning import measured_shift, misfit, picture_moved, translated, wh


@dataclass(frozen=True)
class BackgroundConfig:
    rate: float = 0.03  # per-frame weight of the new frame in the mean (~3 s at 10 Hz)
    move_m: float = 0.05  # the camera moved farther than this from where it stood: start again
    move_deg: float = 2.0  # or turned more than this
    min_frames: int = 5  # frames averaged before the mean is given to the network
    # a pixel skipped this many frames in a row is learned again (3 s at 10 Hz): a wrong mask cannot lock it
    max_skip_frames: int = 30
    # the frame's light (light_gain, per channel) off by more than this share: the light changed, rescale the
    # mean to it (0 = never). A hand or an agent moves that median this far only if it covers half the picture.
    relight: float = 0.15
    # a pose moved from where the mean started, within move_m, is checked against the picture: a quarter of the
    # view shifted this far (px of the image given) against the mean, in two quarters at least
    # (core.turning.picture_moved), and the camera moved: start again. A robot creeping forward (5 cm/s, 0.5 cm
    # a frame) stays within move_m for ten frames while its picture grows about the centre, and a still head
    # compared it with a mean it had driven away from (warehouse patrol 1004 at 5 cm/s, learned change mIoU
    # 0.63 against the memory-disabled 0.81: BENCHMARKS "A creeping camera"). A localiser's jitter moves the
    # pose, not the picture. When the picture cannot tell (too plain, or an agent fills the view), start again
    # too. A pose that only turned is not asked: model.turning_background follows turns, and the picture asked
    # there restarted a standing camera's mean after every way back from its canvas (PETS09 with 0.3 deg of
    # jitter: 709 false px a frame against 421). 0 = off.
    picture_px: float = 0.5
    # a standing camera whose picture shakes (vibration, wind on a mast, a robot's idling motors) while its pose
    # stays: the frame's whole-picture shift against the mean (core.turning.measured_shift, px of the image given)
    # between shake_min_px and shake_px moves the mean onto the frame before it is compared, and the frame back
    # onto the mean before it is learned. Unaligned, PETS09 shaken by 1 px a frame gave twice the false pixels
    # (BENCHMARKS "A shaking still camera"). Under shake_min_px nothing moves (a still camera's float noise and the
    # pull of people walking through: bit for bit what it was); beyond shake_px the camera moved (picture_px).
    # 0 = off.
    shake_px: float = 3.0
    shake_min_px: float = 0.2

    def moved_from(self, T_ref: np.ndarray, T: np.ndarray) -> bool:
        """The pose T is beyond these limits (move_m, move_deg) from where the camera stood at T_ref."""
        moved_m, turned_deg = pose_delta(T_ref, T)
        return moved_m > self.move_m or turned_deg > self.move_deg


class StillBackground:
    """One camera's running-mean background. step() returns the background before this frame, then learns it;
    before() and learn() are its two halves, for a caller that knows what to leave out only after the model ran."""

    def __init__(self, config: BackgroundConfig | None = None) -> None:
        self.config = config or BackgroundConfig()
        self._mean: np.ndarray | None = None  # (h, w, 3) float32
        self._frames = 0
        self._pose: np.ndarray | None = None
        self._skipped: np.ndarray | None = None  # (h, w) frames in a row each pixel was left out
        self._shake: tuple[float, float] | None = None  # this frame's picture against the mean (shake_px), px

    def reset(self) -> None:
        self._mean, self._frames, self._pose, self._skipped, self._shake = None, 0, None, None, None

    # read-only views for model.turning_background, which carries this mean onto its canvas at the first turn
    @property
    def mean(self) -> np.ndarray | None:
        """(h, w, 3) float32 running mean, None before the first frame."""
        return self._mean

    @property
    def frames(self) -> int:
        return self._frames

    @property
    def pose(self) -> np.ndarray | None:
        """(4, 4) where the camera stood when the mean started (None: no pose yet)."""
        return self._pose

    @property
    def skipped(self) -> np.ndarray | None:
        return self._skipped

    def resume(self, mean: np.ndarray, frames: int, pose: np.ndarray | None, skipped: np.ndarray) -> None:
        """Go on from a mean learned elsewhere ((h, w, 3) float32 for `frames` frames, started at `pose`;
        skipped (h, w) as `skipped`): model.turning_background's canvas, once its camera is back where it started."""
        self._mean, self._frames = mean.astype(np.float32).copy(), frames
        self._pose, self._skipped, self._shake = pose, skipped.astype(np.int32).copy(), None

    def step(self, image_bgr: np.ndarray, T_map_cam: np.ndarray | None,
             skip: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
        """image (h, w, 3) uint8 at the model's input size -> (background (h, w, 3) uint8, valid). The background
        is zeros and valid False while there is none (the camera moves, or has stood for too few frames).
        skip: (h, w) pixels not to learn (non-zero), e.g. what changed: they keep the background they had."""
        out = self.before(image_bgr, T_map_cam)
        self.learn(image_bgr, skip)
        return out

    def before(self, image_bgr: np.ndarray, T_map_cam: np.ndarray | None) -> tuple[np.ndarray, bool]:
        """The background for this frame taken at this pose, before it is learned (see step())."""
        shape = image_bgr.shape
        T = None if T_map_cam is None else np.asarray(T_map_cam, np.float64)
        found: list[tuple[float, float] | None] = []  # this frame's shake, once measured: a phase correlation

        def shake() -> tuple[float, float] | None:
            if not found:
                found.append(self._shaken(image_bgr))
            return found[0]

        if self._mean is not None and (self._mean.shape != tuple(shape) or self._moved(T)
                                       or self._picture_moved(image_bgr, T, shake)):
            self._mean, self._frames = None, 0
        if self._mean is None:
            self._pose = T
        self._shake = None
        if self._mean is None or self._frames < self.config.min_frames:
            return np.zeros(shape, np.uint8), False
        if self._relight(image_bgr):
            found.clear()  # measured against the mean in the old light
        self._shake = shake()
        mean = self._mean if self._shake is None else shifted(self._mean, self._shake)
        return np.rint(mean).astype(np.uint8), True

    def follows_as_shake(self, image_bgr: np.ndarray, shift: tuple[float, float]) -> bool:
        """Whether before() would take shift, the frame's picture measured against the mean where it learned the
        frame (grey_shift with known = skipped == 0), for a shake it follows (fits_shake); model.turning_background
        asks it whether a small turn needs its canvas, with the shift it measured already."""
        if self.config.shake_px <= 0 or self._mean is None or self._skipped is None:
            return False
        grey_mean = cv2.cvtColor(self._mean, cv2.COLOR_BGR2GRAY)
        grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
        return fits_shake(grey_mean, grey, self._skipped == 0, shift, self.config.shake_min_px, self.config.shake_px)

    def _shaken(self, image_bgr: np.ndarray) -> tuple[float, float] | None:
        """The frame's picture shifted against the mean by shake_min_px to shake_px (a shake), or None."""
        if self.config.shake_px <= 0 or self._mean is None or self._skipped is None:
            return None
        grey_mean = cv2.cvtColor(self._mean, cv2.COLOR_BGR2GRAY)
        grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
        return shake_shift(grey_mean, grey, self._skipped == 0, self.config.shake_min_px, self.config.shake_px)

    def _relight(self, image_bgr: np.ndarray) -> bool:
        """Rescale the mean to the frame's light if it moved by more than config.relight (see light_gain) and the
        frame still shows the mean's picture (same_picture). True if it did."""
        if self.config.relight <= 0 or self._mean is None or self._skipped is None:
            return False
        gain = light_gain(image_bgr.reshape(-1, 3), self._mean.reshape(-1, 3))
        if np.max(np.abs(gain - 1.0)) > self.config.relight and same_picture(image_bgr, self._mean):
            self._mean = np.clip(self._mean * gain, 0.0, 255.0)
            self._skipped[:] = 0  # what the mask marked was measured against the old light
            return True
        return False

    def learn(self, image_bgr: np.ndarray, skip: np.ndarray | None = None) -> None:
        """Fold the frame into the mean (the first frame after a move starts it), except where skip is set; a frame
        that before() found shaken, moved back onto the mean first."""
        frame = image_bgr.astype(np.float32)
        if self._shake is not None and self._mean is not None and self._mean.shape == frame.shape:
            back = (-self._shake[0], -self._shake[1])
            frame = shifted(frame, back)
            if skip is not None:
                skip = shifted(np.asarray(skip, np.uint8), back, nearest=True)
            self._shake = None
        if self._mean is None or self._mean.shape != frame.shape:
            self._mean, self._frames, self._skipped = frame, 1, np.zeros(frame.shape[:2], np.int32)
            return
        step = self.config.rate * (frame - self._mean)
        assert self._skipped is not None
        if skip is not None and self._frames >= self.config.min_frames:  # a new mean learns every pixel first
            left_out = np.asarray(skip) > 0
            self._skipped = np.where(left_out, self._skipped + 1, 0)
            step[left_out & (self._skipped <= self.config.max_skip_frames)] = 0.0
        else:
            self._skipped[:] = 0
        self._mean += step
        self._frames += 1

    def _picture_moved(self, image_bgr: np.ndarray, T: np.ndarray | None,
                       shake: Callable[[], tuple[float, float] | None]) -> bool:
        """The camera moved from where the mean started (within the limits _moved allows; a turn alone is
        model.turning_background's to follow) and the picture says it moved too, or cannot say it did not
        (BackgroundConfig.picture_px), judged where the mean last learned the frame (a pixel left out was a mover).
        False for a camera that stood or only turned: those pay nothing. shake: the frame's shake (_shaken), measured
        once for before()."""
        if self.config.picture_px <= 0 or T is None or self._pose is None or self._mean is None:
            return False
        if not translated(self._pose, T):  # stood, or only turned
            return False
        known = np.ones(image_bgr.shape[:2], bool) if self._skipped is None else self._skipped == 0
        grey_mean = cv2.cvtColor(self._mean, cv2.COLOR_BGR2GRAY)
        grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
        # a shake moves every quarter alike and is followed (before()); a creep forward moves them apart. Without
        # this a localiser's 1 cm of jitter on a shaking picture restarted the mean every frame (PETS09 tags-only
        # det F1 0.013: BENCHMARKS "A shaking still camera, followed")
        shaken = shake()
        if shaken is not None:
            grey_mean = shifted(grey_mean, shaken)
        # too plain, or covered by a mover (an agent filling the view): a pose that moved and no picture to say the
        # camera stood, so start again
        return picture_moved(grey_mean, grey, known, self.config.picture_px) is not False

    def _moved(self, T: np.ndarray | None) -> bool:
        """Beyond the limits from where the camera stood; no pose is still, and a first pose is where it stands."""
        if T is None:
            return False
        if self._pose is None:
            self._pose = T
            return False
        return self.config.moved_from(self._pose, T)


# a shake's measured shift is taken only if moving the mean by it lowers its misfit to the frame (core.turning.misfit)
# to this share or less: a textured picture shaken by 1 px drops to about a tenth, a spurious peak not at all
_SHAKE_GAIN = 0.9

# a frame whose grey picture correlates with the mean's less than this (normalised, at 64 x 48) is not the same
# picture in another light: something covers it. The simulator's light switches gave 0.81-1.00 (home static 1004,
# 10 min); a forklift filling a standing patrol robot's view 0.00-0.43 (warehouse patrol 100 stopping 10 s at each
# corner: BENCHMARKS "A patrol that stops"), where rescaling the mean to the forklift's colour hid the forklift
# from the still head (change mIoU 0.865 against the memory-disabled 0.993).
_SAME_PICTURE_NCC = 0.6


def shifted(image: np.ndarray, shift: tuple[float, float], *, nearest: bool = False) -> np.ndarray:
    """The image moved by shift (dx, dy) px (out[y + dy, x + dx] = image[y, x]), its edge repeated where the move
    uncovers the border."""
    M = np.array([[1.0, 0.0, shift[0]], [0.0, 1.0, shift[1]]], np.float32)
    return cv2.warpAffine(image, M, wh(image), flags=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def shake_shift(reference: np.ndarray, frame: np.ndarray, known: np.ndarray, min_px: float,
                max_px: float) -> tuple[float, float] | None:
    """(dx, dy) px by which a frame's picture is shaken against a reference ((h, w) float32 grey each; known (h, w)
    bool: where to judge), if between min_px and max_px and moving the reference by it fits the frame clearly
    better (misfit down to _SHAKE_GAIN of the unmoved one's: a mover can pull the peak of a small or plain picture,
    and two pictures of noise give a peak somewhere); else None."""
    shift = measured_shift(reference, frame, known, max_px=max_px)
    return shift if shift is not None and fits_shake(reference, frame, known, shift, min_px, max_px) else None


def fits_shake(reference: np.ndarray, frame: np.ndarray, known: np.ndarray, shift: tuple[float, float],
               min_px: float, max_px: float) -> bool:
    """shake_shift's test of a shift measured already (core.turning.measured_shift of the same pictures and known):
    between min_px and max_px, and moving the reference by it fits the frame clearly better."""
    if not min_px <= np.hypot(*shift) <= max_px:
        return False
    return misfit(shifted(reference, shift), frame, known) <= _SHAKE_GAIN * misfit(reference, frame, known)


def grey_shift(mean: np.ndarray, image_bgr: np.ndarray, known: np.ndarray,
               max_px: float) -> tuple[float, float] | None:
    """core.turning.measured_shift of the frame against a mean ((h, w, 3) float32; known (h, w) bool: where it
    learned the frame), in grey: (dx, dy), or None when the picture cannot tell or moved beyond max_px."""
    grey_mean = cv2.cvtColor(mean, cv2.COLOR_BGR2GRAY)
    grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return measured_shift(grey_mean, grey, known, max_px=max_px)


def same_picture(frame: np.ndarray, reference: np.ndarray, valid: np.ndarray | None = None) -> bool:
    """Whether a frame ((h, w, 3)) shows the reference's picture, whatever the light: their grey pictures, 64 x 48
    and less their means, correlate by at least _SAME_PICTURE_NCC (where valid, (h, w) bool, if given). A light
    switched scales the picture and keeps its structure; an agent filling the view, which moves light_gain's median
    as much, does not."""
    size = (64, 48)
    pair = [cv2.resize(cv2.cvtColor(np.asarray(x, np.float32), cv2.COLOR_BGR2GRAY), size, interpolation=cv2.INTER_AREA)
            for x in (frame, reference)]
    keep = np.ones(size[::-1], bool) if valid is None else cv2.resize(
        valid.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.999
    if keep.sum() < 16:
        return False
    a, b = (x[keep] - x[keep].mean() for x in pair)
    return float((a * b).sum()) >= _SAME_PICTURE_NCC * float(np.sqrt((a * a).sum() * (b * b).sum()))


def light_gain(frame: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(N, 3) pixels of a frame and of its background -> (3,) how much brighter the frame is, per channel.
    The median of the per-pixel ratios: whatever changed (an agent, a hand) is outvoted by the rest up to half the
    picture. The ratio of the two pictures' medians is not: in a view half dark floor, half bright wall the median
    jumps from one to the other when a few pixels change (a turning view, or an agent in a still one)."""
    ratio = (frame.astype(np.float32) + 1.0) / (reference.astype(np.float32) + 1.0)
    return np.clip(np.median(ratio, axis=0), 0.25, 4.0)
