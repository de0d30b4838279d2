"""TransformBuffer: the /tf listener's core, without ROS."""

import numpy as np
import pytest

from spatial_memory_ros.core.geometry import make_transform, split_transform
from spatial_memory_ros.core.tf_buffer import TransformBuffer, TransformUnavailable


def _T(x: float, yaw_deg: float = 0.0) -> np.ndarray:
    half = np.radians(yaw_deg) / 2
    return make_transform([x, 0.0, 0.0], [0.0, 0.0, np.sin(half), np.cos(half)])


def test_chain_static_and_dynamic_interpolated() -> None:
    buf = TransformBuffer()
    buf.add("map", "odom", 0.0, _T(1.0), static=True)
    buf.add("odom", "base", 10.0, _T(0.0), static=False)
    buf.add("odom", "base", 11.0, _T(2.0, 90.0), static=False)
    buf.add("base", "camera", 0.0, _T(0.5), static=True)
    T = buf.lookup("map", "camera", 10.5)
    t, q = split_transform(T)
    # map<-odom (+1 x), odom<-base halfway (+1 x, yaw 45), base<-camera (+0.5 along rotated x)
    expected = np.array([2.0 + 0.5 * np.cos(np.radians(45)), 0.5 * np.sin(np.radians(45)), 0.0])
    assert np.allclose(t, expected, atol=1e-9)
    assert np.isclose(abs(q[2]), np.sin(np.radians(22.5)), atol=1e-9)


def test_inverse_direction_and_siblings() -> None:
    buf = TransformBuffer()
    buf.add("map", "a", 0.0, _T(1.0), static=True)
    buf.add("map", "b", 0.0, _T(3.0), static=True)
    assert np.allclose(buf.lookup("a", "b", 5.0)[:3, 3], [2.0, 0.0, 0.0])
    assert np.allclose(buf.lookup("b", "map", 5.0)[:3, 3], [-3.0, 0.0, 0.0])
    assert np.allclose(buf.lookup("map", "map", 5.0), np.eye(4))


@pytest.mark.parametrize(
    ("stamp", "ok"), [(9.96, True), (9.9, False), (12.04, True), (12.2, False), (11.0, True)]
)
def test_time_bounds(stamp: float, ok: bool) -> None:
    buf = TransformBuffer(extrapolation_s=0.05)
    buf.add("map", "cam", 10.0, _T(0.0), static=False)
    buf.add("map", "cam", 12.0, _T(2.0), static=False)
    if ok:
        buf.lookup("map", "cam", stamp)
    else:
        with pytest.raises(TransformUnavailable, match="no transform 'map' <- 'cam'"):
            buf.lookup("map", "cam", stamp)


def test_unconnected_and_cache_expiry() -> None:
    buf = TransformBuffer(cache_s=1.0)
    buf.add("map", "cam", 0.0, _T(0.0), static=False)
    buf.add("odom", "base", 0.0, _T(0.0), static=False)
    with pytest.raises(TransformUnavailable, match="not connected"):
        buf.lookup("map", "base", 0.0)
    buf.add("map", "cam", 5.0, _T(1.0), static=False)
    with pytest.raises(TransformUnavailable):
        buf.lookup("map", "cam", 0.5)  # dropped from the cache


def test_rejects_self_parent() -> None:
    with pytest.raises(TransformUnavailable):
        TransformBuffer().add("map", "map", 0.0, np.eye(4), static=True)


def test_a_clock_that_goes_back_starts_the_history_again() -> None:
    """`ros2 bag play --loop`: after the jump back every replayed sample was older than the cache and was dropped
    as it came, so no frame had a pose until the clock passed the old newest stamp."""
    buf = TransformBuffer(cache_s=10.0)
    for k in range(300):  # 20 .. 29.9 s
        buf.add("map", "base", 20.0 + 0.1 * k / 3, make_transform([1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]), static=False)
    buf.add("map", "base", 4.9, make_transform([2.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]), static=False)
    buf.add("map", "base", 5.0, make_transform([2.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]), static=False)
    assert buf.lookup("map", "base", 4.95)[0, 3] == pytest.approx(2.0)
    with pytest.raises(TransformUnavailable):
        buf.lookup("map", "base", 25.0)  # the old history went with the jump


def test_a_clock_that_goes_back_less_than_the_cache_also_starts_the_history_again() -> None:
    """A simulator restarted 8 s into a run: episode 1 drove along x, episode 2 along y. Within the 10 s cache the
    two runs' samples were sorted into one history, and a lookup at 2.51 s in episode 2 gave (0.63, 0.63), a pose
    half-way to episode 1's path, for (0, 1.25)."""
    buf = TransformBuffer(cache_s=10.0)
    for k in range(81):  # episode 1: 0 .. 8 s at 10 Hz, 0.5 m/s along x
        buf.add("map", "base", 0.1 * k, make_transform([0.05 * k, 0.0, 0.0], [0, 0, 0, 1]), static=False)
    for k in range(27):  # episode 2: 0 .. 2.6 s, 0.5 m/s along y
        buf.add("map", "base", 0.1 * k, make_transform([0.0, 0.05 * k, 0.0], [0, 0, 0, 1]), static=False)
    np.testing.assert_allclose(buf.lookup("map", "base", 2.51)[:3, 3], [0.0, 1.255, 0.0], atol=1e-9)


def test_a_recording_that_holds_two_runs_looks_each_image_up_in_its_own() -> None:
    """A bag read whole (io.bag) cannot forget at the jump: the runs are epochs, and an image's log time picks one;
    the run before's last samples, logged just after the other link went back, still go to it."""
    from spatial_memory_ros.core.tf_history import TransformHistory

    history = TransformHistory()
    log = 0
    history.add("base", "cam", 0.0, _T(0.5), static=True, log_ns=log)
    for k in range(81):  # run 1 along x; odom and base both at 10 Hz
        log += 100_000_000
        history.add("map", "odom", 0.1 * k, _T(0.0), static=False, log_ns=log)
        history.add("odom", "base", 0.1 * k, _T(0.05 * k), static=False, log_ns=log)
    jump = log + 50_000_000
    history.add("map", "odom", 0.0, _T(10.0), static=False, log_ns=jump)  # run 2 starts: map <- odom moved
    history.add("odom", "base", 8.1, _T(0.05 * 81), static=False, log_ns=jump + 1)  # run 1's last, in flight
    for k in range(1, 27):
        log = jump + k * 100_000_000
        history.add("map", "odom", 0.1 * k, _T(10.0), static=False, log_ns=log)
        history.add("odom", "base", 0.1 * k, _T(0.0), static=False, log_ns=log)
    assert history.epochs == 2
    assert history.lookup("map", "cam", 2.5, jump + 25 * 100_000_000)[0, 3] == pytest.approx(10.5)  # run 2
    assert history.lookup("map", "cam", 2.5, 25 * 100_000_000)[0, 3] == pytest.approx(1.25 + 0.5)  # run 1
    assert history.lookup("map", "cam", 8.03, jump + 2)[0, 3] == pytest.approx(0.05 * 80.3 + 0.5)  # in flight


def test_a_slow_link_of_the_second_run_stays_in_it_past_the_first_runs_end() -> None:
    """The rule for the run before's in-flight samples took any sample more than 1 s past the new epoch's newest:
    a 0.5 Hz link of run 2, once run 2 passed run 1's last stamp, went to run 1 and run 2's lookups failed."""
    from spatial_memory_ros.core.tf_history import TransformHistory

    history, log = TransformHistory(), 0
    for run, seconds in ((1, 30), (2, 60)):
        for t in range(0, seconds + 1, 2):
            log += 2_000_000_000
            history.add("map", "base", float(t), _T(float(t) if run == 2 else -float(t)), static=False, log_ns=log)
    assert history.epochs == 2
    for t in (20.0, 35.0, 50.0):
        assert history.lookup("map", "base", t, log)[0, 3] == pytest.approx(t)
