"""make_detector(config): the backend detector.backend names, built once at start-up."""

from __future__ import annotations

from ..core.config import DetectorConfig, TagConfig
from ..core.errors import BadInputError
from .base import ObjectDetector


def make_detector(config: DetectorConfig, tags: TagConfig | None = None, *, device: str = "auto") -> ObjectDetector:
    """The detector for config.backend; raises BadInputError saying what to install or set.

    tags: tag size and item names (apriltag backend; default TagConfig()). device: auto | cpu | cuda, for
    backends that can use a GPU (onnx); the coco backend runs on OpenCV's CPU path.
    """
    if config.backend == "apriltag":
        from .apriltag import AprilTagDetector

        return AprilTagDetector(tags if tags is not None else TagConfig())
    if config.backend == "coco":
        from .coco_ssd import CocoSsdDetector

        return CocoSsdDetector(config)
    if config.backend == "onnx":
        from .onnx_yolo import OnnxYoloDetector

        return OnnxYoloDetector(config, device=device)
    raise BadInputError(f"detector.backend must be apriltag, coco or onnx, got {config.backend!r}")
