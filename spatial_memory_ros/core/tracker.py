"""Frame-to-frame association of detections into tracks with stable ids.

Plain IoU matching (Hungarian, scipy's linear_sum_assignment on 1 - IoU) against boxes predicted
with a constant-velocity model, plus identity gating: a detection that names an item (a decoded tag)
only ever matches that item's track, whatever the overlap, because tag ids are unique.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import linear_sum_assignment

from .config import TrackerConfig
from .errors import BadInputError
from .types import Detection, PositionSource, TrackInfo, TrackState

_INFEASIBLE = 1e6  # cost of a forbidden pair; any real cost is in [0, 1]
_SCORE_SMOOTHING = 0.3  # EMA weight of the newest detection score in a track's confidence


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N, 4) with every box in b (M, 4): (N, M). Boxes are x1, y1, x2, y2."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)  # (N, M)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


@dataclass
class _Track:
    """Mutable per-track state; TrackInfo is the frozen snapshot handed out."""

    track_id: int
    label: str
    item: str
    state: TrackState
    hits: int
    score: float  # EMA of detection scores
    box: np.ndarray  # (4,) px, last matched
    box_velocity: np.ndarray  # (4,) px/s
    position: np.ndarray | None  # (3,) m, last measured
    position_stamp: float  # s, when position was measured
    velocity: np.ndarray  # (3,) m/s
    has_velocity: bool
    first_seen: float
    last_seen: float
    is_dynamic: bool
    position_source: PositionSource
    orientation: np.ndarray | None

    def predicted_box(self, stamp: float) -> np.ndarray:  # (4,)
        return self.box + self.box_velocity * max(stamp - self.last_seen, 0.0)


class Tracker:
    """Keeps tracks across frames: TENTATIVE -> CONFIRMED after min_hits matches -> LOST when unmatched.

    - A TENTATIVE track that misses one frame is deleted (spurious detections do not linger).
    - A LOST track keeps its id and last position; its box moves on with the box velocity so that a
      moving object can be picked up again. It is deleted max_age_s after it was last matched.
    - velocity is the map-frame velocity (m/s) from successive measured positions, smoothed by an EMA
      with weight velocity_smoothing (1 = newest estimate only, lower = smoother but slower to react);
      zeros until two positions are known.
    - confidence is an EMA of detection scores; while LOST it fades linearly to 0 at max_age_s.
    - A detection matches only tracks with the same label and item. If an item is detected twice in
      one frame only the highest-score detection is used: a tag id names one physical thing.
    - A stamp earlier than the previous update (a bag loop, a sim-time reset) clears all tracks,
      because ages and velocities across the jump would be meaningless.
    """

    def __init__(self, config: TrackerConfig) -> None:
        self.config = config
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._last_stamp: float | None = None

    def reset(self) -> None:
        """Forget all tracks; ids start again at 1."""
        self._tracks = []
        self._next_id = 1
        self._last_stamp = None

    def update(self, detections: Sequence[Detection], stamp: float) -> list[TrackInfo]:
        """Associate this frame's detections (boxes px, positions map frame m) at stamp (s).

        Returns every live track, LOST ones included, sorted by id.
        """
        stamp = float(stamp)
        if not np.isfinite(stamp):
            raise BadInputError(f"stamp must be finite, got {stamp}")
        if self._last_stamp is not None and stamp < self._last_stamp:
            self.reset()
        self._last_stamp = stamp
        dets = _deduplicate_items([_checked(d) for d in detections])

        matches, unmatched_dets = self._associate(dets, stamp)
        matched_tracks = set()
        for ti, di in matches:
            self._apply(self._tracks[ti], dets[di], stamp)
            matched_tracks.add(ti)
        survivors = []
        for ti, track in enumerate(self._tracks):
            if ti not in matched_tracks:
                if track.state == TrackState.TENTATIVE:
                    continue
                track.state = TrackState.LOST
                if stamp - track.last_seen > self.config.max_age_s:
                    continue
            survivors.append(track)
        self._tracks = survivors
        for di in unmatched_dets:
            self._tracks.append(self._new_track(dets[di], stamp))
        return [self._snapshot(t, stamp) for t in sorted(self._tracks, key=lambda t: t.track_id)]

    def _associate(self, dets: list[Detection], stamp: float) -> tuple[list[tuple[int, int]], list[int]]:
        """(track index, detection index) pairs and the unmatched detection indices."""
        if not self._tracks or not dets:
            return [], list(range(len(dets)))
        predicted = np.stack([t.predicted_box(stamp) for t in self._tracks])  # (T, 4)
        iou = box_iou(predicted, np.stack([d.box for d in dets]))  # (T, D)
        cost = 1.0 - iou
        for ti, track in enumerate(self._tracks):
            for di, det in enumerate(dets):
                same_identity = det.label == track.label and det.item == track.item
                # A named item may match its track at any overlap: the tag id is the identity.
                overlaps = bool(det.item) or iou[ti, di] >= self.config.min_iou
                if not (same_identity and overlaps):
                    cost[ti, di] = _INFEASIBLE
        rows, cols = linear_sum_assignment(cost)
        matches = [(int(r), int(c)) for r, c in zip(rows, cols) if cost[r, c] < _INFEASIBLE]
        matched = {c for _, c in matches}
        return matches, [di for di in range(len(dets)) if di not in matched]

    def _new_track(self, det: Detection, stamp: float) -> _Track:
        track = _Track(
            track_id=self._next_id,
            label=det.label,
            item=det.item,
            state=TrackState.CONFIRMED if self.config.min_hits <= 1 else TrackState.TENTATIVE,
            hits=1,
            score=float(det.score),
            box=det.box.copy(),
            box_velocity=np.zeros(4),
            position=None if det.position is None else det.position.copy(),
            position_stamp=stamp,
            velocity=np.zeros(3),
            has_velocity=False,
            first_seen=stamp,
            last_seen=stamp,
            is_dynamic=det.is_dynamic,
            position_source=det.position_source if det.position is not None else PositionSource.NONE,
            orientation=det.orientation,
        )
        self._next_id += 1
        return track

    def _apply(self, track: _Track, det: Detection, stamp: float) -> None:
        """Fold a matched detection into its track."""
        a = self.config.velocity_smoothing
        dt = stamp - track.last_seen
        if dt > 0:
            box_velocity = (det.box - track.box) / dt
            track.box_velocity = (
                box_velocity if track.hits == 1 else a * box_velocity + (1 - a) * track.box_velocity
            )
        if det.position is not None:
            dt_pos = stamp - track.position_stamp
            if track.position is not None and dt_pos > 0:
                v = (det.position - track.position) / dt_pos
                track.velocity = a * v + (1 - a) * track.velocity if track.has_velocity else v
                track.has_velocity = True
            track.position = det.position.copy()
            track.position_stamp = stamp
            track.position_source = det.position_source
            track.orientation = det.orientation
        track.box = det.box.copy()
        track.score = _SCORE_SMOOTHING * float(det.score) + (1 - _SCORE_SMOOTHING) * track.score
        track.hits += 1
        track.last_seen = stamp
        track.is_dynamic = det.is_dynamic
        if track.state == TrackState.LOST or track.hits >= self.config.min_hits:
            track.state = TrackState.CONFIRMED

    def _snapshot(self, track: _Track, stamp: float) -> TrackInfo:
        confidence = track.score
        box = track.box
        if track.state == TrackState.LOST:
            confidence *= max(0.0, 1.0 - (stamp - track.last_seen) / self.config.max_age_s)
            box = track.predicted_box(stamp)
        return TrackInfo(
            track_id=track.track_id,
            label=track.label,
            item=track.item,
            state=track.state,
            is_dynamic=track.is_dynamic,
            confidence=float(np.clip(confidence, 0.0, 1.0)),
            box=box.copy(),
            position=None if track.position is None else track.position.copy(),
            velocity=track.velocity.copy(),
            first_seen=track.first_seen,
            last_seen=track.last_seen,
            position_source=track.position_source,
            orientation=None if track.orientation is None else np.asarray(track.orientation).copy(),
        )


def _checked(det: Detection) -> Detection:
    """det with float64 arrays; BadInputError for a malformed box or position."""
    box = np.asarray(det.box, dtype=np.float64).reshape(-1)
    if box.shape != (4,) or not np.isfinite(box).all() or box[2] < box[0] or box[3] < box[1]:
        raise BadInputError(
            f"detection box must be finite (x1, y1, x2, y2) with x2 >= x1, y2 >= y1: {det.box}"
        )
    position = det.position
    if position is not None:
        position = np.asarray(position, dtype=np.float64).reshape(-1)
        if position.shape != (3,) or not np.isfinite(position).all():
            raise BadInputError(f"detection position must be a finite (3,) vector: {det.position}")
    return replace(det, box=box, position=position)


def _deduplicate_items(dets: list[Detection]) -> list[Detection]:
    """Keep one detection per named item (the highest score); unnamed ones all pass."""
    best: dict[str, Detection] = {}
    for det in dets:
        if det.item and (det.item not in best or det.score > best[det.item].score):
            best[det.item] = det
    return [d for d in dets if not d.item or best[d.item] is d]
