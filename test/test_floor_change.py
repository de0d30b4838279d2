"""The floor memory (core.floor_change): changes seen from a moving camera, against what the floor looked like
when the camera was last there. Frames are rendered by warping a floor texture through a pinhole camera
(floor_scene)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from floor_scene import H, K, W, board_pixels, patrol, pose, render, texture

from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.core.floor_change import FloorChangeMap
from spatial_memory_ros.core.floor_change_config import FloorChangeConfig

Step = Callable[[np.ndarray, np.ndarray, float], np.ndarray]  # (image, T_map_cam, stamp) -> mask


def _step(fmap: FloorChangeMap, exclude: np.ndarray | None = None) -> Step:
    return lambda image, T, stamp: fmap.update(image, K, T, stamp, exclude=exclude)


def test_a_board_taken_away_is_marked_when_the_camera_comes_back_and_nothing_else_is():
    rng = np.random.default_rng(1)
    fmap = FloorChangeMap()
    first = patrol(_step(fmap), texture(board=True), 0.0, rng)
    assert sum(int(m.sum()) for m, _ in first) == 0  # first sight of every place: nothing to compare with
    again = patrol(_step(fmap), texture(board=False), 300.0, rng)  # five minutes later, the board is gone
    shown = sum(int(b.sum()) for _, b in again)
    found = sum(int((m & b).sum()) for m, b in again)
    false = sum(int((m & ~b).sum()) for m, b in again)
    assert shown > 2000
    assert found > 0.5 * shown  # at 0.5 recall or better
    assert false < 0.1 * found


def test_an_unchanged_floor_seen_again_brighter_is_no_change():
    rng = np.random.default_rng(2)
    fmap = FloorChangeMap()
    tex = texture(board=True)
    patrol(_step(fmap), tex, 0.0, rng)
    again = patrol(_step(fmap), tex, 300.0, rng, gain=1.3)  # the lights (or the exposure) changed, nothing else
    assert sum(int(m.sum()) for m, _ in again) == 0


@pytest.mark.parametrize(("first", "t0"), [(None, 0.0), (None, 1.7e9), (1.7e9, 5.0), (5.0, 1.7e9 + 7.3)])
def test_a_change_is_marked_for_settle_s_then_becomes_the_floor(first: float | None, t0: float):
    """Also at a ROS clock's stamps (1.7e9 s), where float32 steps by 128 s: the clock was kept in float32 from
    0, and the 2 s settle time became a minute. And after a first frame on another clock (a driver restarted on its
    own clock; simulation time, then wall time): counted from that first frame, the 2 s were the whole run."""
    rng = np.random.default_rng(3)
    fmap = FloorChangeMap(FloorChangeConfig(settle_s=2.0))
    T = pose(4.5, 5.0)  # a still camera looking at the board
    board = board_pixels(T)
    assert board.sum() > 1000
    if first is not None:
        fmap.update(render(texture(board=True), T, rng), K, T, first)
    for k in range(5):
        fmap.update(render(texture(board=True), T, rng), K, T, t0 + 0.1 * k)
    marked = []
    for k in range(40):  # the board is taken away at t = 1.0 s
        m = fmap.update(render(texture(board=False), T, rng), K, T, t0 + 1.0 + 0.1 * k) > 0
        marked.append((m & board).sum() / board.sum())
    assert min(marked[:19]) > 0.5  # from first sight...
    assert max(marked[21:]) == 0.0  # ...for 2 s, then the bare floor is the reference


def test_a_clock_that_goes_back_starts_the_changes_clocks_again():
    """A bag played again: a change seen before the jump would otherwise have a negative age and stay marked."""
    rng = np.random.default_rng(4)
    fmap = FloorChangeMap(FloorChangeConfig(settle_s=2.0))
    T = pose(4.5, 5.0)
    board = board_pixels(T)
    for k in range(5):
        fmap.update(render(texture(board=True), T, rng), K, T, 100.0 + 0.1 * k)
    m = fmap.update(render(texture(board=False), T, rng), K, T, 101.0) > 0
    assert (m & board).sum() > 0.5 * board.sum()  # the board left: marked
    ages = []
    for k in range(40):  # the clock restarts at 0 while the floor stays bare
        m = fmap.update(render(texture(board=False), T, rng), K, T, 0.1 * k) > 0
        ages.append((m & board).sum() / board.sum())
    assert max(ages[25:]) == 0.0  # settled 2 s after the jump, not never


def test_excluded_pixels_are_neither_compared_nor_learned():
    rng = np.random.default_rng(4)
    fmap = FloorChangeMap()
    everything = np.full((H, W), 255, np.uint8)
    patrol(_step(fmap, everything), texture(board=True), 0.0, rng)  # an agent hid the whole view
    again = patrol(_step(fmap), texture(board=False), 300.0, rng)
    assert sum(int(m.sum()) for m, _ in again) == 0  # the board was never learned, so its absence is no change


def test_memory_is_bounded_and_a_torus():
    fmap = FloorChangeMap(FloorChangeConfig(cells=256, cell_m=0.05, max_range_m=5.0))
    before = fmap.nbytes
    rng = np.random.default_rng(5)
    tex = texture(board=False)
    for k in range(30):
        T = pose(1.0 + 0.1 * k, 5.0)
        fmap.update(render(tex, T, rng), K, T, 0.1 * k)
    assert fmap.nbytes == before == 256 * 256 * 20


def test_bad_input_and_no_floor_in_view():
    fmap = FloorChangeMap()
    with pytest.raises(BadInputError):
        fmap.update(np.zeros((H, W), np.uint8), K, pose(1.0, 5.0), 0.0)
    with pytest.raises(BadInputError):
        fmap.update(np.zeros((H, W, 3), np.uint8), K, pose(1.0, 5.0), 0.0, exclude=np.zeros((H // 2, W), np.uint8))
    up = pose(1.0, 5.0, pitch_deg=-60.0)  # looking at the sky
    assert not fmap.update(np.zeros((H, W, 3), np.uint8), K, up, 0.0).any()
    below = pose(1.0, 5.0, height=-1.0)
    assert not fmap.update(np.zeros((H, W, 3), np.uint8), K, below, 0.0).any()
    with pytest.raises(ValueError):
        FloorChangeConfig(max_range_m=30.0).validate()  # more than half of the 51.2 m map


def test_the_learned_detector_adds_floor_changes_to_its_mask_but_not_to_its_motion_boxes():
    from tiny_model import tiny_model

    from spatial_memory_ros.core.types import CameraIntrinsics
    from spatial_memory_ros.model.runtime import LearnedChangeDetector

    intr = CameraIntrinsics(K[0, 0], K[1, 1], K[0, 2], K[1, 2], W, H)
    kinds = {
        "floor": LearnedChangeDetector(tiny_model(), device="cpu", floor_memory=FloorChangeConfig()),
        "network": LearnedChangeDetector(tiny_model(), device="cpu"),
        "ablation": LearnedChangeDetector(tiny_model(), device="cpu", floor_memory=FloorChangeConfig(),
                                          use_memory=False),
    }
    outs: dict[str, list] = {k: [] for k in kinds}

    def step(kind: str) -> Step:
        def run(image: np.ndarray, T: np.ndarray, stamp: float) -> np.ndarray:
            out = kinds[kind].update(image, T, intr, stamp)
            outs[kind].append(out)
            return out.mask
        return run

    found = {}
    for kind in kinds:
        rng = np.random.default_rng(6)
        patrol(step(kind), texture(board=True), 0.0, rng)
        again = patrol(step(kind), texture(board=False), 300.0, rng)
        found[kind] = sum(int((m & b).sum()) for m, b in again) / sum(int(b.sum()) for _, b in again)
    net, floor = outs["network"], outs["floor"]
    assert all(np.all(f.mask >= n.mask) for f, n in zip(floor, net))  # the network's mask, plus the floor's
    assert found["floor"] > 0.4 and found["floor"] > found["network"] + 0.3
    assert [np.asarray(f.motion_boxes).tolist() for f in floor] == [np.asarray(n.motion_boxes).tolist() for n in net]
    ablation = LearnedChangeDetector(tiny_model(), device="cpu", use_memory=False)
    rng = np.random.default_rng(6)
    plain = patrol(lambda image, T, stamp: ablation.update(image, T, intr, stamp).mask, texture(board=True), 0.0, rng)
    assert [m.tolist() for m, _ in plain] == [o.mask.astype(bool).tolist() for o in outs["ablation"][:len(plain)]]


def test_a_wider_image_is_shrunk_first_and_its_mask_comes_back_full_size():
    import cv2

    K2 = np.array([[2 * K[0, 0], 0.0, 2 * K[0, 2] + 0.5], [0.0, 2 * K[1, 1], 2 * K[1, 2] + 0.5], [0.0, 0.0, 1.0]])
    fmap = FloorChangeMap()
    assert fmap.config.work_width == W

    def wide(image: np.ndarray, T: np.ndarray, stamp: float) -> np.ndarray:  # the same view at 640 x 480
        mask = fmap.update(cv2.resize(image, (2 * W, 2 * H), interpolation=cv2.INTER_LINEAR), K2, T, stamp)
        assert mask.shape == (2 * H, 2 * W)
        return cv2.resize(mask, (W, H), interpolation=cv2.INTER_NEAREST)

    rng = np.random.default_rng(7)
    patrol(wide, texture(board=True), 0.0, rng)
    again = patrol(wide, texture(board=False), 300.0, rng)
    found = sum(int((m & b).sum()) for m, b in again)
    assert found > 0.5 * sum(int(b.sum()) for _, b in again)
    assert sum(int((m & ~b).sum()) for m, b in again) < 0.1 * found


def _marked_share_after_removal(fmap: FloorChangeMap, T: np.ndarray) -> float:
    """A still camera sees the board for 0.5 s, then bare floor: the share of the board's pixels marked then."""
    rng = np.random.default_rng(6)
    board = board_pixels(T)
    assert board.sum() > 20
    for k in range(5):
        fmap.update(render(texture(board=True), T, rng), K, T, 0.1 * k)
    m = fmap.update(render(texture(board=False), T, rng), K, T, 1.0) > 0
    return float((m & board).sum() / board.sum())


def test_a_mast_camera_sees_changes_farther_than_a_low_one():
    # The reach is where a pixel spans max_footprint_m (0.15 m) of floor along its ray: sqrt(0.15 f h),
    # 11.6 m for this camera (f = 200 px) 4.5 m up and 5.5 m for one 1 m up.
    far_mast = pose(6.0 - np.sqrt(10.0**2 - 4.5**2), 5.0, height=4.5, pitch_deg=27.0)  # board 10 m away
    assert _marked_share_after_removal(FloorChangeMap(), far_mast) > 0.5
    low = pose(6.0 - np.sqrt(6.5**2 - 1.0**2), 5.0, height=1.0, pitch_deg=9.0)  # board 6.5 m away, grazing
    assert _marked_share_after_removal(FloorChangeMap(FloorChangeConfig(max_footprint_m=1.0)), low) > 0.5
    assert _marked_share_after_removal(FloorChangeMap(), low) == 0.0  # too grazing to trust: not looked at
    # max_range_m still caps the reach
    assert _marked_share_after_removal(FloorChangeMap(FloorChangeConfig(max_range_m=8.0)), far_mast) == 0.0


def _jittered(fmap: FloorChangeMap, deg: float, m: float, seed: int) -> Step:
    """A step whose pose is a localiser's: off by deg about each camera axis and m along x and y, every frame."""
    from spatial_memory_ros.bench.pose_error import PoseError

    error, k = PoseError(deg, m, seed=seed), [0]

    def run(image: np.ndarray, T: np.ndarray, stamp: float) -> np.ndarray:
        k[0] += 1
        return fmap.update(image, K, error.apply(T, k[0]), stamp)
    return run


EXACT_POSE = {"align": False, "pose_tolerance_deg": 0.0, "pose_tolerance_m": 0.0,  # the memory before pose errors
              "min_region_width_cells": 0.0}


def test_a_jittered_pose_does_not_turn_the_floors_edges_into_changes():
    marked = {}
    for name, config in (("default", FloorChangeConfig()), ("trusting", FloorChangeConfig(**EXACT_POSE))):
        fmap, rng = FloorChangeMap(config), np.random.default_rng(8)
        tex = texture(board=True, lines=True)
        patrol(_jittered(fmap, 0.3, 0.01, seed=1), tex, 0.0, rng)
        again = patrol(_jittered(fmap, 0.3, 0.01, seed=2), tex, 300.0, rng)  # nothing changed
        marked[name] = sum(int(m.sum()) for m, _ in again)
        if name == "default":
            assert 0.1 < fmap.pose_error_deg < 0.6  # measured from the picture: about the 0.3 deg put on
    assert marked["trusting"] > 5_000  # a memory trusting the pose marks the lines and the board's edges
    assert marked["default"] < 0.1 * marked["trusting"]


def test_a_board_taken_away_is_still_found_under_a_jittered_pose():
    fmap, rng = FloorChangeMap(), np.random.default_rng(9)
    patrol(_jittered(fmap, 0.3, 0.01, seed=3), texture(board=True, lines=True), 0.0, rng)
    again = patrol(_jittered(fmap, 0.3, 0.01, seed=4), texture(board=False, lines=True), 300.0, rng)
    shown = sum(int(b.sum()) for _, b in again)
    found = sum(int((m & b).sum()) for m, b in again)
    false = sum(int((m & ~b).sum()) for m, b in again)
    assert found > 0.4 * shown and false < 0.2 * found


def test_an_exact_pose_measures_no_error_and_the_picture_turns_a_wrong_one_back():
    fmap, rng = FloorChangeMap(), np.random.default_rng(10)
    tex = texture(board=True, lines=True)
    patrol(_step(fmap), tex, 0.0, rng)
    assert fmap.pose_error_deg < 0.1  # next to nothing to allow for (0.44 measured under 0.3 deg of jitter)
    T = pose(4.0, 5.0)
    turned = T.copy()
    a = np.radians(1.5)  # of pitch: a localiser's jump, or the robot braking
    turned[:3, :3] = T[:3, :3] @ np.array([[1.0, 0.0, 0.0], [0.0, np.cos(a), -np.sin(a)], [0.0, np.sin(a), np.cos(a)]])
    image = render(tex, T, rng)
    trusting = FloorChangeMap(FloorChangeConfig(**EXACT_POSE))
    patrol(lambda i, P, t: trusting.update(i, K, P, t), tex, 0.0, np.random.default_rng(10))
    assert (trusting.update(image, K, turned, 60.0) > 0).sum() > 1000  # the lines, moved by the wrong pose
    assert fmap.update(image, K, turned, 60.0).sum() == 0


def test_thin_regions_are_not_marked_but_a_thick_one_is_marked_whole():
    from spatial_memory_ros.core.floor_change import _drop_thin

    mask = np.zeros((40, 40), bool)
    mask[2:4, 2:30] = True  # a sliver 2 cells wide along an edge
    mask[10, 2:30] = True  # and one 1 cell wide
    mask[20:26, 10:16] = True  # a board, 6 x 6 cells ...
    mask[22, 16:30] = True  # ... with a thin tail (one region: kept whole)
    mask[30:33, 2:30] = True  # a strip 3 cells wide: as wide as asked
    kept = _drop_thin(mask, 3.0)
    assert not kept[2:4].any() and not kept[10].any()
    assert kept[20:26, 10:16].all() and kept[22, 16:30].all() and kept[30:33, 2:30].all()
    assert (_drop_thin(mask, 0.0) == mask).all()
    with pytest.raises(ValueError, match="min_region_width_cells"):
        FloorChangeConfig(min_region_width_cells=-1.0).validate()
