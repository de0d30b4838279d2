"""core.camera_clocks: cameras that share a memory are checked against one reference clock."""

from __future__ import annotations

import math

import pytest

from spatial_memory_ros.core.camera_clocks import FRESH_S, GRACE_S, CameraClocks


def test_a_camera_on_another_clock_is_named_and_the_reference_never() -> None:
    clocks = CameraClocks(2)
    for k in range(20):  # 10 Hz, the rear camera 30 s ahead, both fresh
        now = 100.0 + 0.1 * k
        assert clocks.check(0, 5000.0 + now, now) is None
        fault = clocks.check(1, 5030.0 + now + 0.05, now + 0.05)
        assert fault is not None and fault.ref == 0 and fault.skew_s == pytest.approx(30.0)


def test_cameras_on_one_clock_pass_whatever_their_rates_and_latency() -> None:
    clocks = CameraClocks(3)
    for k in range(50):
        now = 10.0 + 0.1 * k
        assert clocks.check(0, 1000.0 + now - 0.2, now) is None  # 200 ms of latency
        if k % 5 == 0:  # a 2 Hz camera with 1.5 s of latency
            assert clocks.check(2, 1000.0 + now + 0.01 - 1.5, now + 0.01) is None


def test_a_looping_bag_costs_the_others_a_frame_and_a_stopped_reference_hands_over() -> None:
    clocks = CameraClocks(2)
    assert clocks.check(0, 500.0, 1.0) is None
    assert clocks.check(1, 500.0, 1.0) is None
    assert clocks.check(0, 0.1, 1.1) is None  # the bag looped: the reference is never dropped for it
    assert clocks.check(1, 500.1, 1.1) is not None  # the rear camera's last frame before the loop
    assert clocks.check(1, 0.2, 1.2) is None  # and its first after
    # the front camera stops: after FRESH_S the rear one has no reference, whatever its clock
    assert clocks.check(1, 9999.0, 1.2 + FRESH_S + 0.1) is None


def test_a_slow_reference_is_still_a_reference_and_its_age_is_allowed_for() -> None:
    """rate_hz 0.2: the front camera's frame is 5 s old when the rear's comes; at the default freshness it was no
    reference, and cameras 30 s apart passed. The node gives a few frame periods."""
    clocks = CameraClocks(2)
    assert clocks.check(0, 1000.0, 10.0, fresh_s=15.0) is None
    assert clocks.check(1, 1035.0, 15.0, fresh_s=15.0) == (0, 30.0)  # 30 s apart, the reference 5 s old
    assert clocks.check(1, 1036.0, 16.0) is None  # at the default freshness the reference is gone
    assert clocks.check(1, 1005.0 + 2.0, 17.0, fresh_s=15.0) is None  # same clock: the age is not a skew


def test_at_the_start_a_camera_waits_for_the_reference_a_little() -> None:
    """The rear camera (30 s ahead) sent its first frame before the front one: it reached the memory, whose clock
    then went back 30 s at the front camera's first frame."""
    clocks = CameraClocks(2)
    fault = clocks.check(1, 1030.0, 0.0)
    assert fault is not None and fault.ref == 0 and math.isnan(fault.skew_s)  # waiting
    assert clocks.check(0, 1000.1, 0.1) is None
    assert clocks.check(1, 1030.2, 0.2) == (0, pytest.approx(30.0))
    alone = CameraClocks(2)  # the front camera never comes: after GRACE_S the rear one goes on without it
    assert alone.check(1, 1030.0, 0.0) is not None
    assert alone.check(1, 1030.0 + GRACE_S, GRACE_S) is None
