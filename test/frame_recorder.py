"""A bench 'method' for tests of what the bench hands the methods: it keeps every frame it is given and marks
nothing; record_methods() makes run_bench build one per run."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from spatial_memory_ros.bench import runner
from spatial_memory_ros.bench.methods import CHANGE, Method, MethodOutput
from spatial_memory_ros.core.types import Frame


class FrameRecorder:
    name = "recorder"
    capabilities = frozenset({CHANGE})

    def __init__(self) -> None:
        self.frames: list[Frame] = []

    def update(self, frame: Frame) -> MethodOutput:
        self.frames.append(frame)
        return MethodOutput(change_mask=np.zeros(frame.image.shape[:2], np.uint8))

    def locate(self, item: str) -> None:
        return None

    def close(self) -> None:
        pass


def record_methods(monkeypatch: pytest.MonkeyPatch) -> list[FrameRecorder]:
    """From now on each run_bench gets one FrameRecorder as its only method; the list holds them, in run order."""
    recorders: list[FrameRecorder] = []

    def make(names: list[str], scene: Any, **_: Any) -> list[Method]:
        recorders.append(FrameRecorder())
        return [recorders[-1]]

    monkeypatch.setattr(runner, "make_methods", make)
    return recorders
