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


# A bench run of a few frames, for comparing what the methods were given with and without an error on their input.
BASE_RUN: dict[str, Any] = dict(preset="warehouse", camera="patrol", minutes=0.02, seed=7, jobs=1, samples=0)


def run_exact_and_noisy(monkeypatch: pytest.MonkeyPatch, **noise: float
                        ) -> tuple[runner.BenchResult, runner.BenchResult, FrameRecorder, FrameRecorder]:
    """BASE_RUN without and then with `noise` (BenchConfig fields): both results and both runs' recorders."""
    recorders = record_methods(monkeypatch)
    exact = runner.run_bench(runner.BenchConfig(**BASE_RUN), progress=False)
    noisy = runner.run_bench(runner.BenchConfig(**BASE_RUN, **noise), progress=False)
    a, b = recorders
    return exact, noisy, a, b
