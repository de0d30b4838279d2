"""Frames from a ROS 2 bag (rosbag2 folder, or a bare .mcap / .db3 file), read with rosbags: no rclpy needed.

Topics (BagOptions; each found automatically when the bag has exactly one candidate):
    image        sensor_msgs/Image (any encoding of ros.decode.COLOUR_ENCODINGS), or
    compressed   sensor_msgs/CompressedImage (jpeg, png: cv2.imdecode)
    camera_info  sensor_msgs/CameraInfo (or a camera YAML instead)
    depth        optional sensor_msgs/Image aligned to the colour image, 16UC1 (mm) or 32FC1 (m)
    /tf, /tf_static  tf2_msgs/TFMessage: the camera pose map_frame <- image frame at each image stamp

Like the node: stamp = the image header's stamp, the pose is interpolated there (core.tf_buffer), the depth
image nearest in stamp within depth_max_dt_s is used, and camera_info is the newest one logged before the
image (the first one for images logged before any). A frame without a pose is skipped (BadInputError).
A bag without /tf and /tf_static is taken as a static camera: the map frame is the camera's optical frame.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import logging
import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.errors import BadInputError
from ..core.tf_buffer import TransformUnavailable
from ..core.tf_history import TransformHistory
from ..core.types import CameraIntrinsics, Frame
from ..ros import decode
from ..ros.image_checks import matching_depth
from . import OnBadFrame
from .bag_files import bag_files, deserialize, is_bag, open_reader, read_messages, unclosed_files
from .bag_recover import NothingToRecover, is_cut_short, recover_mcap
from .bag_stamps import BagStamps
from .bag_topics import CAMERA_INFO, COMPRESSED, IMAGE, TF, BagOptions, choose_topics
from .camera_yaml import load_camera_yaml

if TYPE_CHECKING:  # rosbags loads when a bag is opened, so videos and TUM folders never need it
    from rosbags.highlevel import AnyReader
    from rosbags.interfaces import Connection

# Images held back waiting for a later depth image; a stalled depth stream must not hold frames forever.
_MAX_PENDING = 30
# Depth images kept for colour logged late: this long (s) behind the newest depth stamp, at most this many (a 30 Hz
# 640 x 480 16-bit stream's 2 s are 60 messages, 37 MB).
_DEPTH_KEEP_S = 2.0
# camera_info messages logged this many before and after an image that may be its own (by stamp)
_INFO_AROUND = 8
_DEPTH_KEEP_MAX = 256
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameHeader:
    """The source image's header and log time, for outputs that should line up with the input bag."""

    frame_id: str
    stamp_ns: int  # header stamp
    log_time_ns: int  # when the bag recorded it


class BagReader:
    """The colour frames of a bag, in log-time order (see the module docstring).

    Opening reads /tf, /tf_static and camera_info once (small); frames() then streams the images.
    camera_yaml: use this calibration instead of the bag's camera_info.
    """

    def __init__(self, path: str | Path, options: BagOptions | None = None, *,
                 camera_yaml: str | Path | None = None) -> None:
        self.path = Path(path)
        self.options = options = options or BagOptions()
        if not is_bag(self.path):
            raise BadInputError(f"{self.path} is not a ROS 2 bag (a folder with metadata.yaml, with one .mcap / .db3 "
                                "file or with a split recording's .mcap files, or a .mcap / .db3)")
        if not options.map_frame:
            raise BadInputError("the map frame must not be empty (--map-frame)")
        self._yaml_intrinsics = load_camera_yaml(camera_yaml) if camera_yaml else None
        self._recovered_dir: tempfile.TemporaryDirectory[str] | None = None
        unclosed = unclosed_files(self.path)
        if unclosed:  # rosbags reads a folder through its metadata.yaml: open the files themselves
            _log.warning("bag %s has no metadata.yaml (its recorder did not close it); reading %s", self.path,
                         ", ".join(f.name for f in unclosed))
        files = unclosed or ([self.path] if self.path.is_file() else bag_files(self.path))
        cut = {f for f in files if f.suffix == ".mcap" and is_cut_short(f)}
        # what rosbags opens: the bag itself, or its files one by one, a cut-short one through a copy of what it
        # holds (also a bag with metadata.yaml whose recorder was killed after writing it)
        read_files = bool(unclosed) or (bool(cut) and all(f.suffix == ".mcap" for f in files))
        if read_files:
            sources = [self._recover(f, alone=len(files) == 1) if f in cut else f for f in files]
            self._sources = [f for f in sources if f is not None]
            if not self._sources:
                raise BadInputError(f"bag {self.path}: no file of it holds a complete message (each was cut short "
                                    "before its first)")
        else:
            self._sources = [self.path]
        with open_reader(self._sources, self.path) as reader:
            counts: collections.Counter[tuple[str, str]] = collections.Counter()
            for c in reader.connections:
                counts[(c.topic, c.msgtype)] += c.msgcount
            # a topic recorded with two types (rare: two publishers) is read as the one with the most messages
            types = {topic: msgtype for (topic, msgtype), _ in sorted(counts.items(), key=lambda kv: kv[1])}
            self.topics = choose_topics(types, options, have_camera_yaml=camera_yaml is not None)
            unused = sorted(t for t, m in types.items()
                            if m == IMAGE and "depth" in t.lower() and t != self.topics.image)
            if self.topics.depth is None and options.depth_topic is None and unused:  # "" = no depth, asked
                _log.warning("bag %s: no depth used, though it has %s: none is plainly %s's aligned depth; name it "
                             "with --depth-topic", self.path, ", ".join(unused), self.topics.image)
            self._count = sum(c.msgcount for c in self._connections(reader, [self.topics.image]))
            chosen = [self.topics.image, self.topics.depth, self.topics.camera_info, *self.topics.tf]
            other = sorted({f"{c.topic} ({c.msgtype})" for c in reader.connections if c.topic in chosen}
                           - {f"{c.topic} ({c.msgtype})" for c in self._connections(reader, chosen)})
            if other:
                _log.warning("bag %s: skipping the messages of %s: another type than the topic is read as",
                             self.path, ", ".join(other))
            self._tf = TransformHistory()  # the whole bag is known: all of it is kept, by epoch of its clock
            self._infos: list[tuple[int, float, CameraIntrinsics]] = []  # (log time ns, header stamp s, intrinsics)
            self._info_times: list[int] = []
            self._preload(reader)
        self.last_header: FrameHeader | None = None  # of the frame frames() yielded last
        self._stamps = BagStamps(self.path, _log)  # when each image was taken (io.bag_stamps)
        self._depth_warned: set[str] = set()  # the kinds of depth warning shown (_warn_depth)

    @property
    def map_frame(self) -> str:
        if self.topics.tf:
            return f"{self.options.map_frame} (the bag's {' and '.join(self.topics.tf)})"
        return "static camera (the bag has no tf): map frame = camera optical frame (x right, y down, z forward)"

    @property
    def output_frame(self) -> str | None:
        """The frame results are in, as a tf frame name: --map-frame with the bag's tf; without tf (a static
        camera) the camera's optical frame: --camera-frame, or None for each image's own frame_id."""
        if self.topics.tf:
            return self.options.map_frame.lstrip("/")
        return self.options.camera_frame.lstrip("/") or None

    def __len__(self) -> int:
        return self._count

    def _recover(self, cut: Path, *, alone: bool) -> Path | None:
        """A temporary copy of a cut-short MCAP's complete records (io.bag_recover), deleted with this reader.
        None for one file of a split recording that holds no complete message (the recorder was killed just
        after it opened the file): the other files are read without it. alone: the bag's only file, which then
        must hold a message (BadInputError)."""
        if self._recovered_dir is None:
            self._recovered_dir = tempfile.TemporaryDirectory(prefix="spatial_memory_bag_")
        try:
            got = recover_mcap(cut, Path(self._recovered_dir.name) / cut.name)
        except NothingToRecover as exc:
            if alone:
                raise
            _log.warning("bag %s: %s; reading the recording's other files", self.path, exc)
            return None
        _log.warning("bag %s was cut short (no MCAP footer: its recorder did not close it); reading the %d "
                     "messages of %s before the cut, up to log time %.3f s (%s)", self.path, got.messages,
                     cut.name, got.last_log_time_ns * 1e-9, got.stopped_by)
        return got.path

    def _connections(self, reader: AnyReader, topics: list[str | None]) -> list[Connection]:
        """The connections of these topics that carry the type each is read as: a topic recorded with two types
        (an Image and a CompressedImage publisher) gives only the chosen one's messages."""
        t = self.topics
        want: dict[str | None, str] = {t.image: COMPRESSED if t.compressed else IMAGE, t.camera_info: CAMERA_INFO}
        want.update(dict.fromkeys(t.tf, TF))
        if t.depth is not None and t.depth != t.image:
            want[t.depth] = IMAGE
        return [c for c in reader.connections if c.topic in topics and c.msgtype == want.get(c.topic)]

    def _preload(self, reader: AnyReader) -> None:
        wanted = self.topics.tf + ([self.topics.camera_info] if self.topics.camera_info else [])
        if not wanted:
            return
        first_error = ""
        conns = self._connections(reader, list(wanted))
        # what came before a damaged part is good: frames() stops there too
        for conn, log_ns, raw in read_messages(reader, conns, self.path,
                                               on_damage=lambda exc: _log.warning("%s (tf and camera_info)", exc)):
            try:
                msg = deserialize(reader, raw, conn)
            except BadInputError as exc:
                first_error = first_error or str(exc)
                continue
            if conn.topic == self.topics.camera_info:
                try:
                    self._infos.append((log_ns, decode.stamp_to_sec(msg.header.stamp), decode.camera_info_to_intrinsics(
                        msg, rectified=self.options.image_rectified)))
                except BadInputError as exc:
                    first_error = first_error or str(exc)
                continue
            static = conn.topic == self.options.tf_static_topic
            for t in msg.transforms:
                try:
                    self._tf.add(t.header.frame_id, t.child_frame_id, decode.stamp_to_sec(t.header.stamp),
                                 decode.transform_to_matrix(t), static=static, log_ns=log_ns)
                except (TransformUnavailable, ValueError):  # a self-loop or a zero quaternion: skip that one
                    continue
        self._infos.sort(key=lambda x: x[0])
        self._info_times = [t for t, _, _ in self._infos]
        if self.topics.camera_info and not self._infos:
            why = f": {first_error}" if first_error else ""
            raise BadInputError(f"{self.topics.camera_info} holds no usable camera_info{why}; pass --camera YAML")

    def _intrinsics_at(self, stamp: float, log_ns: int) -> CameraIntrinsics | None:
        """The image's camera_info, among those logged around it (the _INFO_AROUND before it, as the node keeps,
        and as many after): the one of its stamp (as the node pairs them, core.info_history), else the newest
        logged before it; a bag whose images take their log time goes by log time alone. By log time alone a
        zooming camera's image logged after the next frame's camera_info took that one's focal length."""
        if self._yaml_intrinsics is not None:
            return self._yaml_intrinsics
        if not self._infos:
            return None
        i = bisect.bisect_right(self._info_times, log_ns)  # the first logged after the image
        if not self._stamps.log_time:
            around = self._infos[max(i - _INFO_AROUND, 0): i + _INFO_AROUND]
            exact = [info for _, t, info in around if t == stamp]
            if exact:
                return exact[-1]
        return self._infos[max(i - 1, 0)][2]

    def frames(
        self, on_bad: OnBadFrame | None = None, *, limit: int | None = None
    ) -> Iterator[tuple[int, Frame]]:
        """(index among the image messages, frame) for the first `limit` images; bad ones go to on_bad."""
        topics = self.topics
        # (stamp s, message): the last _DEPTH_KEEP_S of depth, for colour logged later than its stamp (compression,
        # rectification); ten messages were 0.1 s of a 90 Hz camera, and its frames took the wrong depth or none
        depths: collections.deque[tuple[float, Any]] = collections.deque(maxlen=_DEPTH_KEEP_MAX)
        # [index, log ns, message, stamp s, why its stamp is bad ("" = good; None = not judged yet)]: each stamp
        # judged once, in log order, when it can be: a first image stamped 0 waits for the next, which decides
        # whether the bag's images take their log time (it was refused before the decision, a good frame lost)
        pending: collections.deque[list[Any]] = collections.deque()
        unstamped: list[tuple[int, Any]] = []  # (log ns, message): depth stamped 0 before the images decided
        index = 0

        def release_unstamped() -> None:
            """Once the images have decided: depth stamped 0 before takes its log time, or is a bad one."""
            if unstamped and self._stamps.log_time is not None:
                if self._stamps.log_time:
                    depths.extendleft((ln * 1e-9, m) for ln, m in reversed(unstamped))
                else:
                    self._warn_depth("a depth image stamped 0 in a bag whose images are stamped", "zero")
                unstamped.clear()

        def ready(final: bool) -> Iterator[tuple[int, Frame]]:
            newest_depth = depths[-1][0] if depths else -math.inf
            while pending:
                entry = pending[0]
                i, log_ns, msg, stamp, why = entry
                if why is None:
                    undecided = math.isnan(stamp) and self._stamps.log_time is None
                    if undecided and not final:
                        return  # the next image decides (read past the limit for it if need be)
                    if undecided:  # and no image comes to decide
                        why = entry[4] = ("image stamped 0, and no later image to tell whether the bag's images "
                                          "all are: no time to place it at")
                    else:
                        if math.isnan(stamp) and self._stamps.log_time:
                            stamp = entry[3] = log_ns * 1e-9
                        why = entry[4] = self._stamps.bad_stamp(stamp, log_ns)
                if why:
                    pending.popleft()
                    if on_bad is None:
                        raise BadInputError(why)
                    on_bad(i, BadInputError(why))
                    continue
                # A later depth image may still match better until one beyond the window has arrived.
                if not (final or topics.depth is None or len(pending) > _MAX_PENDING
                        or newest_depth > stamp + self.options.depth_max_dt_s):
                    return
                pending.popleft()
                try:
                    frame = self._frame(msg, log_ns, stamp, depths)
                except BadInputError as exc:
                    if on_bad is None:
                        raise
                    on_bad(i, exc)
                    continue
                yield i, frame

        with open_reader(self._sources, self.path) as reader:
            conns = self._connections(reader, [topics.image, topics.depth])
            # up to a damaged part, if any: the frames before it are given, and on_bad is told once why the rest are
            # not (a video cut short ends so too), so that run finishes its outputs
            damaged = None if on_bad is None else lambda exc: on_bad(index, exc)
            for conn, log_ns, raw in read_messages(reader, conns, self.path, on_damage=damaged):
                if conn.topic == topics.depth and topics.depth != topics.image:
                    try:
                        msg = deserialize(reader, raw, conn)
                    except BadInputError as exc:  # the frames it would have matched go without depth
                        self._warn_depth(str(exc), "depth")
                        continue
                    depth_stamp = self._stamps.stamp(msg, log_ns, image=False)
                    if math.isnan(depth_stamp) and self._stamps.log_time is None:
                        unstamped.append((log_ns, msg))  # the images have not told yet whether log times count
                        continue
                    if math.isnan(depth_stamp):
                        self._warn_depth("a depth image stamped 0 in a bag whose images are stamped", "zero")
                        continue
                    depths.append((depth_stamp, msg))
                    while depths[0][0] < depth_stamp - _DEPTH_KEEP_S:
                        depths.popleft()
                elif limit is None or index < limit:
                    try:
                        msg = deserialize(reader, raw, conn)
                        stamp = self._stamps.stamp(msg, log_ns, image=True)
                        pending.append([index, log_ns, msg, stamp, None])
                    except BadInputError as exc:
                        if on_bad is None:
                            raise
                        on_bad(index, exc)
                    index += 1
                    release_unstamped()
                elif self._stamps.log_time is None and pending and conn.topic == topics.image:
                    # past the limit: this image still decides whether a first one stamped 0 takes its log time
                    with contextlib.suppress(BadInputError):
                        self._stamps.stamp(deserialize(reader, raw, conn), log_ns, image=True)
                    release_unstamped()
                elif not pending:
                    break
                yield from ready(final=False)
            yield from ready(final=True)

    def _frame(self, msg: Any, log_ns: int, stamp: float, depths: collections.deque[tuple[float, Any]]) -> Frame:
        image = (decode.compressed_to_bgr(msg, check_jpeg=self.options.check_jpeg) if self.topics.compressed
                 else decode.image_to_bgr(msg))
        frame_id = self.options.camera_frame or msg.header.frame_id
        header_ns = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
        # a bag whose images are stamped 0 takes their log time: its outputs too (their headers were all 0)
        self.last_header = FrameHeader(frame_id, log_ns if self._stamps.log_time else header_ns, log_ns)
        intrinsics = self._intrinsics_at(stamp, log_ns)
        if intrinsics is not None and (intrinsics.width, intrinsics.height) != (image.shape[1], image.shape[0]):
            raise BadInputError(f"camera_info is {intrinsics.width}x{intrinsics.height} but the image is "
                                f"{image.shape[1]}x{image.shape[0]}")
        T_map_cam = None
        if self.topics.tf:
            if not frame_id:
                raise BadInputError("image header has no frame_id (set --camera-frame)")
            try:
                T_map_cam = self._tf.lookup(self.options.map_frame, frame_id, stamp, log_ns)
            except TransformUnavailable as exc:
                raise BadInputError(f"no camera pose {self.options.map_frame} <- {frame_id}: {exc}") from None
        else:
            T_map_cam = np.eye(4)
        return Frame(image=image, stamp=stamp, intrinsics=intrinsics, T_map_cam=T_map_cam,
                     depth=self._depth(stamp, depths, image.shape[:2], msg.header.frame_id))

    def _depth(self, stamp: float, depths: collections.deque[tuple[float, Any]],
               shape: tuple[int, ...], image_frame: str) -> np.ndarray | None:
        """The aligned depth in m, or None, by the node's rules (ros.image_checks.matching_depth). A depth image
        that cannot be used is ignored with a warning, as the node does: the colour frame is still good."""
        depth, ignored = matching_depth(stamp, image_frame, depths, shape, self.options.depth_max_dt_s,
                                        check_frame=not self.options.camera_frame)
        if ignored is not None:
            kind, text = ignored
            self._warn_depth(f"ignoring depth image on {self.topics.depth}: {text}"
                             + (" (--depth-max-dt)" if kind == "depth_window" else ""), kind)
        return depth

    def _warn_depth(self, text: str, kind: str) -> None:
        """Warn once for each kind of depth problem: one kind (depth starting after colour) hid every other."""
        if kind not in self._depth_warned:
            self._depth_warned.add(kind)
            _log.warning("%s (further warnings of this kind are not shown)", text)
