"""The node's frame rate limit: at most rate_hz frames per second on average, without adding latency.

ROS-free, so that it is tested with a fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# Frames of credit the limit may save up: half a frame absorbs arrival jitter when the camera runs at
# rate_hz, and the long-run rate stays at most rate_hz whatever the camera's rate.
DEFAULT_BURST = 1.5
# Credit grows this much faster than rate_hz. A camera at rate_hz by its own clock can run a few per cent
# faster by the node's (or its frames arrive bunched), and an exact limit then holds most frames back by a
# good part of a period (a camera 3 % fast: a median 43 ms wait, see test_rate_limit). Measured in the node
# at 640x480 with COCO, "10 Hz" camera, rate_hz 10: latency p50 121 ms with an exact limit; 71-78 ms with the
# limit out of the way (rate_hz 50) or with this headroom. So a faster camera is cut to HEADROOM x rate_hz
# on average, not exactly rate_hz.
DEFAULT_HEADROOM = 1.2
_EPS = 1e-9  # a credit this close to one frame is one frame (float rounding must not mean another wait)


class RateLimit:
    """A credit of frames that grows at headroom x rate_hz per second, up to burst; each processed frame
    spends one.

    Waiting out a whole period from the previous frame's start (the simpler rule) makes a camera running at
    rate_hz wait whenever a frame comes a little early, because DDS delivery and thread scheduling jitter;
    those waits add to the latency of every frame after them. Credit absorbs that jitter.
    rate_hz may be changed between calls (the node's live parameter).
    """

    def __init__(self, rate_hz: float, *, burst: float = DEFAULT_BURST, headroom: float = DEFAULT_HEADROOM,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_hz = float(rate_hz)
        self.burst = max(float(burst), 1.0)
        self.headroom = max(float(headroom), 1.0)
        self._clock = clock
        self._credit = 1.0
        self._last = clock()

    def delay_s(self, came_at: float | None = None) -> float:
        """Seconds from now until a frame that came at came_at (clock time; default now) may be processed.

        Credit is counted up to the frame's arrival, not up to when the worker gets to it: a worker that
        fell behind (one slow frame) then takes the frames already waiting at once and catches up. Counted
        at the worker's start instead, the limit kept starts a period apart, so the lag never drained.
        """
        now = self._clock()
        at = now if came_at is None else min(float(came_at), now)
        rate = self.rate_hz * self.headroom
        self._credit = min(self._credit + max(at - self._last, 0.0) * rate, self.burst)
        self._last = max(self._last, at)
        wait = 0.0 if self._credit >= 1.0 - _EPS else (1.0 - self._credit) / rate
        return max(at + wait - now, 0.0)

    def take(self) -> None:
        """Spend one frame of credit (call when delay_s() said 0)."""
        self._credit -= 1.0

    def refund(self) -> None:
        """Give back the credit of a frame dropped before its pipeline step (bad input costs next to nothing):
        spent on it, a bad frame before each good one halved the good frames processed."""
        self._credit = min(self._credit + 1.0, self.burst)
