"""The methods the benchmark compares, all behind one small protocol, fed the same frames in one pass.

A method sees only what a robot would (the core Frame: image, depth, pose, intrinsics), never the truth.
Per frame it may give dynamic-object tracks and a change mask; at any time it may answer where an item
usually is and where it is now. What it does not do it leaves as None and is not scored for.

To add a method (e.g. the learned model of issue 4): write a class with this protocol and register a
factory in METHODS; `spatial-memory bench --methods ...` then runs it beside the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from ..core.change import ChangeDetector
from ..core.config import ChangeConfig, MemoryConfig, PipelineConfig, TagConfig
from ..core.errors import BadInputError, UnknownItemError
from ..core.geometry import pose_delta
from ..core.tags import TagDetector
from ..core.types import Frame, TagDetection, TrackState
from ..sim import SimScene

TRACKING, CHANGE, MEMORY = "tracking", "change", "memory"
_TAG_BLOB_OVERLAP = 0.5  # a motion blob mostly inside a tag's box is that tag's item, not a dynamic object


@dataclass(frozen=True)
class MethodOutput:
    """One frame's answer. None = this method does not do that (it is then not scored for it)."""

    track_ids: np.ndarray | None = None  # (M,) int64 ids of the dynamic objects it reports now
    track_boxes: np.ndarray | None = None  # (M, 4) px x1, y1, x2, y2
    change_mask: np.ndarray | None = None  # (H, W) uint8, 255 = changed


Location = tuple[np.ndarray, np.ndarray]  # (usual (3,), current (3,)) m, map frame


class Method(Protocol):
    """What the runner needs from a method. `capabilities` says which of its outputs are scored."""

    name: str
    capabilities: frozenset[str]  # subset of {TRACKING, CHANGE, MEMORY}

    def update(self, frame: Frame) -> MethodOutput:
        """Process the next frame (in order, each once)."""
        ...

    def locate(self, item: str) -> Location | None:
        """(usual, current) of an item now, or None when the method does not know it."""
        ...

    def close(self) -> None: ...


_NO_TRACKS = (np.zeros(0, np.int64), np.zeros((0, 4)))


class PipelineMethod:
    """The current core Pipeline (tags + classical change + tracker + dwell memory), memory in RAM.

    Tracks scored: dynamic ones in state CONFIRMED (tentative ones are not claimed yet, lost ones are
    only predictions). shared_tags: where to offer each frame's decoded tags to the baselines. name: the
    method's name in the report (pipeline_prior is this with memory.return_prior on).
    """

    name = "pipeline"
    capabilities = frozenset({TRACKING, CHANGE, MEMORY})

    def __init__(self, config: PipelineConfig, shared_tags: FrameTags | None = None, *, name: str = "pipeline") -> None:
        from ..core.pipeline import Pipeline  # lazily: the CLI starts without loading the pipeline

        self.name = name
        self.pipeline = Pipeline.open(config)
        self._shared_tags = shared_tags

    def update(self, frame: Frame) -> MethodOutput:
        result = self.pipeline.update(frame)
        if self._shared_tags is not None:
            self._shared_tags.offer(frame, result.tags)
        tracks = [t for t in result.tracks if t.is_dynamic and t.state == TrackState.CONFIRMED]
        ids = np.array([t.track_id for t in tracks], np.int64)
        boxes = np.array([t.box for t in tracks], np.float64).reshape(-1, 4)
        return MethodOutput(ids, boxes, result.change_mask)

    def locate(self, item: str) -> Location | None:
        try:
            answer = self.pipeline.locate(item)
        except UnknownItemError:
            return None
        return answer.usual.position, answer.current.position

    def close(self) -> None:
        self.pipeline.close()


class Mog2Method:
    """OpenCV's MOG2 background subtractor (shadows off) as the change mask; nothing else.

    MOG2 assumes a still camera, so it is given the pipeline's own rule for a moving one: when the pose
    has moved more than pose_reset_translation_m / pose_reset_rotation_deg since the model was started, a
    new model starts from this frame and the mask is empty. Without that, every patrol frame would be
    "all changed", which says nothing about the background model.
    """

    name = "mog2"
    capabilities = frozenset({CHANGE})

    def __init__(self, change: ChangeConfig) -> None:
        self._config = change
        self._model: cv2.BackgroundSubtractorMOG2 | None = None
        self._pose: np.ndarray | None = None

    def update(self, frame: Frame) -> MethodOutput:
        moved = False
        if frame.T_map_cam is not None and self._pose is not None:
            metres, degrees = pose_delta(self._pose, frame.T_map_cam)
            moved = metres > self._config.pose_reset_translation_m or degrees > self._config.pose_reset_rotation_deg
        if self._model is None or moved:
            self._model = cv2.createBackgroundSubtractorMOG2(detectShadows=False)
            self._pose = None if frame.T_map_cam is None else np.array(frame.T_map_cam)
            self._model.apply(frame.image)
            return MethodOutput(change_mask=np.zeros(frame.image.shape[:2], np.uint8))
        return MethodOutput(change_mask=self._model.apply(frame.image))

    def locate(self, item: str) -> Location | None:
        return None

    def close(self) -> None:
        self._model = None


class FrameTags:
    """The current frame's decoded tags, for the baselines that need them: the pipeline's own detections
    when it has processed the frame (offer), else detected here once however many baselines ask. Tag
    detection is the costliest step, and sharing it means every method sees the same tags."""

    def __init__(self, tags: TagConfig) -> None:
        self._tags = tags
        self._detector: TagDetector | None = None
        self._frame: Frame | None = None
        self._positions: dict[str, np.ndarray] = {}
        self._boxes = np.zeros((0, 4))

    def offer(self, frame: Frame, found: Sequence[TagDetection]) -> None:
        """The tags another method (the pipeline) decoded in this frame, with the same detector settings."""
        if frame is not self._frame:
            self._positions = {
                self._tags.name_for(tag.tag_id): (frame.T_map_cam @ tag.T_cam_tag)[:3, 3]
                for tag in found
                if tag.T_cam_tag is not None and frame.T_map_cam is not None
            }
            self._boxes = np.array([tag.box for tag in found], np.float64).reshape(-1, 4)
            self._frame = frame

    def detect(self, frame: Frame) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """({item name: (3,) m map position}, (T, 4) px boxes of every decoded tag) for this frame."""
        if frame is not self._frame:
            if self._detector is None:
                self._detector = TagDetector(self._tags.tag_size_m)
            self.offer(frame, self._detector.detect(frame.image, frame.intrinsics))
        return self._positions, self._boxes


class NoMemoryMethod:
    """Frame-by-frame detection, no memory: the pipeline's detectors, no tracker, no item memory.

    Tracks: every moving blob (a ChangeDetector with the pipeline's settings, minus blobs that are a tag's
    box) with a fresh id each frame, so identity is never carried over. Items: only those whose tag is
    decoded in the current frame (the shared FrameTags) are known, at that frame's position.
    """

    name = "no_memory"
    capabilities = frozenset({TRACKING, MEMORY})

    def __init__(self, tags: FrameTags, change: ChangeConfig) -> None:
        self._tags = tags
        self._change = ChangeDetector(change)
        self._next_id = 1
        self._visible: dict[str, np.ndarray] = {}

    def update(self, frame: Frame) -> MethodOutput:
        self._visible, tag_boxes = self._tags.detect(frame)
        blobs = [b for b in self._change.update(frame.image, frame.T_map_cam).motion_boxes if not _in_tag(b, tag_boxes)]
        if not blobs:
            return MethodOutput(*_NO_TRACKS)
        ids = np.arange(self._next_id, self._next_id + len(blobs), dtype=np.int64)
        self._next_id += len(blobs)
        return MethodOutput(ids, np.stack(blobs))

    def locate(self, item: str) -> Location | None:
        p = self._visible.get(item)
        return None if p is None else (p, p)

    def close(self) -> None:
        self._visible = {}


class LastSeenMethod:
    """Item memory that only remembers the last sighting: usual = current = where the tag was last decoded."""

    name = "last_seen"
    capabilities = frozenset({MEMORY})

    def __init__(self, tags: FrameTags) -> None:
        self._tags = tags
        self._last: dict[str, np.ndarray] = {}

    def update(self, frame: Frame) -> MethodOutput:
        self._last.update(self._tags.detect(frame)[0])
        return MethodOutput()

    def locate(self, item: str) -> Location | None:
        p = self._last.get(item)
        return None if p is None else (p, p)

    def close(self) -> None:
        self._last = {}


class FirstSeenMethod(LastSeenMethod):
    """Item memory that never updates: usual = current = where the tag was first decoded. A floor for layout
    and R@1: the simulated scenes start every item at its home, so this answers "usual" right for every item
    first seen before it was moved, and "current" for every item not moved since."""

    name = "first_seen"

    def update(self, frame: Frame) -> MethodOutput:
        for item, position in self._tags.detect(frame)[0].items():
            self._last.setdefault(item, position)
        return MethodOutput()


class EmptyMaskMethod:
    """A change mask with nothing in it: the floor for change mIoU, whose unchanged class (about 98 % of the
    pixels) gives any near-empty mask about 0.49."""

    name = "empty_mask"
    capabilities = frozenset({CHANGE})

    def update(self, frame: Frame) -> MethodOutput:
        return MethodOutput(change_mask=np.zeros(frame.image.shape[:2], np.uint8))

    def locate(self, item: str) -> Location | None:
        return None

    def close(self) -> None:
        pass


def _in_tag(box: np.ndarray, tag_boxes: np.ndarray) -> bool:
    """Whether most of a blob's box (4,) lies inside one of the tag boxes (T, 4)."""
    if len(tag_boxes) == 0:
        return False
    w = np.clip(np.minimum(box[2], tag_boxes[:, 2]) - np.maximum(box[0], tag_boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], tag_boxes[:, 3]) - np.maximum(box[1], tag_boxes[:, 1]), 0, None)
    area = max(float((box[2] - box[0]) * (box[3] - box[1])), 1e-9)
    return bool((w * h / area > _TAG_BLOB_OVERLAP).any())


def pipeline_config(scene: SimScene) -> PipelineConfig:
    """The pipeline's default settings with the scene's tags and the classical change detector (the benchmark's
    baselines are the classical pipeline; the learned methods set their own), memory in RAM (a bench leaves no
    files)."""
    return PipelineConfig(tags=scene.tag_config(), change=ChangeConfig(method="classical"),
                          memory=MemoryConfig(db_path=":memory:"))


class BenchContext:
    """What a method factory gets: the scene (its tags, intrinsics, rate) and work shared between methods."""

    def __init__(self, scene: SimScene, model_path: str = "", still_head_scale: int | None = None,
                 follow_turns: bool | None = None) -> None:
        self.scene = scene
        config = pipeline_config(scene)
        follow = config.change.follow_turns if follow_turns is None else follow_turns
        scale = config.change.still_head_scale if still_head_scale is None else still_head_scale
        change = replace(config.change, model_path=model_path or config.change.model_path,
                         still_head_scale=scale, follow_turns=follow)
        self.config = replace(config, change=change)
        self._tags: FrameTags | None = None

    @property
    def tags(self) -> FrameTags:
        if self._tags is None:
            self._tags = FrameTags(self.config.tags)
        return self._tags


MethodFactory = Callable[[BenchContext], Method]
METHODS: dict[str, MethodFactory] = {
    "pipeline": lambda ctx: PipelineMethod(ctx.config, ctx.tags),
    "mog2": lambda ctx: Mog2Method(ctx.config.change),
    "no_memory": lambda ctx: NoMemoryMethod(ctx.tags, ctx.config.change),
    "last_seen": lambda ctx: LastSeenMethod(ctx.tags),
    "first_seen": lambda ctx: FirstSeenMethod(ctx.tags),
    "empty_mask": lambda ctx: EmptyMaskMethod(),
}
DEFAULT_METHODS = tuple(METHODS)


def with_return_prior(config: PipelineConfig, on: bool = True) -> PipelineConfig:
    """config with memory.return_prior on (the shipped prior) or off."""
    return replace(config, memory=replace(config.memory, return_prior=on))


def with_tag_reader(config: PipelineConfig, on: bool = True) -> PipelineConfig:
    """config with detector.learned_tag_reader on (the shipped reader) or off."""
    return replace(config, detector=replace(config.detector, learned_tag_reader=on))


def _learned(ctx: BenchContext, use_memory: bool, reid_motion: bool | None = None, return_prior: bool = True,
             tag_reader: bool = True, floor_memory: bool = True, slot_memory: bool = True) -> Method:
    from ..model.bench_method import LearnedMethod  # lazily: torch loads only when a learned method is asked for

    return LearnedMethod(ctx.config, use_memory=use_memory, reid_motion=reid_motion, return_prior=return_prior,
                         tag_reader=tag_reader, floor_memory=floor_memory, slot_memory=slot_memory)


# Opt-in (not in DEFAULT_METHODS): the learned model of issue 4 (with its floor memory, the learned return
# prior of the item memory and the learned tag reader) and its ablations, each one change away from it: the
# model's recurrent memory and the floor memory disabled; the floor memory alone disabled; the recurrent slots
# alone disabled (the rest of the memory kept); tracks without the model's re-identification looks
# (tracker.reid_motion off); the return prior off; the tag reader off. And the classical pipeline with the
# return prior, or the tag reader, on, so a reader sees what each does alone.
METHODS["learned"] = lambda ctx: _learned(ctx, True)
METHODS["learned_no_memory"] = lambda ctx: _learned(ctx, False)
METHODS["learned_no_floor"] = lambda ctx: _learned(ctx, True, floor_memory=False)
METHODS["learned_no_slots"] = lambda ctx: _learned(ctx, True, slot_memory=False)
METHODS["learned_no_reid"] = lambda ctx: _learned(ctx, True, reid_motion=False)
METHODS["learned_no_prior"] = lambda ctx: _learned(ctx, True, return_prior=False)
METHODS["learned_no_reader"] = lambda ctx: _learned(ctx, True, tag_reader=False)
METHODS["pipeline_prior"] = lambda ctx: PipelineMethod(with_return_prior(ctx.config), name="pipeline_prior")
METHODS["pipeline_reader"] = lambda ctx: PipelineMethod(with_tag_reader(ctx.config), name="pipeline_reader")


def make_methods(names: Sequence[str], scene: SimScene, *, model_path: str = "",
                 still_head_scale: int | None = None, follow_turns: bool | None = None) -> list[Method]:
    """The named methods, set up for this scene; BadInputError names the unknown ones.

    model_path: the learned methods' model file instead of the shipped one (change.model_path);
    still_head_scale, follow_turns: change.still_head_scale and follow_turns for them (None: the
    default)."""
    unknown = [n for n in names if n not in METHODS]
    if unknown or not names:
        raise BadInputError(f"unknown methods {unknown}; choose from {sorted(METHODS)}")
    if len(set(names)) != len(names):
        raise BadInputError(f"a method is named twice: {list(names)}")
    if model_path and not Path(model_path).is_file():
        raise BadInputError(f"no model file at {model_path}")
    ctx = BenchContext(scene, model_path, still_head_scale, follow_turns)
    return [METHODS[n](ctx) for n in names]
