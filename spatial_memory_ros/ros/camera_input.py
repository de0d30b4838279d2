"""One camera of the node: its input topics, its newest-frame slot, its rate limit, health and output topics.

The node serves one camera by default (``cameras: [""]``: topics image, camera_info, depth, tracks,
change_mask, debug_image) or several (``cameras: [front, rear]``: front/image, ..., front/change_mask, and
rear/... alike), each with a pipeline of its own over one shared item memory. The callbacks here only fill the
slot; the camera's worker thread in the node takes frames from it.
"""

from __future__ import annotations

import collections
import re
import threading
import time
from collections.abc import Callable, Sequence

from rclpy.callback_groups import CallbackGroup
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSPolicyKind, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from spatial_memory.msg import TrackArray

from spatial_memory_ros.core.clock_watch import ClockWatch
from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.core.health import FrameHealth
from spatial_memory_ros.core.info_history import InfoHistory
from spatial_memory_ros.core.types import CameraIntrinsics

from . import conversions as conv
from .rate_limit import RateLimit

MAX_CAMERAS = 8
# a camera's topics are <namespace>/<name>/debug_image and the like, and rcl refuses a topic over 247 characters
# with an RCLError at the node's start; this leaves the namespace over 100
MAX_NAME_LENGTH = 100
# the QoS of every output the node publishes: each camera's tracks, mask and debug image, and the node's markers
OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
# a relative ROS name: tokens of letters, digits and underscores, not starting with a digit, joined by "/"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*")


def check_camera_names(names: Sequence[str]) -> tuple[str, ...]:
    """The cameras parameter -> its names; BadInputError unless one "" (the single camera) or 1..MAX_CAMERAS
    distinct relative ROS names."""
    names = tuple(n.strip() for n in names)
    if names == ("",):
        return names
    if not 1 <= len(names) <= MAX_CAMERAS:
        raise BadInputError(f"cameras: give 1 to {MAX_CAMERAS} names, or [\"\"] for one camera on image, "
                            f"got {len(names)}")
    long = [n[:20] + "..." for n in names if len(n) > MAX_NAME_LENGTH]
    if long:
        raise BadInputError(f"cameras: {long} are longer than {MAX_NAME_LENGTH} characters (a topic name has at most "
                            "247)")
    bad = [n for n in names if not _NAME.fullmatch(n)]
    if bad:
        raise BadInputError(f"cameras: {bad} are not relative ROS names (letters, digits, _ and /, not starting "
                            "with a digit or /)")
    if len(set(names)) != len(names):
        raise BadInputError(f"cameras: each name once, got {list(names)}")
    return names


def unused_remaps(node: Node, names: Sequence[str]) -> list[str]:
    """The bare input names (image, camera_info, depth) remapped on a node that serves named cameras, where no
    remap of them applies: the launch file's image:=... arguments are for the single camera, and with
    cameras [front, rear] the node listens on front/image, so such a remap did nothing and said nothing."""
    if tuple(names) == ("",):
        return []
    ns = node.get_namespace().rstrip("/")
    return [f"{topic} -> {node.resolve_topic_name(topic)}" for topic in ("image", "camera_info", "depth")
            if node.resolve_topic_name(topic) != f"{ns}/{topic}"]


class CameraInput:
    """Subscriptions, the newest frame, its camera_info and recent depth images, and publishers of one camera.

    on_bad_info(key, text): how a camera_info the node cannot use is reported (throttled by the node)."""

    def __init__(self, node: Node, name: str, index: int, *, compressed: bool, rate_hz: float,
                 input_group: CallbackGroup, on_bad_info: Callable[[str, str], None], rectified: bool = False) -> None:
        self.name, self.index = name, index
        self.rectified = rectified  # the image is image_proc's image_rect: camera_info's P, no distortion
        prefix = f"{name}/" if name else ""
        self._on_bad_info = on_bad_info
        self.slot_lock = threading.Lock()  # guards latest, came_at, infos and depths
        self.frame_ready = threading.Event()  # set by each image, cleared by the worker that takes it
        # held by this camera's worker while its pipeline steps; reset_memory takes every camera's
        self.process_lock = threading.Lock()
        self.processed = self.dropped = 0  # frames, counted by this camera's worker alone
        self.clock = ClockWatch()  # the stamps this camera's worker took: its clock going back
        self.latest: Image | CompressedImage | None = None
        self.came_at = time.monotonic()  # when latest arrived, for the rate limit
        self.published_at: float | None = None  # when its last results were published (marker lifetimes)
        self.infos: InfoHistory[CameraIntrinsics] = InfoHistory()  # paired with an image by its stamp
        self.depths: collections.deque[Image] = collections.deque(maxlen=5)
        self.limit = RateLimit(rate_hz)
        self.health = FrameHealth()  # published on /diagnostics (core/health.py)
        self.health.start(time.monotonic())

        # Keep-last 1: a slow pipeline step always gets the newest frame, never a backlog.
        camera_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=1, reliability=qos_profile_sensor_data.reliability,
            durability=qos_profile_sensor_data.durability,
        )
        overrides = QoSOverridingOptions.with_default_policies()
        if compressed:
            # image_transport's convention: <image topic after remapping>/compressed. Decoded in the worker.
            self.image_topic = node.resolve_topic_name(prefix + "image") + "/compressed"
            node.create_subscription(CompressedImage, self.image_topic, self._on_image, camera_qos,
                                     callback_group=input_group, qos_overriding_options=overrides)
        else:
            self.image_topic = node.resolve_topic_name(prefix + "image")
            node.create_subscription(Image, prefix + "image", self._on_image, camera_qos,
                                     callback_group=input_group, qos_overriding_options=overrides)
        self.info_topic = node.resolve_topic_name(prefix + "camera_info")
        # Durability may be overridden too: a driver that publishes camera_info once, latched (transient local), is
        # heard only by a transient-local subscription, which in turn hears no volatile publisher (most drivers).
        info_overrides = QoSOverridingOptions(policy_kinds=(
            QoSPolicyKind.HISTORY, QoSPolicyKind.DEPTH, QoSPolicyKind.RELIABILITY, QoSPolicyKind.DURABILITY))
        node.create_subscription(CameraInfo, prefix + "camera_info", self._on_camera_info, camera_qos,
                                 callback_group=input_group, qos_overriding_options=info_overrides)
        node.create_subscription(Image, prefix + "depth", self._on_depth, QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=5, reliability=qos_profile_sensor_data.reliability),
            callback_group=input_group, qos_overriding_options=overrides)

        self.tracks_pub = node.create_publisher(TrackArray, prefix + "tracks", OUTPUT_QOS,
                                                qos_overriding_options=overrides)
        self.mask_pub = node.create_publisher(Image, prefix + "change_mask", OUTPUT_QOS,
                                              qos_overriding_options=overrides)
        self.debug_pub = node.create_publisher(Image, prefix + "debug_image", OUTPUT_QOS,
                                               qos_overriding_options=overrides)

    @property
    def label(self) -> str:
        """How logs and /diagnostics name this camera: "" for the single camera, else " <name>"."""
        return f" {self.name}" if self.name else ""

    def _on_image(self, msg: Image | CompressedImage) -> None:
        with self.slot_lock:
            self.latest = msg
            self.came_at = time.monotonic()
        self.health.image(self.came_at)
        self.frame_ready.set()

    def _on_depth(self, msg: Image) -> None:
        with self.slot_lock:
            self.depths.append(msg)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            intrinsics = conv.camera_info_to_intrinsics(msg, rectified=self.rectified)
        except BadInputError as exc:
            self._on_bad_info(f"{self.name}:camera_info", f"ignoring camera_info on {self.info_topic}: {exc}")
            return
        with self.slot_lock:
            self.infos.add(conv.stamp_to_sec(msg.header.stamp), intrinsics)

    def take(self) -> tuple[Image | CompressedImage | None, CameraIntrinsics | None, list[Image]]:
        """The newest frame (None if there is none), the camera_info (core.info_history: by the frame's stamp)
        and depth images to go with it; the slot is emptied."""
        with self.slot_lock:
            self.frame_ready.clear()
            msg, self.latest = self.latest, None
            intrinsics = None if msg is None else self.infos.pick(conv.stamp_to_sec(msg.header.stamp))
            return msg, intrinsics, list(self.depths)
