"""Benchmark scorers on hand-made cases whose answers are worked out in the comments."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from numpy.typing import ArrayLike

from spatial_memory_ros.bench import cost
from spatial_memory_ros.bench.metrics import (
    ChangeAccumulator,
    CostMeter,
    LayoutAccumulator,
    RetrievalAccumulator,
    TrackingAccumulator,
)
from spatial_memory_ros.bench.tracking_metrics import BLOCK_FRAMES, MIN_BLOCKS, dont_care_kept
from spatial_memory_ros.core.association import box_iou
from spatial_memory_ros.core.errors import BadInputError

BOX_A = np.array([0.0, 0.0, 10.0, 10.0])
BOX_B = np.array([20.0, 20.0, 30.0, 30.0])
FAR = np.array([100.0, 100.0, 110.0, 110.0])


def ids(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def boxes(*rows: ArrayLike) -> np.ndarray:
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def two_walkers(n_frames: int = 6) -> list[tuple[np.ndarray, np.ndarray]]:
    """(ids, boxes) per frame: objects 1 and 2 moving right 3 px a frame."""
    return [(ids(1, 2), boxes(BOX_A + [3 * t, 0, 3 * t, 0], BOX_B + [3 * t, 0, 3 * t, 0])) for t in range(n_frames)]


# --------------------------------------------------------------------------------------------- tracking


def test_tracking_perfect_predictions_score_one() -> None:
    acc = TrackingAccumulator()
    for t, (i, b) in enumerate(two_walkers()):
        acc.add(t, i, b, i + 100, b.copy())  # tracker ids need not equal truth ids
    s = acc.summary()
    assert (s.det_precision, s.det_recall, s.det_f1) == (1.0, 1.0, 1.0)
    assert s.hota == pytest.approx(1.0) and s.idf1 == 1.0 and s.mota == 1.0
    assert (s.id_switches, s.num_gt, s.num_pred) == (0, 12, 12)


def _missing_every(n_blocks: int, miss_block: int) -> TrackingAccumulator:
    """One object in every frame, found except in every miss_block-th block of BLOCK_FRAMES frames."""
    acc = TrackingAccumulator()
    for t in range(n_blocks * BLOCK_FRAMES):
        missed = (t // BLOCK_FRAMES) % miss_block == 0
        acc.add(t, ids(1), boxes(BOX_A), ids() if missed else ids(7), boxes() if missed else boxes(BOX_A))
    return acc


def test_det_f1_interval_holds_the_figure_and_narrows_with_a_longer_run() -> None:
    # every 4th block all missed: det F1 = 2 TP / (GT + pred) = 2 * 0.75n / (n + 0.75n) = 6/7
    short, long = _missing_every(8, 4).summary(), _missing_every(80, 4).summary()
    for s in (short, long):
        assert s.det_f1 == pytest.approx(6 / 7)
        assert s.det_f1_low < s.det_f1 < s.det_f1_high
    assert long.det_f1_high - long.det_f1_low < 0.5 * (short.det_f1_high - short.det_f1_low)  # ~1/sqrt(10)
    again = _missing_every(8, 4).summary()
    assert (again.det_f1_low, again.det_f1_high) == (short.det_f1_low, short.det_f1_high)  # a fixed seed


def test_det_f1_interval_resamples_blocks_not_frames() -> None:
    # The same 25 % of frames missed, once in whole blocks and once spread one frame in four: resampling single
    # frames would give both the same narrow interval; whole missed blocks are fewer, independent events.
    blocks = _missing_every(8, 4).summary()
    spread = TrackingAccumulator()
    for t in range(8 * BLOCK_FRAMES):
        missed = t % 4 == 0
        spread.add(t, ids(1), boxes(BOX_A), ids() if missed else ids(7), boxes() if missed else boxes(BOX_A))
    s = spread.summary()
    assert s.det_f1 == pytest.approx(blocks.det_f1)
    assert s.det_f1_high - s.det_f1_low < 0.01  # every block alike: no spread between blocks
    assert blocks.det_f1_high - blocks.det_f1_low > 0.1


def test_det_f1_interval_is_nan_over_too_few_blocks_and_exact_when_all_found() -> None:
    acc = TrackingAccumulator()
    for t, (i, b) in enumerate(two_walkers()):
        acc.add(t, i, b, i, b.copy())
    s = acc.summary()
    assert math.isnan(s.det_f1_low) and math.isnan(s.det_f1_high)  # six frames: one block
    few = _missing_every(MIN_BLOCKS - 1, 4).summary()  # PETS09's 795 frames are 3 blocks: 10 distinct resamples
    assert few.det_f1 == pytest.approx(10 / 12) and math.isnan(few.det_f1_low) and math.isnan(few.det_f1_high)
    one = TrackingAccumulator()  # MIN_BLOCKS blocks, but agents in only one: no interval (was (0.000, 0.667))
    for t in range(MIN_BLOCKS * BLOCK_FRAMES):
        seen = t < 3
        one.add(t, ids(1) if seen else ids(), boxes(BOX_A) if seen else boxes(), ids(7) if t < 2 else ids(),
                boxes(BOX_A) if t < 2 else boxes())
    lonely = one.summary()
    assert lonely.det_f1 == pytest.approx(0.8) and math.isnan(lonely.det_f1_low) and math.isnan(lonely.det_f1_high)
    clean = TrackingAccumulator()
    for t in range(BLOCK_FRAMES, (1 + MIN_BLOCKS) * BLOCK_FRAMES):  # MIN_BLOCKS blocks, not starting at frame 0
        clean.add(t, ids(1), boxes(BOX_A), ids(7), boxes(BOX_A))
    c = clean.summary()
    assert (c.det_f1, c.det_f1_low, c.det_f1_high) == (1.0, 1.0, 1.0)


def test_tracking_no_predictions_score_zero() -> None:
    acc = TrackingAccumulator()
    for t, (i, b) in enumerate(two_walkers()):
        acc.add(t, i, b, ids(), boxes())
    s = acc.summary()
    # MOTA = 1 - (FN + FP + IDSW) / GT = 1 - 12 / 12
    assert (s.det_precision, s.det_recall, s.det_f1, s.hota, s.idf1, s.mota) == (0.0,) * 6
    assert (s.num_gt, s.num_pred) == (12, 0)


@pytest.mark.parametrize("frames", [0, 3], ids=["never-added", "empty-frames"])
def test_tracking_nothing_at_all_scores_zero(frames: int) -> None:
    acc = TrackingAccumulator()
    for t in range(frames):
        acc.add(t, ids(), boxes(), np.array([]), np.zeros((0, 4)))
    scores = acc.summary().as_dict()
    assert math.isnan(scores.pop("det_f1_low")) and math.isnan(scores.pop("det_f1_high"))  # under MIN_BLOCKS blocks
    assert scores == {
        "det_precision": 0.0, "det_recall": 0.0, "det_f1": 0.0, "hota": 0.0, "idf1": 0.0, "mota": 0.0,
        "id_switches": 0, "num_gt": 0, "num_pred": 0, "num_ignored": 0,
    }  # fmt: skip


def test_tracking_false_alarms_without_ground_truth_score_below_zero() -> None:
    """MOTA = 1 - (FN + FP + IDSW) / max(1, GT) = -2 for two false boxes and no truth; TrackEval left it 0."""
    acc = TrackingAccumulator()
    acc.add(0, ids(), boxes(), ids(7), boxes(FAR))
    acc.add(1, ids(), boxes(), ids(7), boxes(FAR))
    s = acc.summary()
    assert (s.mota, s.num_gt, s.num_pred, s.det_f1) == (-2.0, 0, 2, 0.0)


def test_tracking_one_hit_one_false_positive() -> None:
    # gt A, B; predicted A (right) and FAR (wrong): TP 1, FP 1, FN 1.
    acc = TrackingAccumulator()
    acc.add(0, ids(1, 2), boxes(BOX_A, BOX_B), ids(7, 8), boxes(BOX_A, FAR))
    s = acc.summary()
    assert (s.det_precision, s.det_recall, s.det_f1) == (0.5, 0.5, 0.5)
    assert s.hota == pytest.approx(math.sqrt(1 / 3))  # DetA = TP / (TP + FN + FP) = 1/3, AssA = 1
    assert s.idf1 == 0.5  # IDTP 1, IDFP 1, IDFN 1
    assert s.mota == 0.0  # 1 - (1 FN + 1 FP) / 2


def test_tracking_id_switch() -> None:
    # One object seen 4 frames; the tracker calls it 10 for two frames, then 11.
    acc = TrackingAccumulator()
    for t in range(4):
        acc.add(t, ids(1), boxes(BOX_A), ids(10 if t < 2 else 11), boxes(BOX_A))
    s = acc.summary()
    assert s.id_switches == 1 and s.det_f1 == 1.0
    assert s.mota == 0.75  # 1 - 1 IDSW / 4
    assert s.idf1 == 0.5  # gt 1 <-> 10 only: IDTP 2, IDFN 2, IDFP 2 -> 2 / (2 + 1 + 1)
    assert s.hota == pytest.approx(math.sqrt(0.5))  # DetA 1; AssA: each match 2 / (4 + 2 - 2) = 0.5


def test_tracking_matching_is_one_to_one_and_maximal() -> None:
    # 1-D boxes (y 0..10). p1 overlaps A best (IoU 9/11) but also B (8/12); p2 only A (8/12).
    # Greedy (p1-A first) matches 1; the optimal assignment p1-B, p2-A matches 2.
    a, b = [0, 0, 10, 10], [3, 0, 13, 10]
    p1, p2 = [1, 0, 11, 10], [-2, 0, 8, 10]
    acc = TrackingAccumulator()
    acc.add(0, ids(1, 2), boxes(a, b), ids(1, 2), boxes(p1, p2))
    assert acc.summary().det_recall == 1.0
    # Two predictions on one object: one is a false positive.
    acc = TrackingAccumulator()
    acc.add(0, ids(1), boxes(a), ids(1, 2), boxes(a, p1))
    s = acc.summary()
    assert (s.det_precision, s.det_recall) == (0.5, 1.0)


@pytest.mark.parametrize(("y2", "matched"), [(5.0, True), (4.9, False)], ids=["iou-0.5", "iou-0.49"])
def test_tracking_iou_threshold_is_inclusive(y2: float, matched: bool) -> None:
    acc = TrackingAccumulator()
    acc.add(0, ids(1), boxes(BOX_A), ids(1), boxes([0, 0, 10, y2]))
    assert acc.summary().det_recall == float(matched)


def test_tracking_skipped_and_empty_frames_change_nothing() -> None:
    dense, sparse = TrackingAccumulator(), TrackingAccumulator()
    for t, (i, b) in enumerate(two_walkers()):
        dense.add(t, i, b, i, b)
        sparse.add(10 * t, i, b, i, b)
        sparse.add(10 * t + 1, ids(), boxes(), ids(), boxes())
    assert dense.summary() == sparse.summary()


@pytest.mark.parametrize(
    ("gt_ids", "gt_boxes", "match"),
    [
        (ids(1, 2), boxes(BOX_A), r"gt_ids must be \(N,\) and gt_boxes \(N, 4\)"),
        (ids(1), np.zeros((1, 5)), r"gt_boxes \(N, 4\)"),
        (ids(1, 1), boxes(BOX_A, BOX_B), "repeat within a frame"),
        (np.array([1.5]), boxes(BOX_A), "must be integers"),
        (ids(1), boxes([0, 0, np.nan, 10]), "must be finite"),
    ],
    ids=["count", "width", "duplicate", "float-ids", "nan"],
)
def test_tracking_bad_input(gt_ids: np.ndarray, gt_boxes: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TrackingAccumulator().add(0, gt_ids, gt_boxes, ids(), boxes())


def test_tracking_frame_index_must_increase() -> None:
    acc = TrackingAccumulator()
    acc.add(5, ids(1), boxes(BOX_A), ids(1), boxes(BOX_A))
    with pytest.raises(ValueError, match="frame_index must increase: got 5 after 5"):
        acc.add(5, ids(1), boxes(BOX_A), ids(1), boxes(BOX_A))


def test_a_box_on_a_dont_care_object_is_left_out_of_every_score() -> None:
    # Object 1 (scored) found in all 6 frames; object 2 is don't-care (too little in view) and the tracker
    # boxes it too, as track 8. Without the don't-care box that is 6 false positives.
    with_dc, without, alone = TrackingAccumulator(), TrackingAccumulator(), TrackingAccumulator()
    for t in range(6):
        moved = np.array([3.0 * t, 0, 3.0 * t, 0])
        both = boxes(BOX_A + moved, BOX_B + moved)
        with_dc.add(t, ids(1), boxes(BOX_A + moved), ids(7, 8), both, boxes(BOX_B + moved))
        without.add(t, ids(1), boxes(BOX_A + moved), ids(7, 8), both)
        alone.add(t, ids(1), boxes(BOX_A + moved), ids(7), boxes(BOX_A + moved))
    s, w, a = with_dc.summary(), without.summary(), alone.summary()
    assert (w.det_precision, w.idf1, w.num_pred) == (0.5, pytest.approx(2 / 3), 12)
    assert (s.det_precision, s.det_recall, s.det_f1, s.idf1, s.mota) == (1.0, 1.0, 1.0, 1.0, 1.0)
    assert (s.num_gt, s.num_pred, s.num_ignored) == (6, 6, 6)
    # exactly as if the tracker had never boxed it (HOTA too)
    assert dataclasses.replace(s, num_ignored=0) == a


def test_dont_care_takes_away_only_false_positives() -> None:
    a, dc = [0, 0, 10, 10], [1, 0, 11, 10]  # a scored object and a don't-care one beside it
    # One box between them: it matches both (IoU 9/11) and stays the scored object's hit.
    acc = TrackingAccumulator()
    acc.add(0, ids(1), boxes(a), ids(5), boxes([0.5, 0, 10.5, 10]), boxes(dc))
    s = acc.summary()
    assert (s.det_precision, s.det_recall, s.num_ignored) == (1.0, 1.0, 0)
    # Two boxes on the don't-care object: one is left out, the other is still a false positive.
    acc = TrackingAccumulator()
    acc.add(0, ids(1), boxes(a), ids(5, 6, 7), boxes(a, dc, [1, 0, 11, 9.5]), boxes(dc))
    s = acc.summary()
    assert (s.det_precision, s.num_pred, s.num_ignored) == (0.5, 2, 1)
    # A box that overlaps the don't-care box under IoU 0.5 is a false positive.
    acc = TrackingAccumulator()
    acc.add(0, ids(1), boxes(a), ids(5, 6), boxes(a, [6, 0, 16, 10]), boxes(dc))
    assert (acc.summary().det_precision, acc.summary().num_ignored) == (0.5, 0)


def test_dont_care_kept_matches_scored_boxes_first() -> None:
    # p sits on the scored box S (IoU 0.6) and better on the don't-care box D (IoU 0.9). Matching both sets at
    # once would give p to D and leave S missed; the scored matching comes first.
    s_box, d_box = [0.0, 0, 10, 10], [2.5, 0, 12.5, 10]
    p = [2.0, 0, 12, 10]
    iou = box_iou(boxes(p), boxes(s_box, d_box))[0]
    assert iou[0] < iou[1]
    assert dont_care_kept(boxes(s_box), boxes(d_box), boxes(p)).tolist() == [True]
    assert dont_care_kept(boxes(), boxes(d_box), boxes(p)).tolist() == [False]
    assert dont_care_kept(boxes(s_box), boxes(), boxes()).tolist() == []
    assert dont_care_kept(boxes(s_box), boxes(d_box), boxes(s_box)).tolist() == [True]  # nothing left over


@pytest.mark.parametrize(("dont_care", "match"), [(np.zeros((1, 3)), r"dont_care must be \(K, 4\)"),
                                                  (boxes([0, 0, np.inf, 1]), "dont_care must be finite")])
def test_dont_care_bad_input(dont_care: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TrackingAccumulator().add(0, ids(1), boxes(BOX_A), ids(1), boxes(BOX_A), dont_care)


# ----------------------------------------------------------------------------------------------- change


def mask(*pixels: tuple[int, int], shape: tuple[int, int] = (4, 4)) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    for r, c in pixels:
        m[r, c] = 255
    return m


def test_change_known_confusion() -> None:
    # 16 px: truth changed at 4, prediction at 4, 2 shared -> TP 2, FP 2, FN 2, TN 10.
    acc = ChangeAccumulator()
    acc.add(mask((0, 0), (0, 1), (3, 3), (3, 2)) > 0, mask((0, 0), (0, 1), (1, 0), (1, 1)))
    s = acc.summary()
    assert s.iou_changed == pytest.approx(2 / 6) and s.iou_unchanged == pytest.approx(10 / 14)
    assert s.miou == pytest.approx((2 / 6 + 10 / 14) / 2)
    assert (s.precision_changed, s.recall_changed, s.f1_changed, s.pixels) == (0.5, 0.5, 0.5, 16)


def test_change_counts_pixels_over_frames_not_frame_means() -> None:
    # Frame 1: 1 changed px found (IoU 1). Frame 2: 3 changed px missed (IoU 0). Pooled IoU = 1 / 4.
    acc = ChangeAccumulator()
    acc.add(mask((0, 0)), mask((0, 0)))
    acc.add(mask(), mask((1, 1), (2, 2), (3, 3)))
    s = acc.summary()
    assert s.iou_changed == 0.25 and s.recall_changed == 0.25 and s.precision_changed == 1.0


@pytest.mark.parametrize("truth", [mask((1, 2), (2, 2)), mask()], ids=["some-change", "no-change"])
def test_change_perfect_prediction_scores_one(truth: np.ndarray) -> None:
    acc = ChangeAccumulator()
    acc.add(truth.astype(bool), truth)
    s = acc.summary()
    assert (s.miou, s.iou_changed, s.iou_unchanged, s.f1_changed, s.precision_changed, s.recall_changed) == (1.0,) * 6


def test_change_empty_prediction_scores_zero() -> None:
    acc = ChangeAccumulator()
    acc.add(mask(), mask((0, 0), (1, 1)))
    s = acc.summary()
    assert (s.iou_changed, s.f1_changed, s.precision_changed, s.recall_changed) == (0.0,) * 4
    assert s.iou_unchanged == 14 / 16


def test_change_nothing_added_scores_zero() -> None:
    d = ChangeAccumulator().summary().as_dict()
    split = {k: d.pop(k) for k in ("recall_agents", "recall_scene", "agent_pixels", "scene_pixels")}
    assert d == {
        "miou": 0.0, "iou_changed": 0.0, "iou_unchanged": 0.0, "f1_changed": 0.0, "precision_changed": 0.0,
        "recall_changed": 0.0, "pixels": 0,
    }  # fmt: skip
    assert math.isnan(split["recall_agents"]) and math.isnan(split["recall_scene"])
    assert split["agent_pixels"] == split["scene_pixels"] == 0


def test_change_recall_split_by_agent_and_scene_pixels() -> None:
    # Truth: 3 px on an agent, 2 px off every agent (a moved item). The mask finds 2 agent px and 1 scene px
    # in frame 1; frame 2 adds 1 missed scene px and comes without the agents (not counted in the split).
    acc = ChangeAccumulator()
    agents = mask((0, 0), (0, 1), (0, 2), (3, 3))  # (3, 3) is an agent pixel that did not change: no count
    acc.add(mask((0, 0), (0, 1), (2, 2), (3, 0)), mask((0, 0), (0, 1), (0, 2), (2, 2), (2, 3)), agents)
    acc.add(mask(), mask((1, 1)))
    s = acc.summary()
    assert (s.agent_pixels, s.scene_pixels) == (3, 2)
    assert s.recall_agents == pytest.approx(2 / 3) and s.recall_scene == pytest.approx(1 / 2)
    assert s.recall_changed == pytest.approx(3 / 6)  # the whole recall still counts every frame
    with pytest.raises(BadInputError, match="same size"):
        acc.add(mask(), mask(), np.zeros((2, 2), np.uint8))


def test_change_recall_split_is_nan_without_that_kind() -> None:
    acc = ChangeAccumulator()
    acc.add(mask((0, 0)), mask((0, 0)), mask((0, 0)))  # only agent pixels changed
    s = acc.summary()
    assert s.recall_agents == 1.0 and math.isnan(s.recall_scene) and s.scene_pixels == 0


@pytest.mark.parametrize(
    ("pred", "true"),
    [(np.zeros((4, 4)), np.zeros((4, 5))), (np.zeros((4, 4, 1)), np.zeros((4, 4, 1)))],
    ids=["size", "3-d"],
)
def test_change_bad_shapes(pred: np.ndarray, true: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"must all be \(H, W\) of the same size"):
        ChangeAccumulator().add(pred, true)


# ----------------------------------------------------------------------------------------------- layout

HOME = np.array([1.0, 2.0, 0.0])


def test_layout_three_of_four() -> None:
    acc = LayoutAccumulator(radius_m=0.5)
    acc.add("cup", HOME + [0.3, 0.4, 0.0], HOME, displaced_now=False)  # 0.5 m away: on the boundary, right
    acc.add("cup", HOME + [0.0, 0.0, 1.2], HOME, displaced_now=True)  # height is ignored: right
    acc.add("box", HOME + [0.0, 0.51, 0.0], HOME, displaced_now=True)  # wrong
    acc.add("pen", HOME.copy(), HOME, displaced_now=False)
    s = acc.summary()
    assert (s.accuracy, s.n, s.accuracy_when_displaced, s.n_displaced) == (0.75, 4, 0.5, 2)


def test_layout_unknown_item_is_wrong_and_empty_is_zero() -> None:
    acc = LayoutAccumulator()
    assert acc.summary().accuracy == 0.0
    acc.add("ghost", None, HOME, displaced_now=False)
    assert (acc.summary().accuracy, acc.summary().n) == (0.0, 1)


@pytest.mark.parametrize(
    ("predicted", "home", "match"),
    [
        (HOME, np.zeros(4), r"cup: the true position must be \(3,\)"),
        (HOME, np.full(3, np.nan), "cup: the true position must be finite"),
        (np.array([np.nan, 0.0, 0.0]), HOME, "pass None for an unknown prediction"),
    ],
    ids=["shape", "nan-truth", "nan-prediction"],
)
def test_layout_bad_input(predicted: np.ndarray, home: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LayoutAccumulator().add("cup", predicted, home, displaced_now=False)


@pytest.mark.parametrize("radius", [0.0, -1.0, math.inf])
def test_layout_bad_radius(radius: float) -> None:
    with pytest.raises(ValueError, match="radius_m must be a positive number"):
        LayoutAccumulator(radius_m=radius)


# -------------------------------------------------------------------------------------------- retrieval


def test_retrieval_buckets() -> None:
    acc = RetrievalAccumulator(radius_m=0.5)
    here, there = np.zeros(3), np.array([3.0, 0.0, 0.0])
    queries = [  # (age s, right?) -> bucket
        (0.0, True),  # 1 min
        (60.0, False),  # 1 min: the bound is inclusive
        (61.0, True),  # 10 min
        (3600.0, True),  # 60 min
        (7000.0, False),  # 120 min
        (9000.0, True),  # > 120 min
        (math.inf, False),  # > 120 min: never seen
    ]
    for age, right in queries:
        acc.add("cup", here if right else there, here, age)
    acc.add("ghost", None, here, 30.0)  # 1 min, unknown item: wrong
    s = acc.summary()
    assert s.per_bucket == {
        "1 min": (1 / 3, 3), "10 min": (1.0, 1), "60 min": (1.0, 1), "120 min": (0.0, 1), "> 120 min": (0.5, 2),
    }  # fmt: skip
    assert (s.recall_at_1, s.n) == (4 / 8, 8)
    assert json.loads(json.dumps(s.as_dict()))["per_bucket"]["10 min"] == {"recall_at_1": 1.0, "n": 1}


def test_retrieval_custom_bucket_labels_and_empty() -> None:
    s = RetrievalAccumulator(buckets_s=(30, 90, 120)).summary()
    assert list(s.per_bucket) == ["30 s", "90 s", "2 min", "> 2 min"]
    assert s.recall_at_1 == 0.0 and all(v == (0.0, 0) for v in s.per_bucket.values())


@pytest.mark.parametrize("age", [-1.0, math.nan])
def test_retrieval_bad_age(age: float) -> None:
    with pytest.raises(ValueError, match="last_seen_age_s must be >= 0"):
        RetrievalAccumulator().add("cup", None, np.zeros(3), age)


@pytest.mark.parametrize("buckets", [(), (60, 60), (600, 60), (60, math.inf)])
def test_retrieval_bad_buckets(buckets: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="buckets_s must be finite, increasing"):
        RetrievalAccumulator(buckets_s=buckets)


# ------------------------------------------------------------------------------------------------- cost


class FakeClock:
    """Stands in for the time module inside bench.cost: perf_counter() returns the given readings."""

    def __init__(self, *readings: float) -> None:
        self._readings = iter(readings)

    def perf_counter(self) -> float:
        return next(self._readings)


def test_cost_times_with_blocks_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cost, "time", FakeClock(0.0, 10.0, 10.5, 20.0, 20.5))  # made; 2 blocks of 0.5 s
    meter = CostMeter()
    for _ in range(2):
        with meter:
            pass
    s = meter.summary()
    assert (s.n_frames, s.wall_s, s.fps) == (2, 1.0, 2.0)


def test_cost_tick_counts_since_previous_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cost, "time", FakeClock(0.0, 1.0, 3.0))
    meter = CostMeter()
    meter.tick()
    meter.tick(n_frames=2)
    s = meter.summary()
    assert (s.n_frames, s.wall_s, s.fps) == (3, 3.0, 1.0)


def test_cost_growth_ignores_warm_up(monkeypatch: pytest.MonkeyPatch) -> None:
    # 10 simulated hours sampled every 0.5 h; 10 MB/h, plus 500 MB of warm-up in the first hour only.
    times_h = np.arange(0.0, 10.01, 0.5)
    rss = iter(100.0 + 10.0 * times_h + np.where(times_h < 1.0, 500.0, 0.0))
    monkeypatch.setattr(cost, "current_rss_mb", lambda: float(next(rss)))
    meter = CostMeter()
    for t in times_h:
        meter.sample(t * 3600.0)
    assert meter.summary().growth_mb_per_hour == pytest.approx(10.0)


def test_cost_empty_and_real_memory() -> None:
    meter = CostMeter()
    s = meter.summary()
    assert (s.fps, s.n_frames) == (0.0, 0) and math.isnan(s.growth_mb_per_hour)
    meter.sample(0.0)
    assert math.isnan(meter.summary().growth_mb_per_hour)  # one sample: no slope
    assert 0.0 < cost.current_rss_mb() <= cost.peak_rss_mb() + 1.0  # the real process, read from /proc
    with pytest.raises(ValueError, match="sim_time_s must be finite"):
        meter.sample(math.nan)
    assert json.loads(json.dumps(meter.summary().as_dict()))["n_frames"] == 0


def test_retrieval_counts_the_queries_that_need_a_memory_apart() -> None:
    """Most queries are answered by the frame or by a first sighting; R@1 over the rest is what a memory adds."""
    acc = RetrievalAccumulator()
    here, there = np.zeros(3), np.array([3.0, 0.0, 0.0])
    acc.add("cup", here, here, 0.0)  # in view: easy, right
    acc.add("cup", here, here, 90.0, hard=True)
    acc.add("box", there, here, 90.0, hard=True)
    acc.add("mop", None, here, 30.0, hard=True)
    s = acc.summary()
    assert (s.recall_at_1, s.n, s.recall_at_1_hard, s.n_hard) == (0.5, 4, 1 / 3, 3)
    assert json.loads(json.dumps(s.as_dict()))["n_hard"] == 3
