"""What moved in a still camera's picture since its previous frame: the still head's regions that are movers.

The still head (model.background) marks what differs from a still camera's background: people and items put
down alike. moving_still_regions keeps the regions whose pixels moved since the previous frame, so that the
tracker gets movers and not a parked box; it tells a standing camera (or one whose pose only jitters, or whose
picture shakes) from a turning one first, since a turn moves every pixel. LearnedChangeDetector.finish calls it.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core.geometry import pose_delta
from ..core.turning import TurnLimits, coverage, hw, is_standing, measured_shift, view_from_canvas, warp, wh
from .background import BackgroundConfig, shake_shift, shifted

# the network's mask grown by this before the background (here) and the floor memory (runtime) skip it: its
# edges blur into what is around it
AGENT_MARGIN = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
# A still camera's mask region moved (moving_still_regions) when at least this share of its
# pixels changed by more than this many grey levels since the previous frame (at the still head's input size).
# Set before any run: 12 levels is about twice a camera's frame-to-frame noise there; a walking person's edges
# and texture move by far more than a tenth of their region, an item once put down by none of it.
MOVED_GREY = 12
MOVED_SHARE = 0.10
# A pose a little off since the previous frame (moved up to _STILL_MOVE_M, turned up to max_step_deg: a localiser's
# jitter on a standing robot, or the first moment of a turn) is still for that rule only if the picture's
# background moved by less than this (px at the still head's input): a quarter pixel moves a sharp edge by fewer
# grey levels than MOVED_GREY. Set before any run.
STILL_SHIFT_PX = 0.25
# A move that shifts no part of the picture needs no more than the still background's own tolerance: within it
# the background goes on as still anyway. (A robot driving straight at a wall also leaves the picture's one shift
# near 0, but its picture grows, and its still background starts again when two quarters of it moved
# (BackgroundConfig.picture_px) and gives no mean before 5 frames: the still head then adds nothing for the rule
# to keep. Before that check, at 0.5 cm a frame, it did: BENCHMARKS "A creeping camera".)
_STILL_MOVE_M = BackgroundConfig().move_m
_TURNS = TurnLimits()


def moving_still_regions(previous: tuple[np.ndarray, np.ndarray | None] | None, seen: np.ndarray,
                         seen_K: np.ndarray | None, T_map_cam: np.ndarray | None, grey: np.ndarray,
                         mask: np.ndarray, regions: np.ndarray, bg_config: BackgroundConfig | None) -> np.ndarray:
    """(H, W) uint8, 255 on the regions of a still camera's corrected mask that moved since its previous frame
    and that no region of the change head's own covers. The change head finds the simulator's agents, not
    real people (PETS09: none), while the still head sees them; a region of its mask in which at least
    MOVED_SHARE of the pixels changed by more than MOVED_GREY grey levels since the previous frame is a moving
    thing, and an item put down, which stops moving once it is down, is not. Only while the camera stood still
    since that frame (_stood_still: a turn moves every pixel), or whose picture shifted by no more than a shake
    (model.background.shake_shift, the still background's limits, under a pose at most a little off): then the
    previous frame is moved onto this one first; or, when turns are followed, that only turned (_turned_onto):
    then it is re-projected into this view, and moved by the shake check too (the pose a little off). grey:
    frame.seen in grey, as the next frame will compare with it."""
    h, w = mask.shape
    none = np.zeros((h, w), np.uint8)
    if previous is None or previous[0].shape != seen.shape[:2]:
        return none
    n, labels = cv2.connectedComponents(mask, connectivity=8)
    if n <= 1:  # no region: skip _stood_still's phase correlation, which a jittering pose would run every frame
        return none
    gh, gw = grey.shape  # the picture's background: the mask's regions (movers, grown a little) left out
    background = cv2.resize(cv2.dilate(mask, AGENT_MARGIN), (gw, gh), interpolation=cv2.INTER_NEAREST) == 0
    before = previous[0]

    def shake_of(previous_grey: np.ndarray, known: np.ndarray) -> tuple[float, float] | None:
        """The picture's shake since previous_grey (model.background.shake_shift, the still background's
        limits), None when there is none or shake following is off."""
        if bg_config is None or bg_config.shake_px <= 0:
            return None
        return shake_shift(previous_grey.astype(np.float32), grey.astype(np.float32), known,
                           bg_config.shake_min_px, bg_config.shake_px)

    # a shaking picture moves every edge: align the frames first. With a localiser's jitter too, a picture
    # shifted by a shake is no turn: aligned, the two frames compare as a still camera's do
    shake = shake_of(before, background) if _pose_a_little_off(previous[1], T_map_cam) else None
    shown = None  # where the previous frame shows this view's picture, if not everywhere
    if shake is not None:
        before = shifted(before, shake)
    elif not _stood_still(previous[0], previous[1], grey, T_map_cam, background):
        turned = _turned_onto(before, previous[1], T_map_cam, seen_K)
        if turned is None:
            return none
        before, shown = turned
        shake = shake_of(before, background & shown)  # the pose a little off, or the picture shaken
        if shake is not None:
            before = shifted(before, shake)
            shown = shifted(shown.astype(np.uint8), shake, nearest=True) > 0
    moved = cv2.absdiff(grey, before) > MOVED_GREY
    if shown is not None:
        moved &= cv2.erode(shown.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # (its edge: a bilinear blend)
    moved = cv2.resize(moved.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    area = np.bincount(labels.ravel(), minlength=n)
    moved_px = np.bincount(labels[moved], minlength=n)
    covered = np.bincount(labels[regions > 0], minlength=n)
    keep = (moved_px >= MOVED_SHARE * area) & (covered == 0)
    keep[0] = False  # the unchanged background
    return keep[labels].astype(np.uint8) * 255



def _pose_a_little_off(T_before: np.ndarray | None, T: np.ndarray | None) -> bool:
    """The same pose, or one a localiser's jitter could give a standing camera: moved up to the still background's
    move_m and turned up to TurnLimits.max_step_deg (the picture decides beyond that: _stood_still)."""
    if _same_pose(T_before, T):
        return True
    if T_before is None or T is None:
        return False
    moved_m, turned_deg = pose_delta(np.asarray(T_before, np.float64), np.asarray(T, np.float64))
    return moved_m <= _STILL_MOVE_M and turned_deg <= _TURNS.max_step_deg


def _same_pose(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Whether two frames' poses are one (both unknown counts: a camera without a pose is taken as still)."""
    if a is None or b is None:
        return a is None and b is None
    return bool(np.allclose(a, b, atol=1e-6))


def _stood_still(grey_before: np.ndarray, T_before: np.ndarray | None, grey: np.ndarray,
                 T: np.ndarray | None, background: np.ndarray) -> bool:
    """Whether a camera stood still from one frame (grey, at the still head's size; its pose) to the next: the same
    pose, or one a little off (a localiser's jitter: moved up to BackgroundConfig.move_m, the still background's
    own tolerance, and turned up to TurnLimits.max_step_deg) while the picture's background ((h, w) bool: outside
    the mask's regions, whose movers pull the shift by up to 0.7 px on PETS09) shifted by less than
    STILL_SHIFT_PX. A localiser's pose jitters on a robot that stands; the picture does not, and a real turn moves
    it (0.25 deg is about 1 px at 256 px across a 60 deg view)."""
    if _same_pose(T_before, T):
        return True
    if not _pose_a_little_off(T_before, T):
        return False
    assert T_before is not None and T is not None  # (a little off: both known)
    shift = measured_shift(grey_before.astype(np.float32), grey.astype(np.float32), background, max_px=8.0)
    if shift is None:  # the picture cannot tell (too plain, too much masked): the pose, if a little off, decides
        return is_standing(_TURNS, T_before, T)
    return bool(np.hypot(*shift) < STILL_SHIFT_PX)


def _turned_onto(grey_before: np.ndarray, T_before: np.ndarray | None, T: np.ndarray | None,
                 K: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The previous frame (grey, at the still head's size) re-projected into this frame's view, and (h, w) bool where
    it shows it, when the camera only turned since (moved up to TurnLimits.max_move_m, turned up to max_step_deg,
    as the turning background follows) and turns are followed (K: intrinsics at that size, None when not); else
    None. A pan faster than a shake moves every pixel by more than the shake check takes (3 px: 0.8 deg a frame at
    256 px across 60 deg), and no moving region was found while it turned (BENCHMARKS "A shaking camera that
    turns")."""
    if K is None or T_before is None or T is None:
        return None
    moved_m, turned_deg = pose_delta(np.asarray(T_before, np.float64), np.asarray(T, np.float64))
    if moved_m > _TURNS.max_move_m or turned_deg > _TURNS.max_step_deg:
        return None
    H = view_from_canvas(np.asarray(K, np.float64), np.asarray(T_before, np.float64), np.asarray(T, np.float64),
                         (0, 0))
    size = wh(grey_before)
    return warp(grey_before, H, size), coverage(H, hw(grey_before), size)
