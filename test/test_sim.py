"""The synthetic scene generator: determinism, geometry and self-consistent ground truth."""

from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np
import pytest

from spatial_memory_ros.core.geometry import invert, transform_points
from spatial_memory_ros.core.tags import TagDetector
from spatial_memory_ros.sim import (
    AgentSpec,
    CameraSpec,
    FloorSpec,
    ItemSpec,
    MoveSpec,
    NuisanceSpec,
    ScenePreset,
    SimScene,
    get_preset,
    make_scene,
    to_frame,
)
from spatial_memory_ros.sim.floor import board_corners

QUIET = NuisanceSpec(noise_sigma=0.0, exposure=0.0)


def tiny(**changes: object) -> ScenePreset:
    """A 4 x 4 m floor under a static camera, two items, no agents, no noise."""
    base = ScenePreset(
        name="tiny",
        floor=FloorSpec(extent=(-2.0, -1.0, 2.0, 3.0), px_per_m=100.0),
        items=(ItemSpec("a", 1, (-0.6, 0.8, 0.0)), ItemSpec("b", 2, (0.6, 0.8, 0.3))),
        camera=CameraSpec(mode="static", position=(0.0, -0.5, 2.5), look_at=(0.0, 1.0, 0.0)),
        nuisance=QUIET,
        duration_s=6.0,
        rate_hz=10.0,
        width=320,
        height=240,
        change_settle_s=1.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def footprint_mask(
    scene: SimScene, frame_T: np.ndarray, pose: tuple[float, float, float], edge: float
) -> np.ndarray:
    """Independent rasterisation of a board's image footprint: (H, W) bool."""
    corners = np.column_stack([board_corners(pose, edge), np.zeros(4)])
    pc = transform_points(invert(frame_T), corners)
    K = scene.intrinsics.K
    uv = (pc[:, :2] / pc[:, 2:3]) * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
    mask = np.zeros((scene.intrinsics.height, scene.intrinsics.width), np.uint8)
    cv2.fillPoly(mask, [np.round(uv * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    return mask.astype(bool)


def near(a: np.ndarray, b: np.ndarray, px: int) -> bool:
    """Every pixel of a lies within px of some pixel of b."""
    grown = cv2.dilate(b.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)).astype(bool)
    return not np.any(a & ~grown)


@pytest.mark.parametrize("name", ["demo", "warehouse", "home"])
def test_same_seed_same_frames_and_truth(name: str) -> None:
    def run(seed: int) -> list:
        return list(make_scene(name, seed=seed, width=160, height=120).frames(limit=12))

    a, b, c = run(3), run(3), run(4)
    for fa, fb in zip(a, b):
        assert np.array_equal(fa.image, fb.image)
        assert np.array_equal(fa.depth, fb.depth, equal_nan=True)
        assert np.array_equal(fa.T_map_cam, fb.T_map_cam)
        assert np.array_equal(fa.truth.change_mask, fb.truth.change_mask)
        assert np.array_equal(fa.truth.instance_mask, fb.truth.instance_mask)
        assert [t.agent_id for t in fa.truth.agents] == [t.agent_id for t in fb.truth.agents]
        for n, it in fa.truth.items.items():
            assert np.array_equal(it.position, fb.truth.items[n].position)
    assert any(not np.array_equal(fa.image, fc.image) for fa, fc in zip(a, c))


def test_iterating_twice_restarts_the_truth() -> None:
    """The change truth is stateful (what has settled into the reference): a second pass must start it afresh.
    The whole sequence, not its start: over the first 60 frames a truth carried over from the first pass still
    marked the same, over the whole demo it differs on the frames where the first pass's settled layout shows."""
    scene = make_scene("demo", width=160, height=120)
    first = [f.truth.change_mask for f in scene]
    second = [f.truth.change_mask for f in scene]
    assert len(first) == len(second) == len(scene)  # zip alone would pass a second pass that streamed nothing
    assert all(np.array_equal(x, y) for x, y in zip(first, second))


def test_scripted_move_marks_old_and_new_place_only() -> None:
    # Picked at 2.0, put down at 2.5, settle 2 s: the old place is changed over [2.0, 4.0), the new one
    # over [2.5, 4.5); a change is absorbed into the reference once it has lasted the settle time.
    to = (0.2, 1.8, 0.5)
    scene = SimScene(tiny(moves=(MoveSpec("a", 2.0, 2.5, to),), change_settle_s=2.0))
    edge = scene.renderer.edges_m[0]
    frames = list(scene)
    T = frames[0].T_map_cam
    old = footprint_mask(scene, T, scene.preset.items[0].home, edge)
    new = footprint_mask(scene, T, to, edge)
    assert old.sum() > 500 and new.sum() > 300  # both places are well in view
    for f in frames:
        mask = f.truth.change_mask > 0
        a = f.truth.items["a"]
        t = round(f.stamp, 6)
        assert not f.truth.agents and not f.truth.instance_mask.any()
        expected = np.zeros_like(mask)
        if 2.0 <= t < 4.0:
            expected |= old
        if 2.5 <= t < 4.5:
            expected |= new
        assert near(mask, expected, 2) and near(expected, mask, 2), t
        if t < 2.0:
            assert np.allclose(a.position, [-0.6, 0.8, 0.0]) and a.on_floor and a.visible_px > 500
        elif t < 2.5:
            assert not a.on_floor and a.box is None and a.visible_px == 0 and a.carrier == 0
            assert np.isnan(a.position).all()
        else:
            assert np.allclose(a.position, [to[0], to[1], 0.0]) and a.on_floor and a.box is not None
        assert np.allclose(f.truth.items["b"].position, [0.6, 0.8, 0.0])
        assert np.array_equal(a.home, [-0.6, 0.8, 0.0])


def test_zero_settle_marks_only_the_first_sight_of_a_change() -> None:
    scene = SimScene(tiny(moves=(MoveSpec("a", 2.0, 3.0, (0.2, 1.8, 0.5)),), change_settle_s=0.0))
    changed = [f.stamp for f in scene if f.truth.change_mask.any()]
    assert changed == [2.0, 3.0]


def test_carried_item_follows_its_carrier_and_the_carrier_is_dynamic() -> None:
    carrier = AgentSpec("p", "person", "cylinder", (0.25, 0.25, 1.7), (50, 50, 200), ((0.0, -3.0, 0.8),))
    scene = SimScene(tiny(moves=(MoveSpec("a", 2.0, 4.0, (0.2, 1.8, 0.5), carrier),)))
    for f in scene:
        a = f.truth.items["a"]
        if 2.0 <= f.stamp < 4.0:
            ids = {t.agent_id for t in f.truth.agents}
            assert a.carrier in ids and not a.on_floor
            agent = next(t for t in f.truth.agents if t.agent_id == a.carrier)
            assert np.allclose(a.position[:2], agent.position[:2]) and a.position[2] > 0.5
        agent_px = f.truth.instance_mask > 0
        assert np.all(f.truth.change_mask[agent_px] == 255)  # agents are always "changed"


def test_agent_box_matches_projection_and_mask() -> None:
    box_agent = AgentSpec(
        "cart", "cart", "box", (1.0, 0.6, 1.2), (0, 0, 255), ((0.0, 0.4, 1.6), (10.0, 0.4, 1.6))
    )
    scene = SimScene(tiny(agents=(box_agent,)))
    f = next(iter(scene))
    (agent,) = f.truth.agents
    verts = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.3, 0.3) for z in (0.0, 1.2)]) + [
        0.4,
        1.6,
        0,
    ]
    pc = transform_points(invert(f.T_map_cam), verts)
    K = scene.intrinsics.K
    uv = (pc[:, :2] / pc[:, 2:3]) * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
    expected = np.r_[np.maximum(uv.min(axis=0), 0), np.minimum(uv.max(axis=0), [320, 240])]
    assert np.allclose(agent.box, expected, atol=0.5)
    ys, xs = np.nonzero(f.truth.instance_mask == agent.agent_id)
    assert agent.visible_px == len(xs)
    assert xs.min() >= agent.box[0] - 1 and xs.max() <= agent.box[2] and ys.max() <= agent.box[3]
    assert np.allclose(agent.position, [0.4, 1.6, 0.0]) and agent.kind == "cart"
    centre_depth = pc[:, 2].mean()
    assert abs(float(np.nanmedian(f.depth[ys, xs])) - centre_depth) < 0.05


@pytest.mark.parametrize("look_at", [(0.0, 1.0, 0.0), (1.0, 2.0, 0.0), (0.0, -0.5, 0.0)])
def test_floor_depth_at_the_image_centre_is_the_distance_to_the_look_at_point(look_at: tuple) -> None:
    cam = CameraSpec(mode="static", position=(0.0, -0.5, 2.5), look_at=look_at)
    f = next(iter(SimScene(tiny(camera=cam))))
    K = f.intrinsics.K
    expected = math.dist((0.0, -0.5, 2.5), look_at)
    assert f.depth[int(K[1, 2]), int(K[0, 2])] == pytest.approx(expected, rel=1e-5)
    # Every valid pixel back-projects onto the floor.
    v, u = np.mgrid[0 : f.depth.shape[0] : 17, 0 : f.depth.shape[1] : 17]
    d = f.depth[v, u]
    ok = np.isfinite(d)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(d, dtype=float)], -1)
    pts = transform_points(f.T_map_cam, (rays * d[..., None])[ok])
    assert ok.mean() > 0.5 and np.allclose(pts[:, 2], 0.0, atol=1e-4)


def test_patrol_camera_follows_its_route_at_constant_height() -> None:
    scene = make_scene("warehouse", width=160, height=120, duration_s=30.0)
    poses = [f.T_map_cam for f in scene.frames(limit=50)]
    for T in poses:
        assert np.allclose(T[:3, :3].T @ T[:3, :3], np.eye(3), atol=1e-9)
        assert T[2, 3] == pytest.approx(scene.preset.camera.height_m)
        assert T[2, 2] < 0  # looking down
    steps = [np.linalg.norm(b[:3, 3] - a[:3, 3]) for a, b in zip(poses, poses[1:])]
    assert max(steps) <= scene.preset.camera.speed / scene.preset.rate_hz + 1e-9


def test_rendered_tags_are_detected_at_their_true_pose() -> None:
    scene = make_scene("demo", nuisance=QUIET)
    f = next(iter(scene))
    det = TagDetector(scene.tag_size_m).detect(f.image, f.intrinsics)
    names = {tid: n for n, tid in scene.items.items()}
    assert sorted(names[d.tag_id] for d in det) == sorted(scene.items)
    for d in det:
        assert d.T_cam_tag is not None
        T_map_tag = f.T_map_cam @ d.T_cam_tag
        truth = f.truth.items[names[d.tag_id]]
        assert np.linalg.norm(T_map_tag[:3, 3] - truth.position) < 0.02
        assert T_map_tag[2, 2] > 0.99  # tag z up: lying face up
        yaw = math.atan2(T_map_tag[1, 0], T_map_tag[0, 0])
        assert abs(yaw - 2 * math.atan2(truth.orientation[2], truth.orientation[3])) < 0.05


def test_to_frame_carries_the_sensor_data_only() -> None:
    f = next(iter(make_scene("demo", width=160, height=120)))
    frame = to_frame(f)
    assert frame.image is f.image and frame.stamp == f.stamp and frame.intrinsics == f.intrinsics
    assert frame.T_map_cam is not None and np.array_equal(frame.T_map_cam, f.T_map_cam)
    assert to_frame(f, with_pose=False, with_depth=False).depth is None
    assert f.image.shape == (120, 160, 3) and f.image.dtype == np.uint8 and f.depth.dtype == np.float32


def test_scene_exposes_what_a_pipeline_config_needs() -> None:
    scene = make_scene("demo")
    assert scene.items == {"mug": 3, "box": 7, "pallet_A": 17}
    assert scene.tag_config().tag_size_m == scene.tag_size_m == get_preset("demo").items[0].tag_m
    assert len(scene) == 200


def test_lighting_changes_the_image_but_not_the_truth() -> None:
    from spatial_memory_ros.sim import LightEvent

    lights = replace(QUIET, lights=(LightEvent(1.0, 0.5, ramp_s=0.0),))
    frames = list(SimScene(tiny(nuisance=lights, duration_s=2.0)))
    assert frames[15].image.mean() < 0.6 * frames[5].image.mean()
    assert frames[15].truth.gain == 0.5 and not any(f.truth.change_mask.any() for f in frames)


def test_bad_presets_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown scene preset"):
        get_preset("garage")
    with pytest.raises(ValueError, match="unknown item"):
        SimScene(tiny(moves=(MoveSpec("zzz", 1.0, 2.0, (0.0, 0.0, 0.0)),)))
    with pytest.raises(ValueError, match="unique"):
        SimScene(tiny(items=(ItemSpec("a", 1, (0, 0, 0)), ItemSpec("b", 1, (1, 0, 0)))))


@pytest.mark.parametrize("settle_s", [0.0, 2.0])
def test_a_change_that_settled_out_of_view_is_the_reference_when_next_seen(settle_s: float) -> None:
    """sim/scene.py: a new look replaces the reference once it has lasted change_settle_s, time out of view included.
    An item shown for one frame, then taken away out of view: the truth overwrote the pending look with the empty
    floor before it could settle, so the place seen empty again was no change."""
    from spatial_memory_ros.bench.scene import make_bench_scene
    from spatial_memory_ros.sim.truth import ChangeTruth

    scene = make_bench_scene("warehouse", "static", 0.3, 150)
    renderer = scene.renderer
    _, _, H = renderer.static_layer(scene.camera.pose(0.0), ())
    size = (scene.preset.width, scene.preset.height)
    boxes = scene._placement_boxes(H @ renderer.grid.A_tex_map, tuple(range(len(scene.script.placements))))
    p = max(boxes, key=lambda k: (boxes[k][2] - boxes[k][0]) * (boxes[k][3] - boxes[k][1]))  # the largest in view
    seen, hidden = np.ones(size[::-1], bool), np.zeros(size[::-1], bool)
    truth = ChangeTruth(renderer.grid, scene.script.placements, renderer.edges_m, settle_s)
    truth.set_current(())
    assert not truth.update(0.0, H, seen, size)[0].any()  # the first sighting sets the reference
    truth.set_current((p,))
    shown = truth.update(0.1, H, seen, size)[0].sum()
    assert shown > 100
    truth.update(0.2, H, hidden, size)  # out of view, the item still there
    truth.set_current(())
    truth.update(settle_s + 1.0, H, hidden, size)  # taken away, still out of view
    gone = truth.update(settle_s + 2.0, H, seen, size)[0].sum()
    assert abs(int(gone) - int(shown)) <= 0.05 * shown, (shown, gone)
