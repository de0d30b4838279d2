"""A camera's clock going back, told apart from a single frame stamped too early."""

from __future__ import annotations

from spatial_memory_ros.core.clock_watch import CONFIRM_WITHIN_S, JUMP_AHEAD_S, OUT_OF_ORDER_S, ClockWatch, Stamp


def _feed(stamps: list[float]) -> list[Stamp]:
    watch = ClockWatch()
    return [watch.check(s) for s in stamps]


def test_in_order_and_jitter_pass() -> None:
    assert set(_feed([10.0, 10.1, 10.05, 10.1 - OUT_OF_ORDER_S, 10.3, 10.3 + JUMP_AHEAD_S])) == {Stamp.IN_ORDER}


def test_one_stale_frame_is_held_and_the_next_in_order_goes_on() -> None:
    """One early stamp dropped tracks, tf2's buffer and moved remembered times back: now it is dropped alone."""
    assert _feed([100.0, 100.1, 40.0, 100.2, 100.3]) == [Stamp.IN_ORDER] * 2 + [Stamp.HELD] + [Stamp.IN_ORDER] * 2


def test_a_restart_is_confirmed_by_the_next_frame() -> None:
    assert _feed([100.0, 100.1, 0.5, 0.6, 0.7]) == [Stamp.IN_ORDER] * 2 + [Stamp.HELD, Stamp.WENT_BACK,
                                                                          Stamp.IN_ORDER]


def test_two_glitches_that_disagree_are_both_held() -> None:
    watch = ClockWatch()
    for s in (100.0, 100.1):
        watch.check(s)
    assert watch.check(50.0) is Stamp.HELD
    assert watch.check(20.0) is Stamp.HELD  # before the candidate: no confirmation
    assert watch.check(20.0 + CONFIRM_WITHIN_S + 1) is Stamp.HELD  # too long after it
    assert watch.check(100.2) is Stamp.IN_ORDER and watch.newest == 100.2


def test_one_frame_far_ahead_is_held_and_the_good_ones_after_it_go_on() -> None:
    """Taken as the newest, a frame 30 s ahead made the good ones after it 30 s old: held, then 'went back'."""
    assert _feed([100.0, 100.1, 130.0, 100.2, 100.3]) == [Stamp.IN_ORDER] * 2 + [Stamp.HELD] + [Stamp.IN_ORDER] * 2


def test_a_clock_stepped_forward_is_confirmed_and_a_slow_camera_is_not_held() -> None:
    assert _feed([100.0, 100.1, 130.0, 130.1, 130.2]) == [Stamp.IN_ORDER] * 2 + [Stamp.HELD] + [Stamp.IN_ORDER] * 2
    assert set(_feed([100.0 + 2.0 * i for i in range(10)])) == {Stamp.IN_ORDER}  # 0.5 Hz
    assert _feed([5.0])[0] is Stamp.IN_ORDER  # the first frame, whatever its stamp


def test_a_camera_slower_than_the_windows_loses_one_frame_then_none() -> None:
    """A frame every 20 s (rate_hz 0.05, which the node accepts), or every 10.001 s: every frame was held, each one
    too far from the last; now the second spacing alike confirms it, and the windows follow the spacing."""
    for period in (20.0, 10.001, 300.0):
        got = _feed([1000.0 + period * i for i in range(8)])
        assert got == [Stamp.IN_ORDER, Stamp.HELD] + [Stamp.IN_ORDER] * 6, period
    # a slow camera's clock going back is still told from a glitch, at its own spacing
    assert _feed([0.0, 20.0, 40.0, 60.0, 5.0, 25.0, 45.0]) == [
        Stamp.IN_ORDER, Stamp.HELD, Stamp.IN_ORDER, Stamp.IN_ORDER, Stamp.HELD, Stamp.WENT_BACK, Stamp.IN_ORDER]
    assert _feed([0.0, 20.0, 40.0, 60.0, 5.0, 80.0]) == [
        Stamp.IN_ORDER, Stamp.HELD, Stamp.IN_ORDER, Stamp.IN_ORDER, Stamp.HELD, Stamp.IN_ORDER]


def test_one_stall_does_not_widen_the_windows() -> None:
    """The spacing is the median of the last gaps: one 9 s stall in a 10 Hz stream leaves a frame 30 s ahead held."""
    stamps = [100.0 + 0.1 * i for i in range(5)] + [109.5, 109.6, 109.7, 139.7, 109.8]
    assert _feed(stamps)[-2:] == [Stamp.HELD, Stamp.IN_ORDER]


def test_a_frame_far_ahead_is_confirmed_only_by_a_next_one_as_far_after_it() -> None:
    """A slow camera's spacing confirms a held frame when the next comes about as far after it (within a quarter);
    a next frame at another spacing is no confirmation: both stay held, and the clock does not move to them."""
    assert _feed([100.0, 100.1, 200.0, 400.0]) == [Stamp.IN_ORDER] * 2 + [Stamp.HELD] * 2
    assert _feed([100.0, 100.1, 200.0, 299.0])[-1] is Stamp.IN_ORDER  # 98.9 s after it, 99.9 s ahead: a spacing
