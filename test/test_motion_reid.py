"""Moving regions re-identified by the learned model's looks (tracker.reid_motion): an id survives an object
leaving view and coming back, through the pipeline the node, run and bench use.

The change backend here replays scripted regions with hand-made looks in ChangeOutput.motion_appearance,
where LearnedChangeDetector puts the model's re-identification embedding of each region (test_model_reid.py
checks that it does); BENCHMARKS.md, "Re-identification by the learned model", has the real embeddings.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from spatial_memory_ros.core.change import ChangeOutput
from spatial_memory_ros.core.config import MemoryConfig, PipelineConfig, TrackerConfig
from spatial_memory_ros.core.item_memory import ItemMemory
from spatial_memory_ros.core.pipeline import Pipeline
from spatial_memory_ros.core.tracker import Tracker
from spatial_memory_ros.core.types import MOTION_LABEL, CameraIntrinsics, Detection, Frame, TrackState

DT = 0.1  # s between frames
W, H = 160, 120  # image px
INTR = CameraIntrinsics(100.0, 100.0, 80.0, 60.0, W, H)
DIM = 8  # the tiny model's embed_dim; the shipped one's is larger, the tracker does not mind
BASIS = np.eye(DIM)


def look(distance: float, of: int = 0, towards: int = 1) -> np.ndarray:
    """A unit vector at exactly this cosine distance from BASIS[of] (turned towards BASIS[towards])."""
    c = 1.0 - distance
    return c * BASIS[of] + np.sqrt(max(1.0 - c * c, 0.0)) * BASIS[towards]


Region = tuple[tuple[float, float, float, float], np.ndarray]  # (box px, look)


class _Scripted:
    """A change backend that replays, frame by frame, the moving regions of a script with their looks."""

    def __init__(self, script: list[list[Region]]) -> None:
        self.script = script
        self.k = 0

    def update(self, image_bgr: np.ndarray, T_map_cam: np.ndarray | None = None,
               intrinsics: CameraIntrinsics | None = None, stamp: float | None = None) -> ChangeOutput:
        regions = self.script[self.k]
        self.k += 1
        looks = np.array([v for _, v in regions], np.float32).reshape(len(regions), DIM)
        return ChangeOutput(mask=np.zeros(image_bgr.shape[:2], np.uint8),
                            motion_boxes=[np.array(b, np.float64) for b, _ in regions], camera_moved=False,
                            motion_appearance=looks)

    def reset(self) -> None:
        self.k = 0


def leave_and_return(gone_frames: int, back_look: np.ndarray) -> list[list[Region]]:
    """A walks right and out of view, is gone gone_frames frames, and walks back in from the right edge with
    back_look; B walks slowly on the left all along, with a look of its own."""
    b_look = look(0.0, of=2)
    script: list[list[Region]] = []
    for k in range(12):  # A: 8 px a frame to the right, then out of view
        x = 40.0 + 8.0 * k
        script.append([((x, 40.0, x + 30.0, 100.0), look(0.02 * (k % 2))), ((5.0 + k, 40.0, 35.0 + k, 100.0), b_look)])
    for k in range(gone_frames):
        x = 17.0 + k
        script.append([((x, 40.0, x + 30.0, 100.0), b_look)])
    for k in range(8):  # A (or someone else) comes back in on the right, walking left
        x = 128.0 - 8.0 * k
        script.append([((x, 40.0, x + 30.0, 100.0), back_look),
                       ((17.0 + gone_frames + k, 40.0, 47.0 + gone_frames + k, 100.0), b_look)])
    return script


def ids_of_a(tracker: TrackerConfig, script: list[list[Region]]) -> tuple[int, list[int]]:
    """Run the pipeline on the script; (A's id before it left, A's ids after it came back)."""
    config = PipelineConfig(memory=MemoryConfig(db_path=":memory:"), tracker=tracker)
    pipeline = Pipeline(config, ItemMemory(config.memory), change=_Scripted(script))
    per_frame = []
    for k in range(len(script)):
        stamp = k * DT
        result = pipeline.update(Frame(np.zeros((H, W, 3), np.uint8), stamp, INTR, np.eye(4)))
        matched = {tuple(np.round(t.box, 3)): t.track_id for t in result.tracks
                   if t.last_seen == stamp and t.state == TrackState.CONFIRMED}
        box_a = script[k][0][0] if len(script[k]) == 2 else None
        per_frame.append(None if box_a is None else matched.get(tuple(np.round(box_a, 3))))
    pipeline.close()
    before = per_frame[11]
    after = per_frame[-6:]
    assert before is not None and all(i is not None for i in after)
    return before, [int(i) for i in after if i is not None]


def learned_tracker(**kw: object) -> TrackerConfig:
    """The default tracker settings with the learned backend's min_hits (1, as the bench's learned method)."""
    return replace(TrackerConfig(min_hits=1), **kw)  # type: ignore[arg-type]


def test_id_survives_leaving_view_and_coming_back_by_the_model_looks() -> None:
    before, after = ids_of_a(learned_tracker(), leave_and_return(15, look(0.1)))
    assert after == [before] * 6


def test_without_reid_motion_the_returning_object_gets_a_new_id() -> None:
    before, after = ids_of_a(learned_tracker(reid_motion=False), leave_and_return(15, look(0.1)))
    assert before not in after


@pytest.mark.parametrize(
    ("gone_frames", "distance", "kept"),
    [(15, 0.25, True),  # within reid_motion_max_distance (0.3) and reid_motion_max_age_s (2.5 s)
     (15, 0.5, False),  # someone who looks different: a new id
     (30, 0.1, False)],  # gone longer than reid_motion_max_age_s: the model's look is not trusted so long
)
def test_motion_reid_thresholds(gone_frames: int, distance: float, kept: bool) -> None:
    before, after = ids_of_a(learned_tracker(), leave_and_return(gone_frames, look(distance)))
    assert (after == [before] * 6) == kept
    assert kept or before not in after


def motion(x: float, v: np.ndarray, label: str = MOTION_LABEL) -> Detection:
    return Detection(box=np.array([x, 40.0, x + 30.0, 100.0]), label=label, score=0.5, is_dynamic=True,
                     appearance=v)


@pytest.mark.parametrize(("label", "kept"), [(MOTION_LABEL, True), ("person", False)])
def test_overlap_alone_matches_moving_regions_frame_to_frame(label: str, kept: bool) -> None:
    """The model's look of one agent can jump between frames (its 90th percentile a second apart was 0.5
    on warehouse patrol): a moving region that overlaps its track keeps it whatever its look; an embedder's
    look that different still splits a person's track, as before."""
    tracker = Tracker(TrackerConfig(min_hits=1))
    (first,) = tracker.update([motion(50.0, look(0.0), label)], 0.0)
    (t,) = [t for t in tracker.update([motion(53.0, look(0.9), label)], DT) if t.last_seen == DT]
    assert (t.track_id == first.track_id) == kept


def test_people_keep_their_own_reid_settings() -> None:
    """A look 0.25 away re-identifies a lost person (reid_max_distance 0.3) but not a moving region whose
    reid_motion_max_distance is set to 0.2."""
    config = TrackerConfig(min_hits=1, reid_motion_max_distance=0.2)
    for label, kept in ((MOTION_LABEL, False), ("person", True)):
        tracker = Tracker(config)
        (first,) = tracker.update([motion(50.0, look(0.0), label)], 0.0)
        tracker.update([], DT)
        (t,) = [t for t in tracker.update([motion(90.0, look(0.25), label)], 2 * DT) if t.last_seen == 2 * DT]
        assert (t.track_id == first.track_id) == kept, label
