"""Core dataclasses -> messages, written once for two message libraries: rclpy's generated classes (the node)
and a rosbags typestore's (the offline bag writer, which must work without rclpy).

The builders take a MessageTypes: constructors called with keyword fields only (the rest default) that
carry the message constants as attributes. ``rclpy_types()`` gives rclpy's; io/bag_types.py gives rosbags'.
No ROS import at module level.
"""

from __future__ import annotations

import collections
import functools
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.core.types import TrackInfo


@dataclass(frozen=True)
class MessageTypes:
    """Message constructors of one library; see the module docstring."""

    Time: Any
    Duration: Any
    Header: Any
    Point: Any
    Vector3: Any
    ColorRGBA: Any
    Image: Any
    Marker: Any
    MarkerArray: Any
    Track: Any
    TrackArray: Any
    # (N,) uint8 array -> the value a uint8[] field takes: bytes for rclpy (its fast path), the array for rosbags
    uint8_data: Callable[[np.ndarray], Any]


@functools.cache
def rclpy_types() -> MessageTypes:
    """rclpy's generated message classes (imported on first use: only the node needs ROS)."""
    from builtin_interfaces.msg import Duration, Time
    from geometry_msgs.msg import Point, Vector3
    from sensor_msgs.msg import Image
    from spatial_memory.msg import Track, TrackArray
    from std_msgs.msg import ColorRGBA, Header
    from visualization_msgs.msg import Marker, MarkerArray

    return MessageTypes(Time=Time, Duration=Duration, Header=Header, Point=Point, Vector3=Vector3,
                        ColorRGBA=ColorRGBA, Image=Image, Marker=Marker, MarkerArray=MarkerArray, Track=Track,
                        TrackArray=TrackArray, uint8_data=lambda a: a.tobytes())


INT32_MAX = 2**31 - 1  # builtin_interfaces' sec is int32; rclpy does not check, and a larger value wraps negative


# The exact stamps of the newest images, by their float seconds: a float64 near 1.8e9 s keeps about 240 ns, so a
# track's last_seen, converted back, was no image's stamp (a consumer matching tracks to images by stamp found none).
_EXACT_STAMPS: collections.OrderedDict[float, tuple[int, int]] = collections.OrderedDict()
_EXACT_STAMPS_MAX = 4096  # about 7 minutes of one 10 Hz camera; older times convert from the float
_EXACT_STAMPS_LOCK = threading.Lock()
_AMBIGUOUS = (-1, -1)  # a float two remembered stamps share: converted from the float


def remember_stamp(sec: int, nanosec: int) -> float:
    """An image's stamp as float s (what the core takes), remembered so that sec_to_stamp gives it back exactly."""
    t = float(sec) + float(nanosec) * 1e-9
    exact = (int(sec), int(nanosec))
    with _EXACT_STAMPS_LOCK:
        before = _EXACT_STAMPS.get(t)
        # two stamps a few ns apart (two hardware-synced cameras) are one float: neither can be told back then
        _EXACT_STAMPS[t] = exact if before is None or before == exact else _AMBIGUOUS
        _EXACT_STAMPS.move_to_end(t)
        while len(_EXACT_STAMPS) > _EXACT_STAMPS_MAX:
            _EXACT_STAMPS.popitem(last=False)
    return t


def sec_to_stamp(t: float, types: MessageTypes) -> Any:
    """float s -> builtin_interfaces/Time; a negative or non-finite time becomes 0 (unknown), a time past what
    int32 seconds hold (2038) the largest it holds. A recent image's stamp (remember_stamp) comes back exact."""
    with _EXACT_STAMPS_LOCK:
        exact = _EXACT_STAMPS.get(t)
    if exact is not None and exact != _AMBIGUOUS:
        return types.Time(sec=exact[0], nanosec=exact[1])
    if not math.isfinite(t) or t < 0:
        return types.Time(sec=0, nanosec=0)
    sec = int(t)
    if sec > INT32_MAX:
        return types.Time(sec=INT32_MAX, nanosec=999_999_999)
    nanosec = min(int(round((t - sec) * 1e9)), 999_999_999)
    return types.Time(sec=sec, nanosec=nanosec)


def duration(seconds: float, types: MessageTypes) -> Any:
    """float s -> builtin_interfaces/Duration, within [0, INT32_MAX s] (the node checks its lifetimes first)."""
    seconds = min(max(seconds, 0.0), float(INT32_MAX))
    sec = int(seconds)
    return types.Duration(sec=sec, nanosec=min(int((seconds - sec) * 1e9), 999_999_999))


def array_to_image(image: np.ndarray, header: Any, types: MessageTypes, encoding: str = "bgr8") -> Any:
    """(H, W, 3) uint8 -> Image in `encoding` (bgr8), or (H, W) uint8 -> mono8 Image, with the given header."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise BadInputError(f"cannot publish a {image.dtype} array of shape {image.shape}")
    image = np.ascontiguousarray(image)
    return types.Image(
        header=header, height=int(image.shape[0]), width=int(image.shape[1]),
        encoding="mono8" if image.ndim == 2 else encoding, is_bigendian=0, step=int(image.strides[0]),
        data=types.uint8_data(image.reshape(-1)),
    )


def track_to_msg(track: TrackInfo, types: MessageTypes) -> Any:
    """core TrackInfo -> spatial_memory/Track (box as x_min, y_min, width, height; POSITION_NONE if unknown)."""
    x1, y1, x2, y2 = (float(v) for v in track.box)
    fields: dict[str, Any] = {}
    if track.position is not None and np.all(np.isfinite(track.position)):
        p, v = track.position, track.velocity
        fields = {
            "position_source": int(track.position_source),
            "position": types.Point(x=float(p[0]), y=float(p[1]), z=float(p[2])),
            "velocity": types.Vector3(x=float(v[0]), y=float(v[1]), z=float(v[2])),
        }
    else:
        fields = {"position_source": int(types.Track.POSITION_NONE)}
    return types.Track(
        id=int(track.track_id), label=track.label, item=track.item, state=int(track.state),
        is_dynamic=bool(track.is_dynamic), confidence=float(track.confidence),
        x_min=x1, y_min=y1, width=x2 - x1, height=y2 - y1,
        first_seen=sec_to_stamp(track.first_seen, types), last_seen=sec_to_stamp(track.last_seen, types),
        **fields,
    )


def tracks_to_msg(tracks: Sequence[TrackInfo], header: Any, types: MessageTypes) -> Any:
    """spatial_memory/TrackArray with `header` (map frame, stamp of the source image)."""
    return types.TrackArray(header=header, tracks=[track_to_msg(t, types) for t in tracks])
