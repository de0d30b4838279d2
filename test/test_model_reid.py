"""The learned model's re-identification head reaches the tracker: blobs carry the model's appearance."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tiny_model import TINY, tiny_model  # noqa: E402

from spatial_memory_ros.core.change import ChangeOutput  # noqa: E402
from spatial_memory_ros.core.config import MemoryConfig, PipelineConfig, TrackerConfig  # noqa: E402
from spatial_memory_ros.core.item_memory import ItemMemory  # noqa: E402
from spatial_memory_ros.core.pipeline import MOTION_LABEL, Pipeline  # noqa: E402
from spatial_memory_ros.core.types import CameraIntrinsics, Frame  # noqa: E402
from spatial_memory_ros.model.runtime import LearnedChangeDetector  # noqa: E402

torch.set_num_threads(1)  # tests share 2 cores with everything else
INTR = CameraIntrinsics(100.0, 100.0, 80.0, 60.0, 160, 120)


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


class _Blobs:
    """A change backend that reports one moving blob with a fixed look."""

    def __init__(self, look: np.ndarray | None) -> None:
        self.look = look

    def update(self, image_bgr: np.ndarray, T_map_cam: np.ndarray | None = None,
               intrinsics: CameraIntrinsics | None = None) -> ChangeOutput:
        look = None if self.look is None else self.look[None]
        return ChangeOutput(np.zeros(image_bgr.shape[:2], np.uint8), [np.array([40.0, 30.0, 80.0, 110.0])], False,
                            motion_appearance=look)

    def reset(self) -> None:
        pass


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
