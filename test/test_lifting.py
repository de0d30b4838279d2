"""3D lifting on scenes with known geometry: aligned depth (a board standing on the floor, rendered here,
floor depth from the simulator) and the ground-plane assumption; then through the Pipeline into memory."""

from __future__ import annotations

import numpy as np
import pytest

from spatial_memory_ros.core.change import ChangeOutput
from spatial_memory_ros.core.config import (
    DetectorConfig,
    LiftingConfig,
    MemoryConfig,
    PipelineConfig,
    TrackerConfig,
)
from spatial_memory_ros.core.geometry import project_points
from spatial_memory_ros.core.item_memory import ItemMemory
from spatial_memory_ros.core.lifting import depth_position, ground_plane_position, lift, pixel_rays
from spatial_memory_ros.core.pipeline import MOTION_LABEL, Pipeline
from spatial_memory_ros.core.types import CameraIntrinsics, Detection, Frame, PositionSource, TrackState
from spatial_memory_ros.model.boxes import complete_at_border, mask_regions
from spatial_memory_ros.sim.camera import floor_depth, look_at

INTR = CameraIntrinsics(fx=280.0, fy=280.0, cx=159.5, cy=119.5, width=320, height=240)
T_MAP_CAM = look_at(np.array([0.0, 0.0, 1.5]), np.array([4.0, 0.5, 0.4]))  # 1.5 m up, looking down the room
BOARD_CENTRE = np.array([3.0, 0.4, 0.6])  # a 0.5 x 0.8 m board standing on the floor, facing the camera
BOARD_SIZE = (0.5, 0.8)


def render_depth(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) float32 z-depth of floor + board, 1 cm noise and 10 % dropouts; and the board's box (4,)."""
    depth = floor_depth(INTR, T_MAP_CAM).astype(np.float64)
    u, v = np.meshgrid(np.arange(INTR.width), np.arange(INTR.height))
    rays = pixel_rays(np.column_stack([u.ravel(), v.ravel()]), INTR) @ T_MAP_CAM[:3, :3].T  # (HW, 3) map
    origin = T_MAP_CAM[:3, 3]
    normal = origin - BOARD_CENTRE
    normal[2] = 0.0
    normal /= np.linalg.norm(normal)
    across = np.array([-normal[1], normal[0], 0.0])
    t = ((BOARD_CENTRE - origin) @ normal) / (rays @ normal)  # z-depth: the rays have camera z = 1
    hit = origin + t[:, None] * rays - BOARD_CENTRE
    on_board = (t > 0) & (np.abs(hit @ across) <= BOARD_SIZE[0] / 2) & (np.abs(hit[:, 2]) <= BOARD_SIZE[1] / 2)
    on_board = on_board.reshape(depth.shape)
    depth[on_board] = np.minimum(np.nan_to_num(depth[on_board], nan=np.inf), t.reshape(depth.shape)[on_board])
    ys, xs = np.nonzero(on_board)
    box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)
    depth += rng.normal(0.0, 0.01, depth.shape)
    depth[rng.random(depth.shape) < 0.1] = np.nan
    return depth.astype(np.float32), box


def floor_box(point: np.ndarray, half_width: float = 10.0, height: float = 40.0) -> np.ndarray:
    """A box standing on `point` (map, m): its bottom-centre pixel is the point's projection."""
    (u, v), = project_points(INTR.K, T_MAP_CAM, point[None])[0]
    return np.array([u - half_width + 0.5, v - height + 1.0, u + half_width + 0.5, v + 1.0])


def test_depth_lifting_of_a_board_is_within_5_cm() -> None:
    depth, box = render_depth(np.random.default_rng(0))
    p = depth_position(box, depth, INTR, T_MAP_CAM)
    assert p is not None
    assert np.linalg.norm(p - BOARD_CENTRE) < 0.05, p
    empty = np.full_like(depth, np.nan)
    assert depth_position(box, empty, INTR, T_MAP_CAM) is None


def test_depth_and_ground_plane_agree_on_the_simulated_floor() -> None:
    depth = floor_depth(INTR, T_MAP_CAM)  # the simulator's rendered floor depth
    for target in ([2.0, -0.5, 0.0], [5.0, 1.0, 0.0], [3.0, 0.0, 0.0]):
        point = np.array(target)
        box = floor_box(point, half_width=1.0, height=2.0)  # a 2 px patch: depth at the point itself
        on_depth = depth_position(box, depth, INTR, T_MAP_CAM)
        on_plane = ground_plane_position(box, INTR, T_MAP_CAM)
        assert on_depth is not None and on_plane is not None
        assert np.linalg.norm(on_plane - point) < 1e-6
        assert np.linalg.norm(on_depth - point) < 0.05 * np.linalg.norm(point - T_MAP_CAM[:3, 3])


@pytest.mark.parametrize("height", [0.0, 0.75])
def test_ground_plane_lifting_on_known_geometry(height: float) -> None:
    point = np.array([2.5, -0.3, height])
    p = ground_plane_position(floor_box(point), INTR, T_MAP_CAM, plane_height_m=height)
    assert p is not None and np.linalg.norm(p - point) < 1e-6


def test_ground_plane_refuses_what_it_cannot_see() -> None:
    sky = np.array([150.0, 0.0, 170.0, 5.0])  # bottom row near the top of a camera pitched down ~14 deg
    assert ground_plane_position(sky, INTR, T_MAP_CAM) is None
    far = floor_box(np.array([30.0, 0.0, 0.0]), half_width=0.5, height=2.0)
    assert ground_plane_position(far, INTR, T_MAP_CAM, max_range_m=20.0) is None
    assert ground_plane_position(far, INTR, T_MAP_CAM, max_range_m=40.0) is not None
    # A video's identity pose puts the camera *in* the plane z = 0: no answer rather than nonsense.
    assert ground_plane_position(np.array([100.0, 100.0, 120.0, 200.0]), INTR, np.eye(4)) is None


def test_lift_prefers_depth_then_plane_and_keeps_tag_positions() -> None:
    point = np.array([2.5, -0.3, 0.0])
    det = Detection(box=floor_box(point), label="person", score=0.9, is_dynamic=True)
    image = np.zeros((INTR.height, INTR.width, 3), np.uint8)
    frame = Frame(image=image, stamp=0.0, intrinsics=INTR, T_map_cam=T_MAP_CAM)
    assert lift(det, frame, LiftingConfig()).position_source == PositionSource.GROUND_PLANE
    assert lift(det, frame, LiftingConfig(ground_plane=False)).position is None
    with_depth = Frame(image=image, stamp=0.0, intrinsics=INTR, T_map_cam=T_MAP_CAM,
                       depth=floor_depth(INTR, T_MAP_CAM))
    assert lift(det, with_depth, LiftingConfig()).position_source == PositionSource.DEPTH
    assert lift(det, Frame(image=image, stamp=0.0), LiftingConfig()).position is None  # no intrinsics/pose
    tagged = Detection(box=det.box, label="item", score=1.0, item="mug", position=np.ones(3),
                       position_source=PositionSource.TAG)
    assert lift(tagged, with_depth, LiftingConfig()) is tagged


class _FixedDetector:
    """Always the same cup standing on the floor and a person: the pipeline's view of any backend."""

    def __init__(self, cup: np.ndarray, person: np.ndarray) -> None:
        self.cup, self.person = cup, person

    def detect(self, frame: Frame) -> list[Detection]:
        return [Detection(box=self.cup, label="cup", score=0.8, item="cup"),
                Detection(box=self.person, label="person", score=0.9, is_dynamic=True)]


@pytest.mark.parametrize("with_depth", [False, True])
def test_pipeline_puts_class_items_in_memory(with_depth: bool) -> None:
    cup_at, person_at = np.array([2.0, -0.4, 0.0]), np.array([4.0, 1.0, 0.0])
    detector = _FixedDetector(floor_box(cup_at), floor_box(person_at, 15.0, 80.0))
    config = PipelineConfig(detector=DetectorConfig(backend="coco", apriltag_items=False),
                            tracker=TrackerConfig(min_hits=2), memory=MemoryConfig(db_path=":memory:"))
    depth = floor_depth(INTR, T_MAP_CAM) if with_depth else None
    image = np.full((INTR.height, INTR.width, 3), 128, np.uint8)
    with Pipeline.open(config) as p0:
        pipeline = Pipeline(config, p0.memory, detector=detector)
        for k in range(3):
            result = pipeline.update(Frame(image=image, stamp=float(k), intrinsics=INTR, T_map_cam=T_MAP_CAM,
                                           depth=depth))
        source = PositionSource.DEPTH if with_depth else PositionSource.GROUND_PLANE
        tracks = {t.label: t for t in result.tracks}
        assert tracks["cup"].state == TrackState.CONFIRMED and tracks["cup"].position_source == source
        assert tracks["person"].is_dynamic and not tracks["person"].item
        assert [o.item for o in result.observations] == ["cup"]  # people are not items
        expected = cup_at
        if with_depth:  # this depth image has no cup: the box centre sees the floor behind where it would be
            b = detector.cup
            centre = np.array([(b[0] + b[2]) / 2 - 0.5, (b[1] + b[3]) / 2 - 0.5])
            expected = ground_plane_position(np.r_[centre, centre + 1.0], INTR, T_MAP_CAM)
        assert np.linalg.norm(pipeline.locate("cup").current.position - expected) < (0.05 if with_depth else 1e-6)


PATROL = look_at(np.array([0.0, 0.0, 1.5]), np.array([1.5, 0.0, 0.0]))  # 1.5 m up, pitched 45 deg down
RADIUS_M = 0.25  # the simulator's people: 0.25 m cylinders, 1.75 m tall


def render_person(x: float, y: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seen by PATROL: (H, W) float32 z-depth of the floor and a person standing at (x, y), the box (4,) of
    the person's pixels (what a change mask shows), and that box completed to the whole agent (model.boxes)."""
    depth = floor_depth(INTR, PATROL).astype(np.float64)
    u, v = np.meshgrid(np.arange(INTR.width), np.arange(INTR.height))
    rays = pixel_rays(np.column_stack([u.ravel(), v.ravel()]), INTR) @ PATROL[:3, :3].T  # (HW, 3), camera z = 1
    o = PATROL[:3, 3] - np.array([x, y, 0.0])
    a = rays[:, 0] ** 2 + rays[:, 1] ** 2
    b = 2.0 * (rays[:, 0] * o[0] + rays[:, 1] * o[1])
    disc = b * b - 4.0 * a * (o[0] ** 2 + o[1] ** 2 - RADIUS_M**2)
    t = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * a)  # z-depth of the cylinder's near side
    z = o[2] + t * rays[:, 2]
    person = ((disc >= 0) & (t > 0) & (z >= 0) & (z <= 1.75)).reshape(depth.shape)
    depth[person] = t.reshape(depth.shape)[person]
    [(seen, _area)] = mask_regions(person.astype(np.uint8) * 255, 50)
    whole = complete_at_border(seen, INTR.K, PATROL, INTR.width, INTR.height, 1.4)
    return depth.astype(np.float32), seen, whole


@pytest.mark.parametrize(("x", "y"), [(2.0, 0.4), (2.0, 1.6)])  # cut by the top border; a sliver at the left
def test_a_box_completed_past_the_border_is_lifted_by_its_visible_part(x: float, y: float) -> None:
    """The completed box's centre part is mostly floor beside the visible part: its depth puts the person on
    the floor 0.3-0.4 m behind them. The visible part's box finds their near side."""
    depth, seen, whole = render_person(x, y)
    assert not np.array_equal(seen, whole)
    det = Detection(box=whole, label="object", score=0.5, is_dynamic=True)
    frame = Frame(np.zeros((INTR.height, INTR.width, 3), np.uint8), 0.0, INTR, PATROL, depth=depth)
    axis = np.array([x, y])
    old = lift(det, frame, LiftingConfig())
    assert old.position is not None and old.position[2] < 0.15  # the floor
    assert np.linalg.norm(old.position[:2] - axis) > RADIUS_M + 0.2
    new = lift(det, frame, LiftingConfig(), seen_box=seen)
    assert new.position_source == PositionSource.DEPTH and np.array_equal(new.box, whole)
    assert new.position is not None and abs(np.linalg.norm(new.position[:2] - axis) - RADIUS_M) < 0.05
    # without depth: the floor contact is the visible part's bottom centre, not the completed box's
    no_depth = Frame(frame.image, 0.0, INTR, PATROL)
    on_plane = lift(det, no_depth, LiftingConfig(), seen_box=seen)
    assert on_plane.position_source == PositionSource.GROUND_PLANE and on_plane.position is not None
    assert np.linalg.norm(on_plane.position[:2] - axis) < RADIUS_M + 0.05


class _CompletedBlob:
    """A change backend like the learned one: one motion box completed past the border, and its visible part."""

    def __init__(self, whole: np.ndarray, seen: np.ndarray) -> None:
        self.whole, self.seen = whole, seen

    def update(self, image_bgr: np.ndarray, T_map_cam: np.ndarray | None = None,
               intrinsics: CameraIntrinsics | None = None, stamp: float | None = None) -> ChangeOutput:
        return ChangeOutput(np.zeros(image_bgr.shape[:2], np.uint8), [self.whole], False,
                            motion_seen_boxes=[self.seen])

    def reset(self) -> None:
        pass


def test_pipeline_lifts_motion_boxes_by_their_visible_part() -> None:
    x, y = 2.0, 0.4
    depth, seen, whole = render_person(x, y)
    config = PipelineConfig(memory=MemoryConfig(db_path=":memory:"))
    pipeline = Pipeline(config, ItemMemory(config.memory), change=_CompletedBlob(whole, seen))
    image = np.zeros((INTR.height, INTR.width, 3), np.uint8)
    result = pipeline.update(Frame(image, 0.0, INTR, PATROL, depth=depth))
    [blob] = [d for d in result.detections if d.label == MOTION_LABEL]
    assert np.array_equal(blob.box, whole) and blob.position is not None
    assert abs(np.linalg.norm(blob.position[:2] - [x, y]) - RADIUS_M) < 0.05


@pytest.mark.parametrize("box", [[-100.0, -100.0, -50.0, -50.0], [700.0, 100.0, 760.0, 200.0]])
def test_a_box_off_the_image_has_no_depth_position(box: list[float]) -> None:
    """A box wholly left of or above the image made the slice's end negative: depth from the far side was read."""
    intr = CameraIntrinsics(500.0, 500.0, 320.0, 240.0, 640, 480)
    assert depth_position(np.array(box), np.full((480, 640), 3.0, np.float32), intr, np.eye(4)) is None
