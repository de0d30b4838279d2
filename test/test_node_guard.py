"""An unexpected exception in one frame's processing is logged with its traceback and the frame dropped; the
node processes the next frame (before, the worker thread died and the node served on without processing)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed")
import rclpy  # noqa: E402
from bag_scene import CAMERA_FRAME, HEIGHT_M, INTR, scene_frames  # noqa: E402
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy  # noqa: E402
from ros_support import fixed_pose_node  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from tag_scene import pose, render_scene  # noqa: E402

from spatial_memory_ros.ros.conversions import bgr_to_image, header, sec_to_stamp  # noqa: E402
from spatial_memory_ros.ros.node import SpatialMemoryNode  # noqa: E402

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[SpatialMemoryNode, rclpy.Context, Image]]:
    """A node with a fixed camera pose (so that a frame reaches the pipeline), its context and one frame."""
    node, context = fixed_pose_node(tmp_path / "m.db", HEIGHT_M)
    scene = render_scene(INTR, [(3, pose((0, 0, 0), (0.1, 0.0, HEIGHT_M)))], 0.16, background=150)
    try:
        yield node, context, bgr_to_image(scene, header(CAMERA_FRAME, sec_to_stamp(time.time())))
    finally:
        node.close()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def _raise(exc: Exception) -> object:
    def update(frame: object) -> None:
        raise exc
    return update


def test_a_bug_in_one_frame_drops_it_and_the_next_is_processed(
        running: tuple[SpatialMemoryNode, rclpy.Context, Image], capfd: pytest.CaptureFixture[str]) -> None:
    node, _, msg = running
    update = node.pipeline.update
    node.pipeline.update = _raise(FloatingPointError("a numerical library failed"))  # type: ignore[method-assign]
    assert node.process_guarded(msg, INTR, []) is True
    assert (node.frames_dropped, node.frames_processed) == (1, 0)
    node.pipeline.update = update  # type: ignore[method-assign]
    assert node.process_guarded(msg, INTR, []) is True
    assert (node.frames_dropped, node.frames_processed) == (1, 1)
    logged = capfd.readouterr().err
    assert "unexpected FloatingPointError while processing: a numerical library failed" in logged
    assert "Traceback" in logged and "in update" in logged


def test_one_kind_of_bad_frame_does_not_hide_another_in_the_log(
        running: tuple[SpatialMemoryNode, rclpy.Context, Image], capfd: pytest.CaptureFixture[str]) -> None:
    """Every BadInputError from the pipeline shared one throttle key: a flood of one (a localiser's non-rigid
    pose every frame) kept any other (a depth image of the wrong type) out of the log for good."""
    from spatial_memory_ros.core.errors import BadInputError

    node, _, msg = running
    pose = _raise(BadInputError("frame.T_map_cam is not a rigid transform"))
    depth = _raise(BadInputError("frame.depth must be float metres"))
    for update in (pose, pose, depth, pose, depth):
        node.pipeline.update = update  # type: ignore[method-assign]
        assert node.process_guarded(msg, INTR, []) is True
    assert node.frames_dropped == 5
    logged = capfd.readouterr().err
    assert logged.count("not a rigid transform") == 1 and logged.count("must be float metres") == 1


def test_an_rcl_error_drops_the_frame_while_the_context_is_up_and_stops_the_worker_after_shutdown(
        running: tuple[SpatialMemoryNode, rclpy.Context, Image], capfd: pytest.CaptureFixture[str]) -> None:
    """A middleware error in a publish (RCLError) used to end the worker thread even with the context up."""
    node, context, msg = running
    update = node.pipeline.update
    failing = _raise(_rclpy.RCLError("failed to publish message: middleware error"))
    node.pipeline.update = failing  # type: ignore[method-assign]
    assert node.process_guarded(msg, INTR, []) is True  # the worker goes on
    assert (node.frames_dropped, node.frames_processed) == (1, 0)
    node.pipeline.update = update  # type: ignore[method-assign]
    assert node.process_guarded(msg, INTR, []) is True
    assert (node.frames_dropped, node.frames_processed) == (1, 1)
    node.pipeline.update = failing  # type: ignore[method-assign]
    rclpy.try_shutdown(context=context)
    assert node.process_guarded(msg, INTR, []) is False  # shut down under the frame: the worker stops
    assert node.frames_dropped == 1
    assert "unexpected RCLError while processing: failed to publish message" in capfd.readouterr().err


def test_a_rate_hz_set_live_takes_effect_while_the_worker_waits(tmp_path: Path) -> None:
    """The worker waited out the whole rate-limit delay of the old rate in one wait: from rate_hz 0.02 (a frame
    every 40 s), a live `ros2 param set rate_hz 10.0` was ignored for up to 40 s."""
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CameraInfo

    node, context = fixed_pose_node(tmp_path / "m.db", HEIGHT_M, Parameter("rate_hz", value=0.02))
    try:
        camera = node.cameras[0]
        info = CameraInfo(width=INTR.width, height=INTR.height,
                          k=[INTR.fx, 0.0, INTR.cx, 0.0, INTR.fy, INTR.cy, 0.0, 0.0, 1.0])
        camera._on_camera_info(info)
        image = render_scene(INTR, [], 0.16, background=150)

        def feed_until(done: object, seconds: float) -> bool:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                camera._on_image(bgr_to_image(image, header(CAMERA_FRAME, sec_to_stamp(time.time()))))
                if done():  # type: ignore[operator]
                    return True
                time.sleep(0.1)
            return False

        assert feed_until(lambda: node.frames_processed >= 1, 10)  # the first frame goes at once
        assert not feed_until(lambda: node.frames_processed >= 2, 1.0)  # then the worker waits
        assert node.set_parameters([Parameter("rate_hz", value=10.0)])[0].successful
        assert feed_until(lambda: node.frames_processed >= 4, 3.0), node.frames_processed
    finally:
        node.close()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_diagnostics_come_while_the_sim_clock_stands(tmp_path: Path) -> None:
    """With use_sim_time and no /clock (a bag paused, a simulator not started) the 1 Hz report timer, on the
    node's clock, never fired: no report, just when "no image for N s" matters."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    node, context = fixed_pose_node(tmp_path / "m.db", HEIGHT_M, Parameter("use_sim_time", value=True))
    reports: list[DiagnosticArray] = []
    probe = rclpy.create_node("probe", context=context)
    probe.create_subscription(DiagnosticArray, "/diagnostics", reports.append, 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(probe)
    try:
        end = time.monotonic() + 4.0
        while time.monotonic() < end and len(reports) < 2:
            executor.spin_once(timeout_sec=0.1)
        assert len(reports) >= 2
    finally:
        executor.shutdown()
        probe.destroy_node()
        node.close()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_save_memory_without_a_file_says_nothing_was_saved(tmp_path: Path) -> None:
    """With memory.db_path empty, save_memory answered success ("memory saved to (in RAM only)")."""
    from std_srvs.srv import Trigger

    node, context = fixed_pose_node("", HEIGHT_M)
    try:
        response = node._on_save(Trigger.Request(), Trigger.Response())
        assert not response.success and "RAM only" in response.message
    finally:
        node.close()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_a_reset_between_a_frames_step_and_its_publishing_is_not_undone_by_it(tmp_path: Path) -> None:
    """reset_memory waited for a frame's pipeline step only: landing before that frame's publishing, it cleared
    RViz, and then the frame's tracks (of the forgotten memory) were published and drawn again."""
    import threading

    from rclpy.parameter import Parameter
    from std_srvs.srv import Trigger
    from visualization_msgs.msg import Marker

    node, context = fixed_pose_node(tmp_path / "m.db", HEIGHT_M, Parameter("items", value=["mug=3"]),
                                    Parameter("change.method", value="classical"))
    try:
        sent: list[tuple[str, object]] = []
        for name, pub in (("markers", node.markers_pub), ("tracks", node.cameras[0].tracks_pub)):
            def record(msg: object, name: str = name, publish: object = pub.publish) -> None:
                sent.append((name, msg))
                publish(msg)  # type: ignore[operator]
            pub.publish = record  # type: ignore[method-assign]
        frames = scene_frames()
        for t, image in frames[:-1]:
            node.process(bgr_to_image(image, header(CAMERA_FRAME, sec_to_stamp(t))), INTR, [], node.cameras[0])
        assert any(t.item == "mug" for _, m in sent[-2:] for t in getattr(m, "tracks", [])), "no mug track to reset"
        publish = node._publish
        reset = threading.Thread(target=node._on_reset, args=(Trigger.Request(), Trigger.Response()))

        def reset_lands_now(*args: object) -> None:
            reset.start()
            reset.join(timeout=1.0)  # the old code let it finish here, before this frame's publishing
            publish(*args)  # type: ignore[arg-type]
        node._publish = reset_lands_now  # type: ignore[method-assign]
        sent.clear()
        t, image = frames[-1]
        node.process(bgr_to_image(image, header(CAMERA_FRAME, sec_to_stamp(t))), INTR, [], node.cameras[0])
        reset.join(timeout=10.0)
        assert not reset.is_alive()
        names = [name for name, _ in sent]
        last_markers = [m for name, m in sent if name == "markers"][-1]
        assert names[-1] == "markers" and last_markers.markers, names  # the reset's clear() came last
        assert all(k.action == Marker.DELETE for k in last_markers.markers)
        assert node.pipeline.list_items() == []
    finally:
        node.close()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_a_memory_file_locked_at_close_is_logged_and_everything_still_closes(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Another program holding the memory file's write lock when the node stops: close() raised out of the first
    pipeline (a traceback, exit 1, the node neither destroyed nor its other pipelines closed)."""
    import sqlite3

    from rclpy.parameter import Parameter

    node, context = fixed_pose_node(tmp_path / "m.db", HEIGHT_M, Parameter("items", value=["mug=3"]),
                                    Parameter("change.method", value="classical"))
    holder = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # what the node sees from now on waits in RAM (item_memory write_error)
        for t, image in scene_frames()[:8]:
            node.process(bgr_to_image(image, header(CAMERA_FRAME, sec_to_stamp(t))), INTR, [], node.cameras[0])
        assert node.pipeline.list_items(), "nothing seen to write"
        assert node.close() is False
    finally:
        holder.close()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    assert "the memory's last changes were not written to" in capfd.readouterr().err


def test_images_without_a_frame_id_are_processed_and_the_unplaceable_outputs_are_said(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """With pose_source fixed a frame needs no frame_id, and the change mask went out with an empty one, silently:
    RViz cannot place it."""
    node, context = fixed_pose_node(tmp_path / "m.db", HEIGHT_M)
    try:
        scene = render_scene(INTR, [(3, pose((0, 0, 0), (0.1, 0.0, HEIGHT_M)))], 0.16, background=150)
        for k in range(2):
            node.process(bgr_to_image(scene, header("", sec_to_stamp(100.0 + k))), INTR, [], node.cameras[0])
        assert node.frames_processed == 2
    finally:
        node.close()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    logged = capfd.readouterr().err
    assert logged.count("carry no frame_id and camera_frame is not set") == 1  # throttled
