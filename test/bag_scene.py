"""Test helper: the node tests' scene (a camera 1.2 m above the floor looking down, the "mug" tag 3 moved
from A to B, a dark blob walking through) as a ROS 2 bag written with rosbags, and as a TUM folder holding
the very same frames, so `run` on either must give the same outputs. No rclpy needed.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from tag_scene import make_intrinsics, pose, render_scene

from spatial_memory_ros.core.geometry import invert, split_transform
from spatial_memory_ros.io.bag_types import make, typestore
from spatial_memory_ros.io.camera_yaml import save_camera_yaml

HEIGHT_M = 1.2
TAG_SIZE_M = 0.16  # as in config/spatial_memory.yaml
A = np.array([0.35, 0.2, 0.0])
B = np.array([-0.35, -0.2, 0.0])
CAMERA_FRAME = "camera_optical"
INTR = make_intrinsics(320, 240, 300.0)
T_MAP_CAM = np.diag([1.0, -1.0, -1.0, 1.0])  # looking straight down from HEIGHT_M (optical x = map x)
T_MAP_CAM[2, 3] = HEIGHT_M
T0, DT = 1000.0, 0.1  # stamps that survive both sec/nanosec and TUM's "%.6f" file names exactly


def render(tag_at: np.ndarray | None, person_x: float | None) -> np.ndarray:
    tags = []
    if tag_at is not None:
        p_cam = invert(T_MAP_CAM) @ np.append(tag_at, 1.0)
        tags.append((3, pose((0.0, 0.0, 0.0), tuple(p_cam[:3]))))  # lying flat, facing the camera
    image = render_scene(INTR, tags, TAG_SIZE_M, background=150)
    if person_x is not None:
        x = int(person_x)
        cv2.rectangle(image, (x, 160), (x + 25, 230), (40, 40, 90), -1)
    return image


def scene_frames(n_at_a: int = 14, n_at_b: int = 8) -> list[tuple[float, np.ndarray]]:
    """(stamp s, BGR image): the mug at A with a person walking by, then at B."""
    frames = []
    for i in range(n_at_a + n_at_b):
        at = A if i < n_at_a else B
        person = 20.0 + 14.0 * i if 3 <= i < n_at_a else None
        t = float(f"{T0 + i * DT:.6f}")  # as the TUM file name will say
        sec = int(t)
        assert float(sec) + float(round((t - sec) * 1e9)) * 1e-9 == t, "stamp does not survive sec/nanosec"
        frames.append((t, render(at, person)))
    return frames


def _time(t: float) -> object:
    sec = int(t)
    return make("builtin_interfaces/msg/Time", sec=sec, nanosec=int(round((t - sec) * 1e9)))


def _header(frame_id: str, t: float) -> object:
    return make("std_msgs/msg/Header", frame_id=frame_id, stamp=_time(t))


def _transform(parent: str, child: str, T: np.ndarray, t: float) -> object:
    xyz, q = split_transform(T)
    return make("geometry_msgs/msg/TransformStamped", header=_header(parent, t), child_frame_id=child,
                transform=make("geometry_msgs/msg/Transform",
                               translation=make("geometry_msgs/msg/Vector3", x=xyz[0], y=xyz[1], z=xyz[2]),
                               rotation=make("geometry_msgs/msg/Quaternion", x=q[0], y=q[1], z=q[2], w=q[3])))


def camera_info(t: float) -> object:
    k = INTR
    return make("sensor_msgs/msg/CameraInfo", header=_header(CAMERA_FRAME, t), width=k.width, height=k.height,
                distortion_model="plumb_bob", d=np.zeros(5),
                k=np.array([k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0]),
                p=np.array([k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0]))


def image_msg(image: np.ndarray, t: float, *, compressed: str = "") -> tuple[str, object]:
    """(msgtype, message): raw bgr8, or compressed with ".png" / ".jpg"."""
    if compressed:
        ok, data = cv2.imencode(compressed, image)
        assert ok
        fmt = "bgr8; " + ("png" if compressed == ".png" else "jpeg") + " compressed bgr8"
        return "sensor_msgs/msg/CompressedImage", make(
            "sensor_msgs/msg/CompressedImage", header=_header(CAMERA_FRAME, t), format=fmt,
            data=data.reshape(-1))
    return "sensor_msgs/msg/Image", make(
        "sensor_msgs/msg/Image", header=_header(CAMERA_FRAME, t), height=image.shape[0], width=image.shape[1],
        encoding="bgr8", is_bigendian=0, step=image.shape[1] * 3, data=image.reshape(-1))


def write_bag(
    path: Path,
    frames: list[tuple[float, np.ndarray]],
    *,
    storage: StoragePlugin = StoragePlugin.MCAP,
    compressed: str = "",
    image_topic: str = "/camera/image_raw",
    with_camera_info: bool = True,
    tf: bool = True,
    moving_tf: bool = False,
    depth_m: float | None = None,
    extra: dict[str, list[tuple[float, object]]] | None = None,
) -> None:
    """A rosbag2 folder: images (+ camera_info) at each stamp, the camera's tf and, optionally, depth.

    The tf tree is map <- base_link <- camera_optical. Static (both links on /tf_static) by default, so the
    pose equals T_MAP_CAM exactly; moving_tf puts map <- base_link on /tf at 20 Hz, between the image
    stamps, moving at 1 m/s along map x. depth_m: a constant 16UC1 depth image 5 ms after each image.
    extra: {msgtype: [(stamp, message)]} written on topic "/extra/<n>".
    """
    store = typestore()
    with Writer(path, version=9, storage_plugin=storage) as writer:
        conns: dict[str, object] = {}

        def write(topic: str, msgtype: str, msg: object, t: float) -> None:
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msgtype, typestore=store)
            writer.write(conns[topic], int(round(t * 1e9)), store.serialize_cdr(msg, msgtype))

        tf_type = "tf2_msgs/msg/TFMessage"
        if tf:
            links = [_transform("base_link", CAMERA_FRAME, T_MAP_CAM, 0.0)]
            if not moving_tf:
                links.append(_transform("map", "base_link", np.eye(4), 0.0))
            write("/tf_static", tf_type, make(tf_type, transforms=links), frames[0][0] - 0.5)
        if moving_tf:
            for k in range(int(round((frames[-1][0] - frames[0][0]) / 0.05)) + 4):  # past the last image
                t = frames[0][0] - 0.075 + k * 0.05
                write("/tf", tf_type, make(tf_type, transforms=[_transform("map", "base_link", base_at(t), t)]), t)
        for t, image in frames:
            if with_camera_info:
                write("/camera/camera_info", "sensor_msgs/msg/CameraInfo", camera_info(t), t)
            msgtype, msg = image_msg(image, t, compressed=compressed)
            write(image_topic, msgtype, msg, t + 0.001)
            if depth_m is not None:
                d = np.full((INTR.height, INTR.width), int(depth_m * 1000), np.uint16)
                write("/camera/depth/image_raw", "sensor_msgs/msg/Image", make(
                    "sensor_msgs/msg/Image", header=_header(CAMERA_FRAME, t + 0.005), height=INTR.height,
                    width=INTR.width, encoding="16UC1", is_bigendian=0, step=INTR.width * 2,
                    data=d.reshape(-1).view(np.uint8)), t + 0.006)
        for n, (msgtype, items) in enumerate((extra or {}).items()):
            for t, msg in items:
                write(f"/extra/{n}", msgtype, msg, t)


def write_messages(path: Path, items: list[tuple[str, str, object, float]]) -> Path:
    """A rosbag2 (MCAP) folder of (topic, msgtype, message, log time s), written in log-time order."""
    store = typestore()
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns: dict[str, object] = {}
        for topic, msgtype, msg, t in sorted(items, key=lambda x: x[3]):
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msgtype, typestore=store)
            writer.write(conns[topic], int(round(t * 1e9)), store.serialize_cdr(msg, msgtype))
    return path


def depth_msg(t: float, depth_m: float, frame_id: str = CAMERA_FRAME) -> object:
    """A constant 16UC1 depth image of INTR's size, stamped t."""
    d = np.full((INTR.height, INTR.width), int(depth_m * 1000), np.uint16)
    return make("sensor_msgs/msg/Image", header=_header(frame_id, t), height=INTR.height, width=INTR.width,
                encoding="16UC1", is_bigendian=0, step=INTR.width * 2, data=d.reshape(-1).view(np.uint8))


def base_at(t: float) -> np.ndarray:
    """map <- base_link of the moving_tf bag at time t: 1 m/s along map x from the origin at T0."""
    T = np.eye(4)
    T[0, 3] = t - T0
    return T


def write_tum(root: Path, frames: list[tuple[float, np.ndarray]]) -> None:
    """The same frames as a TUM folder: PNGs, the static camera pose, camera.yaml."""
    (root / "rgb").mkdir(parents=True)
    xyz, q = split_transform(T_MAP_CAM)
    lines = []
    for t, image in frames:
        cv2.imwrite(str(root / "rgb" / f"{t:.6f}.png"), image)
        lines.append(" ".join(repr(float(v)) for v in (t, *xyz, *q)))
    (root / "groundtruth.txt").write_text("\n".join(lines) + "\n")
    save_camera_yaml(INTR, root / "camera.yaml")
