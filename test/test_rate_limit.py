"""The node's frame rate limit, on a fake clock: jitter adds no wait, the average stays at most
headroom x rate_hz."""

from __future__ import annotations

import numpy as np
import pytest

from spatial_memory_ros.ros.rate_limit import RateLimit


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _worker(limit: RateLimit, clock: _Clock, arrivals: np.ndarray, busy_s: float = 0.0,
            slow: dict[int, float] | None = None) -> list[tuple[int, float]]:
    """The node's worker loop against frame arrival times (s), keep-last 1: (frame, wait s) per processed frame.
    Each frame keeps the worker busy_s, or slow[frame] s."""
    done: list[tuple[int, float]] = []
    t, taken = 0.0, -1
    while True:
        newest = int(np.searchsorted(arrivals, t, side="right")) - 1
        if newest == taken:  # nothing new: sleep until the next frame comes
            if taken + 1 >= len(arrivals):
                return done
            t = float(arrivals[taken + 1])
            continue
        clock.t = t
        delay = limit.delay_s(float(arrivals[newest]))
        if delay > 0.0:
            t += delay
            continue
        limit.take()
        taken = newest
        done.append((taken, t - float(arrivals[taken])))
        t += (slow or {}).get(taken, busy_s)


def test_camera_at_rate_hz_with_jitter_never_waits() -> None:
    clock = _Clock()
    limit = RateLimit(10.0, clock=clock)
    jitter = np.random.default_rng(0).uniform(-0.02, 0.02, 300)  # +-20 ms around a 10 Hz schedule
    done = _worker(limit, clock, np.arange(300) * 0.1 + 0.05 + jitter, busy_s=0.06)
    assert len(done) == 300 and max(wait for _, wait in done) == 0.0


@pytest.mark.parametrize("camera_hz", [12.0, 15.0, 30.0])
def test_a_faster_camera_is_limited_to_rate_hz_times_headroom_on_average(camera_hz: float) -> None:
    clock = _Clock()
    limit = RateLimit(10.0, clock=clock)
    done = _worker(limit, clock, np.arange(int(60 * camera_hz)) / camera_hz)
    assert len(done) / 60.0 == pytest.approx(min(camera_hz, 10.0 * limit.headroom), abs=0.15)
    exact = RateLimit(10.0, headroom=1.0, clock=(clock := _Clock()))
    assert len(_worker(exact, clock, np.arange(int(60 * camera_hz)) / camera_hz)) / 60.0 == pytest.approx(10.0, abs=0.1)


def test_a_camera_a_little_faster_than_rate_hz_is_not_held_back() -> None:
    """A "10 Hz" camera at 10.3 Hz by the node's clock (clocks differ; delivery bunches): an exact limit makes
    most frames wait about 40 ms (the steady wait seen in the node); with the headroom none waits."""
    arrivals = np.arange(600) / 10.3 + 0.05 + np.random.default_rng(0).uniform(-0.01, 0.01, 600)
    waits = {}
    for headroom in (1.0, 1.2):
        clock = _Clock()
        done = _worker(RateLimit(10.0, headroom=headroom, clock=clock), clock, arrivals, busy_s=0.07)
        waits[headroom] = np.array([w for _, w in done])
    assert np.median(waits[1.0]) > 0.03 and len(waits[1.2]) == 600 and waits[1.2].max() == 0.0


def test_delay_says_how_long_until_the_next_frame() -> None:
    clock = _Clock()
    limit = RateLimit(10.0, burst=1.0, headroom=1.0, clock=clock)
    assert limit.delay_s() == 0.0
    limit.take()
    clock.t = 0.04
    assert limit.delay_s() == pytest.approx(0.06)
    limit.rate_hz = 5.0  # a live parameter change applies from now on
    assert limit.delay_s() == pytest.approx(0.12)


def test_the_worker_catches_up_after_a_slow_frame() -> None:
    """One frame takes 390 ms: the frame waiting behind it starts late, but the lag drains at once instead
    of lasting (a limit counted from the worker's starts kept starts 100 ms apart, so it never drained)."""
    clock = _Clock()
    limit = RateLimit(10.0, clock=clock)
    done = _worker(limit, clock, np.arange(100) * 0.1 + 0.05, busy_s=0.07, slow={20: 0.39})
    waits = dict(done)
    assert waits[23] > 0.0 and all(waits[k] == 0.0 for k in waits if k >= 26)  # counted from starts: 40 ms for good


def test_a_dropped_frame_gives_its_credit_back() -> None:
    """A bad frame before each good one took the good one's place: 3.8 good frames/s processed of 6 allowed."""
    clock = _Clock()
    limit = RateLimit(5.0, clock=clock)
    assert limit.delay_s() == 0.0
    limit.take()  # a frame that then turns out bad
    assert limit.delay_s() > 0.0
    limit.refund()
    assert limit.delay_s() == 0.0  # the good frame behind it goes at once
    for _ in range(5):
        limit.refund()  # never more than the burst (1.5 frames)
    limit.take()
    assert limit.delay_s() > 0.0
