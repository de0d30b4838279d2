"""The pipeline's tag step: AprilTags, and the learned reader's reads of the quads they leave undecoded; apart from
the pipeline because the reads' agreement keeps state of its own, item by item."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ..detect.apriltag import TAG_LABEL, AprilTagDetector
from .config import PipelineConfig
from .lifting import plane_point
from .sightings import overlaps
from .tags import to_gray
from .types import Detection, Frame, PositionSource, TagDetection

# A learned read counts only when the previous read of the same item, at most _READ_AGREE_S earlier, put it
# within _READ_AGREE_M: about 1 % of reads name the wrong item (far, oblique quads), one frame at a time,
# and with min_hits 1 a single one would move the item's "current" to another item's place.
_READ_AGREE_S = 1.0
_READ_AGREE_M = 0.5


class TagRead(Protocol):
    """One quad read as a known tag (model.tag_reader.TagRead)."""

    @property
    def tag_id(self) -> int: ...

    @property
    def quad(self) -> np.ndarray: ...  # (4, 2) px

    @property
    def p_tag(self) -> float: ...  # 0..1, how sure the reader is that the quad is a tag at all


class TagReaderBackend(Protocol):
    """Reads quads the tag finder could not decode as known tag ids (model.tag_reader.TagReader)."""

    def read(self, gray: np.ndarray, quads: list[np.ndarray]) -> Sequence[TagRead]: ...


class TagStep:
    """The frame's tags as identified items (core.pipeline.Pipeline's docstring): AprilTags, and with a learned
    reader the quads the tag finder could not decode, read as configured items."""

    def __init__(self, config: PipelineConfig, tag_reader: TagReaderBackend | None = None) -> None:
        """tag_reader: None = model.tag_reader.TagReader over the configured items' ids when
        detector.learned_tag_reader is on."""
        self.config = config
        self._tags = AprilTagDetector(config.tags)
        if tag_reader is None and config.detector.learned_tag_reader:
            from ..model.tag_reader import TagReader  # imports torch: only when the reader is asked for

            tag_reader = TagReader(list(config.tags.items.values()), min_margin=config.detector.tag_reader_min_margin)
        self.reader = tag_reader
        self._last_read: dict[str, tuple[float, np.ndarray]] = {}  # item -> (stamp, map position) of its last read

    def detect(self, frame: Frame) -> tuple[list[TagDetection], list[Detection]]:
        """The tags, raw and as detections (the learned reader's reads among them if it is on)."""
        tags: list[TagDetection]
        quads: list[np.ndarray]
        if self.reader is not None:
            tags, quads = self._tags.detect_tags_with_rejected(frame)
        else:
            tags, quads = self._tags.detect_tags(frame), []
        detections = [self._tags.to_detection(tag, frame.T_map_cam) for tag in tags]
        if quads:
            detections += self._read_quads(frame, tags, quads)
        return tags, detections

    def forget_reads(self) -> None:
        """Forget each item's last read (the clock went back, or a reset)."""
        self._last_read.clear()

    def _read_quads(self, frame: Frame, tags: list[TagDetection], quads: list[np.ndarray]) -> list[Detection]:
        """The learned reader's items among the undecoded quads, placed on the lifting plane (a read has no
        pose of its own), where the item's previous read agrees (_READ_AGREE_S, _READ_AGREE_M). A quad around
        or inside a decoded tag (its board, a piece of it) is that tag. Without a pose a read is dropped."""
        assert self.reader is not None
        if frame.intrinsics is None or frame.T_map_cam is None:
            return []
        boxes = [t.box for t in tags]
        rest = [q for q in quads if not any(overlaps(q, b) for b in boxes)]
        if not rest:
            return []
        decoded = {t.tag_id for t in tags}
        out = []
        stamp, lifting = float(frame.stamp), self.config.lifting
        for read in self.reader.read(to_gray(frame.image), rest):
            if read.tag_id in decoded:
                continue
            position = plane_point(read.quad.mean(axis=0), frame.intrinsics, frame.T_map_cam,
                                   lifting.plane_height_m, lifting.max_range_m)
            if position is None:
                continue
            item = self.config.tags.name_for(read.tag_id)
            previous = self._last_read.get(item)
            self._last_read[item] = (stamp, position)
            if previous is None or not (0 < stamp - previous[0] <= _READ_AGREE_S
                                        and np.linalg.norm(position[:2] - previous[1][:2]) <= _READ_AGREE_M):
                continue
            box = np.concatenate([read.quad.min(axis=0), read.quad.max(axis=0)])
            out.append(Detection(box=box, label=TAG_LABEL, score=read.p_tag, item=item, position=position,
                                 is_dynamic=False, position_source=PositionSource.GROUND_PLANE))
        return out
