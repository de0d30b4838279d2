"""A still camera's background that follows turns (model.turning_background), and the turning view made from a
still video (evaluate.turning_view) that measures it on real footage."""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import pytest

from spatial_memory_ros.core.turning import (
    TurnLimits,
    is_standing,
    is_turn,
    shift_copy,
    translated,
    turn_in_picture,
    view_from_canvas,
)
from spatial_memory_ros.evaluate.turning_view import TurningView
from spatial_memory_ros.model.background import BackgroundConfig, StillBackground
from spatial_memory_ros.model.turning_background import TurningBackground

W, H = 128, 96
ONE_BIG_TURN = TurnLimits(max_step_deg=10.0)  # tests that turn 8 deg in one frame (a real camera would blur)
K = np.array([[110.0, 0.0, W / 2 - 0.5], [0.0, 110.0, H / 2 - 0.5], [0.0, 0.0, 1.0]])


def _yaw(deg: float, x: float = 0.0) -> np.ndarray:
    """T_map_cam of a camera at (x, 0, 0) turned deg about its own y axis."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    T = np.eye(4)
    T[:3, :3] = [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]
    T[0, 3] = x
    return T


def _world() -> np.ndarray:
    """A textured picture wider than the view, in the plane of a camera at yaw 0 (f = 110, centred)."""
    rng = np.random.default_rng(0)
    big = cv2.resize(rng.integers(0, 255, (24, 48, 3), dtype=np.uint8), (4 * W, 2 * H), interpolation=cv2.INTER_CUBIC)
    return cv2.GaussianBlur(big, (5, 5), 0)


def _view(world: np.ndarray, yaw_deg: float) -> np.ndarray:
    """What the camera at yaw_deg sees of the world picture (a rotation homography: exact for any depth)."""
    Kw = K.copy()
    Kw[0, 2], Kw[1, 2] = K[0, 2] + 1.5 * W, K[1, 2] + 0.5 * H  # the world picture's centre is the view's at yaw 0
    Hm = K @ _yaw(yaw_deg)[:3, :3].T @ np.linalg.inv(Kw)
    return cv2.warpPerspective(world, Hm, (W, H), flags=cv2.INTER_LINEAR)


def _stood(world: np.ndarray, limits: TurnLimits = ONE_BIG_TURN) -> TurningBackground:
    """A turning background (min_frames 3, no light test) that has seen the view at yaw 0 for four frames."""
    turning = TurningBackground(BackgroundConfig(min_frames=3, relight=0.0), limits)
    for _ in range(4):
        frame = _view(world, 0.0)
        turning.before(frame, _yaw(0.0), K)
        turning.learn(frame)
    return turning


def test_a_camera_that_never_turns_gets_the_still_background_bit_for_bit() -> None:
    rng = np.random.default_rng(1)
    config = BackgroundConfig(min_frames=3)
    still, turning = StillBackground(config), TurningBackground(config)
    for i in range(12):
        frame = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
        skip = (rng.random((H, W)) < 0.2).astype(np.uint8) if i % 2 else None
        pose = None if i == 5 else _yaw(0.1)  # 0.1 deg: under exact_deg, no warp
        a, va = still.before(frame, pose)
        b, vb = turning.before(frame, pose, K)
        assert np.array_equal(a, b) and vb.shape == (H, W) and bool(vb.all()) == va and (vb.any() == va)
        still.learn(frame, skip)
        turning.learn(frame, skip)


def test_a_turning_camera_keeps_its_background_aligned_and_sees_what_changed() -> None:
    world = _world()
    config = BackgroundConfig(min_frames=3, relight=0.0)
    turning, still = TurningBackground(config), StillBackground(config)
    for _ in range(6):  # stands still first
        frame = _view(world, 0.0)
        turning.before(frame, _yaw(0.0), K)
        turning.learn(frame)
        still.step(frame, _yaw(0.0))
    errors, valid_share = [], []
    for i in range(1, 30):  # then pans 0.5 deg a frame, to 14.5 deg
        yaw = 0.5 * i
        frame = _view(world, yaw)
        if i == 29:  # something new in the view at the end
            frame = frame.copy()
            cv2.rectangle(frame, (40, 30), (60, 60), (0, 0, 255), -1)
        bg, valid = turning.before(frame, _yaw(yaw), K)
        if i < 29:
            turning.learn(frame)
            still.step(frame, _yaw(yaw))
        diff = np.abs(bg.astype(np.int16) - frame.astype(np.int16)).max(axis=2)
        errors.append(float(diff[valid].mean()))
        valid_share.append(float(valid.mean()))
    # aligned: the background matches the view where it is valid (bilinear twice: a few grey levels)
    assert max(errors[:-1]) < 6.0, errors
    assert min(valid_share) > 0.6  # a pan of 14.5 deg (about 28 px a side at f = 110) shows new pixels only at one side
    assert diff[30:60, 40:60][valid[30:60, 40:60]].mean() > 60  # the red square differs from the background
    # the still background restarts at every 2 deg and is valid only 3 frames after: mostly none while panning
    assert still.step(_view(world, 16.0), _yaw(16.0))[1] is False


def test_new_pixels_wait_for_min_frames_and_a_move_starts_again() -> None:
    world = _world()
    turning = _stood(world)
    frame = _view(world, 8.0)  # turned 8 deg at once: the right side (about 15 px) was never shown
    _, valid = turning.before(frame, _yaw(8.0), K)
    assert valid[10:-10, :90].all() and not valid[:, -10:].any()  # (the old view's top and bottom bow)
    for _ in range(3):
        turning.learn(frame)
        _, valid = turning.before(frame, _yaw(8.0), K)
    assert valid[10:-10, -10:-1].all(), "shown for min_frames frames: valid"
    _, valid = turning.before(frame, _yaw(8.0, x=0.2), K)  # the camera moved 20 cm: parallax, start again
    assert not valid.any()


def test_turning_view_reprojects_the_source_and_its_pose_agrees() -> None:
    view = TurningView(source_size=(768, 576), pan_deg=8.0, tilt_deg=2.0, period_s=20.0)
    t = 3.7
    Hm = view.homography(t)
    # a point seen at pixel p by the still camera lies on the ray K_src^-1 p; the pose's camera sees it at Hm p
    p = np.array([500.0, 200.0, 1.0])
    ray_src = np.linalg.inv(view.K_source) @ p
    T0, Tt = view.pose(0.0), view.pose(t)  # at t = 0 the turning camera looks where the still one does
    assert np.allclose(view.rotation(0.0), np.eye(3))
    ray_map = T0[:3, :3] @ ray_src
    ray_cam = Tt[:3, :3].T @ ray_map
    q = view.K @ ray_cam
    r = Hm @ p
    assert np.allclose(q[:2] / q[2], r[:2] / r[2], atol=1e-6)
    assert np.allclose(T0[:3, 3], Tt[:3, 3])  # it only turns
    assert view.fraction_outside(t) == 0.0 and view.fraction_outside(5.0) == 0.0  # the default stays inside
    boxes, inside = view.boxes(np.array([[380.0, 250.0, 420.0, 350.0], [0.0, 0.0, 30.0, 30.0]]), t)
    assert inside.tolist() == [True, False]  # the corner box falls out of the narrower view
    assert boxes[0, 2] > boxes[0, 0] and boxes[0, 3] > boxes[0, 1]
    with pytest.raises(ValueError):
        TurningView(source_size=(0, 576))
    with pytest.raises(ValueError, match="pan must be within"):  # `evaluate pets09 --pan-deg 500` was scored
        TurningView(source_size=(768, 576), pan_deg=500.0, tilt_deg=2.0)


def test_turning_view_blurs_along_the_turn_by_the_exposure() -> None:
    """exposure_s: the mean of the re-projections over the shutter time. A bright dot becomes a streak as long
    as blur_px says, along the pan (yaw: along x); at the pan's end, where it hardly moves, there is hardly any."""
    source = np.zeros((576, 768, 3), np.uint8)
    cv2.circle(source, (384, 288), 2, (255, 255, 255), -1)
    sharp = TurningView(source_size=(768, 576), pan_deg=8.0, tilt_deg=0.0, period_s=4.0)
    blurred = dataclasses.replace(sharp, exposure_s=0.05)
    assert sharp.blur_px(0.0) == 0.0
    streak = blurred.blur_px(0.0)  # t = 0: the pan at its fastest, 4 pi deg/s
    expected = 2 * np.pi * 8.0 / 4.0 * 0.05 * np.pi / 180 * sharp.K[0, 0]
    assert streak == pytest.approx(expected, rel=0.02)
    assert blurred.blur_px(1.0) < 0.05 * streak  # the end of the pan: hardly moving
    lit = blurred.frame(source, 0.0)[..., 0] > 0
    ys, xs = np.nonzero(lit)
    assert xs.max() - xs.min() >= streak - 1 and ys.max() - ys.min() <= 6  # a horizontal streak
    assert (sharp.frame(source, 0.0)[..., 0] > 0).sum() < lit.sum()
    assert blurred.frame(source, 0.0)[..., 0].max() < 255  # the dot's light spread along it
    with pytest.raises(ValueError):
        TurningView(source_size=(768, 576), exposure_s=-0.01)


def _runtime_frames(turn: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """A 256 x 192 camera over a textured wall, panning (or not) 0.4 deg a frame, with a grey square that slides
    in from frame 12 on: change no single frame shows by its colour."""
    world = cv2.resize(_world(), (8 * W, 4 * H), interpolation=cv2.INTER_LINEAR)
    Kw = np.array([[220.0, 0.0, 3.5 * 256], [0.0, 220.0, 1.5 * 192], [0.0, 0.0, 1.0]])
    Kv = np.array([[220.0, 0.0, 128.0], [0.0, 220.0, 96.0], [0.0, 0.0, 1.0]])
    out = []
    for i in range(24):
        yaw = 0.4 * i if turn else 0.0
        frame = cv2.warpPerspective(world, Kv @ _yaw(yaw)[:3, :3].T @ np.linalg.inv(Kw), (256, 192))
        if i >= 12:
            x = 60 + 4 * (i - 12)
            cv2.rectangle(frame, (x, 60), (x + 50, 140), (128, 128, 128), -1)
        out.append((frame, _yaw(yaw)))
    return out


def test_the_runtime_follows_turns_only_when_asked_and_then_sees_the_change() -> None:
    torch = pytest.importorskip("torch")
    from spatial_memory_ros.core.types import CameraIntrinsics
    from spatial_memory_ros.model.runtime import LearnedChangeDetector

    torch.manual_seed(0)
    intr = CameraIntrinsics(220.0, 220.0, 128.0, 96.0, 256, 192)

    def masks(follow: bool, turn: bool, scale: int = 1) -> list[np.ndarray]:
        det = LearnedChangeDetector(None, device="cpu", follow_turns=follow, still_scale=scale)
        assert det.model.still is not None, "the shipped model has a still head"
        return [det.update(f, T, intr, stamp=0.1 * i).mask for i, (f, T) in enumerate(_runtime_frames(turn))]

    # a camera that stands still: the same masks either way (the turning background is the still one then)
    assert all(np.array_equal(a, b) for a, b in zip(masks(True, False), masks(False, False)))
    followed, reset = masks(True, True), masks(False, True)
    square = np.zeros((192, 256), bool)
    covered = {}
    for name, got in (("followed", followed), ("reset", reset), ("followed x2", masks(True, True, scale=2))):
        share = []
        for i in range(14, 24):
            square[:] = False
            x = 60 + 4 * (i - 12)
            square[60:140, x:x + 50] = True
            share.append(float((got[i][square] > 0).mean()))
        covered[name] = float(np.mean(share))
    # following the turn, the still head sees the grey square; restarting at every 2 deg it mostly does not
    assert covered["followed"] > 0.5 and covered["followed"] > covered["reset"] + 0.3, covered
    assert covered["followed x2"] > 0.5, covered  # the finer still head gets the finer background's validity


def test_what_the_mask_marks_stays_unknown_and_a_turn_after_a_move_is_not_followed() -> None:
    world = _world()
    turning = _stood(world)
    marked = np.zeros((H, W), np.uint8)
    marked[:, -30:] = 1  # the mask marks the right side as it comes into view (an agent there, say)
    frame = _view(world, 8.0)
    for _ in range(5):
        turning.before(frame, _yaw(8.0), K)
        turning.learn(frame, marked)
    _, valid = turning.before(frame, _yaw(8.0), K)
    assert valid[10:-10, 60:90].all() and not valid[:, -10:].any(), "new pixels under the mask are not learned"
    # a camera that drove 2 cm (StillBackground's 5 cm tolerates it) and then turns: not a turn about its
    # centre since the mean started, so the mean starts again there instead of being warped with parallax
    other = _stood(world, TurnLimits())
    _, valid = other.before(_view(world, 4.0), _yaw(4.0, x=0.02), K)
    assert not valid.any()


def test_a_fast_turn_is_not_followed() -> None:
    world = _world()
    turning = TurningBackground(BackgroundConfig(min_frames=3, relight=0.0))
    shown = []
    step = TurnLimits().max_step_deg + 1.0  # blurred in a real camera: no frame of it is compared
    for i in range(12):
        frame = _view(world, step * i)
        _, valid = turning.before(frame, _yaw(step * i), K)
        turning.learn(frame)
        shown.append(bool(valid.any()))
    assert not any(shown)


def test_a_blurred_frame_gets_no_background_and_the_next_slow_one_gets_it_back() -> None:
    """One step past max_step_deg in a slow pan: that frame is too blurred to compare (no background, and not
    learned), but the camera only turned, so the canvas stays right for the next frame (before: started again,
    with no background until min_frames frames later)."""
    world = _world()
    fast = TurnLimits().max_step_deg + 2.0
    turning = _stood(world, TurnLimits())
    yaws = [0.5, 1.0, 1.5, 1.5 + fast, 2.0 + fast, 2.5 + fast]
    valid_any, aligned = [], []
    for yaw in yaws:
        frame = _view(world, yaw)
        bg, valid = turning.before(frame, _yaw(yaw), K)
        turning.learn(frame)
        valid_any.append(bool(valid.any()))
        inner = valid.copy()
        inner[:, :8] = inner[:, -8:] = False  # the border, where the warps interpolate from outside
        aligned.append(float(np.abs(bg.astype(int) - frame.astype(int))[inner].mean()) if inner.any() else -1.0)
    assert valid_any == [True, True, True, False, True, True]
    assert all(0 <= a < 6 for a in aligned[4:]), aligned


def _classical_jump(follow: bool) -> tuple[list[float], list[int], list[bool]]:
    """The classical detector on the panning wall: 0.4 deg a frame, one step 5 deg past the limit at frame 8, then
    0.4 deg a frame again, with the grey square from frame 9 on (_score_classical)."""
    world = cv2.resize(_world(), (8 * W, 4 * H), interpolation=cv2.INTER_LINEAR)
    Kw = np.array([[220.0, 0.0, 3.5 * 256], [0.0, 220.0, 1.5 * 192], [0.0, 0.0, 1.0]])
    Kv = np.array([[220.0, 0.0, 128.0], [0.0, 220.0, 96.0], [0.0, 0.0, 1.0]])
    jump = TurnLimits().max_step_deg + 2.0
    frames = []
    for i in range(16):
        yaw = 0.4 * i + (jump if i >= 8 else 0.0)
        frame = cv2.warpPerspective(world, Kv @ _yaw(yaw)[:3, :3].T @ np.linalg.inv(Kw), (256, 192))
        square = None
        if i >= 9:
            cv2.rectangle(frame, (90, 60), (140, 140), (128, 128, 128), -1)
            square = np.zeros((192, 256), bool)
            square[60:141, 90:141] = True
        frames.append((frame, _yaw(yaw), square))
    return _score_classical(follow, frames)


def test_the_classical_detector_skips_a_blurred_frame_and_keeps_its_reference() -> None:
    covered, false, moved = _classical_jump(True)
    assert false[8] == 0 and not any(moved), "the blurred frame: an empty mask, and no restart"
    assert min(covered) > 0.85 and max(false) < 500, "the square put down after it is found, against the old view"
    covered, _, moved = _classical_jump(False)
    assert moved[8] and np.mean(covered) < 0.5, "not following: restarted, and the square taken into the reference"


def _still_wall_with_a_wrong_pose(jump_deg: float) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """A finely textured wall (features of about 5 px) seen by a camera that never moves, whose pose says it turned
    jump_deg from frame 6 on (a localisation's correction), with the grey square from frame 10 on."""
    rng = np.random.default_rng(3)
    world = cv2.resize(rng.integers(0, 255, (96, 192, 3), dtype=np.uint8), (8 * W, 4 * H),
                       interpolation=cv2.INTER_LINEAR)
    Kw = np.array([[220.0, 0.0, 3.5 * 256], [0.0, 220.0, 1.5 * 192], [0.0, 0.0, 1.0]])
    Kv = np.array([[220.0, 0.0, 128.0], [0.0, 220.0, 96.0], [0.0, 0.0, 1.0]])
    frames = []
    for i in range(16):
        frame = cv2.warpPerspective(world, Kv @ np.linalg.inv(Kw), (256, 192))
        square = None
        if i >= 10:
            cv2.rectangle(frame, (90, 60), (140, 140), (128, 128, 128), -1)
            square = np.zeros((192, 256), bool)
            square[60:141, 90:141] = True
        frames.append((frame, _yaw(jump_deg if i >= 6 else 0.0), square))
    return frames


@pytest.mark.parametrize("jump_deg", [0.6, 1.5])
def test_the_classical_detector_trusts_the_picture_over_a_pose_a_little_off(jump_deg: float,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The pose jumps while the camera stands: following the 'turn' would misalign the reference by the jump.
    The picture's shift against the re-projected reference turns the pose back; without that, the fine texture
    misaligned differs everywhere and the detector restarts (or, were it coarser, marks its edges)."""
    import spatial_memory_ros.core.change as change

    covered, false, moved = _score_classical(True, _still_wall_with_a_wrong_pose(jump_deg))
    assert min(covered) > 0.8 and max(false) < 300 and not any(moved)
    monkeypatch.setattr(change, "_ALIGN_MIN_PX", 1e9)  # no alignment: the reference follows the wrong pose
    _, false, moved = _score_classical(True, _still_wall_with_a_wrong_pose(jump_deg))
    assert any(moved) or max(false) > 1000


def test_image_shift_finds_a_small_shift_and_says_nothing_when_unsure() -> None:
    from spatial_memory_ros.core.turning import image_shift, rotation_for_shift

    rng = np.random.default_rng(4)
    wall = cv2.GaussianBlur(cv2.resize(rng.random((48, 64), np.float32) * 255, (512, 384)), (5, 5), 0)
    known = np.ones(wall.shape, bool)
    moved = cv2.warpAffine(wall, np.float32([[1, 0, 4.0], [0, 1, -2.0]]), (512, 384), borderMode=cv2.BORDER_REFLECT)
    dx, dy = image_shift(wall, moved, known, 20.0)
    assert abs(dx - 4.0) < 0.3 and abs(dy + 2.0) < 0.3
    assert image_shift(wall, moved, known, 3.0) == (0.0, 0.0), "beyond max_px: the pose is what to go by"
    assert image_shift(wall, moved, np.zeros_like(known), 20.0) == (0.0, 0.0), "nothing known"
    flat = np.full_like(wall, 90.0)
    assert image_shift(flat, flat + rng.normal(0, 2, flat.shape).astype(np.float32), known, 20.0) == (0.0, 0.0)
    # the rotation that explains it moves the centre by the shift
    Kv = np.array([[300.0, 0.0, 256.0], [0.0, 300.0, 192.0], [0.0, 0.0, 1.0]])
    R = rotation_for_shift(dx, dy, Kv)[:3, :3]
    centre = Kv @ R.T @ np.array([0.0, 0.0, 1.0])
    assert np.allclose(centre[:2] / centre[2] - [256.0, 192.0], [dx, dy], atol=0.01)


def test_both_backends_refuse_intrinsics_of_another_size() -> None:
    """One check (CameraIntrinsics.check_size) for the pipeline, the learned backend and the classical detector's
    turn, which is used on its own too."""
    from spatial_memory_ros.core.change import ChangeDetector
    from spatial_memory_ros.core.config import ChangeConfig
    from spatial_memory_ros.core.errors import BadInputError
    from spatial_memory_ros.core.types import CameraIntrinsics

    wrong = CameraIntrinsics(220.0, 220.0, 160.0, 120.0, 320, 240)  # the frames are 256 x 192
    (f0, T0), (f1, T1) = _runtime_frames(True)[0], _runtime_frames(True)[2]  # 0.8 deg apart: a turn to follow
    det = ChangeDetector(ChangeConfig(follow_turns=True))
    det.update(f0, T0, wrong)
    with pytest.raises(BadInputError, match="camera_info does not belong"):
        det.update(f1, T1, wrong)
    pytest.importorskip("torch")
    from spatial_memory_ros.model.runtime import LearnedChangeDetector

    with pytest.raises(BadInputError, match="camera_info does not belong"):
        LearnedChangeDetector(None, device="cpu").update(f0, T0, wrong)


def test_footprint_warps_exactly_what_the_whole_canvas_warp_gives_there() -> None:
    from spatial_memory_ros.core.turning import footprint, view_from_canvas, warp

    rng = np.random.default_rng(3)
    frame = rng.random((H, W)).astype(np.float32)
    to_canvas = np.linalg.inv(view_from_canvas(K, _yaw(0.0), _yaw(7.0), (W, H)))
    whole = warp(frame, to_canvas, (3 * W, 3 * H), replicate=True)
    rows, cols, shifted = footprint(to_canvas, (H, W), (3 * H, 3 * W))
    part = warp(frame, shifted, (cols.stop - cols.start, rows.stop - rows.start), replicate=True)
    assert np.allclose(part, whole[rows, cols], atol=1e-3)  # (OpenCV's fixed-point coordinates differ a little)
    inside = warp(np.ones((H, W), np.float32), to_canvas, (3 * W, 3 * H)) > 0
    outside = np.ones_like(inside)
    outside[rows, cols] = False
    assert not (inside & outside).any(), "the frame lands inside its footprint"


def _score_classical(follow: bool, frames: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]],
                     ) -> tuple[list[float], list[int], list[bool]]:
    """The classical detector on 256 x 192 frames (image, pose, the grey square's pixels or None): per frame with a
    square, how much of it the mask covers; per frame, the false pixels away from it and camera_moved."""
    import dataclasses

    from spatial_memory_ros.core.change import ChangeDetector
    from spatial_memory_ros.core.config import ChangeConfig
    from spatial_memory_ros.core.types import CameraIntrinsics

    intr = CameraIntrinsics(220.0, 220.0, 128.0, 96.0, 256, 192)
    det = ChangeDetector(dataclasses.replace(ChangeConfig(), follow_turns=follow))
    covered, false, moved = [], [], []
    for frame, T, square in frames:
        out = det.update(frame, T, intr)
        if square is not None:
            covered.append(float((out.mask[square] > 0).mean()))
        else:
            square = np.zeros((192, 256), bool)
        near = cv2.dilate(square.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        false.append(int(((out.mask > 0) & ~near).sum()))
        moved.append(out.camera_moved)
    return covered, false, moved


def _classical(follow: bool, turn: bool) -> tuple[list[float], list[int], list[bool]]:
    """_score_classical on the panning (or standing) wall of _runtime_frames, the square sliding in from frame 12."""
    frames = []
    for i, (frame, T) in enumerate(_runtime_frames(turn)):
        square = None
        if i >= 12:
            x = 60 + 4 * (i - 12)
            square = np.zeros((192, 256), bool)
            square[60:140, x:x + 50] = True
        frames.append((frame, T, square))
    return _score_classical(follow, frames)


def test_the_classical_detector_follows_a_slow_turn_and_only_when_asked() -> None:
    same = [_classical(True, False), _classical(False, False)]
    assert same[0] == same[1], "a camera that stands: the same masks either way"
    covered, false, moved = _classical(True, True)
    assert min(covered) > 0.85 and max(false) < 500 and not any(moved)
    covered, false, moved = _classical(False, True)
    # restarting at every 2 deg: an empty mask at each restart, and a reference up to 2 deg off between them
    assert np.mean(covered) < 0.3 and max(false) > 5000 and sum(moved) >= 4


def test_the_learned_backend_follows_no_turn_without_intrinsics() -> None:
    pytest.importorskip("torch")
    from spatial_memory_ros.model.runtime import LearnedChangeDetector

    def masks(follow: bool) -> list[np.ndarray]:
        det = LearnedChangeDetector(None, device="cpu", follow_turns=follow)  # no intrinsics: nominal ones
        return [det.update(f, T, stamp=0.1 * i).mask for i, (f, T) in enumerate(_runtime_frames(True))]

    assert all(np.array_equal(a, b) for a, b in zip(masks(True), masks(False)))


def test_a_camera_that_stops_turning_goes_back_to_the_plain_reference_and_still_sees_change() -> None:
    import dataclasses

    from spatial_memory_ros.core.change import _SETTLE_FRAMES, ChangeDetector
    from spatial_memory_ros.core.config import ChangeConfig
    from spatial_memory_ros.core.types import CameraIntrinsics

    intr = CameraIntrinsics(220.0, 220.0, 128.0, 96.0, 256, 192)
    det = ChangeDetector(dataclasses.replace(ChangeConfig(), follow_turns=True))
    frames = _runtime_frames(True)[:12]  # pans 0.4 deg a frame to 4.4 deg, no square yet
    parked = frames[-1]
    on_canvas = []
    for frame, T in frames + [parked] * (_SETTLE_FRAMES + 2):
        det.update(frame, T, intr)
        on_canvas.append(det._canvas is not None)
    assert any(on_canvas[:12]) and not on_canvas[-1], "followed the pan, then left the canvas once it stood"
    square = parked[0].copy()
    cv2.rectangle(square, (60, 60), (110, 140), (128, 128, 128), -1)
    out = det.update(square, parked[1], intr)
    assert (out.mask[60:140, 60:110] > 0).mean() > 0.85 and (out.mask > 0).sum() < 6000


def test_a_turn_that_loses_its_pose_or_intrinsics_starts_again() -> None:
    import dataclasses

    from spatial_memory_ros.core.change import ChangeDetector
    from spatial_memory_ros.core.config import ChangeConfig
    from spatial_memory_ros.core.types import CameraIntrinsics

    intr = CameraIntrinsics(220.0, 220.0, 128.0, 96.0, 256, 192)
    for drop in ("pose", "intrinsics"):
        det = ChangeDetector(dataclasses.replace(ChangeConfig(), follow_turns=True))
        frames = _runtime_frames(True)
        for frame, T in frames[:8]:
            det.update(frame, T, intr)
        assert det._canvas is not None
        frame, T = frames[8]
        out = det.update(frame, None if drop == "pose" else T, None if drop == "intrinsics" else intr)
        assert out.camera_moved and det._canvas is None and not out.mask.any(), drop


def test_is_standing_allows_a_localisers_jitter_and_nothing_more() -> None:
    limits = TurnLimits()
    start = _yaw(0.0)
    assert is_standing(limits, start, _yaw(0.2, x=0.005))  # within exact_deg and max_move_m: the same stand
    assert not is_standing(limits, start, _yaw(0.3))  # turned past exact_deg
    assert not is_standing(limits, start, _yaw(0.0, x=0.02))  # moved past max_move_m
    # the still camera's stand and a followed turn split at exact_deg: one pose is never both
    for deg in (0.1, 0.24, 0.26, 1.0):
        assert is_standing(limits, start, _yaw(deg)) != is_turn(limits, start, _yaw(deg))


def test_translated_is_any_move_but_not_a_turn() -> None:
    """The still backgrounds ask the picture only for a pose that moved: a pure turn (however large) is not a move,
    a creep of 10 micrometres is."""
    start = _yaw(0.0)
    assert not translated(start, _yaw(0.0)) and not translated(start, _yaw(30.0))
    assert translated(start, _yaw(0.0, x=1e-5)) and translated(start, _yaw(5.0, x=0.02))


def test_a_pose_that_says_turned_while_the_picture_stood_keeps_the_still_background() -> None:
    """A localiser's jitter past exact_deg on a camera that stands: following the 'turn' would warp the mean by
    the jitter (its edges then differ by the misalignment, and a strip at the side would lose its background);
    the picture did not move, so the background stays the still one, aligned and valid everywhere. A plain
    picture cannot tell: then the pose decides, as before (a canvas, with a strip not yet valid)."""
    world = _world()
    turning = _stood(world)
    frame = _view(world, 0.0)
    for yaw in (0.6, -0.5, 0.8):
        bg, valid = turning.before(frame, _yaw(yaw), K)
        turning.learn(frame)
        assert valid.all()
        assert np.abs(bg.astype(np.int16) - frame.astype(np.int16)).max() <= 1
    plain = np.full((H, W, 3), 128, np.uint8)
    turning = TurningBackground(BackgroundConfig(min_frames=3, relight=0.0), ONE_BIG_TURN)
    for _ in range(4):
        turning.before(plain, _yaw(0.0), K)
        turning.learn(plain)
    _, valid = turning.before(plain, _yaw(0.8), K)
    assert valid.any() and not valid.all()


def test_a_canvas_whose_camera_stands_where_it_started_goes_back_to_the_still_background() -> None:
    """A real turn of 1.8 deg (3.5 px, more than the still background follows as a shake) puts the mean on the
    canvas; the camera turns back and stands, its pose jittering past exact_deg. Following that jitter would
    misalign the canvas by it on every frame; after _SETTLE_FRAMES frames standing where the mean started (pose
    and picture) it is the still background again: aligned, and valid everywhere."""
    from spatial_memory_ros.model.turning_background import _SETTLE_FRAMES

    world = _world()
    turning = _stood(world)
    turning.before(_view(world, 1.8), _yaw(1.8), K)  # a real turn: onto the canvas
    turning.learn(_view(world, 1.8))
    frame = _view(world, 0.0)
    jitter = [0.6, -0.5, 0.8, -0.4, 0.7]
    errors = []  # mean grey difference of background and frame, where valid everywhere (else inf)
    for i in range(_SETTLE_FRAMES + 3):
        bg, valid = turning.before(frame, _yaw(jitter[i % len(jitter)]), K)
        turning.learn(frame)
        diff = np.abs(bg.astype(np.int16) - frame.astype(np.int16))
        errors.append(float(diff.mean()) if valid.all() else float("inf"))
    # on the canvas the jittered warp leaves a strip at the side unknown; back on the still background, the
    # mean is that view's again (what it learned while misaligned blurs it a little: a grey level or so)
    assert errors[:_SETTLE_FRAMES - 1] == [float("inf")] * (_SETTLE_FRAMES - 1), errors
    assert max(errors[_SETTLE_FRAMES:]) < 1.5, errors


def _zoomed(image: np.ndarray, scale: float) -> np.ndarray:
    """The picture grown by `scale` about its centre: what a camera moving straight ahead sees of a wall."""
    h, w = image.shape[:2]
    M = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), 0.0, scale)
    return cv2.warpAffine(image, M, (w, h), borderMode=cv2.BORDER_REFLECT)


def test_picture_moved_sees_a_camera_moving_forward_that_one_shift_of_the_whole_picture_does_not() -> None:
    from spatial_memory_ros.core.turning import measured_shift, picture_moved

    rng = np.random.default_rng(5)
    wall = cv2.GaussianBlur(cv2.resize(rng.random((48, 64), np.float32) * 255, (256, 192)), (5, 5), 0)
    known = np.ones(wall.shape, bool)
    nearer = _zoomed(wall, 1.03)  # 3 %: the quarters' centres move about 2 px apart
    shift = measured_shift(wall, nearer, known, 8.0)
    assert shift is not None and np.hypot(*shift) < 0.25, "the whole picture's shift stays near 0"
    assert picture_moved(wall, nearer, known, 0.5) is True
    noisy = wall + rng.normal(0.0, 2.0, wall.shape).astype(np.float32)
    assert picture_moved(wall, noisy, known, 0.5) is False, "a still picture with sensor noise"
    sideways = cv2.warpAffine(wall, np.float32([[1, 0, 1.0], [0, 1, 0]]), (256, 192), borderMode=cv2.BORDER_REFLECT)
    assert picture_moved(wall, sideways, known, 0.5) is True
    mover = noisy.copy()
    mover[10:80, 10:110] = np.roll(wall[10:80, 10:110], 4, axis=1)  # something moving in one quarter only
    assert picture_moved(wall, mover, known, 0.5) is False, "one quarter pulled is not the camera"
    flat = np.full_like(wall, 90.0)
    assert picture_moved(flat, flat + rng.normal(0, 2, flat.shape).astype(np.float32), known, 0.5) is None
    assert picture_moved(wall, nearer, np.zeros_like(known), 0.5) is None, "nothing known: cannot tell"


def test_a_shaking_camera_whose_pose_jitters_keeps_its_still_background_aligned() -> None:
    """A camera that stands, its picture shaken by about a pixel a frame, its pose jittering past exact_deg. Half the
    time the shake lies the way the jitter's turn predicts, which is all one frame can say of a turn: following it
    onto the canvas warps the mean by the jitter, not the shake, and leaves a strip without background. A turn
    that small is the still background's to follow as a shake: the mean moved onto every frame, valid everywhere.
    (Before, the canvas took the first such frame and kept following the jitter.)"""
    from spatial_memory_ros.model.background import shifted

    world = _world()
    turning = _stood(world)
    rng = np.random.default_rng(3)
    px_per_deg = K[0, 0] * math.radians(1.0)
    errors, valid_all = [], []
    for i in range(20):
        jitter = float(rng.choice([-0.5, 0.5]))  # past exact_deg (0.25)
        along = i % 2 == 0  # the shake the way the jitter predicts (a yaw of +0.5 deg moves the picture left)
        dx = -jitter * px_per_deg * 0.8 if along else float(rng.uniform(-1.0, 1.0))
        frame = shifted(_view(world, 0.0), (dx, float(rng.uniform(-0.8, 0.8))))
        bg, valid = turning.before(frame, _yaw(jitter), K)
        turning.learn(frame)
        valid_all.append(bool(valid.all()))
        inner = np.s_[8:-8, 8:-8]  # the shift repeats the border
        errors.append(float(np.abs(bg[inner].astype(np.int16) - frame[inner].astype(np.int16)).mean()))
    assert all(valid_all), valid_all
    assert max(errors) < 3.0, errors


def test_a_turning_camera_that_shakes_keeps_its_canvas_aligned_with_each_frame() -> None:
    """A pan of 0.5 deg a frame, the picture shaken by up to 1.5 px each way on top (a pan-tilt head on a mast in
    the wind): on the canvas the view the pose gives is moved onto each frame by the picture's shake (and the
    frame learned moved back), so the background given lies within half a pixel of every frame; unfollowed, it
    lay off by the shake."""
    from spatial_memory_ros.core.turning import measured_shift
    from spatial_memory_ros.model.background import shifted

    world = _world()
    turning = _stood(world)
    rng = np.random.default_rng(4)
    off = []  # px between the background given and the frame, on the canvas
    for i in range(1, 25):
        yaw = 0.5 * i
        frame = shifted(_view(world, yaw), tuple(rng.uniform(-1.5, 1.5, 2)))
        bg, valid = turning.before(frame, _yaw(yaw), K)
        turning.learn(frame)
        if turning._canvas is None:  # (the first 1.5 deg: the still background follows that as a shake)
            continue
        inner = np.zeros_like(valid)
        inner[8:-8, 8:-8] = True  # the shift repeats the border
        grey = [cv2.cvtColor(x, cv2.COLOR_BGR2GRAY).astype(np.float32) for x in (bg, frame)]
        shift = measured_shift(grey[0], grey[1], valid & inner, max_px=8.0)
        assert shift is not None
        off.append(float(np.hypot(*shift)))
    assert len(off) >= 18 and max(off) < 0.5, off


@pytest.mark.parametrize(("pose_deg", "picture_deg", "followed"), [
    (3.0, 3.0, True),  # the picture turned as the pose says (6 px at f = 110)
    (-3.0, -3.0, True),  # either way
    (3.0, 0.0, False),  # the pose turned, the picture stood: a localiser's jump or jitter
    (3.0, -3.0, False),  # the picture turned the other way
    (0.3, 0.3, False),  # under TURN_MIN_PX (0.6 px): not worth following
])
def test_turn_in_picture_follows_a_pose_only_where_the_picture_turned(pose_deg: float, picture_deg: float,
                                                                     followed: bool) -> None:
    world = _world()
    grey = [shift_copy(cv2.cvtColor(_view(world, d), cv2.COLOR_BGR2GRAY)) for d in (0.0, picture_deg)]
    turn = view_from_canvas(K, _yaw(0.0), _yaw(pose_deg), (0, 0))
    assert turn_in_picture(grey[0], grey[1], turn, (W, H)) is followed


def test_turn_in_picture_trusts_the_pose_on_a_bare_view() -> None:
    """A plain wall gives the picture no shift to tell: the pose is what there is."""
    bare = shift_copy(np.full((H, W), 128, np.uint8))
    assert turn_in_picture(bare, bare, view_from_canvas(K, _yaw(0.0), _yaw(3.0), (0, 0)), (W, H))


@pytest.mark.parametrize("method", ["classical", "learned"])
def test_a_narrow_lens_that_pans_off_its_canvas_starts_a_new_reference_not_an_error(method: str) -> None:
    """A canvas keeps a view's width of margin each side, and a turn is followed up to 40 deg: a 6 deg lens panning
    1 deg a frame left the canvas at frame 13 and every later frame raised cv2.error (both change methods)."""
    from spatial_memory_ros.core.config import ChangeConfig, MemoryConfig, PipelineConfig
    from spatial_memory_ros.core.pipeline import Pipeline
    from spatial_memory_ros.core.types import CameraIntrinsics, Frame

    w, h, f = 320, 240, 3000.0
    intr = CameraIntrinsics(f, f, (w - 1) / 2, (h - 1) / 2, w, h)
    level = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], float)  # looking along map +x

    def pose(yaw_deg: float) -> np.ndarray:
        a = math.radians(yaw_deg)
        T = np.eye(4)
        T[:3, :3] = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]]) @ level
        T[:3, 3] = (0.0, 0.0, 1.2)
        return T

    rng = np.random.default_rng(3)
    texture = cv2.resize(rng.uniform(40, 220, (h // 2, w * 3 // 2)), (w * 9, h * 3), interpolation=cv2.INTER_CUBIC)
    texture = np.repeat(texture.clip(0, 255).astype(np.uint8)[:, :, None], 3, 2)
    config = dataclasses.replace(PipelineConfig(), memory=MemoryConfig(db_path=":memory:"),
                                 change=ChangeConfig(method=method))
    box = (slice(h // 3, 2 * h // 3), slice(3 * w // 8, 5 * w // 8))
    with Pipeline.open(config) as pipeline:
        moved = []
        for i in range(20):
            image = cv2.warpPerspective(texture, view_from_canvas(intr.K, pose(0), pose(-i), (4 * w, h)), (w, h))
            result = pipeline.update(Frame(image, 0.1 * i, intr, pose(-i)))
            assert result.change_mask.shape == (h, w)
            if result.camera_moved:
                moved.append(i)
        # Then the camera stands where the pan ended and a white box appears: the new reference (taken off the
        # canvas) has to show it. A detector that only shrugged at the frame off its canvas (no error, an empty
        # mask) stayed off it for good and marked nothing ever after.
        for i in range(20, 30):
            shown = image.copy()
            if i >= 25:
                shown[box] = 255
            result = pipeline.update(Frame(shown, 0.1 * i, intr, pose(-19)))
    assert (result.change_mask[box] > 0).mean() > 0.5
    if method == "classical":
        # The classical reference says it restarted, as any move past its limits does, at the one frame that left
        # the canvas (the pan's later frames are followed on the new reference). The learned backend's still
        # background restarts without a word: its change results never say camera_moved.
        assert len(moved) == 1 and 0 < moved[0] < 20, moved
    else:
        assert moved == []


@pytest.mark.parametrize("method", ["classical", "learned"])
def test_a_zoom_starts_a_new_reference_as_a_new_image_size_does(method: str) -> None:
    """A zoom (the intrinsics change, the image size does not) kept the unzoomed reference: the learned mask marked
    89 % of the frame changed, fading over seconds, the classical one 39 %, and spurious tracks came of it."""
    from spatial_memory_ros.core.config import ChangeConfig, MemoryConfig, PipelineConfig
    from spatial_memory_ros.core.pipeline import Pipeline
    from spatial_memory_ros.core.types import CameraIntrinsics, Frame

    w, h = 320, 240
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.uniform(60, 190, (h // 10, w // 10)), (w, h), interpolation=cv2.INTER_CUBIC)
    base = np.repeat(base.clip(0, 255).astype(np.uint8)[:, :, None], 3, 2)
    zoomed = np.ascontiguousarray(cv2.resize(base, None, fx=1.5, fy=1.5)[60:300, 80:400])
    level = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], float)
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = level, (0.0, 0.0, 1.2)
    wide, tele = (CameraIntrinsics(f, f, (w - 1) / 2, (h - 1) / 2, w, h) for f in (300.0, 450.0))
    config = dataclasses.replace(PipelineConfig(), memory=MemoryConfig(db_path=":memory:"),
                                 change=ChangeConfig(method=method))
    with Pipeline.open(config) as pipeline:
        for i in range(12):
            pipeline.update(Frame(base, 0.1 * i, wide, T))
        marked = [float((pipeline.update(Frame(zoomed, 0.1 * i, tele, T)).change_mask > 0).mean())
                  for i in range(12, 24)]
    assert max(marked) < 0.05, marked


def test_same_intrinsics_passes_a_float32_round_trip_and_stops_at_a_small_zoom() -> None:
    """One rule for every user of "is this the same lens setting": a calibration that went through float32 is the
    same; a 0.01 % zoom (0.03 px on a 300 px focal length) is not, so the change reference, the still background and
    the tracker's turn compensation all restart or stop together (the tracker's rule was 10x looser)."""
    from spatial_memory_ros.core.geometry import same_intrinsics

    K = np.array([[300.123456789, 0, 159.5], [0, 301.987654321, 119.5], [0, 0, 1]])
    assert same_intrinsics(K, K.astype(np.float32).astype(np.float64))
    zoomed = K.copy()
    zoomed[:2, :2] *= 1.0001
    assert not same_intrinsics(K, zoomed)
