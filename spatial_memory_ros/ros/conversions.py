"""Message <-> numpy/dataclass conversions for the node (rclpy messages). Pure functions; no node state.

The decoders (decode.py) and the builders (encode.py) import no ROS, so the offline bag reader/writer use
the same code with rosbags' message classes; this module binds the builders to rclpy's classes and adds
the service messages, which only the node needs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, PoseStamped, TransformStamped
from sensor_msgs.msg import Image
from spatial_memory.msg import ItemLocation, ItemStatus, Track
from std_msgs.msg import Header

from spatial_memory_ros.core.config import PipelineConfig
from spatial_memory_ros.core.geometry import split_transform
from spatial_memory_ros.core.types import ItemAnswer, TrackInfo
from spatial_memory_ros.core.types import ItemLocation as CoreLocation

from . import encode
from .decode import (
    camera_info_to_intrinsics,
    compressed_to_bgr,
    depth_to_metres,
    image_to_bgr,
    stamp_to_sec,
    transform_to_matrix,
)


def sec_to_stamp(t: float) -> Time:
    return encode.sec_to_stamp(t, encode.rclpy_types())


def transform_to_msg(parent: str, child: str, T_parent_child: np.ndarray, stamp: Time) -> TransformStamped:
    """(4, 4) T_parent_child -> geometry_msgs/TransformStamped (the inverse of transform_to_matrix)."""
    msg = TransformStamped()
    msg.header.frame_id, msg.header.stamp, msg.child_frame_id = parent, stamp, child
    t, q = split_transform(np.asarray(T_parent_child, dtype=np.float64))
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = map(float, t)
    r = msg.transform.rotation
    r.x, r.y, r.z, r.w = map(float, q)
    return msg


def bgr_to_image(image: np.ndarray, header: Header, encoding: str = "bgr8") -> Image:
    """(H, W, 3) uint8 -> bgr8 Image, or (H, W) uint8 -> mono8 Image, with the given header."""
    return encode.array_to_image(image, header, encode.rclpy_types(), encoding)


def track_to_msg(track: TrackInfo) -> Track:
    return encode.track_to_msg(track, encode.rclpy_types())


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
    msg.missing = bool(answer.missing)
    msg.current_inferred = bool(answer.current_inferred)
    return msg


def configured_items(config: PipelineConfig) -> set[str]:
    """The item names the node was told to expect: the items parameter's names where tags are looked for and,
    with a class detector, its item classes (each class is one item). locate_item answers one of these, unseen,
    with STATUS_NOT_SEEN_YET ("worth looking for"); a tagged item the node cannot find is not one."""
    names = set(config.tags.items) if config.detector.finds_tags else set()
    if config.detector.backend != "apriltag":
        names |= set(config.detector.item_classes)
    return names


def unsearched_tag_items(config: PipelineConfig) -> list[str]:
    """The items parameter's names when no tag is looked for (a class detector with apriltag_items off): items
    the node can never find, so it warns at start."""
    return [] if config.detector.finds_tags else sorted(config.tags.items)


def fill_locate_response(response: object, answer: ItemAnswer, frame_id: str) -> None:
    """Fill a LocateItem.Response from an answer (success=True and a readable message)."""
    status = answer_to_status(answer, frame_id)
    response.success = True  # type: ignore[attr-defined]
    response.message = describe(answer)  # type: ignore[attr-defined]
    response.usual = status.usual  # type: ignore[attr-defined]
    response.current = status.current  # type: ignore[attr-defined]
    response.displaced = status.displaced  # type: ignore[attr-defined]
    response.distance_m = status.distance_m  # type: ignore[attr-defined]
    response.missing = status.missing  # type: ignore[attr-defined]
    response.current_inferred = status.current_inferred  # type: ignore[attr-defined]
    response.alternatives = [location_to_msg(a, frame_id) for a in answer.alternatives]  # type: ignore[attr-defined]


def describe(answer: ItemAnswer) -> str:
    """One line a person can read, shared by the service and the CLI."""
    u, c = answer.usual.position, answer.current.position
    where = f"usually at ({u[0]:.2f}, {u[1]:.2f}, {u[2]:.2f})"
    now = f"now at ({c[0]:.2f}, {c[1]:.2f}, {c[2]:.2f})"
    if answer.missing:  # the last sighting's place was seen empty
        now = f"not where last seen; likely at ({c[0]:.2f}, {c[1]:.2f}, {c[2]:.2f})" if answer.current_inferred \
            else f"gone from ({c[0]:.2f}, {c[1]:.2f}, {c[2]:.2f}) where last seen, whereabouts unknown"
    elif answer.current_inferred:  # the return prior: last seen away long enough ago to be back by now
        now = f"probably back at ({c[0]:.2f}, {c[1]:.2f}, {c[2]:.2f}) (last seen away, not seen since)"
    if answer.displaced:
        return f"{answer.item}: {where}, {now}, displaced by {answer.distance_m:.2f} m"
    if answer.missing:  # its place was seen empty: "in its usual place" it is not, whatever current says
        return f"{answer.item}: {where}, {now}"
    return f"{answer.item}: {where}, {now}, in its usual place"


def header(frame_id: str, stamp: Time) -> Header:
    return Header(frame_id=frame_id, stamp=stamp)


__all__: Sequence[str] = (
    "stamp_to_sec", "sec_to_stamp", "image_to_bgr", "compressed_to_bgr", "depth_to_metres", "bgr_to_image",
    "camera_info_to_intrinsics", "transform_to_matrix", "track_to_msg", "location_to_msg",
    "answer_to_status", "fill_locate_response", "describe", "header",
)
