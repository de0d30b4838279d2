"""Bad input over real DDS: each gets a clear logged error or response message, the node keeps serving.

This run uses pose_source=fixed (a static camera given as a parameter); the end-to-end test uses /tf.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from bag_scene import CAMERA_FRAME, HEIGHT_M, INTR
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from ros_support import Driver, NodeProcess, frame_totals, fresh_domain, newest, top_down_camera
from sensor_msgs.msg import Image
from spatial_memory.msg import Track, TrackArray
from spatial_memory.srv import ListItems
from std_srvs.srv import Trigger
from tag_scene import pose, render_scene
from test_node_integration import Camera, camera_info, locate
from visualization_msgs.msg import Marker, MarkerArray

from spatial_memory_ros.core.geometry import split_transform
from spatial_memory_ros.ros.conversions import bgr_to_image, header, sec_to_stamp

pytestmark = pytest.mark.timeout(120)

T_MAP_CAM = top_down_camera(HEIGHT_M)


def _image(encoding: str, width: int, height: int, step: int, data: bytes) -> Image:
    msg = Image()
    msg.header = header(CAMERA_FRAME, sec_to_stamp(time.time()))
    msg.encoding, msg.width, msg.height, msg.step, msg.data = encoding, width, height, step, data
    return msg


def _with_nanosec(msg: Image, nanosec: int) -> Image:
    msg.header.stamp.nanosec = nanosec
    return msg


def _show_now(cam: Camera, drv: Driver, scene: np.ndarray, frames: int, gap_s: float) -> None:
    """Publish the scene `frames` times, stamped now, with its camera_info, gap_s apart."""
    for _ in range(frames):
        stamp = sec_to_stamp(time.time())
        cam.info_pub.publish(camera_info(stamp))
        cam.image_pub.publish(bgr_to_image(scene, header(CAMERA_FRAME, stamp)))
        drv.spin_until(lambda: False, gap_s)


def _wait_log(node: NodeProcess, drv: Driver, text: str) -> None:
    assert drv.spin_until(lambda: text in node.output(), 10), f"{text!r} never logged:\n{node.output()}"


def test_bad_input_is_reported_and_the_node_keeps_serving(tmp_path: Path) -> None:
    t, q = split_transform(T_MAP_CAM)
    domain = fresh_domain()
    db = tmp_path / "m.db"
    db.write_bytes(b"this is not an SQLite database" * 100)  # yesterday's file, corrupted
    node = NodeProcess(domain, tmp_path / "node.log", {
        "memory.db_path": str(db), "pose_source": "fixed",
        "fixed_transform": [*map(float, t), *map(float, q)], "publish_debug_image": True,
    })
    drv = Driver(domain)
    try:
        cam = Camera(drv)
        cam.wait_for_node()
        tracks = drv.collect(TrackArray, "tracks")
        debug = drv.collect(Image, "debug_image")
        health = drv.collect(DiagnosticArray, "/diagnostics")  # absolute, as diagnostic_updater publishes
        _wait_log(node, drv, "was moved aside to")
        aside = [p for p in tmp_path.iterdir() if p.name.startswith("m.db.corrupt-")]
        assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not an SQLite database")
        scene = render_scene(INTR, [(3, pose((0, 0, 0), (0.3, -0.2, HEIGHT_M)))], 0.16, background=150)

        cam.image_pub.publish(bgr_to_image(scene, header(CAMERA_FRAME, sec_to_stamp(time.time()))))
        _wait_log(node, drv, "no valid camera_info received yet")
        # the operator's view of the same: the camera input in ERROR with the reason, the memory's loss in WARN
        assert drv.spin_until(lambda: (s := newest(health, "camera input")) is not None
                              and s.message.startswith("every frame dropped: no valid camera_info"), 5), health
        input_status = newest(health, "camera input")
        assert input_status is not None and input_status.level == DiagnosticStatus.ERROR
        assert input_status.name == "t/spatial_memory: camera input" and input_status.hardware_id == "cpu"
        memory_status = newest(health, "item memory")
        assert memory_status is not None and memory_status.level == DiagnosticStatus.WARN
        assert "moved aside to" in memory_status.message and str(tmp_path) in memory_status.message

        stamp = sec_to_stamp(time.time())
        cam.info_pub.publish(camera_info(stamp))
        drv.spin_until(lambda: False, 0.5)
        bad = [
            (_image("32FC1", 4, 4, 16, bytes(64)), "unsupported encoding '32FC1'"),  # depth on the colour topic
            (_image("bgr8", 640, 480, 100, bytes(100 * 480)), "step 100 < width*channels*bytes"),
            (_image("bgr8", 0, 0, 0, b""), "empty image"),
            (_image("bgr8", 640, 480, 1920, bytes(1920 * 10)), "data has 19200 bytes"),
            (_image("mono8", 160, 120, 160, bytes(160 * 120)), "camera_info is 320x240 but the image is 160x120"),
            # an unstamped driver: tracks age by the stamps, so lost tracks would never end
            (bgr_to_image(scene, header(CAMERA_FRAME, sec_to_stamp(0.0))), "has stamp 0.000000000"),
            # nanosec past a second (builtin_interfaces allows it, nothing means it): processed, it stuck in
            # locate_item's last_seen
            (_with_nanosec(bgr_to_image(scene, header(CAMERA_FRAME, sec_to_stamp(time.time()))), 3_500_000_000),
             "has nanosec 3500000000 (not below 10^9)"),
            # one frame a day ahead aged out every track and set the item memory's times by it
            (bgr_to_image(scene, header(CAMERA_FRAME, sec_to_stamp(time.time() + 86400))),
             "s ahead of this node's clock"),
        ]
        for msg, expected in bad:
            cam.image_pub.publish(msg)
            _wait_log(node, drv, expected)

        # depth of another frame (not aligned to the image) is ignored with a reason; the frame is processed
        stamp = sec_to_stamp(time.time())
        other = _image("32FC1", INTR.width, INTR.height, INTR.width * 4, bytes(INTR.width * INTR.height * 4))
        other.header = header("depth_optical_frame", stamp)
        cam.depth_pub.publish(other)
        cam.info_pub.publish(camera_info(stamp))
        cam.image_pub.publish(bgr_to_image(scene, header(CAMERA_FRAME, stamp)))
        _wait_log(node, drv, "its frame 'depth_optical_frame' is not the image's")
        # NaN depth aligned with a valid image: the frame is processed, depth simply gives no position.
        for _ in range(6):
            stamp = sec_to_stamp(time.time())
            depth = np.full((INTR.height, INTR.width), np.nan, np.float32)
            dmsg = _image("32FC1", INTR.width, INTR.height, INTR.width * 4, depth.tobytes())
            dmsg.header.stamp = stamp
            cam.depth_pub.publish(dmsg)
            cam.info_pub.publish(camera_info(stamp))
            cam.image_pub.publish(bgr_to_image(scene, header(CAMERA_FRAME, stamp)))
            drv.spin_until(lambda: False, 0.15)
        assert drv.spin_until(lambda: any(t.item == "mug" and t.state == Track.STATE_CONFIRMED
                                          for arr in tracks for t in arr.tracks), 10), node.output()
        (mug_id,) = {t.id for t in tracks[-1].tracks if t.item == "mug"}
        # one frame stamped a minute early or 30 s late (a driver's glitch) is dropped alone: either reset tracks
        # and transforms, and the late one moved every remembered time back
        for offset, text in ((-60, "s before the newest: dropped"), (30, "s after the newest: dropped")):
            glitch = sec_to_stamp(time.time() + offset)
            cam.info_pub.publish(camera_info(glitch))
            cam.image_pub.publish(bgr_to_image(scene, header(CAMERA_FRAME, glitch)))
            _wait_log(node, drv, text)
            tracks.clear()
            _show_now(cam, drv, scene, 3, 0.15)
            assert drv.spin_until(lambda: len(tracks) >= 2, 10), node.output()
            assert {t.id for t in tracks[-1].tracks if t.item == "mug"} == {mug_id}, tracks[-1]
        # camera_info goes with the image of its stamp: a zooming camera's next camera_info (here one of another
        # size) that arrived before this frame's image was paired with it, and the frame dropped
        s1 = time.time()
        half = dataclasses.replace(INTR, fx=INTR.fx / 2, fy=INTR.fy / 2, cx=INTR.cx / 2, cy=INTR.cy / 2,
                                   width=INTR.width // 2, height=INTR.height // 2)
        cam.info_pub.publish(camera_info(sec_to_stamp(s1)))
        drv.spin_until(lambda: False, 0.2)
        cam.info_pub.publish(camera_info(sec_to_stamp(s1 + 0.01), half))
        drv.spin_until(lambda: False, 0.3)
        tracks.clear()
        first = sec_to_stamp(s1)
        cam.image_pub.publish(bgr_to_image(scene, header(CAMERA_FRAME, first)))
        assert drv.spin_until(lambda: any((a.header.stamp.sec, a.header.stamp.nanosec) == (first.sec, first.nanosec)
                                          for a in tracks), 10), node.output()
        assert f"camera_info is {half.width}x{half.height}" not in node.output()
        assert "stamps on" not in node.output()  # no "image stamps on ... went back to": nothing reset
        health.clear()
        assert drv.spin_until(lambda: newest(health, "camera input") is not None, 5)
        received, processed, dropped = frame_totals(newest(health, "camera input"))
        assert processed >= 1 and dropped >= 6 and received >= processed + dropped, (received, processed, dropped)
        memory_values = dict((v.key, v.value) for v in newest(health, "item memory").values)  # type: ignore[union-attr]
        assert memory_values["items known"] == "1" and memory_values["database"] == str(db)

        unknown = locate(drv, "unicorn")
        assert not unknown.success and "unicorn" in unknown.message
        empty = locate(drv, "   ")
        assert not empty.success and "empty" in empty.message

        assert node.alive()
        listed = drv.call(ListItems, "list_items", ListItems.Request())
        assert listed.success and [s.item for s in listed.items] == ["mug"]
        mug = locate(drv, "mug")
        assert mug.success and abs(mug.current.pose.pose.position.x - 0.3) < 0.05
        assert debug and all(d.encoding == "bgr8" and (d.width, d.height) == (INTR.width, INTR.height)
                             and d.header.frame_id == CAMERA_FRAME for d in debug)

        saved = drv.call(Trigger, "save_memory", Trigger.Request())
        assert saved.success and str(db) in saved.message
        with sqlite3.connect(db) as con:  # after save the main file alone holds the memory
            assert con.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        # a reset the store cannot write (another process holds its write lock: a sqlite3 shell, a backup) is
        # refused with a reason after SQLite's busy timeout, and clears nothing; the node runs on
        other = sqlite3.connect(db, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            # frames that see the mug while the store cannot be written: still processed and published (they were
            # dropped as a bug, each after 5 s), the sighting kept in RAM, the memory's status an ERROR saying so
            tracks.clear()
            health.clear()
            _show_now(cam, drv, scene, 4, 0.3)
            assert drv.spin_until(lambda: len(tracks) >= 2, 10), node.output()
            assert drv.spin_until(lambda: (s := newest(health, "item memory")) is not None
                                  and s.level == DiagnosticStatus.ERROR, 5), health
            status = newest(health, "item memory")
            assert status is not None and "cannot write the database" in status.message and "locked" in status.message
            assert "please report" not in node.output()
            refused = drv.call(Trigger, "reset_memory", Trigger.Request(), timeout=20)
        finally:
            other.close()
        assert not refused.success and "nothing was cleared" in refused.message and "locked" in refused.message
        assert node.alive()
        assert [s.item for s in drv.call(ListItems, "list_items", ListItems.Request()).items] == ["mug"]
        markers = drv.collect(MarkerArray, "markers")
        reset = drv.call(Trigger, "reset_memory", Trigger.Request())
        assert reset.success
        # RViz is told to forget the mug's markers at once (they stayed until their lifetime ran out)
        assert drv.spin_until(lambda: any(("usual", Marker.DELETE) in {(m.ns, m.action) for m in a.markers}
                                          for a in markers), 5), markers
        assert drv.call(ListItems, "list_items", ListItems.Request()).items == []
        gone = locate(drv, "mug")
        assert not gone.success and "mug" in gone.message
    finally:
        drv.close()
        code = node.stop()
        assert code == 0, f"the node exited with {code}:\n{node.output()}"


def test_a_damaged_model_file_stops_the_node_with_a_reason(tmp_path: Path) -> None:
    """change.model_path naming a checkpoint cut short (an interrupted copy): the node says which file and why,
    exits 1, and leaves the file as it was; no Python traceback."""
    from spatial_memory_ros.model.checkpoint import DEFAULT_CHECKPOINT

    cut = tmp_path / "model.pt"
    cut.write_bytes(DEFAULT_CHECKPOINT.read_bytes()[:200_000])
    log = _refused_start(NodeProcess(fresh_domain(), tmp_path / "node.log", {
        "memory.db_path": str(tmp_path / "m.db"), "change.method": "learned", "change.model_path": str(cut)}))
    assert str(cut) in log and "damaged" in log, log
    assert cut.stat().st_size == 200_000


@pytest.mark.parametrize("name,value,says", [
    ("rate_hz", "10", "parameter rate_hz takes a float (default 10.0)"),  # -p rate_hz:=10 is an integer
    ("change.batch_cameras", "on", "parameter change.batch_cameras takes a string (default 'auto')"),  # a boolean
])
def test_a_parameter_of_the_wrong_type_is_refused_with_what_to_write(tmp_path: Path, name: str, value: str,
                                                                   says: str) -> None:
    """rclpy refuses a value of another type than the parameter's with a traceback; the node says which parameter,
    what type it takes, and how to write it, in one line."""
    params = {"memory.db_path": str(tmp_path / "m.db"), name: value}  # -p name:=value unquoted, as a user types it
    log = _refused_start(NodeProcess(fresh_domain(), tmp_path / "node.log", params))
    assert says in log and "decimal point (10.0)" in log and "quote a string" in log, log


def test_a_parameter_the_node_does_not_have_is_named_with_the_closest_it_has(tmp_path: Path) -> None:
    """ROS ignores a parameter a node does not declare: a typo would silently run the default. The node warns,
    naming the closest parameter it has, and starts; the QoS overrides, declared later by rclpy, are not named."""
    params = {"memory.db_path": str(tmp_path / "m.db"), "change.metod": "classical",
              "qos_overrides./t/image.subscription.reliability": "reliable"}
    node = NodeProcess(fresh_domain(), tmp_path / "node.log", params)
    try:
        deadline = time.monotonic() + 60
        while "ready:" not in node.output() and node.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        log = node.output()
        assert "ready:" in log, log
    finally:
        assert node.stop() == 0, node.output()
    assert ("parameter change.metod was given but this node has no such parameter; it is ignored (did you mean "
            "change.method?)") in log, log
    assert "parameter qos_overrides" not in log and "change=learned (" in log, log


def _refused_start(node: NodeProcess) -> str:
    """The log of a node that must not start: it exits 1 with a `cannot start` line and no traceback."""
    try:
        code = node.proc.wait(60)
    finally:
        node.stop()
    log = node.output()
    assert code == 1, f"the node exited with {code}:\n{log}"
    assert "cannot start" in log and "Traceback" not in log, log
    return log


def test_a_second_node_on_the_same_memory_file_is_refused(tmp_path: Path) -> None:
    """Two cameras launched with one params file share memory.db_path: the second node would write its own
    picture of each item over the first's. It says so and exits 1; the first keeps serving its memory."""
    db = tmp_path / "m.db"
    domain = fresh_domain()
    first = NodeProcess(domain, tmp_path / "first.log", {"memory.db_path": str(db)})
    drv = Driver(domain)
    try:
        assert drv.spin_until(lambda: "ready:" in first.output(), 40), first.output()
        log = _refused_start(NodeProcess(domain, tmp_path / "second.log", {"memory.db_path": str(db)},
                                         namespace="/u"))
        assert "in use by another process" in log and str(db) in log, log
        assert first.alive() and drv.call(ListItems, "list_items", ListItems.Request()).success
    finally:
        drv.close()
        code = first.stop()
        assert code == 0, f"the first node exited with {code}:\n{first.output()}"


def test_a_memory_of_another_frame_is_refused_at_start(tmp_path: Path) -> None:
    """A memory written with map_frame map, restarted with map_frame odom, answered the map's positions as odom's
    without a word. Now the node says which frame the file holds and exits 1; the file is left as it was."""
    from spatial_memory_ros.core.store import MemoryStore

    db = tmp_path / "m.db"
    with MemoryStore(db) as store:
        store.claim_frame("map")
    before = db.read_bytes()
    log = _refused_start(NodeProcess(fresh_domain(), tmp_path / "node.log", {
        "memory.db_path": str(db), "map_frame": "odom", "change.method": "classical"}))
    assert "holds positions in frame 'map', not 'odom'" in log, log
    assert db.read_bytes() == before


@pytest.mark.parametrize("refusal", ["damaged model", "memory of another frame"])
def test_a_refused_start_stops_the_tf_listener_thread(tmp_path: Path, refusal: str) -> None:
    """The pose source's /tf thread starts before the pipelines open. Refused after it (a damaged model file, a
    memory of another frame), the node left that thread blocked in rclpy's wait, and at the process's exit it woke
    into a finalising interpreter: `terminate called without an active exception`, exit -6 instead of 1 (seen with
    torch 2.1; a race with any). The node, made in this process, must leave no such thread behind."""
    import threading

    import rclpy
    from rclpy.parameter import Parameter

    from spatial_memory_ros.core.errors import SpatialMemoryError
    from spatial_memory_ros.model.checkpoint import DEFAULT_CHECKPOINT
    from spatial_memory_ros.ros.node import SpatialMemoryNode

    params = [Parameter("memory.db_path", value=str(tmp_path / "m.db")), Parameter("pose_source", value="tf_topics")]
    if refusal == "damaged model":
        cut = tmp_path / "model.pt"
        cut.write_bytes(DEFAULT_CHECKPOINT.read_bytes()[:200_000])
        params += [Parameter("change.method", value="learned"), Parameter("change.model_path", value=str(cut))]
    else:
        from spatial_memory_ros.core.store import MemoryStore

        with MemoryStore(tmp_path / "m.db") as store:
            store.claim_frame("map")
        params += [Parameter("map_frame", value="odom"), Parameter("change.method", value="classical")]
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=fresh_domain())
    try:
        with pytest.raises(SpatialMemoryError):
            SpatialMemoryNode(context=context, parameter_overrides=params)
        assert not [t for t in threading.enumerate() if t.name == "tf_listener" and t.is_alive()]
    finally:
        rclpy.try_shutdown(context=context)
