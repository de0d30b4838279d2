"""core.standing: a moving region that depth shows lying on the floor is a floor mark, not a mover."""

from __future__ import annotations

import numpy as np
import pytest
from test_lifting import INTR, PATROL, render_person

from spatial_memory_ros.bench.depth_error import DepthError
from spatial_memory_ros.core.change import ChangeOutput
from spatial_memory_ros.core.config import LiftingConfig, MemoryConfig, PipelineConfig
from spatial_memory_ros.core.item_memory import ItemMemory
from spatial_memory_ros.core.lifting import pixel_rays
from spatial_memory_ros.core.pipeline import MOTION_LABEL, Pipeline
from spatial_memory_ros.core.standing import height_above_plane, lies_flat
from spatial_memory_ros.core.types import CameraIntrinsics, Frame
from spatial_memory_ros.sim.camera import floor_depth

BLOTCH = np.array([150.0, 150.0, 190.0, 180.0])  # a patch of the floor in PATROL's view, about 2 m ahead


def noisy(depth: np.ndarray, sigma_at_1m: float, holes: float, seed: int = 0) -> np.ndarray:
    return DepthError(sigma_at_1m, holes, seed=seed).apply(depth, 0)


def test_a_person_stands_and_a_floor_patch_lies_flat() -> None:
    depth, seen, _whole = render_person(2.0, 0.4)
    person = height_above_plane(seen, depth, INTR, PATROL)
    floor = height_above_plane(BLOTCH, depth, INTR, PATROL)
    assert person is not None and person[0] < 0.2 and person[1] > 0.5  # feet to the top border
    assert floor is not None and max(abs(floor[0]), abs(floor[1])) < 0.01
    assert not lies_flat(seen, depth, INTR, PATROL, 0.0, 0.1)
    assert lies_flat(BLOTCH, depth, INTR, PATROL, 0.0, 0.1)


def test_a_depth_cameras_error_leaves_the_verdicts() -> None:
    """The bench's depth error at about 1.5 % of 3 m (bench.depth_error, z**2 law) and a fifth of the pixels
    without depth: the floor patch still lies flat, the person still stands; a person's legs alone (the
    learned mask often has only them) stand too."""
    depth, seen, _whole = render_person(2.0, 0.4)
    for seed in range(5):
        d = noisy(depth, 0.005, 0.2, seed)
        assert lies_flat(BLOTCH, d, INTR, PATROL, 0.0, 0.1)
        assert not lies_flat(seen, d, INTR, PATROL, 0.0, 0.1)
    near_depth, near_seen, _ = render_person(1.6, 0.0)  # whole in view: its box reaches the feet
    legs = near_seen.copy()
    legs[1] = legs[3] - (legs[3] - legs[1]) * 0.25  # the lowest quarter of the box
    assert not lies_flat(legs, noisy(near_depth, 0.005, 0.2), INTR, PATROL, 0.0, 0.1)


def test_an_agent_cut_by_the_top_border_is_kept() -> None:
    """A person walking out of the patrol camera's far edge: only their feet are in view, as low as a floor mark,
    but the region is cut by the top border, so it is kept; the same region a pixel lower would be dropped."""
    depth, seen, _whole = render_person(3.8, 0.0)
    heights = height_above_plane(seen, depth, INTR, PATROL)
    assert seen[1] == 0 and heights is not None and heights[1] < 0.1  # the feet alone: as low as the floor
    assert not lies_flat(seen, depth, INTR, PATROL, 0.0, 0.1)
    assert lies_flat(seen + [0.0, 1.0, 0.0, 0.0], depth, INTR, PATROL, 0.0, 0.1)


def test_no_verdict_without_evidence() -> None:
    depth = floor_depth(INTR, PATROL).astype(np.float32)
    assert not lies_flat(BLOTCH, None, INTR, PATROL, 0.0, 0.1)  # no depth
    assert not lies_flat(BLOTCH, depth, None, PATROL, 0.0, 0.1)  # no intrinsics
    assert not lies_flat(BLOTCH, depth, INTR, None, 0.0, 0.1)  # no pose
    assert not lies_flat(BLOTCH, depth, INTR, PATROL, 0.0, 0.0)  # off
    assert not lies_flat(BLOTCH, np.full_like(depth, np.nan), INTR, PATROL, 0.0, 0.1)  # all holes
    assert height_above_plane(BLOTCH, noisy(depth, 0.0, 0.9), INTR, PATROL) is None  # 10 % with depth
    assert height_above_plane(np.array([400.0, 10.0, 450.0, 60.0]), depth, INTR, PATROL) is None  # off the image


def test_the_plane_height_is_the_supporting_plane() -> None:
    """Against a table's plane (0.75 m) the floor patch lies 0.75 m below it: no evidence, kept (so is a region
    under a wrong plane: a map whose z = 0 is not the floor); a region 0.75 m above the floor lies flat on a
    table of that height."""
    depth = floor_depth(INTR, PATROL).astype(np.float32)
    assert lies_flat(BLOTCH, depth, INTR, PATROL, 0.0, 0.1)
    assert not lies_flat(BLOTCH, depth, INTR, PATROL, 0.75, 0.1)
    assert not lies_flat(BLOTCH, depth, INTR, PATROL, -0.75, 0.1)
    lifted = PATROL.copy()
    lifted[2, 3] += 0.75  # the same view of a floor 0.75 m higher
    assert lies_flat(BLOTCH, depth, INTR, lifted, 0.75, 0.1)


def test_distortion_is_applied() -> None:
    """With distortion coefficients the pixels' rays are undistorted (core.lifting.pixel_rays): a floor patch near
    a corner of a wide lens still lies flat."""
    intr = CameraIntrinsics(fx=INTR.fx, fy=INTR.fy, cx=INTR.cx, cy=INTR.cy, width=INTR.width, height=INTR.height,
                            distortion=(-0.3, 0.1, 0.0, 0.0, 0.0))
    u, v = np.meshgrid(np.arange(intr.width, dtype=np.float64), np.arange(intr.height, dtype=np.float64))
    rays = pixel_rays(np.column_stack([u.ravel(), v.ravel()]), intr) @ PATROL[:3, :3].T
    t = -PATROL[2, 3] / rays[:, 2]  # z-depth where each undistorted ray meets the floor
    depth = np.where(t > 0, t, np.nan).reshape(u.shape).astype(np.float32)
    corner = np.array([5.0, 200.0, 40.0, 235.0])
    assert lies_flat(corner, depth, intr, PATROL, 0.0, 0.1)
    undistorted = height_above_plane(corner, depth, intr, PATROL)
    pinhole = height_above_plane(corner, depth, INTR, PATROL)  # the same depth read as if there were no distortion
    assert undistorted is not None and max(abs(undistorted[0]), abs(undistorted[1])) < 0.005
    assert pinhole is not None and pinhole[1] > 0.03


class _TwoRegions:
    """A change backend that reports a person's region and a floor patch, as a learned mask gone wrong did."""

    def __init__(self, boxes: list[np.ndarray]) -> None:
        self.boxes = boxes

    def update(self, image_bgr: np.ndarray, T_map_cam: np.ndarray | None = None,
               intrinsics: CameraIntrinsics | None = None, stamp: float | None = None) -> ChangeOutput:
        return ChangeOutput(np.zeros(image_bgr.shape[:2], np.uint8), list(self.boxes), False)

    def reset(self) -> None:
        pass


@pytest.mark.parametrize("min_standing_m", [0.1, 0.0])
def test_the_pipeline_drops_floor_marks_only_with_depth(min_standing_m: float) -> None:
    depth, seen, _whole = render_person(1.6, 0.0)
    config = PipelineConfig(memory=MemoryConfig(db_path=":memory:"),
                            lifting=LiftingConfig(min_standing_m=min_standing_m))
    pipeline = Pipeline(config, ItemMemory(config.memory), change=_TwoRegions([seen, BLOTCH]))
    image = np.zeros((INTR.height, INTR.width, 3), np.uint8)
    with_depth = pipeline.update(Frame(image, 0.0, INTR, PATROL, depth=depth))
    boxes = [d.box for d in with_depth.detections if d.label == MOTION_LABEL]
    expected = [seen] if min_standing_m > 0 else [seen, BLOTCH]
    assert len(boxes) == len(expected) and all(np.array_equal(b, e) for b, e in zip(boxes, expected))
    without = pipeline.update(Frame(image, 0.1, INTR, PATROL))
    assert len([d for d in without.detections if d.label == MOTION_LABEL]) == 2


def test_a_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="min_standing_m"):
        PipelineConfig(lifting=LiftingConfig(min_standing_m=-0.1)).validate()
