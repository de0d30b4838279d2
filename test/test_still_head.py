"""The still camera's change head (model/still_head.py): zero without a background, learnable, trained alone."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the model needs it; without it the rest of the suite still runs
from tiny_model import TINY, tiny_model  # noqa: E402

from spatial_memory_ros.model import photo_stream  # noqa: E402
from spatial_memory_ros.model.checkpoint import load_file, save_model  # noqa: E402
from spatial_memory_ros.model.config import ModelConfig, TrainConfig  # noqa: E402
from spatial_memory_ros.model.model import SpatialMemoryModel  # noqa: E402
from spatial_memory_ros.model.train import train  # noqa: E402

STILL = dataclasses.replace(TINY, background=True, still_head=4)


def _inputs(batch: int, cfg: ModelConfig = STILL) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 255, (batch, 3, cfg.image_height, cfg.image_width), generator=g).float()
    K = torch.tensor([[30.0, 0, 16], [0, 30, 12], [0, 0, 1]]).expand(batch, 3, 3)
    T = torch.eye(4).expand(batch, 4, 4).clone()
    T[:, 2, 3] = 2.0
    return image, K, T, torch.ones(batch, dtype=torch.bool)


def test_without_a_still_background_the_output_is_the_change_heads_own() -> None:
    torch.manual_seed(0)
    base = SpatialMemoryModel.from_config(dataclasses.replace(STILL, still_head=0)).eval()
    model = SpatialMemoryModel.from_config(STILL).eval()
    missing, _ = model.load_state_dict(base.state_dict(), strict=False)
    assert missing and all(m.startswith("still.") for m in missing)
    assert model.still is not None
    torch.nn.init.normal_(model.still.out.weight)  # a trained head, not the zero it starts at
    image, K, T, has_pose = _inputs(2)
    background = torch.randint(0, 255, image.shape).float()
    with torch.no_grad():
        a = base(image, K, T, has_pose, base.initial_state(2), background=background,
                 background_valid=torch.tensor([True, False]))
        b = model(image, K, T, has_pose, model.initial_state(2), background=background,
                  background_valid=torch.tensor([True, False]))
        c = model(image, K, T, has_pose, model.initial_state(2), use_memory=False, background=background,
                  background_valid=torch.tensor([True, True]))
        d = base(image, K, T, has_pose, base.initial_state(2), use_memory=False)
    assert torch.equal(a.change_logits[1], b.change_logits[1])  # no background: exactly the same
    assert not torch.allclose(a.change_logits[0], b.change_logits[0])  # a background: the head's correction
    assert torch.equal(c.change_logits, d.change_logits)  # the ablation gets no background, so no correction
    assert torch.equal(a.state, b.state)  # the memory never sees the head


def test_a_fresh_head_starts_as_the_model_it_joins() -> None:
    torch.manual_seed(0)
    model = SpatialMemoryModel.from_config(STILL).eval()
    image, K, T, has_pose = _inputs(1)
    with torch.no_grad():
        out = model(image, K, T, has_pose, model.initial_state(1), background=image,
                    background_valid=torch.tensor([True]))
        assert model.still is not None
        correction = model.still(torch.zeros(1, 7, 24, 32), out.change_logits)
        assert torch.equal(correction, torch.zeros_like(out.change_logits))


def test_the_head_alone_learns_what_differs_from_the_background() -> None:
    """A frozen random network; only the head learns, and it finds a square whose texture is the background's
    kind, so no colour tells it apart: only the comparison does."""
    cfg = dataclasses.replace(TINY, background=True, still_head=8)
    model = tiny_model(1, cfg).train()
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("still."))
    rng = np.random.default_rng(0)
    images, backgrounds, masks = [], [], []
    for _ in range(8):
        bg = rng.integers(0, 255, (24, 32, 3)).astype(np.float32)
        frame, mask = bg.copy(), np.zeros((24, 32), np.float32)
        x, y = rng.integers(0, 20), rng.integers(0, 12)
        frame[y : y + 10, x : x + 10] = rng.integers(0, 255, (10, 10, 3))
        mask[y : y + 10, x : x + 10] = 1
        images.append(frame), backgrounds.append(bg), masks.append(mask)
    image = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    background = torch.from_numpy(np.stack(backgrounds)).permute(0, 3, 1, 2)
    target = torch.nn.functional.avg_pool2d(torch.from_numpy(np.stack(masks))[:, None], cfg.mask_stride)
    _, K, T, has_pose = _inputs(8, cfg)
    valid = torch.ones(8, dtype=torch.bool)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)

    def iou() -> float:
        out = model(image, K, T, has_pose, model.initial_state(8), background=background, background_valid=valid)
        pred, truth = out.change_logits > 0, target > 0.5
        return float((pred & truth).sum() / (pred | truth).sum().clamp(min=1))

    before = iou()
    for _ in range(150):
        out = model(image, K, T, has_pose, model.initial_state(8), background=background, background_valid=valid)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out.change_logits, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = iou()
    assert after > 0.65 and after > before + 0.4  # about 0.1 before; a 2 px mask cell blurs the edges


def test_freeze_base_trains_the_head_and_keeps_every_other_weight(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    for i in range(3):  # photo streams: a still camera, so the background is there after 5 frames
        img = cv2.resize(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), (320, 240), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(tmp_path / f"p{i}.png"), img)
    monkeypatch.setattr(photo_stream, "PHOTO_DIR", tmp_path)
    torch.manual_seed(0)
    start = SpatialMemoryModel.from_config(ModelConfig())
    save_model(tmp_path / "start.pt", start)
    tc = TrainConfig(steps=3, batch=1, clip=8, stream_frames=16, reuse=1, workers=0, warmup=1, photos=1.0,
                     background=True, still_head=4, freeze_base=True, init=str(tmp_path / "start.pt"))
    train(tc, tmp_path / "out.pt")
    trained = load_file(tmp_path / "out.pt")["model"]
    for key, value in start.state_dict().items():
        if key == "encoder.patch.weight":  # grown by the background's channels, which start (and stay) at zero
            assert torch.equal(trained[key][:, :3], value) and not trained[key][:, 3:].any()
        else:
            assert torch.equal(trained[key], value), key
    assert trained["still.out.weight"].abs().sum() > 0  # the head learned


def test_still_head_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="background"):
        dataclasses.replace(TINY, still_head=4).validate()
    with pytest.raises(ValueError, match="freeze_base"):
        TrainConfig(freeze_base=True, init="x.pt").validate()
    with pytest.raises(ValueError, match="freeze_base"):
        TrainConfig(freeze_base=True, still_head=4, background=True).validate()


def test_bench_model_on_a_still_camera_runs_the_head_with_a_background(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`bench-model --still-camera`: the timed steps of a still-head model include the head with a background."""
    from spatial_memory_ros.model.speed import measure
    from spatial_memory_ros.model.still_head import StillHead

    torch.manual_seed(0)
    save_model(tmp_path / "m.pt", SpatialMemoryModel.from_config(ModelConfig(background=True, still_head=4)))
    seen: list[bool] = []
    forward = StillHead.forward

    def counting(self: StillHead, x_in: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        seen.append(bool(x_in[:, 6].any()))  # the flag plane: a background was there
        return forward(self, x_in, logits)

    monkeypatch.setattr(StillHead, "forward", counting)
    moving = measure(tmp_path / "m.pt", size=(64, 48), timed_frames=8, long_steps=0, progress=False)
    on_patrol = sum(seen)
    still = measure(tmp_path / "m.pt", size=(64, 48), timed_frames=8, long_steps=0, progress=False,
                    still_camera=True)
    assert moving.fps > 0 and still.fps > 0
    assert sum(seen) - on_patrol > 8  # update() steps on the still camera had a background (the timed model
    # steps always get one)
    widths: list[int] = []  # of the head's input, at steps with a background
    monkeypatch.setattr(StillHead, "forward", lambda self, x_in, logits: (
        widths.append(x_in.shape[-1]) if bool(x_in[:, 6].any()) else None) or forward(self, x_in, logits))
    fine = measure(tmp_path / "m.pt", size=(64, 48), timed_frames=8, long_steps=0, progress=False,
                   still_camera=True, still_scale=2)
    # `--still-head-scale 2`: every head step with a background, timed model steps included, read the finer frame
    assert fine.fps > 0 and len(widths) > 8 and set(widths) == {2 * ModelConfig().image_width}


def test_the_runtime_mask_takes_the_correction_and_the_motion_boxes_do_not() -> None:
    """A head that calls everything changed: on a still camera the mask is all changed after the background's
    5 frames, while the motion boxes stay those of the same weights without the head (the one all-changed region
    touches the change head's own regions, so it adds no box of its own: see the last two tests)."""
    from tiny_model import INTR

    from spatial_memory_ros.model.runtime import LearnedChangeDetector

    cfg = dataclasses.replace(STILL, background_skips_changes=True)
    torch.manual_seed(0)
    model = SpatialMemoryModel.from_config(cfg).eval()
    assert model.still is not None and model.still.out.bias is not None
    plain = SpatialMemoryModel.from_config(cfg).eval()
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        model.still.out.bias.fill_(20.0)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(8)]
    T = np.eye(4)
    T[2, 3] = 2.0
    corrected = LearnedChangeDetector(model, device="cpu", intrinsics=INTR)
    reference = LearnedChangeDetector(plain, device="cpu", intrinsics=INTR)
    for i, frame in enumerate(frames):
        a, b = corrected.update(frame, T), reference.update(frame, T)
        assert np.array_equal(np.reshape(a.motion_boxes, (-1, 4)), np.reshape(b.motion_boxes, (-1, 4)))
        if i >= 6:
            assert a.mask.all() and not np.array_equal(a.mask, b.mask)


def test_a_finer_still_input_gives_a_finer_mask_and_changes_nothing_without_a_background() -> None:
    """model(still_image=...): the head reads the frame and background k times finer; the change head's logits
    are upsampled to meet it; a row with no background is those upsampled logits exactly."""
    torch.manual_seed(0)
    model = SpatialMemoryModel.from_config(STILL).eval()
    assert model.still is not None
    torch.nn.init.normal_(model.still.out.weight)
    image, K, T, has_pose = _inputs(2)
    background = torch.randint(0, 255, image.shape).float()
    fine = torch.nn.functional.interpolate(image, scale_factor=2, mode="nearest")
    fine_bg = torch.nn.functional.interpolate(background, scale_factor=2, mode="nearest")
    valid = torch.tensor([True, False])
    with torch.no_grad():
        coarse = model(image, K, T, has_pose, model.initial_state(2), background=background, background_valid=valid)
        out = model(image, K, T, has_pose, model.initial_state(2), background=background, background_valid=valid,
                    still_image=fine, still_background=fine_bg)
    h, w = coarse.change_logits.shape[-2:]
    assert out.change_logits.shape[-2:] == (2 * h, 2 * w)
    assert torch.equal(out.region_logits, coarse.region_logits)  # the boxes' regions stay the change head's
    upsampled = torch.nn.functional.interpolate(coarse.region_logits, scale_factor=2, mode="bilinear",
                                                align_corners=False)
    assert torch.equal(out.change_logits[1], upsampled[1])  # no background: no correction
    assert not torch.allclose(out.change_logits[0], upsampled[0])


def test_the_runtime_runs_the_head_and_the_background_at_still_scale() -> None:
    """still_scale=2: on a still camera the head gets the frame at twice the model's input; on a moving camera
    (no background ever) the masks are still_scale 1's exactly."""
    from tiny_model import INTR

    from spatial_memory_ros.model.runtime import LearnedChangeDetector
    from spatial_memory_ros.model.still_head import StillHead

    torch.manual_seed(0)
    model = SpatialMemoryModel.from_config(STILL).eval()
    assert model.still is not None
    torch.nn.init.normal_(model.still.out.weight)
    sizes: list[tuple[int, int]] = []
    forward = StillHead.forward

    def recording(self: StillHead, x_in: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        if bool(x_in[:, 6].any()):
            sizes.append(tuple(x_in.shape[-2:]))
        return forward(self, x_in, logits)

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(8)]
    poses = []
    for i in range(8):  # a camera that moves 0.2 m a frame: no background ever
        T = np.eye(4)
        T[0, 3], T[2, 3] = 0.2 * i, 2.0
        poses.append(T)
    one, two = (LearnedChangeDetector(model, device="cpu", intrinsics=INTR, still_scale=k) for k in (1, 2))
    for frame, T in zip(frames, poses):
        assert np.array_equal(one.update(frame, T).mask, two.update(frame, T).mask)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(StillHead, "forward", recording)
        still = LearnedChangeDetector(model, device="cpu", intrinsics=INTR, still_scale=2)
        for frame in frames:
            assert still.update(frame, poses[0]).mask.shape == frame.shape[:2]
    assert sizes and set(sizes) == {(2 * STILL.image_height, 2 * STILL.image_width)}
    with pytest.raises(ValueError, match="still_scale"):
        LearnedChangeDetector(model, device="cpu", still_scale=5)


def test_a_still_cameras_mask_region_that_moved_is_a_motion_box_and_one_at_rest_is_not() -> None:
    """The change head finds the simulator's agents, not real people, so on a still camera a region of the
    corrected mask becomes a motion box too when enough of it moved since the previous frame (MOVED_SHARE of its
    pixels by more than MOVED_GREY grey levels), unless a region of the change head's own already covers it;
    an item at rest (no pixel moved) is not one, and neither is anything while the camera's pose changes."""
    from tiny_model import INTR

    from spatial_memory_ros.model.runtime import LearnedChangeDetector
    from spatial_memory_ros.model.step_inputs import PreparedFrame
    from spatial_memory_ros.model.still_motion import MOVED_GREY, MOVED_SHARE

    det = LearnedChangeDetector(tiny_model(config=STILL), device="cpu", intrinsics=INTR)
    h, w = 120, 160
    before = np.full((h, w, 3), 100, np.uint8)
    now = before.copy()
    now[10:40, 10:40] = 100 + MOVED_GREY + 1  # region A: all of it moved
    now[10:40, 60:90][::4] = 100 + MOVED_GREY + 1  # region B: a quarter of its rows moved, over MOVED_SHARE
    assert MOVED_SHARE < 0.25
    now[70:100, 10:40][::20] = 100 + MOVED_GREY + 1  # region C: 2 rows of 30 moved, under MOVED_SHARE
    now[70:100, 60:90] = 100 + MOVED_GREY  # region D: every pixel changed, by MOVED_GREY only
    now[70:100, 110:140] = 255  # region E: moved, but the change head's own region covers part of it
    mask = np.zeros((h, w), np.uint8)
    for y, x in ((10, 10), (10, 60), (70, 10), (70, 60), (70, 110)):
        mask[y:y + 30, x:x + 30] = 255
    regions = np.zeros((h, w), np.uint8)
    regions[80:85, 120:125] = 255
    T = np.eye(4)
    T[2, 3] = 2.0

    def frame(image: np.ndarray, pose: np.ndarray | None) -> PreparedFrame:
        return PreparedFrame(0, image, image, np.eye(3), np.eye(3, dtype=np.float32), np.eye(4), pose, 0.0, False,
                             image)

    grey, grey_now = cv2.cvtColor(before, cv2.COLOR_BGR2GRAY), cv2.cvtColor(now, cv2.COLOR_BGR2GRAY)
    assert not det._moving_still_regions(frame(now, T), grey_now, mask, regions).any()  # no previous frame yet
    det._previous[0] = (grey, T)
    moved = det._moving_still_regions(frame(now, T), grey_now, mask, regions) > 0
    expected = np.zeros((h, w), bool)
    expected[10:40, 10:40] = expected[10:40, 60:90] = True
    assert np.array_equal(moved, expected)
    det._previous[0] = (grey_now, T)  # nothing moved since: an item at rest
    assert not det._moving_still_regions(frame(now, T), grey_now, mask, regions).any()
    moved_away = T.copy()
    moved_away[0, 3] = 0.1  # past the 5 cm a localiser's jitter may be
    det._previous[0] = (grey, T)
    assert not det._moving_still_regions(frame(now, moved_away), grey_now, mask, regions).any()  # the camera moved
    det._previous[0] = (grey, None)  # no pose: taken as still
    assert np.array_equal(det._moving_still_regions(frame(now, None), grey_now, mask, regions) > 0, expected)


def test_a_pose_a_little_off_counts_as_still_when_the_picture_did_not_move() -> None:
    """A localiser's pose jitters on a standing robot: a pose off the previous frame's by 0.1 deg, or by 1 deg (past
    TurnLimits.exact_deg), with a picture whose background did not move, still gives the moving region's box (the
    person's step does not count: the shift is judged outside the mask), and so does the whole picture shifted by a
    pixel (a shake, or a turn that small: the previous frame is moved onto this one first). The picture shifted past
    BackgroundConfig.shake_px (the camera turned), a turn past max_step_deg, a move past the still background's
    move_m, or a turn past exact_deg in a picture too plain to tell, gives none; a move of 2 cm with the picture
    still gives the box."""
    from tiny_model import INTR

    from spatial_memory_ros.core.turning import TurnLimits
    from spatial_memory_ros.model.background import BackgroundConfig
    from spatial_memory_ros.model.runtime import LearnedChangeDetector
    from spatial_memory_ros.model.step_inputs import PreparedFrame

    det = LearnedChangeDetector(tiny_model(config=STILL), device="cpu", intrinsics=INTR)
    h, w = 96, 128
    rng = np.random.default_rng(3)
    scene = cv2.GaussianBlur(rng.integers(0, 255, (h, w), dtype=np.uint8), (5, 5), 0)  # texture to match on
    before, now = scene.copy(), scene.copy()
    before[20:50, 20:40] = 30  # a person, then a step to the right
    now[20:50, 28:48] = 30
    mask = np.zeros((h, w), np.uint8)
    mask[20:50, 28:48] = 255
    regions = np.zeros((h, w), np.uint8)
    T = np.eye(4)
    T[2, 3] = 2.0

    def turned(deg: float) -> np.ndarray:
        out = T.copy()
        out[:3, :3] = cv2.Rodrigues(np.radians([0.0, deg, 0.0]))[0]
        return out

    def boxes(grey_now: np.ndarray, pose: np.ndarray) -> np.ndarray:
        det._previous[0] = (before, T)
        image = cv2.cvtColor(grey_now, cv2.COLOR_GRAY2BGR)
        frame = PreparedFrame(0, image, image, np.eye(3), np.eye(3, dtype=np.float32), np.eye(4), pose, 0.0, False,
                              image)
        return det._moving_still_regions(frame, grey_now, mask, regions) > 0

    limits = TurnLimits()
    assert np.array_equal(boxes(now, turned(0.1)), mask > 0)  # the pose jittered, the picture stood
    assert np.array_equal(boxes(now, turned(1.0)), mask > 0)  # a larger jitter: the picture still decides
    # the picture moved by a pixel with it (a shake, or a turn that small): the frames are aligned first
    assert np.array_equal(boxes(np.roll(now, 1, axis=1), turned(0.1)), mask > 0)
    assert np.array_equal(boxes(np.roll(now, 1, axis=1), turned(1.0)), mask > 0)
    assert not boxes(np.roll(now, 5, axis=1), turned(0.1)).any()  # moved past a shake (shake_px): it turned
    assert not boxes(np.roll(now, 5, axis=1), turned(1.0)).any()
    assert not boxes(now, turned(limits.max_step_deg + 0.5)).any()  # past a jitter: a (blurred) turn

    def moved(m: float) -> np.ndarray:
        out = turned(0.1)
        out[0, 3] += m
        return out

    assert np.array_equal(boxes(now, moved(0.02)), mask > 0)  # a localiser's 2 cm, the picture stood
    assert not boxes(now, moved(BackgroundConfig().move_m + 0.01)).any()  # past the still background's tolerance
    # a plain picture cannot tell: then a pose within exact_deg is a jitter and one past it a turn
    plain_before, plain_now = np.full((h, w), 128, np.uint8), np.full((h, w), 128, np.uint8)
    plain_before[20:50, 20:40] = 30
    plain_now[20:50, 28:48] = 30
    before = plain_before
    assert np.array_equal(boxes(plain_now, turned(0.1)), mask > 0)
    assert not boxes(plain_now, turned(limits.exact_deg + 0.05)).any()


def test_the_runtime_gives_a_motion_box_for_a_moving_thing_only_its_still_head_sees() -> None:
    """End to end on the runtime: a head that marks everything on a still camera and a change head that marks
    nothing: a frame that did not move gives no motion box, one that did gives one; reset() forgets the frame."""
    from tiny_model import INTR

    from spatial_memory_ros.model.runtime import LearnedChangeDetector

    torch.manual_seed(0)
    model = SpatialMemoryModel.from_config(STILL).eval()
    assert model.still is not None and model.still.out.bias is not None
    with torch.no_grad():
        model.still.out.bias.fill_(80.0)  # over the change head's -40, whatever the rest gives
        model.change_head.out.weight.zero_()
        model.change_head.out.bias.fill_(-40.0)
    rng = np.random.default_rng(0)
    still = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    T = np.eye(4)
    T[2, 3] = 2.0
    det = LearnedChangeDetector(model, device="cpu", intrinsics=INTR)
    outputs = [det.update(still, T) for _ in range(8)]  # the background settles; nothing moves
    assert outputs[-1].mask.all() and len(outputs[-1].motion_boxes) == 0
    moved = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    assert len(det.update(moved, T).motion_boxes) == 1
    det.reset()
    assert det._previous == [None]


def test_a_shaken_picture_is_aligned_before_a_region_is_called_moving() -> None:
    """The pose exact, the whole picture shaken by 1.2 px since the previous frame: a textured item at rest in the
    mask is no moving region (its edges moved with the shake, not by themselves), while a person who stepped still
    is one. With the shake check off (BackgroundConfig.shake_px 0, the rule before) the item at rest is one too."""
    from tiny_model import INTR

    from spatial_memory_ros.model.background import BackgroundConfig, shifted
    from spatial_memory_ros.model.runtime import LearnedChangeDetector
    from spatial_memory_ros.model.step_inputs import PreparedFrame

    h, w = 96, 128
    rng = np.random.default_rng(5)
    scene = cv2.GaussianBlur(rng.integers(0, 255, (h, w), dtype=np.uint8), (5, 5), 0)
    before = scene.copy()
    before[20:50, 20:40] = 30  # a person, who then steps to the right
    now = shifted(scene, (1.2, -0.8))
    now[20:50, 30:50] = 30
    mask = np.zeros((h, w), np.uint8)
    mask[18:52, 18:52] = 255  # the person's region
    mask[60:90, 80:115] = 255  # an item put down: textured (the scene under it), at rest
    T = np.eye(4)
    T[2, 3] = 2.0

    def frame(image: np.ndarray) -> PreparedFrame:
        bgr = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        return PreparedFrame(0, bgr, bgr, np.eye(3), np.eye(3, dtype=np.float32), np.eye(4), T, 0.0, False, bgr)

    for shake_px, item_moving in ((3.0, False), (0.0, True)):
        det = LearnedChangeDetector(tiny_model(config=STILL), device="cpu", intrinsics=INTR)
        for background in det._backgrounds:
            background.config = BackgroundConfig(shake_px=shake_px)
        det._previous[0] = (before, T)
        moving = det._moving_still_regions(frame(now), now, mask, np.zeros((h, w), np.uint8)) > 0
        assert moving[30, 40], "the person stepped"
        assert moving[75, 95] == item_moving, shake_px


def test_a_camera_that_turned_since_the_previous_frame_has_it_re_projected_before_a_region_is_called_moving() -> None:
    """A pan of 1.8 deg between two frames moves every pixel by about 3.5 px at f = 110, past what the shake check
    takes: the previous frame is re-projected into this view by the turn (when turns are followed: intrinsics at
    the still head's size given), so a person who stepped is a moving region and an item at rest, whose edges moved
    only with the turn, is not. Without the intrinsics (turns not followed) no region is called moving, as before."""
    from tiny_model import INTR

    from spatial_memory_ros.model.runtime import LearnedChangeDetector
    from spatial_memory_ros.model.step_inputs import PreparedFrame

    h, w = 96, 128
    K = np.array([[110.0, 0.0, w / 2 - 0.5], [0.0, 110.0, h / 2 - 0.5], [0.0, 0.0, 1.0]])
    rng = np.random.default_rng(6)
    world = cv2.GaussianBlur(cv2.resize(rng.integers(0, 255, (24, 48), dtype=np.uint8), (2 * w, h),
                                        interpolation=cv2.INTER_CUBIC), (5, 5), 0)
    item = np.zeros_like(world)
    item[55:85, 110:140] = 1  # an item put down (textured: the scene under it), at rest
    Kw = K.copy()
    Kw[0, 2] += w / 2  # the world picture's centre is the view's at yaw 0

    def pose(deg: float) -> np.ndarray:
        T = np.eye(4)
        T[:3, :3] = cv2.Rodrigues(np.radians([0.0, deg, 0.0]))[0]
        T[2, 3] = 2.0
        return T

    def view(picture: np.ndarray, deg: float, nearest: bool = False) -> np.ndarray:
        H = K @ pose(deg)[:3, :3].T @ np.linalg.inv(Kw)
        return cv2.warpPerspective(picture, H, (w, h), flags=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR)

    first, second = world.copy(), world.copy()
    first[20:50, 80:100] = 30  # a person, who then steps to the right
    second[20:50, 88:108] = 30
    person = np.zeros_like(world)
    person[18:52, 78:110] = 1
    before, now = view(first, 0.0), view(second, 1.8)
    mask = np.maximum(view(person, 1.8, nearest=True), view(item, 1.8, nearest=True)) * 255
    in_person, in_item = view(person, 1.8, nearest=True) > 0, view(item, 1.8, nearest=True) > 0
    bgr = cv2.cvtColor(now, cv2.COLOR_GRAY2BGR)
    for seen_K, expected in ((K, True), (None, False)):
        det = LearnedChangeDetector(tiny_model(config=STILL), device="cpu", intrinsics=INTR)
        det._previous[0] = (before, pose(0.0))
        frame = PreparedFrame(0, bgr, bgr, np.eye(3), np.eye(3, dtype=np.float32), np.eye(4), pose(1.8), 0.0, False,
                              bgr, seen_K=seen_K)
        moving = det._moving_still_regions(frame, now, mask, np.zeros((h, w), np.uint8)) > 0
        assert moving[in_person].all() == expected, "the person stepped"
        assert not moving[in_item].any(), "the item rests"


COARSE_PX = 120 / (STILL.image_height // STILL.mask_stride)  # image rows per row of the change head's mask


def _trim_cells(monkeypatch: pytest.MonkeyPatch, change_bias: float) -> tuple[list[float], Any, np.ndarray]:
    """A runtime at still_scale 2 whose still head marks everything and whose change head's bias is change_bias
    (-40: nothing, 80: everything), its background settled on one frame; the cell of every trim_bottom call."""
    from tiny_model import INTR

    from spatial_memory_ros.model import runtime
    from spatial_memory_ros.model.runtime import LearnedChangeDetector

    calls: list[float] = []
    real = runtime.trim_bottom
    monkeypatch.setattr(runtime, "trim_bottom", lambda box, cell_px, height: (calls.append(cell_px), real(
        box, cell_px, height))[1])
    torch.manual_seed(0)
    model = SpatialMemoryModel.from_config(STILL).eval()
    assert model.still is not None and model.still.out.bias is not None
    with torch.no_grad():
        model.still.out.bias.fill_(80.0)
        model.change_head.out.weight.zero_()
        model.change_head.out.bias.fill_(change_bias)
    still = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    T = np.eye(4)
    T[2, 3] = 2.0
    det = LearnedChangeDetector(model, device="cpu", intrinsics=INTR, still_scale=2)
    for _ in range(8):
        det.update(still, T)
    return calls, det, T


def test_a_region_from_the_still_heads_finer_mask_is_trimmed_by_its_own_cell(monkeypatch: pytest.MonkeyPatch) -> None:
    """trim_bottom takes a share of a mask cell: a still camera's moving region that only the still head's finer
    mask found (the change head's own regions empty) is trimmed by that mask's cell, not the change head's."""
    calls, det, T = _trim_cells(monkeypatch, -40.0)
    calls.clear()
    moved = np.random.default_rng(1).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    assert len(det.update(moved, T).motion_boxes) == 1
    assert calls == [pytest.approx(COARSE_PX / 2)]  # the still head's mask, at still_scale 2, is twice as fine


def test_a_region_the_change_head_found_keeps_its_cell_beside_a_still_head(monkeypatch: pytest.MonkeyPatch) -> None:
    """The other branch: where the change head's own regions reach the region's bottom row, its cell is the trim's,
    the still head running beside it."""
    calls, det, _ = _trim_cells(monkeypatch, 80.0)
    assert det._backgrounds and calls and all(c == pytest.approx(COARSE_PX) for c in calls)
