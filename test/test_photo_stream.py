"""Training streams cut from photographs (model/photo_stream.py): deterministic, truth by the simulator's rule."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")  # the model and the embedder need it; without it the rest of the suite still runs

from spatial_memory_ros.model import photo_stream
from spatial_memory_ros.model.config import ModelConfig, TrainConfig
from spatial_memory_ros.model.data import ITEM_LABEL, render_photo_stream, render_stream
from spatial_memory_ros.model.train_streams import StreamSource

SIZE = (128, 96)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Four textured 'photographs' and one icon too small to be drawn."""
    rng = np.random.default_rng(0)
    for i in range(4):
        base = cv2.resize(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), (320, 240), interpolation=cv2.INTER_CUBIC)
        noise = rng.integers(0, 40, (240, 320, 3), dtype=np.uint8)
        cv2.imwrite(str(tmp_path / f"photo{i}.png"), cv2.add(base, noise))
    cv2.imwrite(str(tmp_path / "icon.png"), np.zeros((32, 32, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def _scene_with_a_carry(photos: Path, settle: int) -> photo_stream.PhotoScene:
    for seed in range(2000, 2040):
        scene = photo_stream.render_photo_scene(seed, 120, SIZE, settle, photos)
        if (scene.masks & ~scene.agents).sum() > 200:
            return scene
    raise AssertionError("no stream in 40 seeds moved an item")


def test_a_seed_draws_the_same_stream_and_another_seed_another(photos: Path) -> None:
    a = photo_stream.render_photo_scene(2000, 30, SIZE, 10, photos)
    b = photo_stream.render_photo_scene(2000, 30, SIZE, 10, photos)
    c = photo_stream.render_photo_scene(2001, 30, SIZE, 10, photos)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.masks, b.masks)
    assert not np.array_equal(a.images, c.images)
    assert a.images.shape == (30, 96, 128, 3) and a.masks.shape == (30, 96, 128)


def test_movers_are_change_and_a_moved_item_is_change_only_until_it_settles(photos: Path) -> None:
    settle = 8
    scene = _scene_with_a_carry(photos, settle)
    assert not (scene.agents & ~scene.masks).any()  # what a mover covers is changed
    assert not scene.masks[:5].any()  # movers enter after frame 5 and nothing else changed yet
    scene_change = scene.masks & ~scene.agents
    # per pixel, the longest run of frames marked as a scene change: never past the settle time
    run = np.zeros(scene_change.shape[1:], np.int32)
    longest = np.zeros_like(run)
    for frame in scene_change:
        run = np.where(frame, run + 1, 0)
        np.maximum(longest, run, out=longest)
    assert 1 <= longest.max() <= settle
    # an item that settled is the scene: the last frame without a mover has no change at all
    quiet = [t for t in range(len(scene.masks)) if not scene.agents[t].any() and t > 5]
    settled = [t for t in quiet if t > np.flatnonzero(scene_change.any(axis=(1, 2))).max()]
    assert settled, "no quiet frame after the last scene change"
    assert not scene.masks[settled[-1]].any()


def test_light_and_noise_are_never_change(photos: Path) -> None:
    """Frames differ from frame 0 (noise, light) before any mover enters, yet nothing is marked."""
    scene = photo_stream.render_photo_scene(2003, 5, SIZE, 10, photos)
    assert np.abs(scene.images[4].astype(int) - scene.images[0].astype(int)).mean() > 0.5
    assert not scene.masks.any()


def test_the_training_stream_is_at_the_model_size_with_labels_and_a_background(photos: Path) -> None:
    cfg = ModelConfig(background=True)
    s = render_photo_stream(2000, 40, cfg, directory=str(photos))
    assert s.name == "photo/static" and s.recoloured  # an anchor model is not followed here
    assert s.images.shape == (40, cfg.image_height, cfg.image_width, 3)
    assert s.labels.shape == (40, *cfg.grid)
    assert set(np.unique(s.labels)) <= {0, 1, 2, 3} | {ITEM_LABEL + j for j in range(3)}
    assert (s.labels >= ITEM_LABEL).any()  # the items lying there are labelled as items
    assert s.background is not None and s.background_valid is not None
    assert not s.background_valid[:5].any() and s.background_valid[10:].all()  # a still camera
    assert np.allclose(s.T_map_cam, s.T_map_cam[0])


def test_the_share_decides_by_seed_and_reaches_the_training_source(photos: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(photo_stream, "PHOTO_DIR", photos)
    cfg = ModelConfig()
    assert render_stream(1000, 3, cfg, photos=1.0).name == "photo/static"
    assert render_stream(1000, 3, cfg, photos=0.0).name != "photo/static"
    source = StreamSource(1000, 8, cfg, workers=0, photos=1.0)
    assert source.next().name == "photo/static"
    with pytest.raises(ValueError, match="photos"):
        TrainConfig(photos=1.5).validate()


def test_a_missing_photo_folder_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="opencv-doc"):
        photo_stream.render_photo_scene(2000, 5, SIZE, 10, tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="fewer than two"):
        photo_stream.render_photo_scene(2000, 5, SIZE, 10, tmp_path)
