"""The node's executor hands out one callback per message. rclpy's MultiThreadedExecutor, which the node used
before, re-yields every callback its thread pool has not started yet, in a loop without waiting: beside the
pipeline worker that loop starved the pool and the node lost camera frames in gaps of 0.5-2.6 s (BENCHMARKS.md,
"The node's executor"). Here the node and a publisher share one process; each executor step that returns
before its timeout handed out a callback, and those steps are counted against the messages sent."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed")
import rclpy  # noqa: E402
from bag_scene import CAMERA_FRAME, HEIGHT_M, INTR  # noqa: E402
from rclpy.executors import Executor, MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from ros_support import fixed_pose_node  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from tag_scene import render_scene  # noqa: E402
from test_node_integration import camera_info  # noqa: E402

from spatial_memory_ros.ros.conversions import bgr_to_image, header, sec_to_stamp  # noqa: E402
from spatial_memory_ros.ros.node import make_executor  # noqa: E402

pytestmark = pytest.mark.timeout(90)
FRAMES = 40


def _handouts_per_message(tmp_path: Path, executor_for: type[Executor] | None) -> tuple[int, int, int]:
    """(callbacks handed out by the executor, messages sent, frames the worker processed) while FRAMES image +
    camera_info pairs go to a node whose worker processes them at 20 Hz; executor_for None = the node's own
    executor (make_executor)."""
    node, context = fixed_pose_node(
        tmp_path / "m.db", HEIGHT_M, Parameter("rate_hz", value=20.0),
        Parameter("qos_overrides./image.subscription.reliability", value="reliable"),
        Parameter("qos_overrides./camera_info.subscription.reliability", value="reliable"))
    camera = rclpy.create_node("camera", context=context)
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
    image_pub = camera.create_publisher(Image, "image", qos)
    info_pub = camera.create_publisher(CameraInfo, "camera_info", qos)
    executor = make_executor(context) if executor_for is None else executor_for(context=context)
    executor.add_node(node)
    handouts = sent = 0
    try:
        deadline = time.monotonic() + 20.0
        while image_pub.get_subscription_count() == 0 or info_pub.get_subscription_count() == 0:
            assert time.monotonic() < deadline, "the node never subscribed"
            executor.spin_once(timeout_sec=0.05)
        image = render_scene(INTR, [], 0.16, background=150)
        for _ in range(FRAMES):
            msg = bgr_to_image(image, header(CAMERA_FRAME, sec_to_stamp(time.time())))
            info_pub.publish(camera_info(msg.header.stamp))
            image_pub.publish(msg)
            sent += 2
            step_end = time.monotonic() + 0.05  # 20 Hz
            while time.monotonic() < step_end:
                start = time.monotonic()
                executor.spin_once(timeout_sec=0.02)
                if time.monotonic() - start < 0.019:  # returned early: it handed out a callback
                    handouts += 1
        processed = node.frames_processed
    finally:
        executor.shutdown()
        node.close()
        node.destroy_node()
        camera.destroy_node()
        rclpy.try_shutdown(context=context)
    return handouts, sent, processed


def test_the_node_executor_hands_out_about_one_callback_per_message(tmp_path: Path) -> None:
    handouts, sent, processed = _handouts_per_message(tmp_path, None)
    assert processed > FRAMES // 4, "the worker processed (almost) nothing: the count below would prove nothing"
    assert handouts <= sent * 1.1 + 5, (handouts, sent)


def test_a_multithreaded_executor_hands_out_callbacks_again_and_again(tmp_path: Path) -> None:
    """The yardstick: the executor the node no longer uses, on the same run, is far above one per message
    (if a later rclpy fixes that, this test says so and the node's choice can be revisited). How many frames
    its worker gets through is not asserted: starving the worker is what this executor does (a fresh-clone CI
    run saw 8 of 40)."""
    handouts, sent, _ = _handouts_per_message(tmp_path, MultiThreadedExecutor)
    assert handouts > sent * 2, (handouts, sent)
