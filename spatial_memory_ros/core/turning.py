"""Following a camera that only turns: the geometry both change backends use to keep a reference through a turn.

A camera that turns about its own centre sees, at every rotation, a re-projection of what it saw before:
pixel_now ~ K R_now^T R_ref K^-1 pixel_ref, for any depth (a rotation homography). So a per-pixel reference
can live on a canvas in the plane of the view where it started, larger than the view; each frame is warped
onto the canvas to be learned and the canvas into the view to be compared. Both warps start from the canvas
or from the frame, never from an earlier warp, so no interpolation blur accumulates over a long pan.

The limits say when a pose change is such a turn: the camera has not moved (parallax, which no warp undoes),
has not turned so far from the reference view that the plane stretches, and does not turn so fast in one
frame that the frame is blurred (the references were learned from sharp frames). Used by core.change (the
classical detector) and model.turning_background (the learned backend's still background).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from .geometry import pose_delta


@dataclass(frozen=True)
class TurnLimits:
    # turned less than this from where the reference started: no warp, the still camera's code path. A pose that
    # jitters (a localisation) is not followed below it: 0.25 deg is half a pixel at the learned model's 128 px
    exact_deg: float = 0.25
    max_turn_deg: float = 40.0  # turned farther from the reference view: start again (the plane stretches)
    # moved farther than this from where the reference started: not a turn about the camera's centre, and the
    # warp would be off by the parallax (1 cm at 1 m: half a degree). A still camera's own tolerance (5 cm) is
    # larger: a robot that stops and turns would carry a reference taken up to 5 cm back into its turn (home
    # patrol 1004: an edge marked at every turn)
    max_move_m: float = 0.01
    # turned more than this since the last frame: that frame is neither compared nor learned (is_blurred_step).
    # A fast turn blurs the frame (the simulator's 40 deg/s turns, 4 deg a frame at 10 Hz: 6 px at 320 px), and
    # a reference of sharp frames differs from it at every edge (home patrol 1004, 5 min, learned: change mIoU
    # 0.958 against 0.983 when following them).
    # 3 deg a frame is 30 deg/s at 10 Hz; PETS09 panning at up to 2.7 deg a frame with 33 ms of blur (7 px)
    # is followed as well as a slow pan by both backends (BENCHMARKS "How fast a turn can be followed")
    max_step_deg: float = 3.0
    margin: float = 1.0  # the canvas extends the reference view by this share of its size on every side


def canvas_shape(h: int, w: int, margin: float) -> tuple[int, int]:
    """(H, W) of the canvas for a w x h view."""
    return h + 2 * round(margin * h), w + 2 * round(margin * w)


def canvas_offset(h: int, w: int, margin: float) -> tuple[int, int]:
    """(x, y) of the reference view's top-left corner on the canvas."""
    H, W = canvas_shape(h, w, margin)
    return (W - w) // 2, (H - h) // 2


def view_from_canvas(K: np.ndarray, T_ref: np.ndarray, T: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    """(3, 3) canvas pixel -> the current view's pixel: K R^T R_ref K^-1, after undoing the canvas offset. K is the
    view's intrinsics at its own size; T_ref, T (4, 4) T_map_cam (optical frames)."""
    shift = np.array([[1.0, 0.0, -offset[0]], [0.0, 1.0, -offset[1]], [0.0, 0.0, 1.0]])
    return K @ T[:3, :3].T @ T_ref[:3, :3] @ np.linalg.inv(K) @ shift


def is_turn(limits: TurnLimits, T_ref: np.ndarray | None, T: np.ndarray | None, *, following: bool = False) -> bool:
    """The pose T is a turn from T_ref that a reference can follow: moved at most max_move_m, turned at most
    max_turn_deg and beyond exact_deg (unless already following: then back to the reference view is fine too)."""
    if T is None or T_ref is None:
        return False
    moved_m, turned_deg = pose_delta(T_ref, T)
    if moved_m > limits.max_move_m or turned_deg > limits.max_turn_deg:
        return False
    return following or turned_deg > limits.exact_deg


def is_standing(limits: TurnLimits, T_ref: np.ndarray, T: np.ndarray) -> bool:
    """The pose T is where T_ref stood, up to a localiser's jitter: moved at most max_move_m and turned at most
    exact_deg (the still camera's code path: nothing to warp or follow)."""
    moved_m, turned_deg = pose_delta(T_ref, T)
    return moved_m <= limits.max_move_m and turned_deg <= limits.exact_deg


# a pose moved less than this stood: a turn's float noise, not a move (metres). A still camera's background asks the
# picture whether the camera moved only beyond it (model.background, core.still_edges), so a pure turn pays nothing
SAME_PLACE_M = 1e-6


def translated(T_ref: np.ndarray, T: np.ndarray) -> bool:
    """The pose T moved from T_ref (SAME_PLACE_M or more), however little; a pure turn did not."""
    return pose_delta(T_ref, T)[0] >= SAME_PLACE_M


def is_blurred_step(limits: TurnLimits, T_last: np.ndarray | None, T: np.ndarray | None) -> bool:
    """Turned more than max_step_deg since the last frame's pose T_last: the frame is too blurred to compare with
    or to learn, though the reference stays right for the frames after it (None: no last frame, not blurred)."""
    return T_last is not None and T is not None and pose_delta(T_last, T)[1] > limits.max_step_deg


def hw(image: np.ndarray) -> tuple[int, int]:
    """(h, w) of an image array, as the pair the functions here take (numpy 1's stubs type shape[:2] as a tuple of
    any length, which a ROS install's numpy 1.26 checks as an error)."""
    return int(image.shape[0]), int(image.shape[1])


def wh(image: np.ndarray) -> tuple[int, int]:
    """(w, h) of an image array: OpenCV's size order (warp's size)."""
    return int(image.shape[1]), int(image.shape[0])


def footprint(H_to: np.ndarray, src_shape: tuple[int, int], shape: tuple[int, int]) -> tuple[slice, slice, np.ndarray]:
    """Where a src_shape (h, w) image lands on a destination of shape (H, W) through H_to: the (rows, cols) slices
    of its bounding box (clipped, a pixel of margin), and H_to shifted to that box, so that warping into the box
    alone costs the source's size, not the destination's (a canvas is nine times the view)."""
    h, w = src_shape
    corners = np.array([[[-0.5, -0.5]], [[w - 0.5, -0.5]], [[w - 0.5, h - 0.5]], [[-0.5, h - 0.5]]], np.float64)
    pts = cv2.perspectiveTransform(corners, H_to).reshape(-1, 2)
    x0, y0 = (max(int(np.floor(v)) - 1, 0) for v in pts.min(axis=0))
    x1, y1 = min(int(np.ceil(pts[:, 0].max())) + 2, shape[1]), min(int(np.ceil(pts[:, 1].max())) + 2, shape[0])
    x1, y1 = max(x1, x0), max(y1, y0)
    shift = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]])
    return slice(y0, y1), slice(x0, x1), shift @ H_to


def warp(image: np.ndarray, H: np.ndarray, size: tuple[int, int], *, nearest: bool = False,
         replicate: bool = False) -> np.ndarray:
    """cv2.warpPerspective with the flags used here: size (w, h); bilinear unless nearest; zeros outside unless
    replicate (the source's edge repeated: a pixel whose nearest source pixel is inside is not darkened)."""
    return cv2.warpPerspective(image, H, size, flags=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE if replicate else cv2.BORDER_CONSTANT)


def coverage(H_to: np.ndarray, src_shape: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """(h, w) bool of the destination (size (w, h)): whose nearest source pixel (src_shape (h, w)) is inside."""
    return warp(np.ones(src_shape, np.uint8), H_to, size, nearest=True) > 0


def off_canvas(H_view: np.ndarray, size: tuple[int, int], canvas_shape: tuple[int, ...]) -> bool:
    """Whether a view (size (w, h); H_view canvas px -> view px) has turned wholly off a canvas of canvas_shape:
    the canvas holds a view's width of margin on each side, and a narrow lens (under about 24 deg across) turns
    past that well within the turn limit (max_turn_deg)."""
    rows, cols, _ = footprint(np.linalg.inv(H_view), size[::-1], (canvas_shape[0], canvas_shape[1]))
    return _empty(rows, cols)


def _empty(rows: slice, cols: slice) -> bool:
    """Whether a footprint's window holds no pixel."""
    return rows.stop <= rows.start or cols.stop <= cols.start


def known_in_view(known: np.ndarray, H_view: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) bool: view pixels whose bilinear read of the canvas touches only known canvas pixels (the canvas's
    known pixels eroded by one, within the window the view reads)."""
    rows, cols, _ = footprint(np.linalg.inv(H_view), size[::-1], hw(known))
    if _empty(rows, cols):  # off the canvas (off_canvas): nothing of it is known (cv2.erode refused the window)
        return np.zeros(size[::-1], bool)
    window = np.zeros(known.shape, np.uint8)
    window[rows, cols] = cv2.erode(known[rows, cols].astype(np.uint8), np.ones((3, 3), np.uint8),
                                   borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return warp(window, H_view, size, nearest=True) > 0


# image_shift works on a copy this wide: phase correlation's cost grows with the area; at 256 px people walking
# through PETS09's view shift its peak by at most 0.4 px of a 512 px view (at 160 px by up to 1 px)
_SHIFT_WIDTH = 256
# a peak weaker than this (the share of the normalised cross-power in it) is no match: a bare wall, or a view
# whose reference is mostly unknown
_SHIFT_MIN_RESPONSE = 0.1


def image_shift(reference: np.ndarray, frame: np.ndarray, known: np.ndarray, max_px: float, *,
                min_known: float = 0.5) -> tuple[float, float]:
    """(dx, dy) px by which the frame's picture lies shifted against the reference (both (h, w) float32 grey, the
    reference re-projected into the frame's view by the pose), judged only where the reference is known (known
    (h, w) bool). A pose a little off (a localisation's jitter or jump) leaves exactly such a shift for a small
    turn; people moving are outvoted by the rest. (0, 0) when unsure (measured_shift: None); then the pose, not
    the picture, is what to go by."""
    shift = measured_shift(reference, frame, known, max_px, min_known=min_known)
    return (0.0, 0.0) if shift is None else shift


def _shift_size(w: int, h: int, min_side: int) -> tuple[float, tuple[int, int]]:
    """The scale and (w, h) of the copy a w x h picture's shift is measured on: at most _SHIFT_WIDTH wide, each side
    at least min_side."""
    scale = min(1.0, _SHIFT_WIDTH / w)
    return scale, (max(int(round(w * scale)), min_side), max(int(round(h * scale)), min_side))


def measured_shift(reference: np.ndarray, frame: np.ndarray, known: np.ndarray, max_px: float, *,
                   min_known: float = 0.5) -> tuple[float, float] | None:
    """image_shift's (dx, dy), or None when the picture cannot tell: a weak peak, too little known, or a shift
    beyond max_px. min_known: the share of the view that must be known."""
    h, w = frame.shape
    if known.mean() < min_known:
        return None
    scale, size = _shift_size(w, h, 8)
    small_known = cv2.resize(known.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.999
    if not small_known.any():
        return None
    pair = []
    for image in (reference, frame):
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA).astype(np.float32)
        # less its mean, and zero where unknown: neither a plain picture nor the window itself is structure
        pair.append(np.where(small_known, small - np.float32(small[small_known].mean()), np.float32(0.0)))
    window = _hanning(size)
    (dx, dy), response = cv2.phaseCorrelate(pair[0], pair[1], window)
    dx, dy = dx / scale, dy / scale
    if response < _SHIFT_MIN_RESPONSE or np.hypot(dx, dy) > max_px:
        return None
    return float(dx), float(dy)


# A turn that moves the view's centre less than this (px) is not worth checking or following: boxes are tens of px
# wide, and a localiser's jitter of 0.1 deg moves a 60 deg, 512 px view by under 1 px.
TURN_MIN_PX = 1.0
# The picture agrees with the pose's turn when its shift is within this share of the turn's shift (or 1 px).
_TURN_AGREE = 0.5


def centre_shift(H: np.ndarray, view_size: tuple[int, int]) -> np.ndarray:
    """(2,) px by which the homography H (3, 3; view_from_canvas, say) moves the centre of a view_size (w, h) view."""
    w, h = view_size
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0, 1.0])
    moved = H @ centre
    with np.errstate(divide="ignore", invalid="ignore"):
        return moved[:2] / moved[2] - centre[:2]


def shift_copy(grey: np.ndarray) -> np.ndarray:
    """(h, w) grey -> the copy turn_in_picture measures on: at most _SHIFT_WIDTH wide, float32 (kept a frame)."""
    h, w = grey.shape[:2]
    return cv2.resize(grey, _shift_size(w, h, 8)[1], interpolation=cv2.INTER_AREA).astype(np.float32)


def turn_in_picture(previous: np.ndarray, frame: np.ndarray, H: np.ndarray, view_size: tuple[int, int]) -> bool:
    """Whether the picture turned as the pose says: H (3, 3), the previous frame's px -> this frame's in a
    view_size (w, h) view (a rotation homography, view_from_canvas), moves the view's centre by TURN_MIN_PX or
    more, and the picture's own shift from previous to frame (shift_copy of consecutive frames) is within a half
    of it, or cannot be told (a bare view, a blurred pan: the pose is what there is then). A pose that jitters
    turns while its picture stands: PETS09's tags-only tracks lost 0.03 IDF1 when each frame's 0.2 deg of
    jitter moved the boxes (BENCHMARKS "The tracker follows a turn")."""
    turn = centre_shift(H, view_size)
    size = float(np.hypot(*turn))
    if not np.isfinite(size) or size < TURN_MIN_PX:  # not finite: the centre turned to the horizon
        return False
    scale = frame.shape[1] / view_size[0]
    seen = measured_shift(previous, frame, np.ones(frame.shape[:2], bool), max_px=(2.0 * size + 4.0) * scale)
    if seen is None:
        return True
    return float(np.hypot(seen[0] / scale - turn[0], seen[1] / scale - turn[1])) <= max(1.0, _TURN_AGREE * size)


def picture_moved(reference: np.ndarray, frame: np.ndarray, known: np.ndarray, tol_px: float) -> bool | None:
    """Whether the frame's picture moved against the reference ((h, w) float32 grey; known (h, w) bool: where to
    judge) by tol_px or more, measured in each quarter of the view: True when at least two quarters shifted that
    far, False when at least two could tell and fewer than two moved, None when fewer than two could tell. One
    shift of the whole picture (measured_shift) sees a turn or a sideways move, not a camera moving forward: its
    picture grows about the centre, and the quarters' shifts point apart while their mean stays near 0. A mover
    pulls one quarter, not two."""
    h, w = frame.shape
    scale, size = _shift_size(w, h, 16)  # the quarters at image_shift's width: the same cost as one measured_shift
    ref, now = (cv2.resize(im, size, interpolation=cv2.INTER_AREA).astype(np.float32) for im in (reference, frame))
    ok = cv2.resize(known.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.999
    sw, sh = size[0] // 2, size[1] // 2
    told = moved = 0
    for rows in (slice(0, sh), slice(sh, 2 * sh)):
        for cols in (slice(0, sw), slice(sw, 2 * sw)):
            shift = measured_shift(ref[rows, cols], now[rows, cols], ok[rows, cols], max_px=8.0 * scale)
            if shift is not None:
                told += 1
                moved += bool(np.hypot(*shift) >= tol_px * scale)
    if told < 2:
        return None
    return moved >= 2


def misfit(reference: np.ndarray, frame: np.ndarray, known: np.ndarray, every: int = 4) -> float:
    """The median grey-level difference of reference and frame ((h, w) float32) where known (every `every`-th
    pixel each way; inf where none is): a mover over part of the picture does not move the median, a misaligned
    reference does. What a correction by image_shift must lower to be kept."""
    sub = known[::every, ::every]
    if not sub.any():
        return float("inf")
    return float(np.median(np.abs(reference[::every, ::every] - frame[::every, ::every])[sub]))


@functools.lru_cache(maxsize=4)
def _hanning(size: tuple[int, int]) -> np.ndarray:
    """The phase correlation's window for a (w, h) picture; made once per size (the caller does not write it)."""
    return cv2.createHanningWindow(size, cv2.CV_32F)


def rotation_for_shift(dx: float, dy: float, K: np.ndarray) -> np.ndarray:
    """(4, 4) a small rotation of the camera (in its optical frame) that moves what it sees by (dx, dy) px at the
    image centre: T_map_cam @ this is the pose that agrees with a picture image_shift found shifted so."""
    yaw, pitch = np.arctan2(-dx, K[0, 0]), np.arctan2(dy, K[1, 1])
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    R = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]]) @ np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp],
                                                                                 [0.0, sp, cp]])
    out = np.eye(4)
    out[:3, :3] = R
    return out
