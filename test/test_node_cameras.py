"""Several cameras in one node (`cameras: [front, rear]`), over real DDS: each camera its own topics, tracks
and change mask, one item memory that locate_item answers from, and a fault on one camera leaves the other
processing."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_support import Driver, NodeProcess, frame_totals, fresh_domain, newest, top_down_camera
from sensor_msgs.msg import CameraInfo, Image
from spatial_memory.msg import Track, TrackArray
from std_srvs.srv import Trigger
from tag_scene import make_intrinsics, pose, render_scene
from test_node_integration import camera_info, locate, xyz
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.core.geometry import invert
from spatial_memory_ros.core.types import CameraIntrinsics
from spatial_memory_ros.ros.camera_input import MAX_CAMERAS, check_camera_names
from spatial_memory_ros.ros.conversions import bgr_to_image, header, sec_to_stamp, transform_to_msg

pytestmark = pytest.mark.timeout(180)

TAG_SIZE_M = 0.16
FRONT_INTR = make_intrinsics(320, 240, 300.0)
REAR_INTR = make_intrinsics(256, 192, 240.0)  # another size, so that each mask's size shows whose it is
T_BASE_FRONT = top_down_camera(1.2)  # base_link at the map origin: these are map poses too
T_BASE_REAR = top_down_camera(1.2)
T_BASE_REAR[0, 3] = 3.0  # the rear camera looks down 3 m away
MUG_AT = np.array([0.3, 0.2, 0.0])  # tag 3, seen by the front camera only
BOX_AT = np.array([3.2, -0.1, 0.0])  # tag 7, seen by the rear camera only


def _view(intr: CameraIntrinsics, T_map_cam: np.ndarray, tag_id: int, at: np.ndarray) -> np.ndarray:
    p_cam = invert(T_map_cam) @ np.append(at, 1.0)
    return render_scene(intr, [(tag_id, pose((0.0, 0.0, 0.0), tuple(p_cam[:3])))], TAG_SIZE_M, background=150)


@pytest.mark.parametrize("names", [[""], ["front"], ["front", "rear"], ["arm/wrist", "head"],
                                   [f"cam{i}" for i in range(MAX_CAMERAS)], ["c" * 100]])
def test_camera_names_that_are_accepted(names: list[str]) -> None:
    assert check_camera_names(names) == tuple(names)


@pytest.mark.parametrize("names,reason", [
    (["front", "front"], "each name once"), (["front", ""], "not relative ROS names"),
    (["/front"], "not relative ROS names"), (["2nd"], "not relative ROS names"), (["a b"], "not relative"),
    ([f"cam{i}" for i in range(MAX_CAMERAS + 1)], "1 to 8 names"), ([], "1 to 8 names"),
    (["front", "x" * 300], "longer than 100 characters"),  # rcl refused its topics with a bare RCLError
])
def test_camera_names_that_are_refused(names: list[str], reason: str) -> None:
    with pytest.raises(BadInputError, match=reason):
        check_camera_names(names)


@pytest.mark.parametrize("method", ["classical", "learned"])
def test_two_cameras_one_memory(tmp_path: Path, method: str) -> None:
    """With the learned change model and change.batch_cameras always, the two cameras share one network
    (model.camera_batch), as /diagnostics says; each camera's masks and tracks are still its own."""
    domain, ns = fresh_domain(), "/t"
    reliable = {f"qos_overrides.{ns}/{cam}/{topic}.subscription.reliability": "reliable"
                for cam in ("front", "rear") for topic in ("image", "camera_info")}
    node = NodeProcess(domain, tmp_path / "node.log",
                       {"memory.db_path": str(tmp_path / "m.db"), "cameras": ["front", "rear"],
                        "change.method": method, "change.batch_cameras": "always", **reliable})
    drv = Driver(domain, ns)
    try:
        n = drv.node
        pubs = {cam: (n.create_publisher(Image, f"{cam}/image", 10),
                      n.create_publisher(CameraInfo, f"{cam}/camera_info", 10)) for cam in ("front", "rear")}
        tf_pub = n.create_publisher(TFMessage, "/tf", 100)
        tracks = {cam: drv.collect(TrackArray, f"{cam}/tracks") for cam in ("front", "rear")}
        masks = {cam: drv.collect(Image, f"{cam}/change_mask") for cam in ("front", "rear")}
        markers = drv.collect(MarkerArray, "markers")
        health = drv.collect(DiagnosticArray, "/diagnostics")
        assert drv.spin_until(lambda: all(p[0].get_subscription_count() > 0 for p in pubs.values()), 40), \
            node.output()
        views = {"front": (FRONT_INTR, _view(FRONT_INTR, T_BASE_FRONT, 3, MUG_AT)),
                 "rear": (REAR_INTR, _view(REAR_INTR, T_BASE_REAR, 7, BOX_AT))}

        def frame(rear_image: np.ndarray | None = None) -> None:
            stamp = sec_to_stamp(time.time())
            tf_pub.publish(TFMessage(transforms=[
                transform_to_msg("map", "base_link", np.eye(4), stamp),
                transform_to_msg("base_link", "front_optical", T_BASE_FRONT, stamp),
                transform_to_msg("base_link", "rear_optical", T_BASE_REAR, stamp)]))
            for cam, (intr, image) in views.items():
                if cam == "rear" and rear_image is not None:
                    image = rear_image
                pubs[cam][1].publish(camera_info(stamp, intr, f"{cam}_optical"))
                pubs[cam][0].publish(bgr_to_image(image, header(f"{cam}_optical", stamp)))
            end = time.monotonic() + 0.1
            drv.spin_until(lambda: time.monotonic() > end, 1.1)

        for _ in range(25):
            frame()

        def confirmed(cam: str, item: str) -> bool:
            return any(t.item == item and t.state == Track.STATE_CONFIRMED for a in tracks[cam] for t in a.tracks)

        assert drv.spin_until(lambda: confirmed("front", "mug") and confirmed("rear", "box"), 10), node.output()
        assert not confirmed("front", "box") and not confirmed("rear", "mug")
        assert all((m.width, m.height, m.header.frame_id) == (320, 240, "front_optical") for m in masks["front"])
        assert all((m.width, m.height, m.header.frame_id) == (256, 192, "rear_optical") for m in masks["rear"])
        assert masks["front"] and masks["rear"]

        # one memory: what either camera saw, the one service answers, in the map frame
        mug, box = locate(drv, "mug"), locate(drv, "box")
        assert mug.success and box.success, (mug.message, box.message)
        assert np.linalg.norm(xyz(mug.current) - MUG_AT) < 0.05, xyz(mug.current)
        assert np.linalg.norm(xyz(box.current) - BOX_AT) < 0.05, xyz(box.current)
        namespaces = {m.ns for a in markers for m in a.markers}
        assert {"tracks/front", "tracks/rear", "usual", "current"} <= namespaces, namespaces

        def front_dropped() -> int:
            """The front camera's frames dropped since start, from a /diagnostics status published from now on."""
            health.clear()
            assert drv.spin_until(lambda: newest(health, "camera input front") is not None, 5)
            return frame_totals(newest(health, "camera input front"))[2]

        # a fault on the rear camera (images that do not fit its camera_info) drops only its frames. (A first
        # image may have come before its camera_info, on another topic: such drops are counted before.)
        before, dropped_before = len(tracks["front"]), front_dropped()
        for _ in range(15):
            frame(rear_image=np.full((96, 128, 3), 150, np.uint8))
        assert drv.spin_until(lambda: "dropped frame rear: camera_info is 256x192 but the image is 128x96"
                              in node.output(), 10), node.output()
        assert len(tracks["front"]) >= before + 10, (before, len(tracks["front"]))
        assert front_dropped() == dropped_before
        rear, front = newest(health, "camera input rear"), newest(health, "camera input front")
        assert rear is not None and rear.level != DiagnosticStatus.OK and "camera_info is 256x192" in rear.message
        assert front is not None and front.level == DiagnosticStatus.OK, front.message if front else None
        assert (rear.name, front.name) == ("t/spatial_memory: camera input rear",
                                           "t/spatial_memory: camera input front")
        changes = [next(v.value for v in status.values if v.key == "change") for status in (front, rear)]
        shared = [c for c in changes if "one network for 2 cameras" in c]
        assert all(c.startswith(method) for c in changes) and len(shared) == (2 if method == "learned" else 0), changes

        # reset forgets the one memory, whichever camera saw the item
        assert drv.call(Trigger, "reset_memory", Trigger.Request()).success
        assert not locate(drv, "mug").success and not locate(drv, "box").success
    finally:
        drv.close()
        code = node.stop()
        assert code == 0, f"the node exited with {code}:\n{node.output()}"


def test_several_cameras_need_each_image_placed_by_tf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One fixed transform cannot place two cameras, nor one camera_frame name them: refused at start."""
    import rclpy
    from rclpy.parameter import Parameter

    from spatial_memory_ros.ros.node import SpatialMemoryNode

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=fresh_domain())
    try:
        with pytest.raises(BadInputError, match="each image's frame_id gives its pose"):
            SpatialMemoryNode(context=context, parameter_overrides=[
                Parameter("memory.db_path", value=str(tmp_path / "m.db")), Parameter("pose_source", value="fixed"),
                Parameter("cameras", value=["front", "rear"])])
        with pytest.raises(BadInputError, match="camera_frame must be empty"):
            SpatialMemoryNode(context=context, parameter_overrides=[
                Parameter("memory.db_path", value=str(tmp_path / "m.db")),
                Parameter("cameras", value=["front", "rear"]), Parameter("camera_frame", value="cam")])
        with pytest.raises(BadInputError, match="not relative ROS names"):
            SpatialMemoryNode(context=context, parameter_overrides=[
                Parameter("memory.db_path", value=str(tmp_path / "m.db")), Parameter("cameras", value=["/x"])])
        # a bad fixed transform is refused before the models load and the memory's file is locked (after, before)
        from spatial_memory_ros.ros import node as node_module

        opened: list[int] = []
        real_open = node_module.Pipeline.open_cameras
        monkeypatch.setattr(node_module.Pipeline, "open_cameras",
                            staticmethod(lambda *a, **k: opened.append(1) or real_open(*a, **k)))
        with pytest.raises(BadInputError, match="quaternion"):
            SpatialMemoryNode(context=context, parameter_overrides=[
                Parameter("memory.db_path", value=str(tmp_path / "m.db")),
                Parameter("pose_source", value="fixed"), Parameter("fixed_transform", value=[0.0] * 7)])
        assert opened == []
    finally:
        rclpy.try_shutdown(context=context)


def test_a_camera_on_another_clock_is_dropped_and_the_memory_keeps_its_times(tmp_path: Path) -> None:
    """The rear camera's stamps 30 s ahead of the front's (a driver on its own clock): each camera's clock looked
    fine alone, while the one memory moved every remembered time back every 10 s and an item watched for 32 s had
    156 s of dwell. Now the rear camera's frames are dropped with the reason, the front camera's kept."""
    domain, ns = fresh_domain(), "/t"
    reliable = {f"qos_overrides.{ns}/{cam}/{topic}.subscription.reliability": "reliable"
                for cam in ("front", "rear") for topic in ("image", "camera_info")}
    node = NodeProcess(domain, tmp_path / "node.log", {"memory.db_path": str(tmp_path / "m.db"),
                                                       "cameras": ["front", "rear"], "change.method": "classical",
                                                       **reliable})
    drv = Driver(domain, ns)
    try:
        n = drv.node
        pubs = {cam: (n.create_publisher(Image, f"{cam}/image", 10),
                      n.create_publisher(CameraInfo, f"{cam}/camera_info", 10)) for cam in ("front", "rear")}
        static = n.create_publisher(TFMessage, "/tf_static", QoSProfile(
            depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        static.publish(TFMessage(transforms=[transform_to_msg("map", "front_optical", T_BASE_FRONT, Time()),
                                             transform_to_msg("map", "rear_optical", T_BASE_REAR, Time())]))
        tracks = drv.collect(TrackArray, "front/tracks")
        assert drv.spin_until(lambda: all(p[0].get_subscription_count() > 0 for p in pubs.values()), 40), \
            node.output()
        views = {"front": (FRONT_INTR, _view(FRONT_INTR, T_BASE_FRONT, 3, MUG_AT), 0.0),
                 "rear": (REAR_INTR, _view(REAR_INTR, T_BASE_REAR, 7, BOX_AT), 30.0)}
        start = time.time()
        while time.time() - start < 12.0:
            now = time.time()
            for cam, (intr, image, ahead_s) in views.items():
                if cam == "rear" and now - start < 1.5:
                    # the front camera first: a rear frame before it, past the start-up wait (a loaded machine),
                    # would reach the memory, as a camera switched on alone does (core/camera_clocks.py)
                    continue
                stamp = sec_to_stamp(now + ahead_s)
                pubs[cam][1].publish(camera_info(stamp, intr, f"{cam}_optical"))
                pubs[cam][0].publish(bgr_to_image(image, header(f"{cam}_optical", stamp)))
            drv.spin_until(lambda: False, 0.1)
        watched = time.time() - start
        assert drv.spin_until(lambda: "is stamped 30.0 s ahead of camera front's clock" in node.output(), 5), \
            node.output()
        assert "went back" not in node.output()
        assert tracks, node.output()  # the front camera kept processing
        mug = locate(drv, "mug")
        assert mug.success and mug.usual.dwell_s <= watched, (mug.usual.dwell_s, watched)
        assert not locate(drv, "box").success  # nothing of the rear camera's reached the memory
    finally:
        drv.close()
        code = node.stop()
        assert code == 0, f"the node exited with {code}:\n{node.output()}"


def test_a_remap_of_the_single_cameras_topics_is_named_when_cameras_are_named() -> None:
    """The launch file's image:=/camera/color/image_raw remaps the bare name; with cameras [front, rear] the node
    listens on front/image, so it did nothing, silently."""
    import rclpy
    from rclpy.node import Node

    from spatial_memory_ros.ros.camera_input import unused_remaps

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=fresh_domain())
    try:
        node = Node("probe", namespace="/t", context=context,
                    cli_args=["--ros-args", "-r", "image:=/camera/color/image_raw", "-r", "front/depth:=/d"])
        try:
            assert unused_remaps(node, ["front", "rear"]) == ["image -> /camera/color/image_raw"]
            assert unused_remaps(node, [""]) == []  # the single camera: the remap is the one it uses
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
