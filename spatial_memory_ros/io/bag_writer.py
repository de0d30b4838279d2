"""`run --out-bag`: the node's outputs written to an MCAP bag (rosbags; no rclpy), for Foxglove or ros2 bag.

Topics and contents are the node's (README "The node"): /tracks (spatial_memory/TrackArray, map frame),
/change_mask (sensor_msgs/Image mono8, the image's header) and /markers (visualization_msgs/MarkerArray).
The messages are built by the node's own builders (ros/encode.py, ros/markers.py) with rosbags' classes.
Log times are the input image's, so the outputs line up with the input bag when both are opened.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from rosbags.interfaces import Connection
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

from ..core.errors import BadInputError
from ..core.types import FrameResult, ItemAnswer
from ..ros import encode
from ..ros.markers import MarkerBuilder
from .bag import FrameHeader
from .bag_types import rosbags_types, typestore
from .outputs import DEFAULT_CAMERA_FRAME

TOPICS = {
    "/tracks": "spatial_memory/msg/TrackArray",
    "/change_mask": "sensor_msgs/msg/Image",
    "/markers": "visualization_msgs/msg/MarkerArray",
}


class BagResultWriter:
    """Writes one frame's results at a time to a new rosbag2 folder `path` holding `<name>.mcap`.

    map_frame: frame_id of tracks and markers; None = each frame's own (a static camera, whose map frame is its
    optical frame); marker_lifetime_s as the node's parameter.
    """

    def __init__(self, path: str | Path, *, map_frame: str | None = "map", marker_lifetime_s: float = 1.0) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise BadInputError(f"{self.path} exists; --out-bag makes a new bag folder (remove it or pick another)")
        self._types = rosbags_types()
        self._store = typestore()
        self._map_frame = map_frame
        self._markers = MarkerBuilder(map_frame or DEFAULT_CAMERA_FRAME, marker_lifetime_s, self._types)
        self._lifetime_s = marker_lifetime_s
        self._last_log_ns: int | None = None  # the previous frame's log time: markers live at least two gaps
        self._writer = Writer(self.path, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP)
        try:
            self._writer.open()
        except WriterError as exc:
            raise BadInputError(f"cannot create bag {self.path}: {exc}") from None
        self._conns: dict[str, Connection] = {
            topic: self._writer.add_connection(topic, msgtype, typestore=self._store)
            for topic, msgtype in TOPICS.items()
        }
        self.messages_written = 0

    @property
    def mcap_path(self) -> Path:
        return self.path / f"{self.path.name}.mcap"

    def write(self, stamp: float, result: FrameResult, items: Sequence[ItemAnswer],
              header: FrameHeader | None = None) -> None:
        """One frame's outputs. header: the source image's (bags); else stamp (s) and frame "camera"."""
        T = self._types
        if header is None:
            stamp_msg = encode.sec_to_stamp(stamp, T)
            header = FrameHeader(DEFAULT_CAMERA_FRAME, stamp_msg.sec * 1_000_000_000 + stamp_msg.nanosec,
                                 stamp_msg.sec * 1_000_000_000 + stamp_msg.nanosec)
        else:
            stamp_msg = T.Time(sec=header.stamp_ns // 1_000_000_000, nanosec=header.stamp_ns % 1_000_000_000)
            # as the node does at decoding: a track's first_seen / last_seen (float s in the core) then come back as
            # this image's exact stamp, not tens of ns off it, so they match /tracks' and /change_mask's headers
            encode.remember_stamp(stamp_msg.sec, stamp_msg.nanosec)
        frame = self._map_frame or header.frame_id or DEFAULT_CAMERA_FRAME  # as items.json names it
        self._markers.frame_id = frame
        # as the node does (two frame periods at least): a 0.5 Hz input's markers were gone half the time on replay
        # in log time, the clock a replay shows them by (a simulator slower than real time logs wider gaps)
        gap_s = 0.0 if self._last_log_ns is None else (header.log_time_ns - self._last_log_ns) * 1e-9
        self._markers.lifetime_s = max(self._lifetime_s, 2.0 * gap_s)
        self._last_log_ns = header.log_time_ns
        out = {
            "/tracks": encode.tracks_to_msg(result.tracks, T.Header(frame_id=frame, stamp=stamp_msg), T),
            "/change_mask": encode.array_to_image(result.change_mask,
                                                  T.Header(frame_id=header.frame_id or DEFAULT_CAMERA_FRAME,
                                                           stamp=stamp_msg), T),  # as items.json, tracks name it
            "/markers": self._markers.build(result.tracks, items, stamp_msg),
        }
        for topic, msg in out.items():
            data = self._store.serialize_cdr(msg, TOPICS[topic])
            self._writer.write(self._conns[topic], header.log_time_ns, data)
            self.messages_written += 1

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> BagResultWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
