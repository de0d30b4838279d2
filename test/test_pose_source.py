"""The one pose-source interface: which implementation `make_pose_source` picks, and the /tf listener."""

from __future__ import annotations

import threading

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed")
from geometry_msgs.msg import TransformStamped  # noqa: E402
from ros_support import fresh_domain  # noqa: E402

from spatial_memory_ros.core.errors import BadInputError  # noqa: E402
from spatial_memory_ros.core.tf_buffer import TransformUnavailable  # noqa: E402
from spatial_memory_ros.ros import pose_source as ps  # noqa: E402
from spatial_memory_ros.ros.conversions import sec_to_stamp  # noqa: E402


@pytest.fixture
def node():  # type: ignore[no-untyped-def]
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=fresh_domain())
    n = rclpy.create_node("pose_probe", context=context)
    yield n
    n.destroy_node()
    rclpy.try_shutdown(context=context)


def test_fixed_source_and_its_validation(node) -> None:  # type: ignore[no-untyped-def]
    src = ps.make_pose_source(node, "fixed", [1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 1.0])
    assert src.name == "fixed"
    assert np.allclose(src.lookup("map", "anything", sec_to_stamp(5.0))[:3, 3], [1, 2, 3])
    with pytest.raises(BadInputError, match="7 numbers"):
        ps.make_pose_source(node, "fixed", [0.0, 0.0])
    with pytest.raises(BadInputError, match="quaternion"):
        ps.make_pose_source(node, "fixed", [0.0] * 7)
    for bad in (float("nan"), float("inf")):  # accepted before: every frame was then dropped, the reason unnamed
        with pytest.raises(BadInputError, match="fixed_transform must be finite"):
            ps.make_pose_source(node, "fixed", [bad, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    with pytest.raises(BadInputError, match="pose_source must be one of"):
        ps.make_pose_source(node, "gps", [])


@pytest.mark.parametrize("installed", [True, False])
def test_tf_picks_tf2_ros_only_where_installed(node, monkeypatch, installed: bool) -> None:  # type: ignore[no-untyped-def]
    """Both sides whatever this machine has: a stand-in tf2_ros is importable, a None in sys.modules is not
    (import raises ImportError), so "tf" must pick tf2_ros in one case and our /tf listener in the other."""
    import sys
    import types

    if installed:
        class Listener:
            def __init__(self, buffer: object, listener_node: object, *, spin_thread: bool = False) -> None:
                pass

            def unregister(self) -> None:
                pass

        stand_in = types.ModuleType("tf2_ros")
        stand_in.Buffer = object  # type: ignore[attr-defined]
        stand_in.TransformListener = Listener  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "tf2_ros", stand_in)
    else:
        monkeypatch.setitem(sys.modules, "tf2_ros", None)
    assert ps.tf2_ros_available() == installed
    src = ps.make_pose_source(node, "tf", [])
    try:
        assert type(src) is (ps.Tf2RosPoseSource if installed else ps.TopicPoseSource)
        assert src.name == ("tf2_ros" if installed else "tf_topics")
    finally:
        src.close()


def test_topic_listener_waits_for_a_late_transform(node) -> None:  # type: ignore[no-untyped-def]
    from tf2_msgs.msg import TFMessage

    src = ps.TopicPoseSource(node)
    try:
        with pytest.raises(TransformUnavailable):
            src.lookup("map", "cam", sec_to_stamp(10.0))
        pub = node.create_publisher(TFMessage, "/tf", 10)
        tf = TransformStamped()
        tf.header.frame_id, tf.child_frame_id = "map", "cam"
        tf.header.stamp = sec_to_stamp(10.0)
        tf.transform.translation.x, tf.transform.rotation.w = 4.0, 1.0

        stop = threading.Event()

        def publish_later() -> None:
            stop.wait(0.3)
            for _ in range(20):  # the listener's subscription may still be matching
                if stop.is_set():
                    return  # the test is over: the node (and this publisher) is being destroyed
                pub.publish(TFMessage(transforms=[tf]))
                stop.wait(0.1)

        publisher = threading.Thread(target=publish_later, daemon=True)
        publisher.start()
        try:
            T = src.lookup("map", "cam", sec_to_stamp(10.0), timeout_s=5.0)
        finally:
            stop.set()
            publisher.join(timeout=5.0)
        assert T[0, 3] == pytest.approx(4.0)
    finally:
        src.close()


def test_the_topic_listener_keeps_its_own_name_when_the_process_is_renamed() -> None:
    """A launch file's Node(name=...) passes `-r __node:=NAME`, which renames every node of the process; the
    listener's node took the main node's name with it, and two nodes shared one name in the graph."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=fresh_domain(),
               args=["x", "--ros-args", "-r", "__node:=spatial_memory", "-r", "__ns:=/robot1"])
    main = rclpy.create_node("spatial_memory_node", context=context)
    src = ps.TopicPoseSource(main)
    try:
        assert main.get_fully_qualified_name() == "/robot1/spatial_memory"
        assert src._node.get_fully_qualified_name() == "/robot1/spatial_memory_tf_listener"
    finally:
        src.close()
        main.destroy_node()
        rclpy.try_shutdown(context=context)


@pytest.mark.parametrize("shut_down", [True, False])
def test_the_listener_thread_stops_quietly_only_when_the_context_went_down(monkeypatch, shut_down: bool) -> None:  # type: ignore[no-untyped-def]
    """A Ctrl-C can shut the context down between the executor's check and its wait, where rclpy raises RCLError
    ("the given context is not valid"), and the /tf thread printed a traceback on a normal stop. That error is
    quiet only once the context is down; with the context up, an error in the thread is still reported."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=fresh_domain())
    main = rclpy.create_node("spatial_memory", context=context)
    listener = ps._ListenerNode(main)
    reported: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: reported.append(args.exc_value))

    def spin() -> None:
        if shut_down:
            rclpy.try_shutdown(context=context)
        raise RuntimeError("failed to initialize wait set: the given context is not valid")

    monkeypatch.setattr(listener._executor, "spin", spin)
    try:
        listener.start()
        listener._thread.join(timeout=10)
        assert not listener._thread.is_alive()
        assert [str(e) for e in reported] == ([] if shut_down else
                                              ["failed to initialize wait set: the given context is not valid"])
    finally:
        listener.node.destroy_node()
        main.destroy_node()
        rclpy.try_shutdown(context=context)


def test_tf2_ros_listens_on_a_node_and_thread_of_its_own(node, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """TransformListener(buffer, node, spin_thread=True) was given the main node: tf2's thread added it to an
    executor of its own, so either /tf went to the main executor (behind camera and service traffic) or the
    main node's images and services went to tf2's thread. A stand-in tf2_ros records what it is given."""
    import sys
    import types

    given: list[tuple[object, bool]] = []

    class Listener:
        def __init__(self, buffer: object, listener_node: object, *, spin_thread: bool = False) -> None:
            given.append((listener_node, spin_thread))

        def unregister(self) -> None:
            pass

    cleared: list[int] = []

    class Buffer:
        def clear(self) -> None:
            cleared.append(1)

    stand_in = types.ModuleType("tf2_ros")
    stand_in.Buffer = Buffer  # type: ignore[attr-defined]
    stand_in.TransformListener = Listener  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tf2_ros", stand_in)
    src = ps.make_pose_source(node, "tf2_ros", [])
    try:
        ((listener_node, spin_thread),) = given
        assert listener_node is not node and not spin_thread
        assert listener_node.get_name() == "pose_probe_tf_listener"  # type: ignore[attr-defined]
        assert any(t.name == "tf_listener" for t in threading.enumerate())
        src.clock_went_back()  # tf2 kept the old clock's samples and sorted the new ones in among them
        assert cleared == [1]
    finally:
        src.close()


def test_pose_source_tf2_ros_without_tf2_ros_is_a_clear_error(node, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """It was a ModuleNotFoundError traceback."""
    monkeypatch.setattr(ps, "tf2_ros_available", lambda: False)
    with pytest.raises(BadInputError, match="tf2_ros is not installed"):
        ps.make_pose_source(node, "tf2_ros", [])


def _tf2_stand_in(transforms: dict[tuple[str, str], TransformStamped]):  # type: ignore[no-untyped-def]
    """A tf2_ros with the real API's contract where Tf2RosPoseSource.lookup depends on it: lookup_transform(target,
    source, rclpy Time, timeout=rclpy Duration) returning a TransformStamped, frame ids with a leading "/" refused,
    every error a subclass of TransformException. Types the real one refuses raise TypeError here too."""
    import types

    from rclpy.duration import Duration
    from rclpy.time import Time as RclpyTime

    module = types.ModuleType("tf2_ros")

    class TransformException(Exception):
        pass

    class LookupException(TransformException):
        pass

    class InvalidArgumentException(TransformException):
        pass

    class Buffer:
        def lookup_transform(self, target_frame: str, source_frame: str, time: object,
                             timeout: object = Duration()) -> TransformStamped:
            if not isinstance(time, RclpyTime) or not isinstance(timeout, Duration):
                raise TypeError(f"time must be rclpy Time and timeout rclpy Duration, got {time!r}, {timeout!r}")
            for frame in (target_frame, source_frame):
                if frame.startswith("/"):
                    raise InvalidArgumentException(f"in tf2 frame_ids cannot start with a '/': {frame}")
            try:
                return transforms[(target_frame, source_frame)]
            except KeyError:
                raise LookupException(f'"{source_frame}" passed to lookupTransform does not exist') from None

        def clear(self) -> None:
            pass

    class Listener:
        def __init__(self, buffer: object, listener_node: object, *, spin_thread: bool = False) -> None:
            pass

        def unregister(self) -> None:
            pass

    module.Buffer, module.TransformListener = Buffer, Listener  # type: ignore[attr-defined]
    module.TransformException = TransformException  # type: ignore[attr-defined]
    return module


def test_tf2_ros_lookup_gives_the_pose_and_turns_every_tf2_error_into_a_dropped_frame(node, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Tf2RosPoseSource.lookup, the default on every ROS install, had never run: the stand-ins had no
    lookup_transform. A driver's "/cam" waited out the timeout and was refused by tf2 (our listener reads it), and
    an infinite transform, which tf2 stores, raised ValueError in the frame's processing ("please report")."""
    import sys

    def transform(x: float) -> TransformStamped:
        tf = TransformStamped()
        tf.header.frame_id, tf.child_frame_id = "map", "cam"
        tf.transform.translation.x, tf.transform.translation.y, tf.transform.translation.z = x, 2.0, 3.0
        tf.transform.rotation.z = tf.transform.rotation.w = float(np.sqrt(0.5))  # 90 deg about z
        return tf

    table = {("map", "cam"): transform(1.0), ("map", "far"): transform(float("inf"))}
    monkeypatch.setitem(sys.modules, "tf2_ros", _tf2_stand_in(table))
    src = ps.make_pose_source(node, "tf2_ros", [])
    try:
        T = src.lookup("map", "cam", sec_to_stamp(10.0), timeout_s=0.1)
        np.testing.assert_allclose(T[:3, 3], [1.0, 2.0, 3.0])
        np.testing.assert_allclose(T[:3, :3], [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], atol=1e-12)
        np.testing.assert_allclose(src.lookup("map", "/cam", sec_to_stamp(10.0)), T)
        with pytest.raises(TransformUnavailable, match="does not exist"):
            src.lookup("map", "nowhere", sec_to_stamp(10.0))
        with pytest.raises(TransformUnavailable, match="not finite"):
            src.lookup("map", "far", sec_to_stamp(10.0))
    finally:
        src.close()
