"""One track's state, box prediction, detection folding and snapshot: apart from tracker.py, which pairs them up."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import TrackerConfig
from .types import Detection, PositionSource, TrackInfo, TrackState

__all__ = ["Track", "apply_detection", "snapshot"]

_SCORE_SMOOTHING = 0.3  # EMA weight of the newest detection score in a track's confidence
# Weight of a track's past look when a detection's is folded in (StrongSORT's 0.9): a few frames of a
# partly occluded crop do not overwrite what the object looked like.
_APPEARANCE_MOMENTUM = 0.9
# Two frames closer than this give no velocity: 3 px of a detector's jitter over 2 ms (a duplicated or bunched-up
# frame) read as 1,500 px/s, and the track was lost at the next regular frame. A tenth of a 10 Hz frame period.
_MIN_VELOCITY_DT_S = 0.01
# A predicted box is at least this wide and tall: the box velocity is that of its four corners, and a standing
# person's few pixels of jitter at 30 Hz shrank an unmatched box to nothing within half a second and then turned
# it inside out (x2 < x1), which was published. Keeping half the last size instead kept that person's id, but
# cost held-out warehouse static 101 0.027 IDF1 (agents leaving the view shrink on purpose): BENCHMARKS.
_MIN_PREDICTED_SIDE_PX = 1.0
# velocity_smoothing is the newest estimate's weight for a frame this long after the last (the node's 10 Hz); a
# frame closer than that weighs its share of a step: 1 - (1 - w) ** (dt / step), so a 30 Hz camera's three
# estimates a step weigh together what 10 Hz's one does. Weighed per frame, its few pixels of box jitter, three
# times as fast an estimate, were blended at 10 Hz's weight: a standing person's hidden box shrank past the
# re-identification gate's height test in half a second and came back as a new id. A longer gap (a missed
# detection, a dropped frame) weighs one step, as before: at 10 Hz and slower nothing changes.
_SMOOTHING_STEP_S = 0.1


@dataclass
class Track:
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
    appearance: np.ndarray | None = None  # (D,) unit vector, EMA of the matched detections' looks
    misses: int = 0  # frames in a row without a match
    looks_skipped: int = 0  # matches in a row folded in without an appearance vector
    votes: dict[str, float] | None = None  # class voting: class -> summed detection score; None = not voting

    def predicted_box(self, stamp: float) -> np.ndarray:  # (4,)
        box = self.box + self.box_velocity * max(stamp - self.last_seen, 0.0)
        size = box[2:] - box[:2]
        if (size >= _MIN_PREDICTED_SIDE_PX).all():
            return box
        centre, size = (box[:2] + box[2:]) / 2.0, np.maximum(size, _MIN_PREDICTED_SIDE_PX)
        return np.concatenate([centre - size / 2.0, centre + size / 2.0])


def _newest_weight(dt: float, weight_per_step: float) -> float:
    """The EMA weight of a velocity estimate over dt s, given the weight of one over _SMOOTHING_STEP_S."""
    if dt >= _SMOOTHING_STEP_S - 1e-9:  # 10 Hz or a gap: the configured weight itself, not a rounding of it
        return weight_per_step
    return 1.0 - (1.0 - weight_per_step) ** (dt / _SMOOTHING_STEP_S)


def apply_detection(track: Track, det: Detection, stamp: float, config: TrackerConfig) -> None:
    """Fold a matched detection into its track."""
    if track.votes is not None and track.state == TrackState.TENTATIVE:
        track.votes[det.label] = track.votes.get(det.label, 0.0) + float(det.score)
        track.label = track.item = max(sorted(track.votes), key=track.votes.__getitem__)
    dt = stamp - track.last_seen
    # Re-identified after it was no longer published (unseen past max_age_s): its velocity is from before it was
    # hidden, and the mean over the gap is the newer news. Blended, a person who walked out of view at 1 m/s and
    # came back standing was published walking at 0.5 m/s, and the old walk kept moving the predicted box.
    reidentified = dt > config.max_age_s
    if dt >= _MIN_VELOCITY_DT_S:
        box_velocity = (det.box - track.box) / dt
        a = 1.0 if reidentified else _newest_weight(dt, config.velocity_smoothing)
        track.box_velocity = (
            box_velocity if track.hits == 1 else a * box_velocity + (1 - a) * track.box_velocity
        )
    if det.position is not None:
        dt_pos = stamp - track.position_stamp
        if track.position is not None and dt_pos >= _MIN_VELOCITY_DT_S:
            v = (det.position - track.position) / dt_pos
            a = 1.0 if reidentified else _newest_weight(dt_pos, config.velocity_smoothing)
            track.velocity = a * v + (1 - a) * track.velocity if track.has_velocity else v
            track.has_velocity = True
        track.position = det.position.copy()
        track.position_stamp = stamp
        track.position_source = det.position_source
        track.orientation = det.orientation
    if det.appearance is not None:
        if track.appearance is None:
            track.appearance = det.appearance.copy()
        else:
            # One look after k skipped matches stands for k + 1 frames: the same forgetting per frame.
            keep = _APPEARANCE_MOMENTUM ** (track.looks_skipped + 1)
            mixed = keep * track.appearance + (1 - keep) * det.appearance
            track.appearance = mixed / max(float(np.linalg.norm(mixed)), 1e-12)
    track.looks_skipped = 0 if det.appearance is not None else track.looks_skipped + 1
    track.box = det.box.copy()
    track.misses = 0
    track.score = _SCORE_SMOOTHING * float(det.score) + (1 - _SCORE_SMOOTHING) * track.score
    track.hits += 1
    track.last_seen = stamp
    track.is_dynamic = det.is_dynamic
    if track.state == TrackState.LOST or track.hits >= config.min_hits:
        track.state = TrackState.CONFIRMED


def snapshot(track: Track, stamp: float, config: TrackerConfig) -> TrackInfo:
    confidence = track.score
    box = track.box
    if track.state == TrackState.LOST:
        confidence *= max(0.0, 1.0 - (stamp - track.last_seen) / config.max_age_s)
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
