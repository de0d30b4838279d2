"""Why a camera's image cannot go to its pipeline, found before any work: its stamp, its camera_info, and which
depth image goes with it. Each fault is (key, text): the node logs it throttled per camera and key (one kind of
bad input never hides another) and counts the frame dropped. Reads message fields only (no node, no rclpy), so
the offline bag reader (io.bag) pairs depth and judges stamps by the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.core.types import CameraIntrinsics

from . import decode

Fault = tuple[str, str]  # (throttle key, what to log)

# An image stamped further than this ahead of the node's clock is a bad stamp, not a capture time: one frame a day
# ahead aged out every track and set every sighting's "last seen" and dwell by it. Generous for machines whose
# clocks are a little apart (and a simulator's /clock a message behind); 0 in the clock = not known yet: no check.
MAX_STAMP_AHEAD_S = 60.0


def stamp_fault(stamp: Any, topic: str) -> Fault | None:
    """A header.stamp that is no capture time."""
    if stamp.nanosec >= 1_000_000_000:  # nothing means it (builtin_interfaces allows it): it stuck in last_seen
        return "stamp_nanosec", (f"image on {topic} has nanosec {stamp.nanosec} (not below 10^9); the node needs the "
                                 "capture time in header.stamp")
    if stamp.sec < 0 or (stamp.sec, stamp.nanosec) == (0, 0):
        # a driver that does not stamp its images: tracks age and item memory counts by the stamps, and the pose is
        # looked up at them, so such frames would keep lost tracks alive forever
        return "stamp", (f"image on {topic} has stamp {stamp.sec}.{stamp.nanosec:09d}; the node needs the capture "
                         "time in header.stamp")
    return None


def ahead_fault(stamp_s: float, now_ns: int, topic: str) -> Fault | None:
    """An image stamped more than MAX_STAMP_AHEAD_S ahead of the node's clock (now_ns; 0 = not known yet)."""
    ahead_s = stamp_s - now_ns * 1e-9
    if now_ns > 0 and ahead_s > MAX_STAMP_AHEAD_S:
        return "stamp_ahead", (f"image on {topic} is stamped {ahead_s:.0f} s ahead of this node's clock "
                               "(use_sim_time set on one side only? a camera on its own clock?)")
    return None


def info_fault(intrinsics: CameraIntrinsics | None, image: np.ndarray, info_topic: str) -> Fault | None:
    """No camera_info yet, or one of another image size."""
    if intrinsics is None:
        return "no_camera_info", f"no valid camera_info received yet on {info_topic}"
    if (intrinsics.width, intrinsics.height) != (image.shape[1], image.shape[0]):
        return "camera_info_size", (f"camera_info is {intrinsics.width}x{intrinsics.height} but the image is "
                                    f"{image.shape[1]}x{image.shape[0]}")
    return None


def matching_depth(stamp_s: float, frame_id: str, depths: Iterable[tuple[float, Any]], shape: tuple[int, ...],
                   max_dt_s: float, *, check_frame: bool) -> tuple[np.ndarray | None, Fault | None]:
    """The depth image (m) of (stamp s, message) depths nearest the image's stamp within max_dt_s, or None, with
    the reason one was ignored ("depth_window": none that near). check_frame: refuse depth of another frame_id than
    the image's (off when a camera_frame setting names the image's frame)."""
    best = min(depths, key=lambda d: abs(d[0] - stamp_s), default=None)
    if best is None:
        return None, None
    if abs(best[0] - stamp_s) > max_dt_s:
        return None, ("depth_window", f"the nearest is {abs(best[0] - stamp_s) * 1e3:.0f} ms from the image stamped "
                      f"{stamp_s:.3f} s, beyond the {max_dt_s:g} s allowed: the frame goes without depth")
    depth_frame = best[1].header.frame_id
    # a leading "/" (ROS 1, a bridge) names the same frame, as it does in the pose lookup
    if check_frame and depth_frame and frame_id and depth_frame.lstrip("/") != frame_id.lstrip("/"):
        # aligned depth carries the image's frame (e.g. realsense's aligned_depth_to_color); another frame's depth
        # of the same size (another camera's, the raw depth sensor's) would put every lifted point in the wrong place
        return None, ("depth_frame", f"its frame {depth_frame!r} is not the image's {frame_id!r} (depth must be "
                      "aligned to the image)")
    try:
        depth = decode.depth_to_metres(best[1])
    except BadInputError as exc:
        return None, ("depth", str(exc))
    if depth.shape != shape:
        return None, ("depth_size", f"size {depth.shape[::-1]} differs from the image {shape[::-1]}")
    return depth, None
