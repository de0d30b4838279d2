"""The floor memory's answer to a localiser's pose error (core.floor_change), apart from the memory itself.

A localiser's pose is off by a fraction of a degree and a centimetre or two, differently every time a place is
seen again, so the same floor lands a little away from where the memory saw it and every tile seam, painted
line and tag edge would differ by its contrast (a jitter of 0.2 deg took a patrol's change mIoU from 0.986 to
0.900: BENCHMARKS "A pose a little off, on patrol"). Three things answer it:

1. ``align``: the memory's floor, drawn into the view with the pose, is compared with the frame; the picture
   shift between them (core.turning.measured_shift) turns the pose, kept only when the two then agree better. A
   rotation error moves far floor most, and this removes most of it.
2. ``PoseErrorMeter``: how far the pose still is off is measured from those shifts, frame after frame. An
   exact pose measures about nothing, and then nothing below changes.
3. ``edge_allowance`` and ``pose_reach``: with that error, a cell must differ by more than the threshold plus
   the strongest edge both looks have within the error's reach times that reach (a misregistration by d
   cells changes a look by about its gradient times d). Where nothing changed both looks have the edge and
   it is forgiven; a board put down on smooth floor, or taken from it, leaves one look smooth and still
   counts. Floor the error may move farther than a few cells is not compared at all (a turn by a moves floor
   at slant distance d by about a d^2 / height along the ray: the far floor of a low camera).

Tried and dropped: registering the frame's floor to the memory's by a homography (ECC) did not converge on
smooth floor; a shift tolerance (a cell differs only from every look near it) lost the boards themselves,
whose black-to-white edges hold every grey a floor has.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from .turning import measured_shift, misfit, rotation_for_shift

ALIGN_MIN_PX = 0.5  # a picture shift smaller than this is left to the pose (and measured as it is)
Drawn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # pose -> (grey reference (h, w), known (h, w))


class PoseErrorMeter:
    """The pose's rotation error as picture shifts show it: a running mean of its square over ``frames``."""

    def __init__(self, frames: float) -> None:
        self._frames = frames
        self._sq = 0.0  # deg^2

    @property
    def deg(self) -> float:
        """Std per camera axis, deg."""
        return float(np.sqrt(self._sq))

    def add(self, dx: float, dy: float, K: np.ndarray) -> None:
        """Count a picture shift of (dx, dy) px, split over the two axes it turns about."""
        deg_sq = float(np.degrees(dx / K[0, 0]) ** 2 + np.degrees(dy / K[1, 1]) ** 2) / 2.0
        self._sq += (deg_sq - self._sq) / self._frames


def align(look: np.ndarray, K: np.ndarray, T: np.ndarray, drawn: Drawn, meter: PoseErrorMeter, *,
          max_deg: float, min_known: float) -> np.ndarray:
    """T turned so that the memory's floor, drawn(pose) into the view, lies where the frame (look, (h, w) grey)
    shows it; T itself when the picture is unsure (too little known floor, a weak peak, a shift over max_deg)
    or the turn does not make the two agree better. Every shift believed is counted into meter."""
    reference, known = drawn(T)
    max_px = float(K[0, 0] * np.tan(np.radians(max_deg)))
    shift = measured_shift(reference, look, known, max_px, min_known=min_known)
    if shift is None:  # unsure
        return T
    dx, dy = shift
    if np.hypot(dx, dy) < ALIGN_MIN_PX:  # the pose agrees with the picture: measured, nothing to turn
        meter.add(dx, dy, K)
        return T
    turned = T @ rotation_for_shift(dx, dy, K)
    reference2, known2 = drawn(turned)
    both = known & known2
    if both[::2, ::2].sum() < 100:
        return T
    if misfit(reference2, look, both, every=2) >= misfit(reference, look, both, every=2):
        return T
    meter.add(dx, dy, K)
    return turned


def shift_cells(dist: np.ndarray, height: float, error_deg: float, error_m: float, cell_m: float) -> np.ndarray:
    """(rows, cols) how many cells a pose error of error_deg and error_m may move floor seen from slant distance
    dist (m) by a camera height (m) above it: a d sideways, a d^2 / height along the ray."""
    spread = dist * np.maximum(dist / np.float32(height), 1.0)
    return (error_m + spread * np.float32(np.radians(error_deg))) / cell_m


def pose_reach(height: float, error_deg: float, error_m: float, max_cells: float, cell_m: float) -> float:
    """The slant distance (m) beyond which that error may move the floor by more than max_cells."""
    room = max_cells * cell_m - error_m
    error = np.radians(error_deg)
    if error <= 0:
        return np.inf if room >= 0 else 0.0
    return float(np.sqrt(height * max(room, 0.0) / error))


def edge_allowance(seen: np.ndarray, lit: np.ndarray, shift: np.ndarray, max_cells: float) -> np.ndarray:
    """(rows, cols) the colour difference a misregistration by shift cells may make where nothing changed: the
    strongest edge both looks (rows, cols, 3) have within that reach, times the reach."""
    reach = np.minimum(np.ceil(shift), max_cells).astype(np.int64)
    edge = np.minimum(_near_max(_gradient(seen), reach), _near_max(_gradient(lit), reach))
    return edge * shift


def grey(look: np.ndarray) -> np.ndarray:
    """(h, w) float32 mean of a BGR look's channels (numpy's mean along the channels, bit for bit, ten times
    faster)."""
    return (look[..., 0].astype(np.float32) + look[..., 1] + look[..., 2]) / 3


def _gradient(look: np.ndarray) -> np.ndarray:
    """(rows, cols) colour gradient magnitude of a (rows, cols, 3) look, in colour units per cell."""
    gx = cv2.Sobel(look, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    gy = cv2.Sobel(look, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    return np.sqrt((gx * gx + gy * gy).sum(axis=2))


def _near_max(values: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """(rows, cols) the largest of values within reach (int, cells, a square) of each cell."""
    out = values.copy()
    for r in range(1, int(reach.max(initial=0)) + 1):
        where = reach == r
        if where.any():
            out[where] = cv2.dilate(values, np.ones((2 * r + 1, 2 * r + 1), np.uint8))[where]
    return out
