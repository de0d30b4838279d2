"""Multi-object tracking scores of a whole run: detection F1 (ours) plus HOTA, IDF1 and MOTA (TrackEval).

Detection precision/recall/F1 are counted here, frame by frame, because they are a plain one-to-one
matching at IoU >= 0.5. det F1 comes with a 95 % interval (scipy.stats.bootstrap over blocks of BLOCK_FRAMES
consecutive frames): a patrol camera sees agents in a few frames of each ten (about 460 boxes in a 10-minute
warehouse patrol), so one agent more or less moves det F1 by a point, and a target is met only by what the
interval says. HOTA, IDF1 and MOTA come from TrackEval's reference implementations
(``trackeval.metrics.HOTA``, ``Identity``, ``CLEAR``), fed the per-sequence data dict their
``eval_sequence`` expects; we only convert our boxes into that dict.

Don't-care objects (an agent with too little of it in view for the truth to score it, a person PETS09's truth
marks 0) neither count as missed nor make a box on them a false positive: such a box is left out of every score
before anything is counted (``dont_care_kept``), as MOTChallenge does with its distractors.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import bootstrap

from ..core.errors import BadInputError
from ..core.tracker import box_iou
from .scores import Scores, ratio

# trackeval/datasets/__init__.py prints a notice to stdout when pycocotools (needed only by its BURST
# dataset reader, which we never use) is missing; stdout may carry the benchmark's JSON, so drop it.
with contextlib.redirect_stdout(io.StringIO()):
    from trackeval.metrics import CLEAR, HOTA, Identity  # type: ignore[import-untyped]

MATCH_IOU = 0.5  # a prediction is a true positive at IoU >= this (MOT convention; also TrackEval's default)
# TrackEval compares with this slack; we do too, so a box at the threshold counts alike. Our TP count (det F1: the
# largest one-to-one matching) can still exceed CLEAR's by a few: CLEAR keeps last frame's ids before maximising
# (a random 5,000-frame run: 2,360 against 2,359).
_EPS = np.finfo(float).eps
_MATCH_BONUS = 1000.0  # makes the assignment maximise the number of matches first, IoU second
# det F1's interval resamples blocks of this many consecutive frames (30 s at the bench's 10 Hz), not frames: an
# agent stays in view for seconds, so its frames' errors come together (a track lost for a second misses ten boxes),
# and resampling single frames would count them as independent and give an interval several times too narrow.
# 30 s is longer than one agent's pass through a patrol camera's view. Drawn with a fixed seed: the same run gives
# the same interval.
BLOCK_FRAMES = 300
# Fewer blocks give no interval: a percentile bootstrap over 3 blocks (PETS09's 795 frames) has 10 distinct
# resamples, and its "interval" is a few of them. 8 blocks (4 minutes at 10 Hz) have 6,435.
MIN_BLOCKS = 8
_DRAWS = 2000


@dataclass(frozen=True)
class TrackingScores(Scores):
    """Tracking scores over all frames; every ratio is 0.0 when its denominator is 0 (TrackEval's rule)."""

    det_precision: float  # matched predictions / predictions, at IoU >= 0.5
    det_recall: float  # matched ground-truth boxes / ground-truth boxes
    det_f1: float  # the headline metric
    det_f1_low: float  # its 95 % interval (block bootstrap, BLOCK_FRAMES); NaN with fewer than MIN_BLOCKS blocks
    det_f1_high: float
    hota: float  # mean over the 19 IoU thresholds 0.05..0.95 (TrackEval's reported HOTA)
    idf1: float
    mota: float  # 1 - (FN + FP + IDSW) / GT; can be negative
    id_switches: int
    num_gt: int  # ground-truth boxes, all frames
    num_pred: int  # predicted boxes, all frames, less the ignored ones
    num_ignored: int  # predicted boxes on a don't-care object (see dont_care_kept), left out of every score


class _ArrayLog:
    """Rows appended one small array at a time, kept as a few large arrays (no per-frame object overhead)."""

    _CHUNK = 4096  # pending appends before they are packed into one array

    def __init__(self, dtype: type, width: int) -> None:
        self._dtype = dtype
        self._width = width
        self._chunks: list[np.ndarray] = []
        self._pending: list[np.ndarray] = []

    def append(self, rows: np.ndarray) -> None:
        self._pending.append(rows)
        if len(self._pending) >= self._CHUNK:
            self._pack()

    def _pack(self) -> None:
        if self._pending:
            self._chunks.append(np.concatenate(self._pending))
            self._pending = []

    def array(self) -> np.ndarray:
        self._pack()
        if not self._chunks:
            return np.zeros((0, self._width) if self._width else (0,), dtype=self._dtype)
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0]


class TrackingAccumulator:
    """Collects ground-truth and predicted boxes with ids, frame by frame; ``summary()`` scores the run.

    HOTA and IDF1 need the whole sequence (they pick one global id correspondence), so the boxes are
    kept: 24 bytes per box (float32 x1y1x2y2 + int64 id) and 32 bytes per non-empty frame, in a few large
    arrays. A 72,000-frame run (40 min at 30 fps) with 5 ground-truth and 5 predicted boxes per frame
    holds about 17 MB + 2.3 MB. ``summary()`` loops over the frames in TrackEval's Python code, about
    0.5 ms per frame with boxes (HOTA's 19 thresholds dominate): tens of seconds for such a run. Frames
    with neither ground truth nor predictions are only counted. With no ground truth at all, MOTA is
    -num_pred (TrackEval divides by max(1, num_gt)).
    """

    def __init__(self) -> None:
        self._gt_ids = _ArrayLog(np.int64, 0)
        self._gt_boxes = _ArrayLog(np.float32, 4)
        self._pred_ids = _ArrayLog(np.int64, 0)
        self._pred_boxes = _ArrayLog(np.float32, 4)
        self._counts = _ArrayLog(np.int64, 4)  # (n_gt, n_pred, frame_index, matched boxes) per stored frame
        self._first_index: int | None = None
        self._frames = 0
        self._last_index: int | None = None
        self._tp = 0
        self._num_gt = 0
        self._num_pred = 0
        self._num_ignored = 0

    def add(
        self,
        frame_index: int,
        gt_ids: np.ndarray,
        gt_boxes: np.ndarray,
        pred_ids: np.ndarray,
        pred_boxes: np.ndarray,
        dont_care: np.ndarray | None = None,
    ) -> None:
        """One frame. gt_ids (N,) int, gt_boxes (N, 4) x1y1x2y2 px; pred_ids (M,), pred_boxes (M, 4).

        dont_care (K, 4): boxes of objects the truth neither scores nor forbids (too little of them in view);
        a prediction that goes to one of them is left out of every score (dont_care_kept). frame_index must
        increase from call to call; skipped frames count as empty. Ids must be unique within a frame (one box
        per object); the same id in another frame is the same object.
        """
        if self._last_index is not None and frame_index <= self._last_index:
            raise BadInputError(f"frame_index must increase: got {frame_index} after {self._last_index}")
        gi, gb = _checked("gt", gt_ids, gt_boxes)
        pi, pb = _checked("pred", pred_ids, pred_boxes)
        if dont_care is not None:
            keep = dont_care_kept(gb, _checked_boxes("dont_care", dont_care), pb)
            self._num_ignored += int(np.count_nonzero(~keep))
            pi, pb = pi[keep], pb[keep]
        self._last_index = frame_index
        if self._first_index is None:
            self._first_index = frame_index
        self._frames += 1
        self._num_gt += len(gi)
        self._num_pred += len(pi)
        if len(gi) == 0 and len(pi) == 0:
            return
        tp = _count_matches(box_iou(gb, pb)) if len(gi) and len(pi) else 0
        self._tp += tp
        self._gt_ids.append(gi)
        self._gt_boxes.append(gb)
        self._pred_ids.append(pi)
        self._pred_boxes.append(pb)
        self._counts.append(np.array([[len(gi), len(pi), frame_index, tp]], dtype=np.int64))

    def summary(self) -> TrackingScores:
        """Scores so far (the accumulator is unchanged and may keep adding)."""
        tp, n_gt, n_pred = self._tp, self._num_gt, self._num_pred
        data = self._trackeval_data()
        low, high = self._det_f1_interval()
        hota = HOTA().eval_sequence(data)
        config = {"THRESHOLD": MATCH_IOU, "PRINT_CONFIG": False}
        clear = CLEAR(config).eval_sequence(data)
        identity = Identity(dict(config)).eval_sequence(data)
        return TrackingScores(
            det_precision=ratio(tp, n_pred),
            det_recall=ratio(tp, n_gt),
            det_f1=ratio(2 * tp, n_gt + n_pred),
            det_f1_low=low,
            det_f1_high=high,
            hota=float(np.mean(hota["HOTA"])),
            idf1=float(identity["IDF1"]),
            # from CLEAR's counts, not its MOTA: with no ground truth TrackEval returns before computing MOTA,
            # leaving 0, so false alarms alone scored as well as a clean run; this is -num_pred there
            mota=float(clear["CLR_TP"] - clear["CLR_FP"] - clear["IDSW"]) / max(1, clear["CLR_TP"] + clear["CLR_FN"]),
            id_switches=int(clear["IDSW"]),
            num_gt=n_gt,
            num_pred=n_pred,
            num_ignored=self._num_ignored,
        )

    def _det_f1_interval(self) -> tuple[float, float]:
        """det F1's 95 % percentile interval, resampling blocks of BLOCK_FRAMES frames (empty ones too: a stretch
        with no agent and no false alarm is part of the run); (NaN, NaN) with fewer than MIN_BLOCKS blocks that hold
        a box. Nominal: over few blocks a percentile bootstrap covers less than it says. Simulated with a
        10-minute warehouse patrol's boxes per block (20 blocks, 11 with boxes), it held the true F1 89 % of the
        time (BCa 89 %, a jackknife-t interval 92 %); over two hours (240 blocks), 94 % (BENCHMARKS.md)."""
        if self._first_index is None or self._last_index is None:
            return math.nan, math.nan
        first_block = self._first_index // BLOCK_FRAMES
        n_blocks = self._last_index // BLOCK_FRAMES - first_block + 1
        if n_blocks < MIN_BLOCKS:
            return math.nan, math.nan
        counts = self._counts.array()
        block = counts[:, 2] // BLOCK_FRAMES - first_block
        tp = np.bincount(block, weights=counts[:, 3], minlength=n_blocks)
        boxes = np.bincount(block, weights=counts[:, 0] + counts[:, 1], minlength=n_blocks)
        if np.count_nonzero(boxes) < MIN_BLOCKS:
            # What varies is in the blocks with boxes: a run whose agents all came in one block had the interval
            # (0.000, 0.667) around 0.667, the resamples that drew only empty blocks scored 0.
            return math.nan, math.nan

        def f1(tp: np.ndarray, boxes: np.ndarray, axis: int = -1) -> np.ndarray:
            den = boxes.sum(axis=axis)
            return np.where(den > 0, 2.0 * tp.sum(axis=axis) / np.maximum(den, 1.0), 0.0)

        ci = bootstrap((tp, boxes), f1, paired=True, vectorized=True, n_resamples=_DRAWS, method="percentile",
                       confidence_level=0.95, rng=np.random.default_rng(0)).confidence_interval
        return float(ci.low), float(ci.high)

    def _trackeval_data(self) -> dict[str, object]:
        """The dict TrackEval's eval_sequence reads: ids renumbered 0..K-1, per-frame IoU matrices."""
        counts = self._counts.array()
        cut_gt = np.cumsum(counts[:, 0])[:-1]
        cut_pred = np.cumsum(counts[:, 1])[:-1]
        gt_uniq, gt_ids = np.unique(self._gt_ids.array(), return_inverse=True)
        pred_uniq, pred_ids = np.unique(self._pred_ids.array(), return_inverse=True)
        gt_boxes = np.split(self._gt_boxes.array(), cut_gt)
        pred_boxes = np.split(self._pred_boxes.array(), cut_pred)
        return {
            "num_timesteps": self._frames,
            "num_gt_ids": len(gt_uniq),
            "num_tracker_ids": len(pred_uniq),
            "num_gt_dets": self._num_gt,
            "num_tracker_dets": self._num_pred,
            "gt_ids": np.split(gt_ids, cut_gt) if len(counts) else [],
            "tracker_ids": np.split(pred_ids, cut_pred) if len(counts) else [],
            "similarity_scores": [box_iou(g, p) for g, p in zip(gt_boxes, pred_boxes)] if len(counts) else [],
        }


def _checked(name: str, ids: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ids (N,) int64 and boxes (N, 4) float32, or BadInputError saying what is wrong."""
    ids_a = np.asarray(ids)
    boxes_a = np.asarray(boxes, dtype=np.float64)
    if boxes_a.size == 0 and ids_a.size == 0:
        return np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
    if ids_a.ndim != 1 or boxes_a.shape != (len(ids_a), 4):
        raise BadInputError(
            f"{name}_ids must be (N,) and {name}_boxes (N, 4) x1y1x2y2; got {ids_a.shape} and {boxes_a.shape}"
        )
    if not np.issubdtype(ids_a.dtype, np.integer):
        raise BadInputError(f"{name}_ids must be integers, got dtype {ids_a.dtype}")
    if len(np.unique(ids_a)) != len(ids_a):
        raise BadInputError(f"{name}_ids repeat within a frame: {ids_a.tolist()}")
    if not np.isfinite(boxes_a).all():
        raise BadInputError(f"{name}_boxes must be finite, got {boxes_a.tolist()}")
    return ids_a.astype(np.int64), boxes_a.astype(np.float32)


def _checked_boxes(name: str, boxes: np.ndarray) -> np.ndarray:
    """boxes (K, 4) float32, or BadInputError saying what is wrong."""
    a = np.asarray(boxes, dtype=np.float64)
    if a.size == 0:
        return np.zeros((0, 4), np.float32)
    if a.ndim != 2 or a.shape[1] != 4:
        raise BadInputError(f"{name} must be (K, 4) x1y1x2y2, got {a.shape}")
    if not np.isfinite(a).all():
        raise BadInputError(f"{name} must be finite, got {a.tolist()}")
    return a.astype(np.float32)


def dont_care_kept(gt_boxes: np.ndarray, dont_care: np.ndarray, pred_boxes: np.ndarray) -> np.ndarray:
    """(M,) bool: False for the predictions to leave out of the scores, True for the rest.

    First the largest one-to-one matching of the predictions to the scored boxes (as det F1 counts it), then a
    second of the predictions left over to the don't-care boxes, both at IoU >= MATCH_IOU; the predictions matched
    in the second are left out. So a don't-care box can only take away a false positive, never a true one, and a
    second box on a don't-care object is still a false positive. TrackEval's MOTChallenge rule for distractors
    matches both sets at once instead, where a prediction between a scored and a don't-care box can go to the
    don't-care one and leave the scored box missed.
    """
    keep = np.ones(len(pred_boxes), bool)
    if len(dont_care) == 0 or len(pred_boxes) == 0:
        return keep
    free = np.arange(len(pred_boxes))
    if len(gt_boxes):
        rows, cols = match_boxes(box_iou(gt_boxes, pred_boxes))
        free = np.setdiff1d(free, cols)
    rows, cols = match_boxes(box_iou(dont_care, pred_boxes[free]))
    keep[free[cols]] = False
    return keep


def match_boxes(iou: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the largest one-to-one matching with IoU >= MATCH_IOU (N, M); ties go to the higher IoU."""
    ok = iou >= MATCH_IOU - _EPS
    rows, cols = linear_sum_assignment(-np.where(ok, _MATCH_BONUS + iou, 0.0))
    matched = ok[rows, cols]
    return rows[matched], cols[matched]


def _count_matches(iou: np.ndarray) -> int:
    """Size of the largest one-to-one matching with IoU >= MATCH_IOU (N, M); ties go to the higher IoU."""
    return len(match_boxes(iou)[0])
