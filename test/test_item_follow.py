"""Item tracks followed by optical flow through frames the detector misses (detector.follow_items)."""

from __future__ import annotations

import numpy as np
import pytest

from spatial_memory_ros.core.config import DetectorConfig, LiftingConfig, MemoryConfig, PipelineConfig, TrackerConfig
from spatial_memory_ros.core.item_follow import median_flow
from spatial_memory_ros.core.item_memory import ItemMemory
from spatial_memory_ros.core.lifting import lift
from spatial_memory_ros.core.pipeline import Pipeline
from spatial_memory_ros.core.types import CameraIntrinsics, Detection, Frame, TrackState

DT = 0.1  # s between frames (the node's 10 Hz)
W, H = 640, 480
PATCH = 80  # px, side of the textured object
STEP = (9.0, 3.0)  # px per frame the object moves (x, y)


def _scene(k: int, rng_seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Frame k: a textured square moving over a smooth background; (image BGR, its true box (4,))."""
    yy, xx = np.mgrid[0:H, 0:W]
    background = (120 + 40 * np.sin(xx / 70.0) * np.cos(yy / 90.0)).astype(np.uint8)
    image = np.repeat(background[..., None], 3, axis=2)
    texture = np.random.default_rng(rng_seed).integers(0, 256, (PATCH // 4, PATCH // 4, 3), dtype=np.uint8)
    texture = np.kron(texture, np.ones((4, 4, 1), np.uint8))  # 4 px blocks: corners LK can hold on to
    x0, y0 = 150 + int(STEP[0] * k), 160 + int(STEP[1] * k)
    image[y0:y0 + PATCH, x0:x0 + PATCH] = texture
    return image, np.array([x0, y0, x0 + PATCH, y0 + PATCH], dtype=np.float64)


def _gray(image: np.ndarray) -> np.ndarray:
    return image.mean(axis=2).astype(np.uint8)


def test_median_flow_moves_the_box_with_the_object() -> None:
    (a, box_a), (b, box_b) = _scene(0), _scene(3)  # 27 px right, 9 px down
    moved = median_flow(_gray(a), _gray(b), box_a)
    assert moved is not None
    assert np.abs(moved - box_b).max() < 1.5  # shift and size, within a pixel or so


def test_median_flow_gives_up_on_a_box_with_nothing_to_hold_on_to() -> None:
    flat = np.full((H, W), 128, np.uint8)
    assert median_flow(flat, flat, np.array([100.0, 100.0, 180.0, 180.0])) is None
    assert median_flow(flat, flat, np.array([-90.0, -90.0, -10.0, -10.0])) is None  # wholly outside the image


class _GlimpseDetector:
    """Names the object a cup in the first `seen` frames only, then misses it (as SSD misses a box that a
    hand turns and carries)."""

    def __init__(self, seen: int) -> None:
        self.seen, self.k = seen, 0

    def detect(self, frame: Frame) -> list[Detection]:
        k, self.k = self.k, self.k + 1
        if k >= self.seen:
            return []
        return [Detection(box=_scene(k)[1], label="cup", score=0.9, item="cup")]


def _run(follow: bool, frames: int, *, seen: int = 4, max_s: float = 10.0) -> tuple[Pipeline, list, Frame]:
    cfg = PipelineConfig(
        detector=DetectorConfig(backend="coco", apriltag_items=False, follow_items=follow, follow_max_s=max_s),
        tracker=TrackerConfig(reid=False), memory=MemoryConfig(db_path=":memory:"))
    base = Frame(image=_scene(0)[0], stamp=0.0, intrinsics=CameraIntrinsics(500.0, 500.0, 319.5, 239.5, W, H),
                 T_map_cam=np.eye(4), depth=np.full((H, W), 2.0, np.float32))
    pipeline = Pipeline(cfg, ItemMemory(cfg.memory), detector=_GlimpseDetector(seen))
    results = []
    for k in range(frames):
        frame = Frame(image=_scene(k)[0], stamp=k * DT, intrinsics=base.intrinsics, T_map_cam=base.T_map_cam,
                      depth=base.depth)
        results.append(pipeline.update(frame))
    return pipeline, results, base


def _where(box: np.ndarray, frame: Frame) -> np.ndarray:
    return lift(Detection(box=box, label="cup", score=0.9, item="cup"), frame, LiftingConfig()).position


@pytest.mark.parametrize("follow", [True, False])
def test_the_memory_follows_an_item_the_detector_lost(follow: bool) -> None:
    frames = 20  # detected in frames 0-3, then carried 16 frames more (144 px) unseen by the detector
    pipeline, results, base = _run(follow, frames)
    with pipeline:
        current = pipeline.locate("cup").current.position
        last_detected = _where(_scene(3)[1], base)
        now = _where(_scene(frames - 1)[1], base)
        if not follow:
            assert np.allclose(current, last_detected)  # stuck where the detector last saw it
            return
        assert np.linalg.norm(current - now) < 0.01  # within 1 cm at 2 m (2.5 px)
        assert np.linalg.norm(now - last_detected) > 0.5  # and it did go somewhere
        track = [t for t in results[-1].tracks if t.item == "cup"]
        assert len(track) == 1 and track[0].state == TrackState.CONFIRMED and track[0].last_seen == results[-1].stamp
        followed = [d for d in results[-1].detections if d.item == "cup"]
        assert len(followed) == 1 and followed[0].followed and followed[0].score == pytest.approx(0.25)


def test_following_stops_follow_max_s_after_the_last_detection() -> None:
    # last detection at frame 3 (0.3 s); followed up to 0.3 + 0.5 s, i.e. through frame 8
    pipeline, results, base = _run(True, 16, max_s=0.5)
    with pipeline:
        stamps = [r.stamp for r in results if any(d.followed for d in r.detections)]
        assert stamps == pytest.approx([0.4, 0.5, 0.6, 0.7, 0.8])
        assert np.linalg.norm(pipeline.locate("cup").current.position - _where(_scene(8)[1], base)) < 0.01


def test_a_real_detection_wins_over_the_followed_box() -> None:
    # Detected again after a gap: the memory takes the detector's box, and no followed box is proposed.
    class _Gappy(_GlimpseDetector):
        def detect(self, frame: Frame) -> list[Detection]:
            k = self.k
            out = super().detect(frame)
            return [Detection(box=_scene(k)[1], label="cup", score=0.9, item="cup")] if k in (10, 11) else out

    cfg = PipelineConfig(detector=DetectorConfig(backend="coco", apriltag_items=False, follow_items=True),
                         tracker=TrackerConfig(reid=False), memory=MemoryConfig(db_path=":memory:"))
    intr = CameraIntrinsics(500.0, 500.0, 319.5, 239.5, W, H)
    depth = np.full((H, W), 2.0, np.float32)
    with Pipeline(cfg, ItemMemory(cfg.memory), detector=_Gappy(4)) as pipeline:
        results = [pipeline.update(Frame(image=_scene(k)[0], stamp=k * DT, intrinsics=intr, T_map_cam=np.eye(4),
                                         depth=depth)) for k in range(12)]
    assert [any(d.followed for d in r.detections) for r in results] == [False] * 4 + [True] * 6 + [False] * 2
    cups = [t for t in results[-1].tracks if t.item == "cup"]
    assert len(cups) == 1 and np.allclose(cups[0].box, _scene(11)[1])  # one track, on the detector's box


def test_followed_sightings_move_current_but_not_the_place() -> None:
    # Seen at x = 0, then followed 2, 4, 6 cm along (all within the 0.3 m place radius): with detections the
    # place's centre would be their mean; followed boxes leave it where the item was seen, and count dwell.
    from spatial_memory_ros.core.types import ItemObservation

    def seen(x: float, t: float, followed: bool) -> ItemObservation:
        return ItemObservation(item="box", position=np.array([x, 0.0, 0.0]), stamp=t, followed=followed)

    for followed in (True, False):
        memory = ItemMemory(MemoryConfig(db_path=":memory:"))
        memory.observe([seen(0.0, 0.0, False)])
        for k in (1, 2, 3):
            memory.observe([seen(0.02 * k, 0.1 * k, followed)])
        answer = memory.locate("box")
        assert np.allclose(answer.current.position, [0.06, 0.0, 0.0])
        assert answer.usual.dwell_s == pytest.approx(0.3) and not answer.alternatives
        assert answer.usual.position[0] == pytest.approx(0.0 if followed else 0.03)  # (0 + 2 + 4 + 6) / 4 cm
        assert answer.usual.observations == (1 if followed else 4)


def test_the_follower_starts_again_when_the_clock_goes_back() -> None:
    """A bag looped: the tracker restarts its ids, but the follower kept its tracks with their last detection in
    the future, so following never timed out and stale boxes reached the item memory."""
    from spatial_memory_ros.core.item_follow import ItemFollower, _Followed

    follower = ItemFollower(["cup"], max_s=1.0, score=0.3)
    image, box = _scene(0)
    follower.propose(image, 100.0, [])
    follower._followed[1] = _Followed(box, "cup", "cup", 100.2)
    assert follower.propose(_scene(1)[0], 100.3, []) != []  # followed, within max_s
    follower._followed[1] = _Followed(box, "cup", "cup", 100.2)
    assert follower.propose(_scene(2)[0], 0.0, []) == []  # the clock went back: nothing is followed
    assert follower._followed == {}


@pytest.mark.parametrize("size", [(320, 240), (1280, 960)])
def test_the_follower_starts_again_at_a_new_image_size(size: tuple[int, int]) -> None:
    """640 and 1280 px wide both shrink to the same working copy: the old size's box was followed in the new."""
    import cv2

    from spatial_memory_ros.core.item_follow import ItemFollower, _Followed

    follower = ItemFollower(["cup"], max_s=10.0, score=0.3)
    blocks = np.random.default_rng(7).integers(0, 256, (H // 8, W // 8, 3), dtype=np.uint8)
    image = np.kron(blocks, np.ones((8, 8, 1), np.uint8))  # texture everywhere: flow holds on anywhere
    box = np.array([100.0, 80.0, 200.0, 160.0])
    follower.propose(image, 0.0, [])
    follower._followed[1] = _Followed(box, "cup", "cup", 0.0)
    assert follower.propose(cv2.resize(image, size, interpolation=cv2.INTER_NEAREST), 0.1, []) == []
