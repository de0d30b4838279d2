"""The classical change detector's reference while it follows a turn (ChangeDetector._follow).

A camera that turns sees its reference leave the picture. TurnCanvas keeps the grey reference, its stable counts
and (optionally) the colour reference on canvases larger than the view, in the plane of the view where the
reference was taken; each frame is re-projected onto them by the turn's homography (core.turning), so what the
camera saw before the turn is still there when it turns back.
"""

from __future__ import annotations

import cv2
import numpy as np

from .turning import TurnLimits, canvas_offset, canvas_shape, coverage, footprint, hw, is_standing, known_in_view, wh
from .turning import warp as warp_view

_TURNS = TurnLimits()


def reprojected(image: np.ndarray, H: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """image re-projected by H into fill's view; where it did not reach, fill (compared with itself: unchanged)."""
    size = wh(fill)
    out = warp_view(image, H, size, replicate=True)
    inside = coverage(H, hw(image), size)
    out[~inside] = fill[~inside]
    return out


class TurnCanvas:
    """The classical reference while following a turn: grey reference, stable counts and (optionally) the colour
    reference on canvases in the plane of the view where the reference was taken, and which pixels are known."""

    def __init__(self, reference: np.ndarray, stable: np.ndarray, colour: np.ndarray | None, pose: np.ndarray,
                 rate: float) -> None:
        h, w = reference.shape
        self.rate = rate  # the blend of unchanged known pixels towards a frame (the change detector's)
        m = _TURNS.margin
        self.pose = pose
        self.pose_fix = np.eye(4)  # (4, 4) turns frames' poses to agree with their pictures (ChangeDetector._follow)
        self._stand_pose, self._stood = pose, 0
        self.offset = canvas_offset(h, w, m)
        self.reference, self.known = self._place(reference, self.offset, canvas_shape(h, w, m))
        self.stable = np.zeros(self.reference.shape, np.int32)
        ox, oy = self.offset
        self.stable[oy:oy + h, ox:ox + w] = stable
        self.colour: np.ndarray | None = None
        self.colour_known: np.ndarray | None = None
        self.colour_offset = (0, 0)
        if colour is not None:
            ch, cw = colour.shape[:2]
            self.colour_offset = canvas_offset(ch, cw, m)
            self.colour, self.colour_known = self._place(colour, self.colour_offset, canvas_shape(ch, cw, m))

    def stood(self, pose: np.ndarray) -> int:
        """Frames in a row the camera has stood within exact_deg (and max_move_m) of where it stopped, this one
        included."""
        if is_standing(_TURNS, self._stand_pose, pose):
            self._stood += 1
        else:
            self._stand_pose, self._stood = pose, 0
        return self._stood

    @staticmethod
    def _place(image: np.ndarray, offset: tuple[int, int], shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        h, w = image.shape[:2]
        out = np.zeros(shape + image.shape[2:], np.float32)
        known = np.zeros(shape, bool)
        ox, oy = offset
        out[oy:oy + h, ox:ox + w] = image
        known[oy:oy + h, ox:ox + w] = True
        return out, known

    @staticmethod
    def view_of(canvas: np.ndarray, known: np.ndarray, view: np.ndarray,
                current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The canvas in this view, and where it is known; elsewhere the current image (unchanged there)."""
        size = wh(current)
        out = warp_view(canvas, view, size)
        seen = known_in_view(known, view, size)
        out[~seen] = current[~seen]
        return out, seen

    def learn(self, frame: np.ndarray, absorb: np.ndarray, unchanged: np.ndarray, stable: np.ndarray,
              to_canvas: np.ndarray) -> None:
        """As ChangeDetector.update's reference update, onto the canvas: new pixels and absorbed ones take the
        frame (in the reference's light), unchanged known ones blend towards it; the stable counts follow."""
        rows, cols, H, cover = _learn_onto(self.reference, self.known, frame, absorb, unchanged, to_canvas, self.rate)
        self.stable[rows, cols][cover] = warp_view(stable.astype(np.int16), H, wh(cover), nearest=True)[cover]

    def learn_colour(self, colour: np.ndarray, absorb: np.ndarray, unchanged: np.ndarray,
                     to_canvas: np.ndarray) -> None:
        """The colour reference's update, as learn() (the angle ignores brightness: pixels as they are)."""
        assert self.colour is not None and self.colour_known is not None
        _learn_onto(self.colour, self.colour_known, colour, absorb, unchanged, to_canvas, self.rate)


def _learn_onto(canvas: np.ndarray, known: np.ndarray, frame: np.ndarray, absorb: np.ndarray, unchanged: np.ndarray,
                to_canvas: np.ndarray, rate: float) -> tuple[slice, slice, np.ndarray, np.ndarray]:
    """One reference canvas (and its known pixels) updated in place from a frame in the view, within the window
    the frame covers: new and absorbed pixels take the frame, known unchanged ones blend towards it at
    rate. Returns the window (rows, cols), the view -> window homography and what the frame covers."""
    rows, cols, H = footprint(to_canvas, hw(frame), hw(known))
    window, seen = canvas[rows, cols], known[rows, cols]  # views: updated in place
    size = wh(seen)
    cover = coverage(H, hw(frame), size)
    frame_c = warp_view(frame, H, size, replicate=True)
    absorb_c = cover & (warp_view(absorb.astype(np.uint8), H, size, nearest=True) > 0)
    blend = cover & seen & ~absorb_c & (warp_view(unchanged.astype(np.uint8), H, size, nearest=True) > 0)
    take = (cover & ~seen) | absorb_c
    np.copyto(window, frame_c, where=take if window.ndim == 2 else take[..., None])
    cv2.accumulateWeighted(frame_c, window, rate, mask=blend.astype(np.uint8))
    seen |= cover
    return rows, cols, H, cover
