"""core.health: the grade an operator sees on /diagnostics, driven with made-up times."""

from __future__ import annotations

import threading

import pytest

from spatial_memory_ros.core.health import FrameHealth, Level, memory_report


def _feed(health: FrameHealth, t0: float, seconds: float, camera_hz: float, process_every: int = 1,
          drop: str | None = None, step_s: float = 0.05) -> float:
    """A camera at camera_hz from t0; every process_every-th image is processed, or dropped with reason drop."""
    n = int(seconds * camera_hz)
    for i in range(n):
        t = t0 + i / camera_hz
        health.image(t)
        if i % process_every == 0:
            if drop is None:
                health.processed(t + step_s, step_s)
            else:
                health.dropped(t + 0.001, drop)
    return t0 + n / camera_hz


def test_a_healthy_node_is_ok_with_its_rates() -> None:
    h = FrameHealth(window_s=5.0)
    h.start(0.0)
    end = _feed(h, 0.0, 10.0, camera_hz=30.0, process_every=3)
    report = h.report(end, rate_hz=10.0)
    assert report.level == Level.OK and "10.0 frames/s" in report.message
    values = dict(report.values)
    assert values["images received (Hz)"] == "30.0" and values["frames processed (Hz)"] == "10.0"
    assert values["step time median / max (ms)"] == "50 / 50"
    assert values["images received / processed / dropped since start"] == "300 / 100 / 0"


def test_rates_right_after_start_are_over_the_time_watched() -> None:
    """One second after start, a 30 Hz camera is 30 Hz, not 6 Hz over a 5 s window it was not up for."""
    h = FrameHealth(window_s=5.0)
    h.start(0.0)
    end = _feed(h, 0.0, 1.0, camera_hz=30.0, process_every=3)
    report = h.report(end, rate_hz=10.0)
    values = dict(report.values)
    assert values["images received (Hz)"] == "30.0" and values["frames processed (Hz)"] == "10.0"
    assert report.level == Level.OK, report.message


def test_no_image_warns_at_first_then_is_an_error() -> None:
    h = FrameHealth(window_s=5.0)
    h.start(100.0)
    assert h.report(101.0, 10.0).level == Level.WARN
    late = h.report(106.0, 10.0)
    assert late.level == Level.ERROR and "no image received in 6 s" in late.message


def test_a_camera_that_stops_is_an_error() -> None:
    h = FrameHealth(window_s=5.0)
    h.start(0.0)
    end = _feed(h, 0.0, 3.0, camera_hz=10.0)
    assert h.report(end, 10.0).level == Level.OK
    stopped = h.report(end + 7.0, 10.0)
    assert stopped.level == Level.ERROR and "no image for 7 s" in stopped.message


def test_every_frame_dropped_is_an_error_naming_the_reason() -> None:
    h = FrameHealth(window_s=5.0)
    h.start(0.0)
    end = _feed(h, 0.0, 6.0, camera_hz=10.0, drop="no valid camera_info received yet on /camera_info")
    report = h.report(end, 10.0)
    assert report.level == Level.ERROR
    assert report.message == "every frame dropped: no valid camera_info received yet on /camera_info"
    assert dict(report.values)["last drop"].startswith("no valid camera_info")


def test_some_frames_dropped_warns_and_clears_once_out_of_the_window() -> None:
    h = FrameHealth(window_s=5.0)
    h.start(0.0)
    end = _feed(h, 0.0, 5.0, camera_hz=10.0)
    h.dropped(end, "no camera pose map <- cam")
    end = _feed(h, end, 1.0, camera_hz=10.0)
    warned = h.report(end, 10.0)
    assert warned.level == Level.WARN and "1 frames dropped" in warned.message and "camera pose" in warned.message
    end = _feed(h, end, 6.0, camera_hz=10.0)
    assert h.report(end, 10.0).level == Level.OK  # the drop has left the window; the total keeps it
    assert dict(h.report(end, 10.0).values)["images received / processed / dropped since start"] == "120 / 120 / 1"


def test_a_step_too_slow_for_the_rate_warns() -> None:
    h = FrameHealth(window_s=5.0)
    h.start(0.0)
    end = _feed(h, 0.0, 10.0, camera_hz=30.0, process_every=6, step_s=0.19)  # 5 of the 10 frames/s allowed
    report = h.report(end, rate_hz=10.0)
    assert report.level == Level.WARN and "too slow" in report.message


def test_a_slow_camera_is_not_a_slow_step() -> None:
    """A 2 Hz camera processed whole is fine under a 10 Hz limit: what is expected is the lower rate."""
    h = FrameHealth(window_s=5.0)
    h.start(0.0)
    end = _feed(h, 0.0, 10.0, camera_hz=2.0)
    assert h.report(end, rate_hz=10.0).level == Level.OK


def test_threads_counting_at_once_lose_nothing() -> None:
    h = FrameHealth(window_s=1e9)
    h.start(0.0)

    def run(k: int) -> None:
        for i in range(2000):
            h.image(float(i))
            (h.processed if k % 2 else h.dropped)(float(i), 0.01 if k % 2 else "x")  # type: ignore[operator]

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (h.total_received, h.total_processed, h.total_dropped) == (8000, 4000, 4000)


def test_the_memory_store_moved_aside_warns_for_the_whole_run() -> None:
    ok = memory_report("/var/robot/memory.db", 3, None)
    assert ok.level == Level.OK and ok.message == "3 items known"
    aside = memory_report("/var/robot/memory.db", 0, "/var/robot/memory.db.corrupt-20261202T010000Z")
    assert aside.level == Level.WARN and "moved aside to /var/robot/memory.db.corrupt-" in aside.message
    assert dict(memory_report("", 0, None).values)["database"].startswith("(in RAM only")


def test_a_memory_store_that_cannot_be_written_is_an_error_that_says_how_much_waits_in_ram() -> None:
    report = memory_report("/var/robot/memory.db", 3, None, "database or disk is full", 2)
    assert report.level == Level.ERROR and "database or disk is full" in report.message
    assert dict(report.values)["items not on disk"] == "2"
    assert memory_report("/var/robot/memory.db", 3, None, None, 0).level == Level.OK


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        FrameHealth(window_s=0)
    with pytest.raises(ValueError):
        FrameHealth(slow_share=1.5)
