"""What a method costs to run: frames per second, peak memory, and memory growth per simulated hour.

Growth is the number that matters for a memory meant to run for days: a method that keeps every
observation grows without bound even when its frame rate looks fine in a short run.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from dataclasses import dataclass
from types import TracebackType

import numpy as np

from ..core.errors import BadInputError
from .scores import Scores

_MB = 2.0**20  # "MB" in this module is MiB
_WARMUP_FRACTION = 0.1  # of the sampled sim-time span, left out of the growth fit (caches, pools filling up)


@dataclass(frozen=True)
class CostScores(Scores):
    """Cost of a run. growth_mb_per_hour is NaN with fewer than two samples after the warm-up."""

    fps: float  # frames / wall_s; 0.0 before any frame
    peak_rss_mb: float  # the process's peak resident set since it started (not only this run)
    growth_mb_per_hour: float  # least-squares slope of RSS against simulated time, after the warm-up
    n_frames: int
    wall_s: float  # time measured by tick() or the with-blocks


class CostMeter:
    """Times a processing loop and samples memory.

    Timing, one of two ways (do not mix them):
    - ``with meter: method.step(frame)`` times only the block, one frame per block: the method's cost
      without the benchmark's own work (rendering, scoring) in between;
    - ``meter.tick(n_frames)`` after each step: the time since the previous tick (the first tick counts
      from when the meter was made), so make the meter just before the loop.
    Memory: call ``sample(sim_time_s)`` now and then (e.g. every simulated minute; 16 bytes a sample).
    """

    def __init__(self) -> None:
        self._frames = 0
        self._busy_s = 0.0
        self._last = time.perf_counter()
        self._entered: float | None = None
        self._sim_s: list[float] = []
        self._rss_mb: list[float] = []

    def tick(self, n_frames: int = 1) -> None:
        now = time.perf_counter()
        self._busy_s += now - self._last
        self._last = now
        self._frames += n_frames

    def __enter__(self) -> CostMeter:
        self._entered = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        now = time.perf_counter()
        if self._entered is not None:
            self._busy_s += now - self._entered
            self._frames += 1
        self._entered = None
        self._last = now

    def sample(self, sim_time_s: float) -> None:
        """Record the current RSS against the simulated time (s) it was reached at."""
        t = float(sim_time_s)
        if not np.isfinite(t):
            raise BadInputError(f"sim_time_s must be finite seconds, got {sim_time_s}")
        self._sim_s.append(t)
        self._rss_mb.append(current_rss_mb())

    def summary(self) -> CostScores:
        return CostScores(
            fps=self._frames / self._busy_s if self._busy_s > 0 else 0.0,
            peak_rss_mb=peak_rss_mb(),
            growth_mb_per_hour=growth_per_hour(np.array(self._sim_s), np.array(self._rss_mb)),
            n_frames=self._frames,
            wall_s=self._busy_s,
        )


def growth_per_hour(sim_s: np.ndarray, rss_mb: np.ndarray) -> float:
    """Least-squares slope (MB per simulated hour) of rss_mb against sim_s, leaving out the first 10% of the
    sampled time span as warm-up; NaN when fewer than two distinct times remain."""
    if len(sim_s) == 0:
        return float("nan")
    start = sim_s.min() + _WARMUP_FRACTION * (sim_s.max() - sim_s.min())
    keep = sim_s >= start
    hours = sim_s[keep] / 3600.0
    if len(np.unique(hours)) < 2:
        return float("nan")
    return float(np.polyfit(hours, rss_mb[keep], 1)[0])


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / _MB if sys.platform == "darwin" else peak * 1024 / _MB  # bytes on macOS, KiB on Linux


def current_rss_mb() -> float:
    """Resident set size of this process now, MB (/proc/self/statm; the peak where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            resident_pages = int(f.read().split()[1])
    except OSError:
        return peak_rss_mb()
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / _MB
