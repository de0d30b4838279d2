"""Message <-> numpy/dataclass conversions. Pure functions; no node state.

Replaces cv_bridge for the encodings we accept (cv_bridge is not installable from pip wheels), and
builds our own messages from the core's dataclasses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, PoseStamped, TransformStamped, Vector3
from sensor_msgs.msg import CameraInfo, Image
from spatial_memory.msg import ItemLocation, ItemStatus, Track
from std_msgs.msg import Header

from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.core.geometry import make_transform
from spatial_memory_ros.core.types import CameraIntrinsics, ItemAnswer, TrackInfo
from spatial_memory_ros.core.types import ItemLocation as CoreLocation

# encoding -> (channels, dtype) of what we accept on the colour topic
_COLOUR_ENCODINGS = {"bgr8": 3, "rgb8": 3, "mono8": 1}
_DEPTH_ENCODINGS: dict[str, np.dtype] = {
    "16UC1": np.dtype(np.uint16), "mono16": np.dtype(np.uint16), "32FC1": np.dtype(np.float32),
}


def stamp_to_sec(stamp: Time) -> float:
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def sec_to_stamp(t: float) -> Time:
    if not math.isfinite(t) or t < 0:
        return Time()
    sec = int(t)
    nanosec = min(int(round((t - sec) * 1e9)), 999_999_999)
    return Time(sec=sec, nanosec=nanosec)


def _image_array(msg: Image, channels: int, dtype: np.dtype) -> np.ndarray:
    """View msg.data as (H, W[, C]) honouring step (row padding) and endianness."""
    h, w = int(msg.height), int(msg.width)
    if h == 0 or w == 0:
        raise BadInputError(f"empty image ({w}x{h})")
    row_bytes = w * channels * dtype.itemsize
    if msg.step < row_bytes:
        raise BadInputError(f"step {msg.step} < width*channels*bytes = {row_bytes} for {msg.encoding}")
    buf = np.frombuffer(bytes(msg.data) if not isinstance(msg.data, (bytes, bytearray)) else msg.data,
                        dtype=np.uint8)
    if buf.size < msg.step * h:
        raise BadInputError(f"data has {buf.size} bytes, expected step*height = {msg.step * h}")
    rows = buf[: msg.step * h].reshape(h, msg.step)[:, :row_bytes]
    dt = dtype.newbyteorder(">" if msg.is_bigendian else "<") if dtype.itemsize > 1 else dtype
    arr = np.ascontiguousarray(rows).view(dt).astype(dtype, copy=False)
    return arr.reshape(h, w, channels) if channels > 1 else arr.reshape(h, w)


def image_to_bgr(msg: Image) -> np.ndarray:
    """sensor_msgs/Image (bgr8, rgb8, mono8) -> (H, W, 3) uint8 BGR. Raises BadInputError."""
    channels = _COLOUR_ENCODINGS.get(msg.encoding)
    if channels is None:
        raise BadInputError(f"unsupported encoding {msg.encoding!r}; expected one of {sorted(_COLOUR_ENCODINGS)}")
    arr = _image_array(msg, channels, np.dtype(np.uint8))
    if msg.encoding == "rgb8":
        return np.ascontiguousarray(arr[:, :, ::-1])
    if msg.encoding == "mono8":
        return np.repeat(arr[:, :, None], 3, axis=2)
    return arr.copy()  # the message buffer may be reused by rclpy


def depth_to_metres(msg: Image) -> np.ndarray:
    """Depth image (16UC1 mm or 32FC1 m) -> (H, W) float32 m with NaN where invalid."""
    dtype = _DEPTH_ENCODINGS.get(msg.encoding)
    if dtype is None:
        raise BadInputError(f"unsupported depth encoding {msg.encoding!r}; expected 16UC1 (mm) or 32FC1 (m)")
    arr = _image_array(msg, 1, dtype)
    if dtype == np.uint16:
        depth = arr.astype(np.float32) * 1e-3
        depth[arr == 0] = np.nan
    else:
        depth = arr.astype(np.float32, copy=True)
        depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth


def bgr_to_image(image: np.ndarray, header: Header, encoding: str = "bgr8") -> Image:
    """(H, W, 3) uint8 -> bgr8 Image, or (H, W) uint8 -> mono8 Image, with the given header."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise BadInputError(f"cannot publish a {image.dtype} array of shape {image.shape}")
    image = np.ascontiguousarray(image)
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = "mono8" if image.ndim == 2 else encoding
    msg.is_bigendian = 0
    msg.step = int(image.strides[0])
    msg.data = image.tobytes()
    return msg


def camera_info_to_intrinsics(msg: CameraInfo) -> CameraIntrinsics:
    """CameraInfo -> CameraIntrinsics; raises BadInputError for an uncalibrated (all-zero K) camera."""
    k = [float(v) for v in msg.k]
    if k[0] <= 0 or k[4] <= 0:
        raise BadInputError("camera_info has no calibration (K[0] or K[4] <= 0)")
    if msg.width == 0 or msg.height == 0:
        raise BadInputError("camera_info has zero width or height")
    return CameraIntrinsics(
        fx=k[0], fy=k[4], cx=k[2], cy=k[5], width=int(msg.width), height=int(msg.height),
        distortion=tuple(float(d) for d in msg.d),
    )


def transform_to_matrix(msg: TransformStamped) -> np.ndarray:
    """TransformStamped -> (4, 4) T_parent_child."""
    t, r = msg.transform.translation, msg.transform.rotation
    return make_transform([t.x, t.y, t.z], [r.x, r.y, r.z, r.w])


def track_to_msg(track: TrackInfo) -> Track:
    msg = Track()
    msg.id = int(track.track_id)
    msg.label = track.label
    msg.item = track.item
    msg.state = int(track.state)
    msg.is_dynamic = bool(track.is_dynamic)
    msg.confidence = float(track.confidence)
    x1, y1, x2, y2 = (float(v) for v in track.box)
    msg.x_min, msg.y_min, msg.width, msg.height = x1, y1, x2 - x1, y2 - y1
    if track.position is not None and np.all(np.isfinite(track.position)):
        msg.position_source = int(track.position_source)
        msg.position = Point(x=float(track.position[0]), y=float(track.position[1]), z=float(track.position[2]))
        v = track.velocity
        msg.velocity = Vector3(x=float(v[0]), y=float(v[1]), z=float(v[2]))
    else:
        msg.position_source = Track.POSITION_NONE
    msg.first_seen = sec_to_stamp(track.first_seen)
    msg.last_seen = sec_to_stamp(track.last_seen)
    return msg


def location_to_msg(loc: CoreLocation, frame_id: str) -> ItemLocation:
    """core ItemLocation -> msg ItemLocation in ``frame_id`` (the map frame)."""
    msg = ItemLocation()
    pose = PoseStamped()
    pose.header.frame_id = frame_id
    pose.header.stamp = sec_to_stamp(loc.last_seen)
    p, q = loc.position, loc.orientation
    pose.pose.position = Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))
    pose.pose.orientation.x, pose.pose.orientation.y = float(q[0]), float(q[1])
    pose.pose.orientation.z, pose.pose.orientation.w = float(q[2]), float(q[3])
    msg.pose = pose
    msg.confidence = float(min(max(loc.confidence, 0.0), 1.0))
    msg.last_seen = sec_to_stamp(loc.last_seen)
    msg.observations = int(loc.observations)
    msg.dwell_s = float(loc.dwell_s)
    return msg


def answer_to_status(answer: ItemAnswer, frame_id: str) -> ItemStatus:
    msg = ItemStatus()
    msg.item = answer.item
    msg.usual = location_to_msg(answer.usual, frame_id)
    msg.current = location_to_msg(answer.current, frame_id)
    msg.displaced = bool(answer.displaced)
    msg.distance_m = float(answer.distance_m)
    return msg


def fill_locate_response(response: object, answer: ItemAnswer, frame_id: str) -> None:
    """Fill a LocateItem.Response from an answer (success=True and a readable message)."""
    status = answer_to_status(answer, frame_id)
    response.success = True  # type: ignore[attr-defined]
    response.message = describe(answer)  # type: ignore[attr-defined]
    response.usual = status.usual  # type: ignore[attr-defined]
    response.current = status.current  # type: ignore[attr-defined]
    response.displaced = status.displaced  # type: ignore[attr-defined]
    response.distance_m = status.distance_m  # type: ignore[attr-defined]
    response.alternatives = [location_to_msg(a, frame_id) for a in answer.alternatives]  # type: ignore[attr-defined]


def describe(answer: ItemAnswer) -> str:
    """One line a person can read, shared by the service and the CLI."""
    u, c = answer.usual.position, answer.current.position
    where = f"usually at ({u[0]:.2f}, {u[1]:.2f}, {u[2]:.2f})"
    now = f"now at ({c[0]:.2f}, {c[1]:.2f}, {c[2]:.2f})"
    state = f"displaced by {answer.distance_m:.2f} m" if answer.displaced else "in its usual place"
    return f"{answer.item}: {where}, {now}, {state}"


def header(frame_id: str, stamp: Time) -> Header:
    return Header(frame_id=frame_id, stamp=stamp)


__all__: Sequence[str] = (
    "stamp_to_sec", "sec_to_stamp", "image_to_bgr", "depth_to_metres", "bgr_to_image",
    "camera_info_to_intrinsics", "transform_to_matrix", "track_to_msg", "location_to_msg",
    "answer_to_status", "fill_locate_response", "describe", "header",
)
