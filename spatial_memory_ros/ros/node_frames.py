"""The node's frame path (workers, checks, pipeline step, outputs): SpatialMemoryNode's base, apart from its wiring."""

from __future__ import annotations

import math
import threading
import time
import traceback

import numpy as np
import rclpy
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.publisher import Publisher
from sensor_msgs.msg import CompressedImage, Image
from spatial_memory.msg import TrackArray

from spatial_memory_ros.core.camera_clocks import GRACE_S, CameraClocks
from spatial_memory_ros.core.clock_watch import Stamp
from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.core.pipeline import Pipeline
from spatial_memory_ros.core.tf_buffer import TransformUnavailable
from spatial_memory_ros.core.types import CameraIntrinsics, Frame, FrameResult

from . import conversions as conv
from . import encode
from .camera_input import CameraInput
from .image_checks import ahead_fault, info_fault, matching_depth, stamp_fault
from .markers import MarkerBuilder
from .params import NodeSettings
from .pose_source import PoseSource

_THROTTLE_S = 5.0
_LONGEST_WAIT_S = 0.2  # a worker's rate-limit wait is cut into waits no longer than this


class FrameProcessing(Node):
    """Each camera's frames from its worker thread through the checks, the pose lookup and its pipeline to the
    published results, and the throttled log of the frames dropped on the way (node.py's docstring: threading).

    SpatialMemoryNode derives from it and makes, in its __init__, what it works with (annotated below)."""

    settings: NodeSettings
    pipelines: list[Pipeline]
    cameras: list[CameraInput]
    pose_source: PoseSource
    markers_pub: Publisher
    _clocks: CameraClocks
    _markers: MarkerBuilder
    _log_lock: threading.Lock  # the cameras' workers log and build markers at once
    _last_logged: dict[str, tuple[float, int]]
    _stopping: threading.Event  # set by close(): the workers stop
    # live parameters (SpatialMemoryNode._validate_parameters), read each frame
    _rate_hz: float
    _debug: bool
    _marker_lifetime_s: float
    _tf_timeout: float
    _depth_max_dt: float

    @property
    def pipeline(self) -> Pipeline:
        """The first camera's pipeline (the only one by default); every camera's shares its item memory."""
        return self.pipelines[0]

    # ---- logging ----------------------------------------------------------------------------------
    def _throttled(self, key: str, text: str, *, error: bool) -> None:
        """Log at most once per _THROTTLE_S per kind of problem (rclpy throttles per call site, which
        would let one kind of bad input hide every other kind)."""
        now = time.monotonic()
        with self._log_lock:
            last, suppressed = self._last_logged.get(key, (-np.inf, 0))
            if now - last < _THROTTLE_S:
                self._last_logged[key] = (last, suppressed + 1)
                return
            self._last_logged[key] = (now, 0)
        if suppressed:
            text += f" ({suppressed} more like this suppressed)"
        # two call sites: rclpy keys a logging call's severity by its line and raises ValueError ("Logger severity
        # cannot be changed between calls") when one line logs at two; a warning after an error dropped the frame
        if error:
            self.get_logger().error(text)
        else:
            self.get_logger().warning(text)

    def _warn(self, key: str, text: str) -> None:
        self._throttled(key, text, error=False)

    def _drop(self, camera: CameraInput, key: str, text: str) -> None:
        """Count and log (throttled per camera and kind of fault) a frame that could not be processed."""
        camera.dropped += 1
        camera.limit.refund()  # the rate limit is for frames processed: a dropped one does not use it up
        camera.health.dropped(time.monotonic(), text.splitlines()[0])
        self._throttled(f"{camera.name}:{key}", f"dropped frame{camera.label}: {text}", error=True)

    # ---- processing -------------------------------------------------------------------------------
    def _work(self, camera: CameraInput) -> None:
        """One camera's worker: its newest frame, at most rate_hz per second on average (RateLimit), until
        close()."""
        while not self._stopping.is_set():
            if not camera.frame_ready.wait(timeout=0.2):
                continue
            camera.limit.rate_hz = self._rate_hz
            with camera.slot_lock:
                came_at = camera.came_at
            delay = camera.limit.delay_s(came_at)
            if delay > 0.0:
                # in short waits: a rate_hz set live (ros2 param set) takes effect within one of them
                self._stopping.wait(min(delay, _LONGEST_WAIT_S))
                continue  # then take the newest frame, which may have replaced this one meanwhile
            msg, intrinsics, depths = camera.take()
            if msg is None:
                continue
            camera.limit.take()  # given back if the frame is dropped (_drop)
            if not self.process_guarded(msg, intrinsics, depths, camera):
                return

    def process_guarded(self, msg: Image | CompressedImage, intrinsics: CameraIntrinsics | None,
                        depths: list[Image], camera: CameraInput | None = None) -> bool:
        """process(), and an unexpected exception (a bug: bad input raises BadInputError) is logged with its
        traceback and the frame dropped: the worker thread would otherwise die and the node go on serving
        without ever processing another frame. An rcl error while the context is up (a publish that failed in
        the middleware) is such a failure too. False when the context was shut down under the frame.
        camera: whose frame it is; None = the first (the only one by default)."""
        camera = camera or self.cameras[0]
        try:
            self.process(msg, intrinsics, depths, camera)
        except (_rclpy.RCLError, _rclpy.InvalidHandle) as exc:
            if not rclpy.ok(context=self.context):
                return False  # Ctrl-C / SIGTERM shut the context down under a frame: stop quietly
            self._drop_bug(camera, exc)
        except Exception as exc:  # noqa: BLE001 - one frame's failure must not stop the node
            self._drop_bug(camera, exc)
        return True

    def _drop_bug(self, camera: CameraInput, exc: BaseException) -> None:
        """Log an unexpected exception with its traceback (throttled per type) and count the frame dropped."""
        self._drop(camera, f"bug:{type(exc).__name__}", f"unexpected {type(exc).__name__} while processing: {exc} "
                   f"(please report this with the traceback)\n{traceback.format_exc()}")

    def process(self, msg: Image | CompressedImage, intrinsics: CameraIntrinsics | None,
                depths: list[Image], camera: CameraInput | None = None) -> None:
        """Run one image through its camera's pipeline and publish; bad input is logged and the frame dropped."""
        camera = camera or self.cameras[0]
        started = time.monotonic()
        try:
            image = (conv.compressed_to_bgr(msg, check_jpeg=self.settings.check_jpeg)
                     if isinstance(msg, CompressedImage) else conv.image_to_bgr(msg))
        except BadInputError as exc:
            # keyed by the kind of fault, so that a flood of one kind never hides another
            self._drop(camera, f"image:{str(exc).split()[0]}", f"bad image on {camera.image_topic}: {exc}")
            return
        stamp = msg.header.stamp
        fault = stamp_fault(stamp, camera.image_topic)
        if fault is None:
            stamp_s = encode.remember_stamp(stamp.sec, stamp.nanosec)  # float s for the core; exact back in messages
            fault = ahead_fault(stamp_s, self.get_clock().now().nanoseconds, camera.image_topic) \
                or info_fault(intrinsics, image, camera.info_topic)
        if fault is not None:
            self._drop(camera, *fault)
            return
        assert intrinsics is not None  # info_fault
        camera_frame = self.settings.camera_frame or msg.header.frame_id
        if not camera_frame and self.pose_source.name != "fixed":
            self._drop(camera, "frame_id", "image header has no frame_id (set camera_frame)")
            return
        # further back than the pipeline's out-of-order bound, and the frame before too: the clock went back. Per
        # camera, as the pipeline's rule: a camera whose images come a second or more behind another's is on the
        # same clock (a global newest stamp cleared tf2's buffer at its every frame)
        order = camera.clock.check(stamp_s)
        if order is Stamp.HELD:
            gap = stamp_s - camera.clock.newest
            self._drop(camera, "stamp_later" if gap > 0 else "stamp_earlier",
                       f"image on {camera.image_topic} is stamped {abs(gap):.1f} s "
                       f"{'after' if gap > 0 else 'before'} the newest: dropped (the next image tells a glitch from "
                       "a clock that jumped)")
            return
        # after the camera's own clock (a glitch it holds back must not move its offset) and before a clock that
        # went back is acted on (one camera's alone is a camera on another clock)
        now_ns = self.get_clock().now().nanoseconds
        skew = self._clocks.check(camera.index, stamp_s, now_ns * 1e-9, 3.0 / self._rate_hz) if now_ns else None
        if skew is not None:
            ref, ahead = self.cameras[skew.ref], skew.skew_s
            if math.isnan(ahead):
                self._drop(camera, "camera_clock_wait", f"waiting up to {GRACE_S:g} s for camera {ref.name}'s first "
                           "image, whose clock the others are checked against")
            else:
                self._drop(camera, "camera_clock", f"image on {camera.image_topic} is stamped {abs(ahead):.1f} s "
                           f"{'ahead of' if ahead > 0 else 'behind'} camera {ref.name}'s clock: cameras that share "
                           "one memory need one clock (sync them, e.g. PTP or chrony, or run a node per camera)")
            return
        if order is Stamp.WENT_BACK:
            self.get_logger().warning(f"image stamps on {camera.image_topic} went back to {stamp_s:.3f} s (a "
                                      "simulator restarted, a bag looped?): tracks and transforms of the old clock "
                                      "are dropped", throttle_duration_sec=_THROTTLE_S)
            self.pose_source.clock_went_back()
        try:
            T_map_cam = self.pose_source.lookup(self.settings.map_frame, camera_frame, msg.header.stamp,
                                                self._tf_timeout)
        except TransformUnavailable as exc:
            self._drop(camera, "pose", f"no camera pose {self.settings.map_frame} <- {camera_frame}: {exc}")
            return
        depth, ignored = matching_depth(stamp_s, msg.header.frame_id,
                                        [(conv.stamp_to_sec(d.header.stamp), d) for d in depths], image.shape[:2],
                                        self._depth_max_dt, check_frame=not self.settings.camera_frame)
        if ignored is not None and ignored[0] != "depth_window":  # a slower depth camera: not worth a warning
            self._warn(f"{camera.name}:{ignored[0]}", f"ignoring depth image{camera.label}: {ignored[1]}")
        frame = Frame(image=image, stamp=stamp_s, intrinsics=intrinsics,
                      T_map_cam=T_map_cam, depth=depth)
        # the publishing too under the lock: a reset_memory between the step and its publishing cleared RViz, and
        # then this frame's tracks (the reset's forgotten items among them) were published and drawn again
        with camera.process_lock:
            try:
                result = self.pipelines[camera.index].update(frame)
            except BadInputError as exc:  # keyed by its subject (frame.T_map_cam, frame.depth, ...), as bad images
                self._drop(camera, f"pipeline:{str(exc).split()[0]}", str(exc))
                return
            camera.processed += 1
            self._publish(camera, msg, image, result)
        done = time.monotonic()
        camera.health.processed(done, done - started)

    def _publish(self, camera: CameraInput, msg: Image | CompressedImage, image: np.ndarray,
                 result: FrameResult) -> None:
        tracks = TrackArray()
        tracks.header = conv.header(self.settings.map_frame, msg.header.stamp)
        tracks.tracks = [conv.track_to_msg(t) for t in result.tracks]
        camera.tracks_pub.publish(tracks)
        # in the frame the pose was looked up for: camera_frame, where set, corrects a driver's empty or wrong one
        # (an RViz Camera display needs it)
        image_header = conv.header(self.settings.camera_frame or msg.header.frame_id, msg.header.stamp)
        if not image_header.frame_id:  # processed all the same (pose_source fixed needs no frame), but unplaceable
            self._warn(f"{camera.name}:no_frame_id", f"images on {camera.image_topic} carry no frame_id and "
                       "camera_frame is not set: change_mask and debug_image go out without a frame, which RViz "
                       "cannot place; set camera_frame")
        camera.mask_pub.publish(conv.bgr_to_image(result.change_mask, image_header))
        answers = self.pipeline.list_items()
        # each camera's tracks in a marker namespace of their own: track ids are per camera
        track_ns = f"tracks/{camera.name}" if camera.name else "tracks"
        now = time.monotonic()
        gap_s = 0.0 if camera.published_at is None else now - camera.published_at
        camera.published_at = now
        with self._log_lock:  # the builder numbers new items and knows what it drew: one camera at a time
            # at least two frame periods (of rate_hz, and of the frames that really come): a lifetime under the
            # period left RViz blank between frames
            self._markers.lifetime_s = max(self._marker_lifetime_s, 2.0 / self._rate_hz, min(2.0 * gap_s, 60.0))
            markers = self._markers.build(result.tracks, answers, msg.header.stamp, track_ns=track_ns)
            # published under the lock too: a build overtaken by reset_memory's clear() redrew what it cleared
            self.markers_pub.publish(markers)
        if self._debug:
            from spatial_memory_ros.viz import annotate

            camera.debug_pub.publish(conv.bgr_to_image(annotate(image, result), image_header))
