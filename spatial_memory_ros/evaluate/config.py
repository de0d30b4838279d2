"""The pipeline configuration the real-video evaluations run by default."""

from __future__ import annotations

import dataclasses

from ..core.config import MemoryConfig, PipelineConfig


def default_config() -> PipelineConfig:
    """The pipeline as the node runs it with detector.backend coco; no tags (these videos have none),
    memory in RAM (an evaluation leaves no files)."""
    base = PipelineConfig()
    return dataclasses.replace(
        base,
        detector=dataclasses.replace(base.detector, backend="coco", apriltag_items=False),
        memory=MemoryConfig(db_path=":memory:"),
    )
