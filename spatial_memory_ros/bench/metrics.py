"""Streaming scorers for the benchmark: feed one frame or one query at a time, read ``summary()`` at the end.

Every accumulator keeps O(1) state (counts), except :class:`TrackingAccumulator`, which must keep the
boxes because HOTA and IDF1 choose one id correspondence for the whole run (see its docstring).
Each ``summary()`` returns a frozen ``*Scores`` dataclass with ``as_dict()`` for JSON.

- tracking: :class:`TrackingAccumulator` -> :class:`TrackingScores` (detection F1 here; HOTA, IDF1, MOTA
  from TrackEval), in :mod:`.tracking_metrics`;
- change masks: :class:`ChangeAccumulator` -> :class:`ChangeScores`;
- "where does ITEM usually live": :class:`LayoutAccumulator` -> :class:`LayoutScores`;
- "where is ITEM now", by time since last seen: :class:`RetrievalAccumulator` -> :class:`RetrievalScores`;
- frames/s and memory: :class:`CostMeter` -> :class:`CostScores`, in :mod:`.cost`.

Positions are compared in the floor plane (x, y of the map frame), not in 3D: the truth puts an item's
z at the board centre on the floor or in a carrier's hands (~1 m up) while a memory may report the
tag's measured height, and a robot sent to fetch the item needs the floor position anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..core.errors import BadInputError
from .cost import CostMeter, CostScores
from .scores import Scores, ratio
from .tracking_metrics import MATCH_IOU, TrackingAccumulator, TrackingScores

__all__ = [
    "MATCH_IOU",
    "ChangeAccumulator",
    "ChangeScores",
    "CostMeter",
    "CostScores",
    "LayoutAccumulator",
    "LayoutScores",
    "RetrievalAccumulator",
    "RetrievalScores",
    "Scores",
    "TrackingAccumulator",
    "TrackingScores",
]


# ---------------------------------------------------------------------------------------------- change


@dataclass(frozen=True)
class ChangeScores(Scores):
    """Pixel scores of the change masks over all pixels of all frames (one confusion matrix, not a mean
    of per-frame scores, so frames without change do not dominate).

    A 0/0 ratio is 1.0 when prediction and truth agree on every pixel (e.g. nothing changed and nothing
    was flagged: IoU(changed) is then perfect, not undefined) and 0.0 when no pixel was added.
    """

    miou: float  # mean of iou_changed and iou_unchanged
    iou_changed: float
    iou_unchanged: float
    f1_changed: float
    precision_changed: float
    recall_changed: float
    pixels: int
    # Recall split by what changed, where add() was given the agents' pixels (NaN where it was not, or where
    # no changed pixel was of that kind): moving agents, which one frame shows, against scene changes
    # (items that appeared, left or moved), which only a memory of the place can tell.
    recall_agents: float = float("nan")
    recall_scene: float = float("nan")
    agent_pixels: int = 0  # changed truth pixels on an agent
    scene_pixels: int = 0  # changed truth pixels off every agent


class ChangeAccumulator:
    """Confusion counts of predicted vs true change masks."""

    def __init__(self) -> None:
        self._tp = self._fp = self._fn = self._pixels = 0
        self._agent_tp = self._agent_n = self._scene_tp = self._scene_n = 0

    def add(self, pred_mask: np.ndarray, true_mask: np.ndarray, agents: np.ndarray | None = None) -> None:
        """pred_mask, true_mask: (H, W) bool or uint8, nonzero = changed (the sim's truth uses 255);
        agents: (H, W), nonzero where an agent is (the sim's instance mask), to split the recall by kind."""
        pred = np.asarray(pred_mask)
        true = np.asarray(true_mask)
        if pred.ndim != 2 or pred.shape != true.shape or (agents is not None and np.shape(agents) != true.shape):
            raise BadInputError(
                f"pred_mask, true_mask (and agents) must all be (H, W) of the same size; got {pred.shape}, "
                f"{true.shape}{'' if agents is None else f' and {np.shape(agents)}'}"
            )
        pred = pred != 0
        true = true != 0
        hit = pred & true
        tp, changed = int(np.count_nonzero(hit)), int(np.count_nonzero(true))
        self._tp += tp
        self._fp += int(np.count_nonzero(pred)) - tp
        self._fn += changed - tp
        self._pixels += pred.size
        if agents is not None:
            on_agent = np.asarray(agents) != 0
            agent_n = int(np.count_nonzero(true & on_agent))
            agent_tp = int(np.count_nonzero(hit & on_agent))
            self._agent_n += agent_n
            self._agent_tp += agent_tp
            self._scene_n += changed - agent_n
            self._scene_tp += tp - agent_tp

    def summary(self) -> ChangeScores:
        tp, fp, fn, n = self._tp, self._fp, self._fn, self._pixels
        tn = n - tp - fp - fn
        agree = n > 0 and fp == 0 and fn == 0

        def score(num: int, den: int) -> float:
            return num / den if den else float(agree)

        iou_c = score(tp, tp + fp + fn)
        iou_u = score(tn, tn + fp + fn)
        return ChangeScores(
            miou=(iou_c + iou_u) / 2.0 if n else 0.0,
            iou_changed=iou_c,
            iou_unchanged=iou_u,
            f1_changed=score(2 * tp, 2 * tp + fp + fn),
            precision_changed=score(tp, tp + fp),
            recall_changed=score(tp, tp + fn),
            pixels=n,
            # the counts stay 0 when no frame came with its agents, so the split is NaN then too
            recall_agents=self._agent_tp / self._agent_n if self._agent_n else float("nan"),
            recall_scene=self._scene_tp / self._scene_n if self._scene_n else float("nan"),
            agent_pixels=self._agent_n,
            scene_pixels=self._scene_n,
        )


# ---------------------------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class LayoutScores(Scores):
    """Share of "usual place" answers within the radius of the item's true home; 0.0 when n is 0."""

    accuracy: float
    n: int
    accuracy_when_displaced: float  # the same, over queries made while the item was away from home
    n_displaced: int


class LayoutAccumulator:
    """Scores the memory's usual place of each item against the scene's home, one query at a time.

    radius_m: an answer is right when its floor-plane distance to the truth is <= this. 0.5 m is about
    the reach of a robot arm or the span of a shelf slot; smaller punishes depth noise, larger lets
    "the right corner of the room" pass.
    """

    def __init__(self, radius_m: float = 0.5) -> None:
        self.radius_m = _positive("radius_m", radius_m)
        self._n = self._right = self._n_displaced = self._right_displaced = 0

    def add(self, item: str, predicted_usual: np.ndarray | None, true_home: np.ndarray, displaced_now: bool) -> None:
        """predicted_usual (3,) m map frame, None when the memory does not know the item (counted wrong);
        true_home (3,) m; displaced_now: the item is currently away from home (truth)."""
        right = _within(item, predicted_usual, true_home, self.radius_m)
        self._n += 1
        self._right += right
        if displaced_now:
            self._n_displaced += 1
            self._right_displaced += right

    def summary(self) -> LayoutScores:
        return LayoutScores(
            accuracy=ratio(self._right, self._n),
            n=self._n,
            accuracy_when_displaced=ratio(self._right_displaced, self._n_displaced),
            n_displaced=self._n_displaced,
        )


# ------------------------------------------------------------------------------------------- retrieval


@dataclass(frozen=True)
class RetrievalScores(Scores):
    """Share of "where is it now" answers within the radius of the truth; 0.0 where n is 0.

    per_bucket: label -> (recall, n), by time since the item was last visible (see RetrievalAccumulator);
    every bucket is present, in increasing order, empty ones as (0.0, 0).
    """

    recall_at_1: float
    n: int
    per_bucket: dict[str, tuple[float, int]]
    # over the queries that need a memory: the item out of view then and away from where it was first seen (most
    # queries are neither: where the camera shows it, or where it has always been, a first sighting answers)
    recall_at_1_hard: float = 0.0
    n_hard: int = 0

    def as_dict(self) -> dict[str, float | int | dict]:
        """As Scores.as_dict, with per_bucket as {label: {"recall_at_1": r, "n": n}} (self-describing)."""
        return {
            "recall_at_1": float(self.recall_at_1),
            "n": int(self.n),
            "per_bucket": {k: {"recall_at_1": float(r), "n": int(n)} for k, (r, n) in self.per_bucket.items()},
            "recall_at_1_hard": float(self.recall_at_1_hard),
            "n_hard": int(self.n_hard),
        }


class RetrievalAccumulator:
    """Scores the memory's current place of each item against the truth, bucketed by how stale the
    memory's last sighting is allowed to be.

    A query goes to the bucket of the smallest bound >= its age; with the default bounds the buckets are
    "1 min" (age <= 60 s), "10 min" (60 < age <= 600), "60 min", "120 min", and "> 120 min" for older
    queries and items never seen (age = inf). Bounds are labelled in whole minutes when they are whole
    minutes, else in seconds. radius_m: as LayoutAccumulator.
    """

    def __init__(self, radius_m: float = 0.5, buckets_s: Sequence[float] = (60, 600, 3600, 7200)) -> None:
        self.radius_m = _positive("radius_m", radius_m)
        bounds = np.asarray(buckets_s, dtype=np.float64)
        if bounds.ndim != 1 or len(bounds) == 0 or not np.isfinite(bounds).all() or (np.diff(bounds) <= 0).any():
            raise BadInputError(f"buckets_s must be finite, increasing seconds, e.g. (60, 600); got {buckets_s!r}")
        self._bounds = bounds
        self.labels: tuple[str, ...] = (*[_duration_label(b) for b in bounds], f"> {_duration_label(bounds[-1])}")
        self._n = np.zeros(len(self.labels), dtype=np.int64)
        self._right = np.zeros(len(self.labels), dtype=np.int64)
        self._n_hard = self._right_hard = 0

    def add(
        self, item: str, predicted_current: np.ndarray | None, true_position: np.ndarray, last_seen_age_s: float,
        *, hard: bool = False,
    ) -> None:
        """predicted_current (3,) m map frame, None when the memory does not know the item (counted wrong);
        true_position (3,) m, finite (skip queries whose truth is unknown); last_seen_age_s >= 0: how long
        ago (truth) the camera last saw the item, inf if never. hard: the query needs a memory (RetrievalScores:
        out of view and away from where the item was first seen), also counted apart."""
        age = float(last_seen_age_s)
        if not age >= 0.0:  # also rejects NaN
            raise BadInputError(f"{item}: last_seen_age_s must be >= 0 s (inf if never seen), got {age}")
        bucket = int(np.searchsorted(self._bounds, age, side="left"))
        right = _within(item, predicted_current, true_position, self.radius_m)
        self._n[bucket] += 1
        self._right[bucket] += right
        if hard:
            self._n_hard += 1
            self._right_hard += right

    def summary(self) -> RetrievalScores:
        per_bucket = {label: (ratio(int(r), int(n)), int(n)) for label, r, n in zip(self.labels, self._right, self._n)}
        return RetrievalScores(
            recall_at_1=ratio(int(self._right.sum()), int(self._n.sum())), n=int(self._n.sum()), per_bucket=per_bucket,
            recall_at_1_hard=ratio(self._right_hard, self._n_hard), n_hard=self._n_hard,
        )


# --------------------------------------------------------------------------------------------- helpers


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise BadInputError(f"{name} must be a positive number of metres, got {value}")
    return value


def _xy(item: str, name: str, position: np.ndarray) -> np.ndarray:
    p = np.asarray(position, dtype=np.float64)
    if p.shape not in ((2,), (3,)):
        raise BadInputError(f"{item}: {name} must be (3,) x, y, z metres (or (2,) x, y), got shape {p.shape}")
    if not np.isfinite(p[:2]).all():
        raise BadInputError(f"{item}: {name} must be finite (pass None for an unknown prediction), got {p.tolist()}")
    return p[:2]


def _within(item: str, predicted: np.ndarray | None, truth: np.ndarray, radius_m: float) -> bool:
    """Predicted within radius_m of truth in the floor plane; None (unknown item) is never within."""
    true_xy = _xy(item, "the true position", truth)
    if predicted is None:
        return False
    return bool(np.hypot(*(_xy(item, "the prediction", predicted) - true_xy)) <= radius_m)


def _duration_label(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds % 60 == 0 else f"{seconds:g} s"
