"""Frame-to-frame association of detections into tracks with stable ids.

Two passes, each a Hungarian assignment (scipy's linear_sum_assignment):
1. every live track against every detection: 1 - IoU with the box predicted by a constant-velocity
   model, blended with the appearance (cosine) distance where both sides have an appearance vector
   (an embedder's: the learned model's looks of moving regions are used in pass 2 only);
2. re-identification: lost tracks, also those no longer published (up to reid_max_age_s, moving regions
   reid_motion_max_age_s), against the detections left over, by appearance alone within a radius that
   grows with the time unseen.
Identity gating holds in both: a detection that names an item (a decoded tag, an item class) only ever
matches that item's track, whatever the overlap or the looks, because the name is the identity. The
exception is class voting (vote_classes): a class detector that confuses similar small objects (SSD
calls one black thermos `cell phone` in one frame and `remote` in the next) does not name the object by
each frame's class; its item-class detections continue each other's tracks by overlap, and a track is
named by the score-weighted majority of its classes while it is tentative.

Boxes live in the picture: when the camera turned since the last update, the pipeline first moves every
track's box by the turn (compensate()).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import replace

import numpy as np

from .association import INFEASIBLE, box_iou, cosine_distance, reid_gate, solve
from .config import TrackerConfig
from .errors import BadInputError
from .track_state import Track, apply_detection, snapshot
from .types import MOTION_LABEL, Detection, PositionSource, TrackInfo, TrackState

__all__ = ["Tracker", "box_iou"]

# In the overlap pass a pair whose looks differ by more than this does not match whatever the overlap:
# ImageNet features of one person across frames stay well below it (see spatial_memory_ros/reid/).
_OVERLAP_MAX_DISTANCE = 0.5
# needs_appearance leaves a detection's look out only when it overlaps its track's predicted box at least
# this much. Replayed on PETS09 (cached detections, reid_refresh_frames 3), 0.4-0.6 scored the same as
# embedding every frame; 0.6 was the steadiest as reid_refresh_frames grew (BENCHMARKS.md).
_SURE_IOU = 0.6
_MAX_DORMANT = 256  # unpublished lost tracks kept for re-identification; the oldest go first
# Tracks kept at most, published or not, the longest unseen going first. Expiry is by time (max_age_s): frames that
# all carry one stamp (a source whose clock stands still) would keep every lost track for ever.
_MAX_TRACKS = 512
_MAX_ITEM_IDS = 4096  # item names whose ids are kept for their return; the earliest recorded go first
# With class voting, two item-class detections overlapping more than this are one object under two class
# names (SSD scores every class of one anchor box on its own, so its boxes for both are nearly the same).
_VOTE_DUPLICATE_IOU = 0.7


class Tracker:
    """Keeps tracks across frames: TENTATIVE -> CONFIRMED after min_hits matches -> LOST when unmatched.

    - A TENTATIVE track survives tentative_max_misses missed frames in a row (a detector that blinks
      once does not restart the id), and is deleted on the next; spurious detections still vanish fast.
    - A LOST track keeps its id and last position; its box moves on with the box velocity so that a
      moving object can be picked up again. It is published until max_age_s after it was last matched.
    - With reid, a lost track that has an appearance stays re-identifiable, unpublished, until
      reid_max_age_s: a person who walks out of view and comes back gets the old id back. A moving region
      with the learned model's look: the same within reid_motion_max_distance and reid_motion_max_age_s.
    - velocity is the map-frame velocity (m/s) from successive measured positions, smoothed by an EMA
      with weight velocity_smoothing per 0.1 s (1 = newest estimate only, lower = smoother but slower to react;
      a 30 Hz camera is smoothed as much per second as a 10 Hz one);
      zeros until two positions are known; a track re-identified after max_age_s unseen takes the newest.
    - confidence is an EMA of detection scores; while LOST it fades linearly to 0 at max_age_s.
    - A detection matches only tracks with the same label and item. If an item is detected twice in
      one frame only the highest-score detection is used: a tag id names one physical thing.
    - A named item that comes back into view after its track was deleted gets its old id back (the name is
      its identity, as above), with first_seen its first sighting; it is TENTATIVE again until min_hits, as a
      new track would be, so what the item memory is told does not change. Not for names given by vote.
    - Class voting (vote_classes, DetectorConfig.item_class_vote): detections whose class is in
      vote_classes and names the item after itself match any such track, by overlap like unnamed ones
      (the class is not the identity here); of two such detections on one box only the higher-score one
      is kept. The track's label and item are the class with the largest summed score over its matches
      while TENTATIVE, then fixed: item memory keys on the name from confirmation on, so a name that
      changed later would split one object's history in two.
    - A stamp earlier than the previous update (a bag loop, a sim-time reset) clears all tracks,
      because ages and velocities across the jump would be meaningless.
    """

    def __init__(self, config: TrackerConfig, *, vote_classes: Collection[str] = ()) -> None:
        """vote_classes: item classes whose tracks are named by vote (see the class docstring); () = none.
        config.min_hits 0 (auto) is the classical one here; the pipeline resolves it by its change method."""
        self.config = config.resolved()
        self._vote_classes = frozenset(vote_classes)
        self._matched: dict[int, int] = {}  # track id -> index into the last update's detections
        self._tracks: list[Track] = []  # published: TENTATIVE, CONFIRMED, LOST
        self._dormant: list[Track] = []  # lost longer than max_age_s, kept for re-identification only
        # item name -> (id, first_seen) of its latest track, for an item that comes back (bounded: oldest out)
        self._item_ids: dict[str, tuple[int, float]] = {}
        self._next_id = 1
        self._last_stamp: float | None = None
        self._turned = False  # compensate() moved the boxes since the last update

    def reset(self) -> None:
        """Forget all tracks; ids start again at 1."""
        self._tracks = []
        self._dormant = []
        self._item_ids = {}
        self._next_id = 1
        self._last_stamp = None
        self._matched = {}
        self._turned = False

    def _clock_went_back(self) -> None:
        """A stamp older than the last (a bag played again, a simulator restarted): no track's times can be compared
        with it, so every track goes; ids keep counting, as a consumer that saw id 1 before must not take a new
        track for the same object. Named items' ids go too: their first_seen is on the old clock."""
        next_id = self._next_id
        self.reset()
        self._next_id = next_id

    def compensate(self, H: np.ndarray) -> None:
        """The camera turned since the last update: move every track's box (published or dormant) by H, (3, 3)
        previous image px -> this image px (core.turning.view_from_canvas), to where the same thing now appears, so
        that the overlap pass compares boxes of one picture. The box velocity is kept: from here on it is measured
        against the moved box, the object's own motion. The next update embeds every detection (needs_appearance):
        overlap with a box the pose moved is weaker evidence of who is who than overlap in a still picture."""
        H = np.asarray(H, np.float64)
        if H.shape != (3, 3) or not np.isfinite(H).all():
            raise BadInputError(f"compensate needs a finite (3, 3) homography, got {H.shape}")
        for track in [*self._tracks, *self._dormant]:
            x1, y1, x2, y2 = track.box
            corners = np.array([[x1, y1, 1.0], [x2, y1, 1.0], [x2, y2, 1.0], [x1, y2, 1.0]]) @ H.T
            if np.any(corners[:, 2] <= 1e-9):  # behind the camera now: leave it where it was
                continue
            xy = corners[:, :2] / corners[:, 2:]
            track.box = np.concatenate([xy.min(axis=0), xy.max(axis=0)])
        self._turned = True

    def matched(self) -> dict[int, int]:
        """Track id -> index, in the detections given to the last update(), of the detection it was matched to
        (or started from)."""
        return dict(self._matched)

    def needs_appearance(self, detections: Sequence[Detection], stamp: float) -> np.ndarray:
        """(D,) bool: the detections that should carry an appearance vector in update(detections, stamp).

        The embedder is the dearest step after the detector, and most detections continue a track that
        nothing else is near. A detection may go without one only when overlap alone decides its match:
        it is feasible for one published track and no other, that track is feasible for it alone (so the
        assignment pairs them whatever the other costs), it covers the track's predicted box well (IoU
        >= _SURE_IOU), and the track was CONFIRMED and matched in the previous update with a known look.
        Every reid_refresh_frames-th match of a track embeds anyway, so its look follows the person.
        Everything else (a new person, a lost or tentative track, two people near each other, a named
        item) is left True and decided as before; all True when reid is off or after compensate().
        """
        needed = np.ones(len(detections), dtype=bool)
        stamp = float(stamp)
        if (not self.config.reid or not detections or not self._tracks or self._turned
                or (self._last_stamp is not None and stamp < self._last_stamp)):  # that update resets
            return needed
        # the tracks update() will still publish: one unmatched for longer than max_age_s goes dormant first
        # (_expire), and its re-identification needs the look this would have skipped (a camera stall of 2.5 s
        # gave a lone, steady person a new id)
        tracks = [t for t in self._tracks if stamp - t.last_seen <= self.config.max_age_s]
        if not tracks:
            return needed
        boxes = np.stack([np.asarray(d.box, dtype=np.float64).reshape(4) for d in detections])  # (D, 4)
        predicted = np.stack([t.predicted_box(stamp) for t in tracks])  # (T, 4)
        iou = box_iou(predicted, boxes)  # (T, D)
        same = np.array([[d.label == t.label and d.item == t.item for d in detections] for t in tracks])
        feasible = same & (iou >= self.config.min_iou)  # pass 1's gate, before looks are known
        for di, det in enumerate(detections):
            (rows,) = np.nonzero(feasible[:, di])
            if det.item or len(rows) != 1 or feasible[rows[0]].sum() != 1:
                continue
            track = tracks[rows[0]]
            steady = (track.state == TrackState.CONFIRMED and track.misses == 0 and track.appearance is not None
                      and iou[rows[0], di] >= _SURE_IOU)
            needed[di] = not (steady and track.looks_skipped + 1 < self.config.reid_refresh_frames)
        return needed

    def update(self, detections: Sequence[Detection], stamp: float) -> list[TrackInfo]:
        """Associate this frame's detections (boxes px, positions map frame m) at stamp (s).

        Returns every live track, LOST ones included, sorted by id.
        """
        stamp = float(stamp)
        if not np.isfinite(stamp):
            raise BadInputError(f"stamp must be finite, got {stamp}")
        if self._last_stamp is not None and stamp < self._last_stamp:
            self._clock_went_back()
        self._last_stamp = stamp
        self._turned = False
        checked = [_checked(d) for d in detections]
        kept = _deduplicate_items(checked)
        if self._vote_classes:
            kept = _one_per_box(checked, kept, self._votes)
        dets = [checked[i] for i in kept]
        self._expire(stamp)

        matches = self._associate(self._tracks, dets, stamp)
        if self.config.reid:
            taken = {t.track_id for t, _ in matches}
            lost = [t for t in self._tracks if t.track_id not in taken and t.state != TrackState.TENTATIVE]
            used = {di for _, di in matches}
            free = [di for di in range(len(dets)) if di not in used]
            matches += self._reidentify(lost + self._dormant, dets, free, stamp)
        matched = {t.track_id for t, _ in matches}
        for track, di in matches:
            apply_detection(track, dets[di], stamp, self.config)
        self._tracks += [t for t in self._dormant if t.track_id in matched]
        self._dormant = [t for t in self._dormant if t.track_id not in matched]
        self._tracks = [t for t in self._tracks if t.track_id in matched or self._keep_unmatched(t)]
        used = {di for _, di in matches}
        born = [(self._new_track(det, stamp), di) for di, det in enumerate(dets) if di not in used]
        self._tracks += [t for t, _ in born]
        self._matched = {track.track_id: kept[di] for track, di in matches + born}
        return [snapshot(t, stamp, self.config) for t in sorted(self._tracks, key=lambda t: t.track_id)]

    def _expire(self, stamp: float) -> None:
        """Unpublish tracks unmatched for longer than max_age_s (kept for re-identification where they can be)."""
        live = []
        for track in self._tracks:
            if stamp - track.last_seen <= self.config.max_age_s:
                live.append(track)
            elif (self.config.reid and track.state != TrackState.TENTATIVE and track.appearance is not None
                  and not track.item):
                self._dormant.append(track)
        if len(live) > _MAX_TRACKS:  # keep the most recently seen, in their order (association goes by it)
            kept = {id(t) for t in sorted(live, key=lambda t: t.last_seen)[len(live) - _MAX_TRACKS:]}
            live = [t for t in live if id(t) in kept]
        self._tracks = live
        self._dormant = [t for t in self._dormant if stamp - t.last_seen <= self._reid_max_age(t.label)]
        self._dormant = self._dormant[-_MAX_DORMANT:]

    def _keep_unmatched(self, track: Track) -> bool:
        """Age a track left unmatched this frame; False when a tentative one has missed too often."""
        track.misses += 1
        if track.state == TrackState.TENTATIVE:
            return track.misses <= self.config.tentative_max_misses
        track.state = TrackState.LOST
        return True

    def _associate(self, tracks: list[Track], dets: list[Detection], stamp: float) -> list[tuple[Track, int]]:
        """Pass 1: (track, detection index) pairs by overlap, blended with appearance."""
        if not tracks or not dets:
            return []
        predicted = np.stack([t.predicted_box(stamp) for t in tracks])  # (T, 4)
        iou = box_iou(predicted, np.stack([d.box for d in dets]))  # (T, D)
        cost = 1.0 - iou
        looks_differ = np.zeros_like(cost, dtype=bool)
        if self.config.reid:
            dist = cosine_distance([t.appearance for t in tracks], [d.appearance for d in dets])  # (T, D)
            # The learned model's looks of moving regions are left out here (overlap alone matches them):
            # one agent's look a second apart differs by up to 0.5 (90th percentile, warehouse patrol), so
            # the gate below broke their tracks, and weighing them in gained nothing on train scenes.
            from_embedder = np.array([d.label != MOTION_LABEL for d in dets])  # (D,)
            known = ~np.isnan(dist) & from_embedder[None, :]
            w = self.config.reid_weight
            cost = np.where(known, (1.0 - w) * cost + w * np.nan_to_num(dist), cost)
            looks_differ = known & (np.nan_to_num(dist) > _OVERLAP_MAX_DISTANCE)
        for ti, track in enumerate(tracks):
            for di, det in enumerate(dets):
                by_vote = track.votes is not None and self._votes(det)
                same_identity = by_vote or (det.label == track.label and det.item == track.item)
                # A named item may match its track at any overlap or look: the name is the identity. A voted
                # class is not one, so overlap decides as for unnamed things.
                plausible = (bool(det.item) and not by_vote) or (
                    iou[ti, di] >= self.config.min_iou and not looks_differ[ti, di])
                if not (same_identity and plausible):
                    cost[ti, di] = INFEASIBLE
        return [(tracks[ti], di) for ti, di in solve(cost)]

    def _reidentify(
        self, lost: list[Track], dets: list[Detection], free: list[int], stamp: float
    ) -> list[tuple[Track, int]]:
        """Pass 2: lost tracks (not items) and detections left over, by appearance alone, gated by distance."""
        lost = [t for t in lost if t.appearance is not None and not t.item
                and stamp - t.last_seen <= self._reid_max_age(t.label)]
        free = [di for di in free if dets[di].appearance is not None and not dets[di].item]
        if not lost or not free:
            return []
        dist = cosine_distance([t.appearance for t in lost], [dets[di].appearance for di in free])  # (L, F)
        predicted = np.stack([t.predicted_box(stamp) for t in lost])  # (L, 4)
        unseen = np.array([stamp - t.last_seen for t in lost])  # (L,)
        near = reid_gate(predicted, unseen, np.stack([dets[di].box for di in free]))  # (L, F)
        labels = np.array([[t.label == dets[di].label for di in free] for t in lost])  # (L, F)
        max_distance = np.array([self._reid_max_distance(dets[di].label) for di in free])  # (F,)
        ok = near & labels & (dist <= max_distance[None, :])
        cost = np.where(ok, dist, INFEASIBLE)
        return [(lost[li], free[fi]) for li, fi in solve(cost)]

    # Only tracks and detections of one label are ever paired, so the label picks the re-identification
    # settings: moving regions (MOTION_LABEL) carry the learned model's looks, everything else an embedder's.
    def _reid_max_distance(self, label: str) -> float:
        return self.config.reid_motion_max_distance if label == MOTION_LABEL else self.config.reid_max_distance

    def _reid_max_age(self, label: str) -> float:
        return self.config.reid_motion_max_age_s if label == MOTION_LABEL else self.config.reid_max_age_s

    def _new_track(self, det: Detection, stamp: float) -> Track:
        """A track for an unmatched detection: a new id, or a named item's old one when it has no live track."""
        named = bool(det.item) and not self._votes(det)
        back = self._item_ids.get(det.item) if named else None
        if back is not None and any(t.item == det.item for t in self._tracks):
            back = None  # its track lives on (under another label): two tracks must not share an id
        track = Track(
            track_id=self._next_id if back is None else back[0],
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
            first_seen=stamp if back is None else back[1],
            last_seen=stamp,
            is_dynamic=det.is_dynamic,
            position_source=det.position_source if det.position is not None else PositionSource.NONE,
            orientation=det.orientation,
            appearance=None if det.appearance is None else det.appearance.copy(),
            votes={det.label: float(det.score)} if self._votes(det) else None,
        )
        if back is None:
            self._next_id += 1
        if named:
            self._item_ids.pop(det.item, None)  # re-inserted last: the oldest name is the first out
            self._item_ids[det.item] = (track.track_id, track.first_seen)
            if len(self._item_ids) > _MAX_ITEM_IDS:
                del self._item_ids[next(iter(self._item_ids))]
        return track

    def _votes(self, det: Detection) -> bool:
        """Whether det is an item-class detection named by vote (a tag's item never is: its label is not a class)."""
        return det.label in self._vote_classes and det.item == det.label


def _checked(det: Detection) -> Detection:
    """det with float64 arrays; BadInputError for a malformed box, score or position."""
    if not 0.0 <= det.score <= 1.0:  # NaN fails too: it stayed in the track's score average for good
        raise BadInputError(f"detection score must be in [0, 1], got {det.score}")
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
    appearance = det.appearance
    if appearance is not None:
        appearance = np.asarray(appearance, dtype=np.float64).reshape(-1)
        norm = float(np.linalg.norm(appearance))
        if not np.isfinite(norm):
            raise BadInputError("detection appearance must be a finite vector")
        # A zero vector is an embedder's "no pixels to look at"; renormalising guards float32 rounding.
        appearance = appearance / norm if norm > 1e-6 else None
    return replace(det, box=box, position=position, appearance=appearance)


def _deduplicate_items(dets: list[Detection]) -> list[int]:
    """Indices of the detections to keep: one per named item (the highest score); unnamed ones all pass."""
    best: dict[str, int] = {}
    for i, det in enumerate(dets):
        if det.item and (det.item not in best or det.score > dets[best[det.item]].score):
            best[det.item] = i
    return [i for i, d in enumerate(dets) if not d.item or best[d.item] == i]


def _one_per_box(dets: list[Detection], kept: list[int], votes: Callable[[Detection], bool]) -> list[int]:
    """kept without voted-class detections that repeat a higher-score one's box under another class name."""
    voters = sorted((i for i in kept if votes(dets[i])), key=lambda i: -dets[i].score)
    chosen: list[int] = []
    for i in voters:
        if not chosen or box_iou(dets[i].box, np.stack([dets[j].box for j in chosen])).max() <= _VOTE_DUPLICATE_IOU:
            chosen.append(i)
    return [i for i in kept if not votes(dets[i]) or i in chosen]
