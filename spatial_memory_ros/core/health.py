"""How the node is doing, for an operator: frames in, frames processed, frames dropped and why, step time.

The node logs each kind of bad input (throttled), but a log scrolls past; a robot's operator looks at one
place for every node's health (ROS's /diagnostics, shown by rqt_robot_monitor). FrameHealth counts what
happened to each camera frame over a sliding window and grades it the way an operator reads it:

- ERROR: no image for ``window_s`` (the camera or its remapping is wrong), or images came and every one was
  dropped (the last drop's reason says why: no camera_info, no TF, a bad encoding...);
- WARN: no image yet, some frames dropped, or frames processed well below what the rate limit allows (the
  step is too slow for this machine);
- OK otherwise.

ROS-free and thread-safe: the image callback, the worker and the diagnostics timer each call it from their own
thread. Times are time.monotonic() seconds, passed in so tests can drive it.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class Level(IntEnum):
    """diagnostic_msgs/DiagnosticStatus's levels, in the same order."""

    OK = 0
    WARN = 1
    ERROR = 2


@dataclass(frozen=True)
class HealthReport:
    level: Level
    message: str
    values: tuple[tuple[str, str], ...]  # (key, value) pairs shown beside the message, in order


class FrameHealth:
    """Counts frame outcomes over the last ``window_s`` seconds; report() grades them (module docstring).

    slow_share: processed frames below this share of what the rate limit allows (the lower of rate_hz and the
    camera's own rate) is WARN. The rate limit lets 1.2 x rate_hz through at most, and a frame's wait for the
    worker costs a little, so 0.8 is well clear of a healthy node's figure."""

    def __init__(self, window_s: float = 5.0, slow_share: float = 0.8) -> None:
        if window_s <= 0 or not 0 < slow_share <= 1:
            raise ValueError("window_s must be > 0 and slow_share in (0, 1]")
        self.window_s = window_s
        self.slow_share = slow_share
        self._lock = threading.Lock()
        self._received: collections.deque[float] = collections.deque()
        self._processed: collections.deque[tuple[float, float]] = collections.deque()  # (time, step seconds)
        self._dropped: collections.deque[tuple[float, str]] = collections.deque()  # (time, reason)
        self._started: float | None = None
        self._last_image: float | None = None
        self._last_drop: str = ""
        self.total_received = 0
        self.total_processed = 0
        self.total_dropped = 0

    def start(self, now: float) -> None:
        """When the node began listening: "no image for window_s" counts from here."""
        with self._lock:
            self._started = now

    def image(self, now: float) -> None:
        with self._lock:
            self._received.append(now)
            self._last_image = now
            self.total_received += 1

    def processed(self, now: float, step_s: float) -> None:
        with self._lock:
            self._processed.append((now, step_s))
            self.total_processed += 1

    def dropped(self, now: float, reason: str) -> None:
        with self._lock:
            self._dropped.append((now, reason))
            self._last_drop = reason
            self.total_dropped += 1

    def report(self, now: float, rate_hz: float) -> HealthReport:
        """The grade and the figures for the window ending now."""
        with self._lock:
            cutoff = now - self.window_s
            while self._received and self._received[0] < cutoff:
                self._received.popleft()
            for queue in (self._processed, self._dropped):
                while queue and queue[0][0] < cutoff:
                    queue.popleft()
            received, dropped = len(self._received), len(self._dropped)
            steps = np.array([s for _, s in self._processed], dtype=np.float64)
            last_image, last_drop, started = self._last_image, self._last_drop, self._started
            totals = (self.total_received, self.total_processed, self.total_dropped)
        # the window is shorter right after start: rates over the time actually watched
        watched = min(self.window_s, now - started) if started is not None else self.window_s
        watched = max(watched, 1e-3)
        image_hz, processed_hz = received / watched, len(steps) / watched
        expected_hz = min(rate_hz, image_hz)
        values = [
            ("images received (Hz)", f"{image_hz:.1f}"),
            ("frames processed (Hz)", f"{processed_hz:.1f}"),
            ("rate limit (Hz)", f"{rate_hz:g}"),
            (f"frames dropped in the last {self.window_s:g} s", str(dropped)),
            ("step time median / max (ms)",
             f"{1e3 * np.median(steps):.0f} / {1e3 * steps.max():.0f}" if steps.size else "-"),
            ("images received / processed / dropped since start", " / ".join(map(str, totals))),
            ("last drop", last_drop or "-"),
        ]
        level, message = self._grade(now, received, dropped, len(steps), processed_hz, expected_hz,
                                     last_image, last_drop, started)
        return HealthReport(level, message, tuple(values))

    def _grade(self, now: float, received: int, dropped: int, processed: int, processed_hz: float,
               expected_hz: float, last_image: float | None, last_drop: str,
               started: float | None) -> tuple[Level, str]:
        if received == 0:
            if last_image is None:
                waited = 0.0 if started is None else now - started
                if waited >= self.window_s:
                    return Level.ERROR, f"no image received in {waited:.0f} s"
                return Level.WARN, "no image received yet"
            return Level.ERROR, f"no image for {now - last_image:.0f} s"
        if processed == 0 and dropped > 0:
            return Level.ERROR, f"every frame dropped: {last_drop}"
        if dropped > 0:
            return Level.WARN, f"{dropped} frames dropped in the last {self.window_s:g} s: {last_drop}"
        # too few frames in the window to judge a rate (the first second, or a camera at 1 Hz)
        if received >= 3 and processed_hz < self.slow_share * expected_hz:
            return Level.WARN, (f"processing {processed_hz:.1f} frames/s of the {expected_hz:.1f} the rate "
                                "limit allows: the step is too slow for this machine")
        return Level.OK, f"processing {processed_hz:.1f} frames/s"


def memory_report(db_path: str, items: int, moved_aside_to: str | None, write_error: str | None = None,
                  unwritten: int = 0) -> HealthReport:
    """The item memory's store: ERROR while it cannot be written (write_error: a full disk, another program's write
    lock; unwritten items' changes are kept in RAM and written once it can be, and lost if the node stops first);
    WARN for the whole run if yesterday's file was unreadable and moved aside (the node started with an empty
    memory, which an operator should hear about more than once, at start)."""
    values = (("database", db_path or "(in RAM only: lost at exit)"), ("items known", str(items)))
    if write_error:
        return HealthReport(Level.ERROR, f"cannot write the database ({write_error}); {unwritten} item(s) changed "
                            "in RAM only until it can be", values + (("items not on disk", str(unwritten)),))
    if moved_aside_to:
        return HealthReport(Level.WARN, f"the database was unreadable and moved aside to {moved_aside_to}; "
                            "this run started with an empty memory", values + (("moved aside to", moved_aside_to),))
    return HealthReport(Level.OK, f"{items} item{'' if items == 1 else 's'} known", values)
