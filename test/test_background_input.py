"""The still camera's background as a second input picture (model.background, ModelConfig.background)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tiny_model import INTR, TINY, tiny_model  # noqa: E402

from spatial_memory_ros.model.background import BackgroundConfig, StillBackground  # noqa: E402
from spatial_memory_ros.model.checkpoint import save_model  # noqa: E402
from spatial_memory_ros.model.runtime import LearnedChangeDetector  # noqa: E402
from spatial_memory_ros.model.train import _init_from  # noqa: E402

WITH_BACKGROUND = replace(TINY, background=True)


def _pose(x: float = 0.0, yaw_deg: float = 0.0) -> np.ndarray:
    T = np.eye(4)
    c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    T[:2, :2] = [[c, -s], [s, c]]
    T[0, 3] = x
    return T


def test_the_background_is_the_mean_of_still_frames_and_starts_again_when_the_camera_moves() -> None:
    # flat frames: no light test, and no picture to check a pose against (that check has its own tests below)
    bg = StillBackground(BackgroundConfig(rate=0.5, min_frames=3, relight=0.0, picture_px=0.0))
    dark, bright = np.full((4, 5, 3), 0, np.uint8), np.full((4, 5, 3), 200, np.uint8)
    got = [bg.step(dark, _pose()) for _ in range(3)]
    assert [v for _, v in got] == [False, False, False], "none until min_frames frames are averaged"
    assert not got[0][0].any()
    out, valid = bg.step(bright, _pose(0.01, 1.0))  # within 5 cm and 2 deg: still
    assert valid and not out.any(), "the background before this frame: the dark frames"
    out, valid = bg.step(bright, _pose())
    assert valid and (out == 100).all(), "then the bright frame is learned at the rate"
    assert bg.step(bright, _pose(0.2)) [1] is False, "a move starts a new background"
    assert bg.step(bright, None)[1] is False and bg.step(bright, None)[1] is False
    assert bg.step(bright, None)[1] is True, "no pose counts as still"


def test_pixels_that_changed_keep_the_background_they_had() -> None:
    bg = StillBackground(BackgroundConfig(rate=0.5, min_frames=2, relight=0.0))
    dark = np.zeros((4, 5, 3), np.uint8)
    skip = np.zeros((4, 5), np.uint8)
    skip[1:3, 1:3] = 1  # an agent standing there
    bg.step(dark, None, skip)  # the first frames are learned whole
    bg.step(dark, None, skip)
    bg.step(np.full_like(dark, 200), None, skip)
    out, valid = bg.step(dark, None)
    assert valid and (out[1:3, 1:3] == 0).all() and (out[0, 0] == 100).all()


def test_a_pixel_left_out_too_long_is_learned_again_so_a_wrong_mask_cannot_lock_the_background() -> None:
    # the light goes on and the mask marks the whole picture from then on (as the network's own mask did)
    bg = StillBackground(BackgroundConfig(rate=0.5, min_frames=2, max_skip_frames=3, relight=0.0))
    dark, bright = np.zeros((4, 5, 3), np.uint8), np.full((4, 5, 3), 200, np.uint8)
    everything = np.ones((4, 5), np.uint8)
    bg.step(dark, None)
    bg.step(dark, None)
    seen = [int(bg.step(bright, None, everything)[0][0, 0, 0]) for _ in range(6)]
    assert seen[:4] == [0, 0, 0, 0], "left out for max_skip_frames frames: the background is kept"
    assert seen[4] == 100 and seen[5] == 150, "then it is learned at the rate, though still marked"
    part = np.zeros((4, 5), np.uint8)
    part[0, 0] = 1
    bg.step(dark, None, part)  # the mark leaves all but one pixel: their counts start again
    bg.step(bright, None, everything)  # marked again: those are kept, the one marked all along learns on
    out, _ = bg.step(bright, None)
    assert out[1, 1, 0] == 88 and out[0, 0, 0] == 144


def test_a_light_switched_on_rescales_the_background_but_a_hand_in_view_does_not() -> None:
    rng = np.random.default_rng(1)
    room = rng.integers(40, 90, (24, 32, 3)).astype(np.uint8)
    bg = StillBackground(BackgroundConfig(min_frames=2))
    for _ in range(5):
        bg.step(room, None)
    hand = room.copy()
    hand[4:12, 6:16] = 250  # an eighth of the picture
    out, valid = bg.step(hand, None)
    assert valid and np.array_equal(out, room), "a small bright thing leaves the background as it was"
    lit = (room.astype(np.float32) * 1.8).astype(np.uint8)
    out, valid = bg.step(lit, None)
    assert valid
    away = np.ones(room.shape[:2], bool)
    away[4:12, 6:16] = False  # where the hand was, the mean learned a little of it
    assert np.abs(out.astype(int) - lit.astype(int))[away].max() <= 3, "the room under the new light at once"


def test_an_agent_over_a_two_toned_view_is_no_light_switch() -> None:
    """Half dark floor, half bright wall: an agent as dark as the floor over part of the wall moves the
    frame's median from the wall's tone to the floor's. The ratio of the two medians (the test before) called
    that a light switch and rescaled the whole background; the median of per-pixel ratios does not."""
    rng = np.random.default_rng(2)
    room = np.empty((24, 32, 3), np.uint8)
    room[:13] = rng.integers(170, 190, (13, 32, 3))  # wall, a little over half
    room[13:] = rng.integers(40, 60, (11, 32, 3))  # floor
    bg = StillBackground(BackgroundConfig(min_frames=2))
    for _ in range(5):
        bg.step(room, None)
    agent = room.copy()
    agent[:8, 8:20] = 50  # dark, over part of the wall: the frame's median is now the floor's
    assert np.median(agent[..., 0]) < 100 < np.median(room[..., 0]), "the case the test is about"
    out, valid = bg.step(agent, None)
    assert valid and np.array_equal(out, room), "the background is the room as it was"
    lit = np.clip(room.astype(np.float32) * 1.3, 0, 255).astype(np.uint8)  # the light does change
    out, _ = bg.step(lit, None)
    away = np.ones(room.shape[:2], bool)
    away[:8, 8:20] = False  # where the agent was, the mean learned a little of it
    assert np.abs(out.astype(int) - lit.astype(int))[away].max() <= 3, "a real switch still rescales at once"


def test_an_agent_filling_the_view_is_no_light_switch_and_the_canvas_agrees() -> None:
    """A forklift passing right in front of a standing robot fills the view: the median of the per-pixel ratios
    moves as far as a light switch's, but the frame no longer shows the mean's picture (background.same_picture).
    Rescaling the mean to the forklift's colour (the rule before) hid the forklift from the still head."""
    from spatial_memory_ros.model.background import same_picture
    from spatial_memory_ros.model.turning_background import _Canvas

    room = _textured(4)
    bg = StillBackground(BackgroundConfig(min_frames=2))
    for _ in range(5):
        bg.step(room, None)
    rng = np.random.default_rng(5)
    forklift = np.empty_like(room)
    forklift[:] = (20, 150, 230)  # orange, with a little texture of its own
    forklift = np.clip(forklift + rng.normal(0, 6, room.shape), 0, 255).astype(np.uint8)
    out, valid = bg.step(forklift, None)
    assert valid and np.array_equal(out, room), "the background is the room as it was"
    out, _ = bg.step(forklift, None)
    assert np.abs(out.astype(int) - room.astype(int)).max() <= 10, "still the room, not the forklift's colour"
    assert not same_picture(forklift, room) and same_picture((room * 0.6).astype(np.uint8), room)
    # the canvas of a turning camera uses the same test
    mean = room.astype(np.float32)
    canvas = _Canvas(mean.copy(), np.full(room.shape[:2], 9, np.int32), np.zeros(room.shape[:2], np.int32), (0, 0))
    valid_px = np.ones(room.shape[:2], bool)
    assert np.array_equal(canvas.relight(forklift, room, valid_px, 0.15), room) and np.array_equal(canvas.mean, mean)
    lit = (room * 0.6).astype(np.uint8)
    assert np.abs(canvas.relight(lit, room, valid_px, 0.15).astype(int) - lit.astype(int)).max() <= 2


def test_a_background_model_started_from_a_plain_one_acts_as_it_until_it_has_a_background(tmp_path: Path) -> None:
    plain = tiny_model(seed=3)
    path = tmp_path / "plain.pt"
    save_model(path, plain, {"command": "spatial-memory train", "seed": 1000})
    grown = tiny_model(seed=4, config=WITH_BACKGROUND)
    assert _init_from(grown, path) == {"command": "spatial-memory train", "seed": 1000}, "kept as init_meta"
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(8)]
    a = LearnedChangeDetector(plain, intrinsics=INTR, device="cpu", min_blob_area_px=1)
    b = LearnedChangeDetector(grown, intrinsics=INTR, device="cpu", min_blob_area_px=1)
    for i, frame in enumerate(frames):
        with torch.inference_mode():
            same = np.array_equal(a.update(frame, _pose()).mask, b.update(frame, _pose()).mask)
            same_state = torch.allclose(a.state, b.state, atol=1e-6)
        if i < 5:  # the background is given from the sixth still frame
            assert same and same_state, f"frame {i}"
    # the new channels start at zero, so even with a background the two agree until training moves them
    assert same and same_state
    with torch.no_grad():
        grown.encoder.patch.weight[:, 3:].normal_()
    c = LearnedChangeDetector(grown, intrinsics=INTR, device="cpu", min_blob_area_px=1)
    off = LearnedChangeDetector(grown, intrinsics=INTR, device="cpu", min_blob_area_px=1, use_memory=False)
    ablation = LearnedChangeDetector(plain, intrinsics=INTR, device="cpu", min_blob_area_px=1, use_memory=False)
    for frame in frames:
        c.update(frame, _pose())
        with torch.inference_mode():
            off_out, ablation_out = off.update(frame, _pose()), ablation.update(frame, _pose())
        assert np.array_equal(off_out.mask, ablation_out.mask), "the memory-disabled model gets no background"
    assert not torch.allclose(c.state, a.state, atol=1e-6), "a trained background input changes the step"


def _textured(seed: int = 3) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    return cv2.resize(rng.uniform(30, 220, (24, 32, 3)).astype(np.float32), (256, 192),
                      interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)


def _forward(image: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    M = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), 0.0, scale)
    return cv2.warpAffine(image, M, (w, h), borderMode=cv2.BORDER_REFLECT)


def test_a_camera_creeping_forward_within_the_pose_tolerance_gets_no_stale_background() -> None:
    # 0.5 cm a frame: ten frames within move_m; the picture grows 1 % a frame (a wall 0.5 m ahead)
    wall = _textured()
    creeping = StillBackground(BackgroundConfig(relight=0.0))
    valid = [creeping.step(_forward(wall, 1.0 + 0.01 * i), _pose(0.005 * i))[1] for i in range(10)]
    assert not any(valid), "the picture moved: the mean starts again before it is given"
    # a localiser's jitter of 1 cm on a camera that stands: the pose moves, the picture does not
    rng = np.random.default_rng(0)
    standing = StillBackground(BackgroundConfig(relight=0.0))
    valid = [standing.step(wall, _pose(rng.normal(0.0, 0.01)))[1] for _ in range(10)]
    assert all(valid[5:]), "kept through the jitter"
    # with the picture check off (the rule before), the creeping camera got a background from frame 5
    old = StillBackground(BackgroundConfig(relight=0.0, picture_px=0.0))
    assert any(old.step(_forward(wall, 1.0 + 0.01 * i), _pose(0.005 * i))[1] for i in range(10))


def test_a_pose_off_over_a_picture_that_cannot_tell_starts_again_and_the_same_pose_is_never_asked() -> None:
    plain = np.full((192, 256, 3), 120, np.uint8)  # an agent filling the view, or a bare wall
    bg = StillBackground(BackgroundConfig(relight=0.0))
    assert not any(bg.step(plain, _pose(0.002 * i))[1] for i in range(8))
    still = StillBackground(BackgroundConfig(relight=0.0))
    assert [still.step(plain, _pose())[1] for _ in range(7)][5:] == [True, True]


def _moved_by(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    import cv2

    M = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], np.float32)
    return cv2.warpAffine(image, M, image.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def test_a_shaking_still_camera_gets_its_background_moved_onto_each_frame_and_the_mean_stays_sharp() -> None:
    """The pose exact, the picture shaken by up to 1.5 px a frame: the background given is the mean moved onto the
    frame (it matches the frame far better than the unmoved mean), and what is learned is the frame moved back, so
    the mean stays the unshaken picture. Under shake_min_px nothing moves; shake_px 0 is the rule before."""
    wall = _textured()
    inner = (slice(8, -8), slice(8, -8))
    rng = np.random.default_rng(1)
    shakes = rng.uniform(-1.5, 1.5, (40, 2))
    aligned, off = StillBackground(BackgroundConfig(relight=0.0)), StillBackground(BackgroundConfig(relight=0.0,
                                                                                                  shake_px=0.0))
    err_aligned, err_off = [], []
    for i, (dx, dy) in enumerate(shakes):
        frame = _moved_by(wall, dx, dy)
        (a, va), (b, vb) = aligned.step(frame, _pose()), off.step(frame, _pose())
        if i >= 10 and np.hypot(dx, dy) > 0.5:
            assert va and vb
            err_aligned.append(np.abs(a.astype(float) - frame)[inner].mean())
            err_off.append(np.abs(b.astype(float) - frame)[inner].mean())
    assert np.mean(err_aligned) < 0.3 * np.mean(err_off), (np.mean(err_aligned), np.mean(err_off))
    assert aligned.mean is not None and off.mean is not None
    # the first frame set where the mean lies; it stays there, sharp, where the unaligned one blurs
    first = _moved_by(wall, *shakes[0]).astype(np.float32)
    sharp = np.abs(aligned.mean - first)[inner].mean()
    assert sharp < 0.5 * np.abs(off.mean - first)[inner].mean(), sharp
    # a still picture, or one that moved by less than shake_min_px: the background is the mean, bit for bit
    still = StillBackground(BackgroundConfig(relight=0.0))
    for _ in range(6):
        still.step(wall, _pose())
    nudged = _moved_by(wall, 0.05, 0.0)
    mean_before = np.rint(still.mean).astype(np.uint8)
    out, valid = still.step(nudged, _pose())
    assert valid and np.array_equal(out, mean_before)


def test_a_shaking_picture_under_a_jittering_pose_keeps_its_background_and_a_creep_still_restarts_it() -> None:
    """A localiser's 1 cm of jitter makes the creep check ask the picture every frame; a shake of up to 1.5 px moves
    every quarter alike and must not count as a move (before, the mean restarted every frame), while a camera creeping
    forward, shaken as well, still starts again."""
    wall = _textured()
    rng = np.random.default_rng(2)
    shakes = rng.uniform(-1.5, 1.5, (12, 2))
    standing = StillBackground(BackgroundConfig(relight=0.0))
    valid = [standing.step(_moved_by(wall, dx, dy), _pose(rng.normal(0.0, 0.01)))[1] for dx, dy in shakes]
    assert all(valid[5:]), valid
    creeping = StillBackground(BackgroundConfig(relight=0.0))
    valid = [creeping.step(_moved_by(_forward(wall, 1.0 + 0.01 * i), dx, dy), _pose(0.005 * i))[1]
             for i, (dx, dy) in enumerate(shakes[:10])]
    assert not any(valid), valid
