"""Moving a coarse change mask's edges to a per-pixel background model's while the camera stands still
(core.still_edges), and the learned detector's use of it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.core.still_edges import StillEdges, StillEdgesConfig

H, W = 240, 320
STILL = np.eye(4)


def _background(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.uniform(40, 210, (H // 8, W // 8, 3)).astype(np.float32)
    return cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC)


def _frame(bg: np.ndarray, box: tuple[int, int, int, int] | None, rng: np.random.Generator) -> np.ndarray:
    img = bg + rng.normal(0.0, 2.0, bg.shape)
    if box is not None:
        x, y, w, h = box
        img[y:y + h, x:x + w] = (30, 90, 200)  # an orange agent
    return np.clip(img, 0, 255).astype(np.uint8)


def _truth(box: tuple[int, int, int, int]) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    x, y, w, h = box
    m[y:y + h, x:x + w] = 255
    return m


def _coarse(truth: np.ndarray, halo_px: int = 3) -> np.ndarray:
    """A network-like mask: the truth grown by a halo of a few pixels."""
    return cv2.dilate(truth, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * halo_px + 1,) * 2))


def _grown(mask: np.ndarray, px: int) -> np.ndarray:
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1,) * 2))


def test_a_still_camera_trims_the_halo_around_a_moving_agent_and_fills_what_the_mask_fell_short_of():
    bg, rng, edges = _background(), np.random.default_rng(1), StillEdges()
    for _ in range(30):  # the empty scene first: the background model learns it
        edges.refine(_frame(bg, None, rng), np.zeros((H, W), np.uint8), STILL)
    kept = marked = halo = halo_left = 0
    for k in range(40):
        box = (20 + 6 * k, 90, 40, 60)
        truth = _truth(box)
        coarse = _coarse(truth)
        coarse[:, box[0] + box[2] - 3:] = 0  # the network fell 3 px short of the agent's right side
        out = edges.refine(_frame(bg, box, rng), coarse, STILL)
        assert not np.any((out > 0) & (_grown(coarse, 4) == 0))  # nothing farther than grow_px from the mask
        marked += int((truth > 0).sum())
        kept += int(((out > 0) & (truth > 0)).sum())
        ring = (coarse > 0) & (truth == 0)
        halo += int(ring.sum())
        halo_left += int(((out > 0) & ring).sum())
    assert kept / marked > 0.99  # the agent stays, its missed side included
    assert halo_left / halo < 0.1  # most of the halo goes


def test_the_core_of_the_mask_always_stays_and_a_moving_camera_trims_nothing():
    bg, rng, edges = _background(), np.random.default_rng(2), StillEdges()
    for _ in range(30):
        edges.refine(_frame(bg, None, rng), np.zeros((H, W), np.uint8), STILL)
    # a mask where nothing differs from the background (the network wrong, or an agent that stood still
    # long enough to be learned): the background model calls it all background, but only the ring goes
    # and nothing is added around it
    mask = _truth((100, 60, 80, 80))
    out = edges.refine(_frame(bg, None, rng), mask, STILL)
    core = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))
    assert np.array_equal(out > 0, core > 0)
    # the camera moved 10 cm: a new background model, whose first frame leaves the mask as it was
    moved = STILL.copy()
    moved[0, 3] = 0.10
    assert np.array_equal(edges.refine(_frame(bg, None, rng), mask, moved), mask)
    # turning 3 degrees in place does the same
    turned = moved.copy()
    turned[:3, :3] = cv2.Rodrigues(np.array([0.0, np.radians(3.0), 0.0]))[0]
    assert np.array_equal(edges.refine(_frame(bg, None, rng), mask, turned), mask)


def test_the_ring_scales_with_the_image_width_and_bad_input_is_refused():
    big = StillEdges()
    bg = cv2.resize(_background(), (2 * W, 2 * H))
    rng = np.random.default_rng(3)
    for _ in range(10):
        big.refine(_frame(bg, None, rng), np.zeros((2 * H, 2 * W), np.uint8))  # no pose: a still camera
    mask = np.zeros((2 * H, 2 * W), np.uint8)
    mask[100:300, 200:400] = 255
    out = big.refine(_frame(bg, None, rng), mask)
    assert (out > 0).sum() == pytest.approx((200 - 12) ** 2, rel=0.02)  # a 6 px ring at 640 px (3 px at 320)
    with pytest.raises(ValueError):
        StillEdgesConfig(grow_px=-1.0).validate()
    with pytest.raises(BadInputError):
        big.refine(np.zeros((2 * H, 2 * W), np.uint8), mask)  # not BGR
    with pytest.raises(BadInputError):
        big.refine(_frame(bg, None, rng), mask[:100])
    with pytest.raises(ValueError):
        StillEdgesConfig(ring_px=0.0).validate()


def test_the_learned_detector_moves_its_mask_edges_but_keeps_its_motion_boxes():
    from tiny_model import tiny_model

    from spatial_memory_ros.model.runtime import LearnedChangeDetector

    bg = _background()
    plain = LearnedChangeDetector(tiny_model(), device="cpu", threshold=0.3)
    trimmed = LearnedChangeDetector(tiny_model(), device="cpu", threshold=0.3, still_edges=StillEdgesConfig())
    ablation = LearnedChangeDetector(tiny_model(), device="cpu", threshold=0.3, still_edges=StillEdgesConfig(),
                                     use_memory=False)
    plain_ablation = LearnedChangeDetector(tiny_model(), device="cpu", threshold=0.3, use_memory=False)
    rng = np.random.default_rng(4)
    frames = [_frame(bg, None if k < 10 else (10 * k - 90, 80, 50, 70), rng) for k in range(25)]
    differ = 0
    for img in frames:
        a, b = plain.update(img, STILL), trimmed.update(img, STILL)
        assert not np.any((b.mask > 0) & (_grown(a.mask, 4) == 0))
        assert np.asarray(a.motion_boxes).tolist() == np.asarray(b.motion_boxes).tolist()
        differ += int((a.mask != b.mask).sum())
        c, d = plain_ablation.update(img, STILL), ablation.update(img, STILL)
        assert np.array_equal(c.mask, d.mask)  # use_memory=False: no background model either
    assert differ > 0


def test_a_camera_creeping_forward_within_the_pose_tolerance_trims_nothing():
    """A robot 0.5 cm a frame towards a wall: within move_m for ten frames, its picture growing 1 % a frame. The
    model restarts on the picture (picture_px) and never gets to decide; a jittering pose over a still picture
    keeps it."""
    bg, rng = _background(), np.random.default_rng(3)
    mask = _truth((100, 60, 80, 80))

    def forward(i: int) -> tuple[np.ndarray, np.ndarray]:
        M = cv2.getRotationMatrix2D(((W - 1) / 2.0, (H - 1) / 2.0), 0.0, 1.0 + 0.01 * i)
        T = STILL.copy()
        T[2, 3] = 0.005 * i
        return cv2.warpAffine(_frame(bg, None, rng), M, (W, H), borderMode=cv2.BORDER_REFLECT), T

    creeping, old = StillEdges(), StillEdges(StillEdgesConfig(picture_px=0.0))
    assert all(np.array_equal(creeping.refine(img, mask, T), mask) for img, T in map(forward, range(12)))
    assert not all(np.array_equal(old.refine(img, mask, T), mask) for img, T in map(forward, range(12))), \
        "the rule before"
    jittered = StillEdges()
    outs = []
    for _ in range(12):
        T = STILL.copy()
        T[:2, 3] = rng.uniform(-0.01, 0.01, 2)  # a localiser's jitter, within move_m
        outs.append(jittered.refine(_frame(bg, None, rng), mask, T))
    assert not np.array_equal(outs[-1], mask), "a still picture under a jittering pose: the edges are refined"
