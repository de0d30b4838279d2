"""Follow a confirmed item-class track through the frames its detector misses, by optical flow.

Why: a COCO detector names an object at rest and loses it while a hand turns and carries it. SSD finds
opencv-doc's box (`book`, score >= 0.5) in 13 of its 455 frames, nearly all before it moves, so the item
memory's `current` stayed where the object was last named. Here the corner points inside the track's
last box are followed into the next frame with pyramidal Lucas-Kanade, forward and backward, and the box
moves and scales by the median of the points that come back to where they started (the median-flow idea
of Kalal, Mikolajczyk and Matas, "Forward-Backward Error", ICPR 2010). Each followed box is handed to the
tracker as a detection of the same item at a lower score: it is lifted, tracked and remembered like one,
and a real detection of the item always wins (one detection per item, the higher score). Following stops
follow_max_s after the track's last real detection, when too few points survive, or when the box leaves
the image. About 2-5 ms per followed object on 2 cores (flow runs on a copy at most _WORK_WIDTH wide).

Not followed: tags (their decodes name them) and moving classes (people: the tracker's own job).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .association import box_iou
from .types import Detection, TrackInfo, TrackState

__all__ = ["ItemFollower", "median_flow"]

_WORK_WIDTH = 320  # px: flow on a copy at most this wide (half of 640x480); corners of a 30 px object survive
_MAX_POINTS = 100  # corners per box; more costs time and hardly moves the median
_MIN_POINTS = 6  # fewer points than this back from the round trip: the box is not followed this frame
_WINDOW = (15, 15)  # px at the working size: LK's window
_LEVELS = 3  # pyramid levels: motion up to ~15 * 2**3 px at the working size between frames
_DETECTED_IOU = 0.3  # an item-class detection overlapping the box this much: the detector has the object
_MIN_SIDE_PX = 4.0  # a followed box thinner than this (full resolution) is dropped


def median_flow(prev_gray: np.ndarray, gray: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """box (4,) x0 y0 x1 y1 in prev_gray moved into gray by the median flow of its corners; None if lost.

    Points are kept when their forward-backward error is at most the median error (and at most 1 px is
    always accepted); the shift is their median displacement, the scale the median ratio of their pairwise
    distances after and before.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    mask = np.zeros(prev_gray.shape, np.uint8)
    mask[max(int(y0), 0):max(int(np.ceil(y1)), 0), max(int(x0), 0):max(int(np.ceil(x1)), 0)] = 255
    if not mask.any():
        return None
    start = cv2.goodFeaturesToTrack(prev_gray, _MAX_POINTS, 0.01, 3, mask=mask)
    if start is None or len(start) < _MIN_POINTS:
        return None
    lk = {"winSize": _WINDOW, "maxLevel": _LEVELS}
    ahead, ok_f, _ = cv2.calcOpticalFlowPyrLK(prev_gray, gray, start, None, **lk)
    back, ok_b, _ = cv2.calcOpticalFlowPyrLK(gray, prev_gray, ahead, None, **lk)
    a, b = start.reshape(-1, 2), ahead.reshape(-1, 2)
    error = np.linalg.norm(a - back.reshape(-1, 2), axis=1)  # (N,) px
    good = (ok_f.ravel() == 1) & (ok_b.ravel() == 1)
    if good.sum() < _MIN_POINTS:
        return None
    good &= error <= max(float(np.median(error[good])), 1.0)
    if good.sum() < _MIN_POINTS:
        return None
    a, b = a[good], b[good]
    shift = np.median(b - a, axis=0)  # (2,)
    i, j = np.triu_indices(len(a), 1)
    before = np.linalg.norm(a[i] - a[j], axis=1)
    after = np.linalg.norm(b[i] - b[j], axis=1)
    spread = before > 1.0
    scale = float(np.median(after[spread] / before[spread])) if spread.any() else 1.0
    cx, cy = (x0 + x1) / 2 + shift[0], (y0 + y1) / 2 + shift[1]
    hw, hh = (x1 - x0) * scale / 2, (y1 - y0) * scale / 2
    return np.array([cx - hw, cy - hh, cx + hw, cy + hh])


@dataclass
class _Followed:
    box: np.ndarray  # (4,) px, full resolution, in the previous frame
    label: str
    item: str
    detected: float  # s, the track's last real detection


class ItemFollower:
    """Proposes followed boxes for the item tracks the detector misses; the pipeline calls propose() before
    the tracker and commit() after it, every frame."""

    def __init__(self, item_classes: Collection[str], *, max_s: float, score: float) -> None:
        """item_classes: the detector's item classes (only their tracks are followed). max_s: how long after
        a track's last real detection it is still followed. score: the followed detections' score, below
        any real detection's."""
        self._classes = frozenset(item_classes)
        self._max_s = max_s
        self._score = score
        self._followed: dict[int, _Followed] = {}  # track id -> where it was in the previous frame
        self._gray: np.ndarray | None = None  # the previous frame at the working size
        self._size: tuple[int, int] | None = None  # the previous frame's own (w, h)
        self._stamp = -np.inf  # the previous frame's
        self._proposed: dict[int, int] = {}  # index among this frame's proposals -> track id

    def reset(self) -> None:
        self._followed.clear()
        self._proposed.clear()
        self._gray, self._size, self._stamp = None, None, -np.inf

    def propose(self, image_bgr: np.ndarray, stamp: float, detections: Sequence[Detection]) -> list[Detection]:
        """Detections (unlifted) for the followed tracks that no item-class detection of this frame covers."""
        h, w = image_bgr.shape[:2]
        scale = min(1.0, _WORK_WIDTH / w)
        small = cv2.resize(image_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 \
            else image_bgr
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        prev, self._gray = self._gray, gray
        size, self._size = self._size, (w, h)
        if stamp < self._stamp:  # the clock went back (a bag looped): the tracker drops its tracks too
            self._followed.clear()
        self._stamp = stamp
        self._proposed = {}
        # the first frame, or a new image size: 640 and 1280 px wide both shrink to the same working copy,
        # but the boxes kept are in the old size's pixels
        if prev is None or size != (w, h):
            return []
        seen = np.array([d.box for d in detections if d.label in self._classes]).reshape(-1, 4)
        out: list[Detection] = []
        for track_id, f in self._followed.items():
            if stamp - f.detected > self._max_s:
                continue
            if len(seen) and box_iou(f.box[None], seen).max() >= _DETECTED_IOU:
                continue  # the detector has it this frame; the tracker takes it from there
            moved = median_flow(prev, gray, f.box * scale)
            if moved is None:
                continue
            box = np.clip(moved / scale, 0.0, [w, h, w, h])
            if min(box[2] - box[0], box[3] - box[1]) < _MIN_SIDE_PX:
                continue  # gone out of the image
            self._proposed[len(out)] = track_id
            out.append(Detection(box=box, label=f.label, score=self._score, item=f.item, followed=True))
        return out

    def commit(
        self, tracks: Sequence[TrackInfo], detections: Sequence[Detection], matched: dict[int, int],
        first_proposed: int, stamp: float,
    ) -> None:
        """Remember where each confirmed item track is now. detections: all of this frame's, the proposals
        at first_proposed onwards (as propose() returned them); matched: Tracker.matched()."""
        followed: dict[int, _Followed] = {}
        for track in tracks:
            index = matched.get(track.track_id)
            if (index is None or track.state != TrackState.CONFIRMED or not track.item
                    or track.label not in self._classes):
                continue
            det = detections[index]
            proposal = self._proposed.get(index - first_proposed) if index >= first_proposed else None
            if proposal is None:
                detected = stamp  # a real detection
            elif proposal == track.track_id and track.track_id in self._followed:
                detected = self._followed[track.track_id].detected
            else:
                continue  # another track's proposal: do not chain it on
            followed[track.track_id] = _Followed(np.asarray(det.box, dtype=np.float64).copy(), track.label,
                                                 track.item, detected)
        self._followed = followed
