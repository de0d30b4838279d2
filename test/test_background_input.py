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
    bg = StillBackground(BackgroundConfig(rate=0.5, min_frames=3))
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
    bg = StillBackground(BackgroundConfig(rate=0.5, min_frames=2))
    dark = np.zeros((4, 5, 3), np.uint8)
    skip = np.zeros((4, 5), np.uint8)
    skip[1:3, 1:3] = 1  # an agent standing there
    bg.step(dark, None, skip)  # the first frames are learned whole
    bg.step(dark, None, skip)
    bg.step(np.full_like(dark, 200), None, skip)
    out, valid = bg.step(dark, None)
    assert valid and (out[1:3, 1:3] == 0).all() and (out[0, 0] == 100).all()


def test_a_background_model_started_from_a_plain_one_acts_as_it_until_it_has_a_background(tmp_path: Path) -> None:
    plain = tiny_model(seed=3)
    path = tmp_path / "plain.pt"
    save_model(path, plain, {})
    grown = tiny_model(seed=4, config=WITH_BACKGROUND)
    _init_from(grown, path)
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
