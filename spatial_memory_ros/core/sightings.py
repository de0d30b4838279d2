"""Which of a frame's detections are the same thing, and which sightings the item memory is told.

overlaps: a learned tag read that is a decoded tag's board. is_explained: a moving blob that is a detection's box
moving. confirmed_observations: one observation per item matched and positioned in this frame.
"""

from __future__ import annotations

import numpy as np

from .types import Detection, ItemObservation, PositionSource, TrackInfo, TrackState

# A moving blob that is mostly a detection's box (most of the blob in the box, or most of the box in a
# blob at most BLOB_AREA_RATIO times its size) is that detection moving: its track already says so.
# A much larger blob holding a tag (a person carrying the item) stays a dynamic object of its own.
OVERLAP = 0.5
BLOB_AREA_RATIO = 4.0
# A tag whose pose reprojects within about 1 px (score = exp(-error / 2 px)) is trusted from its first decode.
TRUSTED_TAG_SCORE = 0.6


def overlaps(quad: np.ndarray, box: np.ndarray) -> bool:
    """Whether a quad's centre is in box (4,), or box's centre is in the quad's bounding box."""
    cx, cy = quad.mean(axis=0)
    lo, hi = quad.min(axis=0), quad.max(axis=0)
    bx, by = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    centre_in_box = box[0] <= cx <= box[2] and box[1] <= cy <= box[3]
    return bool(centre_in_box or (lo[0] <= bx <= hi[0] and lo[1] <= by <= hi[1]))


def is_explained(box: np.ndarray, boxes: np.ndarray) -> bool:
    """Whether a motion blob's box (4,) is one of the detection boxes (D, 4) moving."""
    if len(boxes) == 0:
        return False
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = iw * ih  # (D,)
    box_area = max(float((box[2] - box[0]) * (box[3] - box[1])), 1e-9)
    det_area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-9)
    blob_in_det = inter / box_area > OVERLAP
    det_in_small_blob = (inter / det_area > OVERLAP) & (box_area <= BLOB_AREA_RATIO * det_area)
    return bool((blob_in_det | det_in_small_blob).any())


def confirmed_observations(
    tracks: list[TrackInfo], detections: list[Detection], matched: dict[int, int], stamp: float
) -> list[ItemObservation]:
    """One observation per item matched in this frame and positioned (tag, depth or plane): of CONFIRMED
    tracks, and of tentative ones whose detection is a well-fitted tag (a decoded 36h11 id is not a false
    positive, and tags far away or at grazing angles decode only now and then: waiting for min_hits
    decodes in a row would leave "current" minutes behind).

    matched: track id -> index into detections (Tracker.matched). The track's detection, not one found by
    name: with class voting its class may differ from the track's item. Two tracks voted to one name: the
    higher-score detection is the item's observation (as two same-class detections without voting)."""
    observations: dict[str, tuple[float, ItemObservation]] = {}
    for track in tracks:
        if not track.item or track.last_seen != stamp or track.track_id not in matched:
            continue
        det = detections[matched[track.track_id]]
        trusted_tag = det.position_source == PositionSource.TAG and det.score >= TRUSTED_TAG_SCORE
        if track.state != TrackState.CONFIRMED and not trusted_tag:
            continue
        if det.position is None or det.position_source == PositionSource.NONE:
            continue
        # A class detection has no orientation: the identity says "unknown" as ItemObservation's default.
        orientation = det.orientation if det.orientation is not None else np.array([0.0, 0.0, 0.0, 1.0])
        if track.item in observations and observations[track.item][0] >= det.score:
            continue
        observations[track.item] = (det.score, ItemObservation(
            item=track.item,
            position=det.position,
            stamp=stamp,
            confidence=track.confidence,
            orientation=orientation,
            followed=det.followed,
        ))
    return [obs for _, obs in observations.values()]
