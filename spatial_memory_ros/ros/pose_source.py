"""Where the camera is: one interface over tf2_ros, a plain /tf listener, or a fixed transform.

``make_pose_source`` picks the implementation; the node only ever calls ``lookup``.
- ``tf2_ros``: the real tf2 buffer and listener (any normal ROS 2 install).
- ``tf_topics``: our own subscriber on /tf and /tf_static feeding core.tf_buffer.TransformBuffer, for
  pip-wheel installs where tf2_ros does not exist (needs a tf2_msgs interface; setup builds one).
- ``fixed``: a static camera with a transform given as a parameter.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.core.geometry import make_transform
from spatial_memory_ros.core.tf_buffer import TransformBuffer, TransformUnavailable

from .conversions import stamp_to_sec, transform_to_matrix

POSE_SOURCES = ("tf", "tf2_ros", "tf_topics", "fixed")


class PoseSource(Protocol):
    name: str

    def lookup(self, target: str, source: str, stamp: Time, timeout_s: float = 0.0) -> np.ndarray:
        """T_target_source (4, 4) at the stamp, waiting up to timeout_s for it; raises TransformUnavailable."""
        ...

    def close(self) -> None:
        """Release threads and subscriptions."""
        ...

    def clock_went_back(self) -> None:
        """The images' stamps went back (a simulator restarted, a bag looped): forget transforms of the old clock."""
        ...


class FixedPoseSource:
    """A static camera: the same map <- camera transform at every stamp, whatever the frame names."""

    name = "fixed"

    def __init__(self, xyz_qxyzw: Sequence[float]) -> None:
        values = [float(v) for v in xyz_qxyzw]
        if len(values) != 7:
            raise BadInputError(f"fixed_transform needs 7 numbers [x, y, z, qx, qy, qz, qw], got {len(values)}")
        if not all(math.isfinite(v) for v in values):  # else every frame would be dropped with no word of why
            raise BadInputError(f"fixed_transform must be finite numbers [x, y, z, qx, qy, qz, qw], got {values}")
        try:
            self._T = make_transform(values[:3], values[3:])
        except ValueError as exc:  # zero quaternion
            raise BadInputError(f"fixed_transform has an invalid quaternion: {exc}") from exc

    def lookup(self, target: str, source: str, stamp: Time, timeout_s: float = 0.0) -> np.ndarray:
        return self._T.copy()

    def close(self) -> None:
        pass

    def clock_went_back(self) -> None:
        pass


class _ListenerNode:
    """A node of its own, spun on a thread of its own, for /tf: /tf is high-rate, and behind the main executor's
    camera and service traffic it fell seconds behind. start() once its subscriptions are made."""

    def __init__(self, node: Node) -> None:
        name = f"{node.get_name()}_tf_listener"
        self.node = rclpy.create_node(
            name, namespace=node.get_namespace(), context=node.context, start_parameter_services=False,
            enable_rosout=False,
            # a launch file's Node(name=...) passes `-r __node:=NAME`, a global remap that renames every node of
            # the process: without a rule of its own this one took the main node's name (two nodes, one name).
            # Its own arguments come first; the global ones (a /tf remap, the namespace) still apply.
            cli_args=["--ros-args", "-r", f"__node:={name}"],
        )
        self._executor = SingleThreadedExecutor(context=node.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name="tf_listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except ExternalShutdownException:  # the context was shut down: normal exit
            pass
        except Exception:
            if self.node.context.ok():
                raise
            # shut down between the executor's check and its wait (Ctrl-C): rclpy raises RCLError "failed to
            # initialize wait set: the given context is not valid" there, a traceback on a normal stop

    def close(self) -> None:
        self._executor.shutdown(timeout_sec=2.0)
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self.node.destroy_node()


class TopicPoseSource:
    """Subscribes to /tf and /tf_static itself (no tf2_ros needed), on a node and thread of its own."""

    name = "tf_topics"

    def __init__(self, node: Node, *, cache_s: float = 10.0) -> None:
        from tf2_msgs.msg import TFMessage  # our stand-in on pip installs, the real one elsewhere

        self._buffer = TransformBuffer(cache_s=cache_s)
        self._lock = threading.Condition()  # notified on every new transform, for lookups that wait
        self._listener = _ListenerNode(node)
        self._node = self._listener.node
        group = MutuallyExclusiveCallbackGroup()
        dynamic_qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        static_qos = QoSProfile(
            depth=100, history=HistoryPolicy.KEEP_LAST,
            reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self._node.create_subscription(TFMessage, "/tf", lambda m: self._on_tf(m, False), dynamic_qos,
                                       callback_group=group)
        self._node.create_subscription(TFMessage, "/tf_static", lambda m: self._on_tf(m, True), static_qos,
                                       callback_group=group)
        self._logger = node.get_logger()
        self._listener.start()

    def close(self) -> None:
        self._listener.close()

    def clock_went_back(self) -> None:
        pass  # each link's history starts again at its first sample of the new clock (TransformBuffer.jump_back_s)

    def _on_tf(self, msg: object, static: bool) -> None:
        for tf in msg.transforms:  # type: ignore[attr-defined]
            try:
                T = transform_to_matrix(tf)
                with self._lock:
                    self._buffer.add(tf.header.frame_id, tf.child_frame_id, stamp_to_sec(tf.header.stamp), T,
                                     static=static)
                    self._lock.notify_all()
            except (ValueError, TransformUnavailable) as exc:
                self._logger.warning(f"ignoring bad transform {tf.header.frame_id} <- {tf.child_frame_id}: {exc}",
                                     throttle_duration_sec=5.0)

    def lookup(self, target: str, source: str, stamp: Time, timeout_s: float = 0.0) -> np.ndarray:
        deadline = time.monotonic() + timeout_s
        t = stamp_to_sec(stamp)
        with self._lock:
            while True:
                try:
                    return self._buffer.lookup(target, source, t)
                except TransformUnavailable:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise
                    self._lock.wait(remaining)


class Tf2RosPoseSource:
    """The real tf2_ros buffer; used wherever tf2_ros is importable."""

    name = "tf2_ros"

    def __init__(self, node: Node) -> None:
        import tf2_ros

        self._tf2 = tf2_ros
        self._buffer = tf2_ros.Buffer()
        # Not TransformListener(buffer, node, spin_thread=True): its thread adds the node it is given to an executor
        # of its own, so the main node's images and services went to tf2's thread, or (main() adding the node
        # back) /tf to the main executor. Its own node and thread, as for tf_topics.
        self._spinner = _ListenerNode(node)
        try:
            self._listener = tf2_ros.TransformListener(self._buffer, self._spinner.node, spin_thread=False)
        except BaseException:
            self._spinner.close()  # its node would outlive a listener that was never made
            raise
        self._spinner.start()

    def lookup(self, target: str, source: str, stamp: Time, timeout_s: float = 0.0) -> np.ndarray:
        from rclpy.duration import Duration
        from rclpy.time import Time as RclpyTime

        try:
            # "/cam" as our listener reads it: tf2 refuses a frame id with a leading "/" (InvalidArgument), and only
            # after waiting out the whole timeout, on every frame of a driver that writes one
            tf = self._buffer.lookup_transform(target.lstrip("/"), source.lstrip("/"), RclpyTime.from_msg(stamp),
                                               timeout=Duration(seconds=timeout_s))
        except self._tf2.TransformException as exc:  # the base of every tf2 error
            raise TransformUnavailable(str(exc)) from exc
        try:
            return transform_to_matrix(tf)
        except ValueError as exc:  # tf2 refuses NaN but stores an infinite value; our listener refuses both
            raise TransformUnavailable(f"tf2 holds a transform {target} <- {source} that is not finite: {exc}") \
                from exc

    def close(self) -> None:
        self._listener.unregister()
        self._spinner.close()

    def clock_went_back(self) -> None:
        # tf2 kept the old clock's samples: the new ones within its 10 s cache were sorted in among them (a lookup
        # interpolated between the two runs), older ones refused as TF_OLD_DATA until the clock caught up
        self._buffer.clear()


def tf2_ros_available() -> bool:
    try:
        import tf2_ros  # noqa: F401
    except ImportError:
        return False
    return True


def make_pose_source(node: Node, mode: str, fixed_transform: Sequence[float]) -> PoseSource:
    """mode: "tf" (tf2_ros when importable, else our /tf listener), "tf2_ros", "tf_topics" or "fixed"."""
    if mode not in POSE_SOURCES:
        raise BadInputError(f"pose_source must be one of {POSE_SOURCES}, got {mode!r}")
    if mode == "fixed":
        return FixedPoseSource(fixed_transform)
    if mode == "tf2_ros" and not tf2_ros_available():
        raise BadInputError("pose_source tf2_ros: tf2_ros is not installed here; use tf (tf2_ros where it is "
                            "installed, our own /tf listener elsewhere) or tf_topics")
    if mode == "tf2_ros" or (mode == "tf" and tf2_ros_available()):
        return Tf2RosPoseSource(node)
    return TopicPoseSource(node)
