"""The learned model's re-identification head reaches the tracker: blobs carry the model's appearance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tiny_model import INTR, TINY, tiny_model  # noqa: E402

from spatial_memory_ros.core.change import ChangeOutput  # noqa: E402
from spatial_memory_ros.core.config import ChangeConfig, MemoryConfig, PipelineConfig, TrackerConfig  # noqa: E402
from spatial_memory_ros.core.item_memory import ItemMemory  # noqa: E402
from spatial_memory_ros.core.pipeline import MOTION_LABEL, Pipeline  # noqa: E402
from spatial_memory_ros.core.types import CameraIntrinsics, Frame  # noqa: E402
from spatial_memory_ros.model.bench_method import LearnedMethod  # noqa: E402
from spatial_memory_ros.model.checkpoint import save_model  # noqa: E402
from spatial_memory_ros.model.runtime import LearnedChangeDetector  # noqa: E402

torch.set_num_threads(1)  # tests share 2 cores with everything else


def test_each_motion_box_gets_the_model_look_of_its_region() -> None:
    det = LearnedChangeDetector(tiny_model(), device="cpu", min_blob_area_px=1)
    rng = np.random.default_rng(0)
    out = det.update(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    for _ in range(5):
        if out.motion_boxes:
            break
        out = det.update(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    assert out.motion_boxes, "the random frames should leave some region changed"
    look = out.motion_appearance
    assert look is not None and look.shape == (len(out.motion_boxes), TINY.embed_dim)
    assert np.allclose(np.linalg.norm(look, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(look, det.embed_boxes(np.array(out.motion_boxes)), atol=1e-6)


def test_regions_are_not_embedded_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """motion_appearance=False: the same mask and boxes, no looks, and embed_boxes() is never run."""
    model = tiny_model()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(4)]
    want = LearnedChangeDetector(model, device="cpu", min_blob_area_px=1)
    skip = LearnedChangeDetector(model, device="cpu", min_blob_area_px=1, motion_appearance=False)

    def refuse(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("embed_boxes() ran although no one wants the looks")

    monkeypatch.setattr(skip, "embed_boxes", refuse)
    boxes = 0
    for image in images:
        a, b = want.update(image), skip.update(image)
        np.testing.assert_array_equal(a.mask, b.mask)
        np.testing.assert_array_equal(np.reshape(a.motion_boxes, (-1, 4)), np.reshape(b.motion_boxes, (-1, 4)))
        assert a.motion_appearance is not None and b.motion_appearance is None
        boxes += len(a.motion_boxes)
    assert boxes > 0, "the random frames should leave some region changed"


@pytest.mark.parametrize(("reid", "motion"), [(True, True), (True, False), (False, True), (False, False)])
def test_pipeline_asks_the_learned_backend_for_looks_only_with_reid_motion(tmp_path: Path, reid: bool,
                                                                           motion: bool) -> None:
    """Built by the pipeline (change.method learned) or by the bench's learned method, the backend embeds
    its regions exactly when the tracker uses them, whatever the tracker's re-id defaults."""
    save_model(tmp_path / "m.pt", tiny_model())
    config = PipelineConfig(
        change=ChangeConfig(method="learned", model_path=str(tmp_path / "m.pt")),
        memory=MemoryConfig(db_path=":memory:"), tracker=TrackerConfig(reid=reid, reid_motion=motion),
    )
    with Pipeline.open(config, device="cpu") as pipeline:
        assert isinstance(pipeline._change, LearnedChangeDetector)
        assert pipeline._change.motion_appearance == (reid and motion)
    method = LearnedMethod(config, device="cpu")
    try:
        change = method.pipeline._change
        assert isinstance(change, LearnedChangeDetector) and change.motion_appearance == (reid and motion)
    finally:
        method.close()


class _Blobs:
    """A change backend that reports one moving blob with a fixed look."""

    def __init__(self, look: np.ndarray | None) -> None:
        self.look = look

    def update(self, image_bgr: np.ndarray, T_map_cam: np.ndarray | None = None,
               intrinsics: CameraIntrinsics | None = None, stamp: float | None = None) -> ChangeOutput:
        look = None if self.look is None else self.look[None]
        return ChangeOutput(np.zeros(image_bgr.shape[:2], np.uint8), [np.array([40.0, 30.0, 80.0, 110.0])], False,
                            motion_appearance=look)

    def reset(self) -> None:
        pass

    def describe(self) -> str:
        return "blobs"


@pytest.mark.parametrize(
    ("reid", "motion", "look", "carried"),
    [(True, True, True, True), (False, True, True, False), (True, False, True, False), (True, True, False, False)],
)
def test_blob_detections_carry_the_look_only_with_reid_motion(reid: bool, motion: bool, look: bool,
                                                              carried: bool) -> None:
    vector = np.eye(8, dtype=np.float32)[3]
    tracker = TrackerConfig(reid=reid, reid_motion=motion)
    config = PipelineConfig(memory=MemoryConfig(db_path=":memory:"), tracker=tracker)
    pipeline = Pipeline(config, ItemMemory(config.memory), change=_Blobs(vector if look else None))
    result = pipeline.update(Frame(np.zeros((120, 160, 3), np.uint8), 0.0, INTR, np.eye(4)))
    (blob,) = [d for d in result.detections if d.label == MOTION_LABEL]
    assert (blob.appearance is not None) == carried
    if carried:
        np.testing.assert_array_equal(blob.appearance, vector)


def test_learned_method_uses_the_model_looks_by_default_and_learned_no_reid_does_not(tmp_path: Path) -> None:
    """tracker.reid_motion is on by default, so the bench's learned method (and a node or run with change.method
    learned) tracks regions with the model's looks; learned_no_reid is the same method without them."""
    save_model(tmp_path / "m.pt", tiny_model())
    config = PipelineConfig(change=ChangeConfig(model_path=str(tmp_path / "m.pt")), memory=MemoryConfig(db_path=""))
    for reid_motion, name, looks in ((None, "learned", True), (False, "learned_no_reid", False)):
        method = LearnedMethod(config, reid_motion=reid_motion, device="cpu")
        try:
            change = method.pipeline._change
            assert method.name == name
            assert isinstance(change, LearnedChangeDetector) and change.motion_appearance == looks
        finally:
            method.close()
