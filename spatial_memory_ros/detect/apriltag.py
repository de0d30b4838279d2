"""AprilTag 36h11 items as an ObjectDetector: core.tags.TagDetector plus the tag -> item name mapping."""

from __future__ import annotations

import numpy as np

from ..core.config import TagConfig
from ..core.geometry import split_transform
from ..core.tags import TagDetector
from ..core.types import Detection, Frame, PositionSource, TagDetection

TAG_LABEL = "item"
_TAG_ERROR_SCALE_PX = 2.0  # tag score = exp(-reprojection error / this): a poor pose fit is less trusted


class AprilTagDetector:
    """Identified items from AprilTags: label "item", item = the tag's name, map pose from PnP + camera pose."""

    def __init__(self, config: TagConfig) -> None:
        self.config = config
        self._tags = TagDetector(config.tag_size_m)

    def detect_tags(self, frame: Frame) -> list[TagDetection]:
        """The raw tags (corners, camera-frame pose), sorted by id."""
        return self._tags.detect(frame.image, frame.intrinsics)

    def detect_tags_with_rejected(self, frame: Frame) -> tuple[list[TagDetection], list[np.ndarray]]:
        """detect_tags(), plus the (4, 2) px quads the finder could not decode."""
        return self._tags.detect_with_rejected(frame.image, frame.intrinsics)

    def to_detection(self, tag: TagDetection, T_map_cam: np.ndarray | None) -> Detection:
        """One tag as a tracker detection, positioned (TAG) when both its pose and the camera pose are known."""
        position = orientation = None
        score = 1.0  # a decoded 36h11 id is reliable (Hamming distance 11); only the pose can be poor
        if tag.T_cam_tag is not None:
            score = float(np.exp(-tag.reprojection_error_px / _TAG_ERROR_SCALE_PX))
            if T_map_cam is not None:
                position, orientation = split_transform(T_map_cam @ tag.T_cam_tag)
        return Detection(
            box=tag.box,
            label=TAG_LABEL,
            score=score,
            item=self.config.name_for(tag.tag_id),
            position=position,
            orientation=orientation,
            is_dynamic=False,
            position_source=PositionSource.TAG if position is not None else PositionSource.NONE,
        )

    def detect(self, frame: Frame) -> list[Detection]:
        return [self.to_detection(tag, frame.T_map_cam) for tag in self.detect_tags(frame)]
