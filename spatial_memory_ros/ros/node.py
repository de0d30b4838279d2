"""spatial_memory_node: a thin adapter between ROS topics/services and core.pipeline.Pipeline.

Threading: images, camera_info and depth callbacks only fill each camera's "newest" slots (camera_input);
one worker thread per camera (not an executor callback) takes its camera's newest image at most rate_hz
times a second on average (rate_limit) and runs that camera's pipeline, so a slow step never queues frames.
Keeping the long step out of the executor matters: rclpy's MultiThreadedExecutor busy-waits on a ready
entity whose callback group is occupied, which starved /tf and the camera topics.
main() spins the node with a SingleThreadedExecutor: every callback here is short, and rclpy's
MultiThreadedExecutor also re-submits each callback that its thread pool has not started yet, in a loop,
without waiting. Beside a worker thread that needs the GIL (the learned backend) that loop kept the pool
from starting the callbacks, for up to 1.8 s at a time: camera frames were lost and the worker slowed
(BENCHMARKS "The node's executor"). Services still answer while a frame is being processed (the workers are
not the executor's thread; the item memory has its own lock); the callback groups below matter only to
a caller that spins the node in a multi-threaded executor of its own. Each camera's ``process_lock``
serialises its frames with reset.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import threading
import time
import traceback
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CompressedImage, Image
from spatial_memory.msg import TrackArray
from spatial_memory.srv import ListItems, LocateItem
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from spatial_memory_ros.core.camera_clocks import GRACE_S, CameraClocks
from spatial_memory_ros.core.clock_watch import Stamp
from spatial_memory_ros.core.errors import BadInputError, SpatialMemoryError, UnknownItemError
from spatial_memory_ros.core.health import memory_report
from spatial_memory_ros.core.pipeline import Pipeline
from spatial_memory_ros.core.tf_buffer import TransformUnavailable
from spatial_memory_ros.core.types import CameraIntrinsics, Frame, FrameResult

from . import conversions as conv
from . import diagnostics, encode
from .camera_input import OUTPUT_QOS, CameraInput, unused_remaps
from .image_checks import ahead_fault, info_fault, matching_depth, stamp_fault
from .markers import MarkerBuilder
from .params import declare_parameters, read_settings, unknown_parameters, validate_live
from .pose_source import make_pose_source

_THROTTLE_S = 5.0
_DIAGNOSTICS_PERIOD_S = 1.0  # diagnostic_updater's default period
_LONGEST_WAIT_S = 0.2  # a worker's rate-limit wait is cut into waits no longer than this


def resolve_device(requested: str) -> str:
    """auto -> cuda when torch sees a GPU, else cpu. Raises BadInputError for cuda without a GPU."""
    try:
        import torch

        has_cuda = bool(torch.cuda.is_available())
    except ImportError:
        has_cuda = False
    if requested == "cuda" and not has_cuda:
        raise BadInputError("device=cuda but no CUDA device is available; use device:=auto or cpu")
    return "cuda" if requested == "cuda" or (requested == "auto" and has_cuda) else "cpu"


class SpatialMemoryNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("spatial_memory", **kwargs)
        declare_parameters(self)
        for name, like in unknown_parameters(self):
            self.get_logger().warning(f"parameter {name} was given but this node has no such parameter; it is ignored"
                                      + (f" (did you mean {like}?)" if like else ""))
        self.settings = read_settings(self)
        self.device = resolve_device(self.settings.device)
        self.get_logger().info(f"device: {self.device} (requested {self.settings.device})")
        self._rate_hz = self.settings.rate_hz
        self._debug = self.settings.publish_debug_image
        self._depth_max_dt = self.settings.depth_max_dt_s
        self._tf_timeout = self.settings.tf_timeout_s

        names = self.settings.cameras
        # one pipeline per camera, over one item memory (core.pipeline.Pipeline.open_cameras)
        self.pipelines = Pipeline.open_cameras(self.settings.pipeline, len(names), device=self.device)
        store = self.pipeline.memory.store
        if store is not None and store.moved_aside_to is not None:
            # The core logs through Python logging, which a ROS user may not see: say it here too.
            self.get_logger().error(
                f"memory database {store.path} could not be opened (corrupt or foreign); it was moved aside to "
                f"{store.moved_aside_to} and an empty memory was started. Nothing was overwritten."
            )
        self._log_lock = threading.Lock()  # the cameras' workers log and build markers at once
        self._last_logged: dict[str, tuple[float, int]] = {}
        self._markers = MarkerBuilder(self.settings.map_frame, self.settings.marker_lifetime_s)
        self._marker_lifetime_s = self.settings.marker_lifetime_s

        input_group = MutuallyExclusiveCallbackGroup()
        service_group = ReentrantCallbackGroup()
        self.pose_source = make_pose_source(self, self.settings.pose_source, self.settings.fixed_transform)
        self.get_logger().info(f"camera pose from: {self.pose_source.name}")
        self.cameras = [
            CameraInput(self, name, i, compressed=self.settings.image_transport == "compressed",
                        rectified=self.settings.image_rectified, rate_hz=self._rate_hz, input_group=input_group,
                        on_bad_info=self._warn)
            for i, name in enumerate(names)
        ]
        ignored = unused_remaps(self, names)
        if ignored:
            self.get_logger().warning(
                f"remaps {', '.join(ignored)} do nothing with cameras {list(names)}: remap each camera's topics "
                f"instead, e.g. {names[0]}/image:=..., {names[0]}/camera_info:=...")
        self._clocks = CameraClocks(len(self.cameras))  # one memory, one clock (core/camera_clocks.py)
        overrides = QoSOverridingOptions.with_default_policies()
        self.markers_pub = self.create_publisher(MarkerArray, "markers", OUTPUT_QOS, qos_overriding_options=overrides)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, diagnostics.TOPIC, 10)
        # on a steady clock: on the node's, with use_sim_time, no report came while /clock was not moving (a bag
        # paused, a simulator not started), which is when "no image for N s" matters
        self.create_timer(_DIAGNOSTICS_PERIOD_S, self._publish_diagnostics, callback_group=service_group,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))

        self.create_service(LocateItem, "locate_item", self._on_locate, callback_group=service_group)
        self.create_service(ListItems, "list_items", self._on_list, callback_group=service_group)
        self.create_service(Trigger, "save_memory", self._on_save, callback_group=service_group)
        self.create_service(Trigger, "reset_memory", self._on_reset, callback_group=service_group)

        if hasattr(self, "add_pre_set_parameters_callback"):  # rclpy of Iron and later
            self.add_pre_set_parameters_callback(self._whole_numbers_as_floats)
        self.add_on_set_parameters_callback(self._validate_parameters)
        self._stopping = threading.Event()
        # one worker per camera: the cameras' pipelines share nothing but the item memory (its own lock), so
        # two cameras use two cores (one worker serving both in turn answered 80 % of two learned cameras'
        # frames at 10 Hz: BENCHMARKS "Two cameras in one node")
        self._workers = [threading.Thread(target=self._work, args=(c,), name=f"spatial_memory_pipeline{c.label}",
                                          daemon=True) for c in self.cameras]
        for worker in self._workers:
            worker.start()
        images = ", ".join(c.image_topic for c in self.cameras)
        self.get_logger().info(
            f"ready: items={self.settings.pipeline.tags.items or '{}'} "
            f"db={self.settings.pipeline.memory.db_path or ':memory:'} rate={self._rate_hz} Hz "
            f"image={images} change={self.pipeline.describe_change()}"
        )

    @property
    def pipeline(self) -> Pipeline:
        """The first camera's pipeline (the only one by default); every camera's shares its item memory."""
        return self.pipelines[0]

    @property
    def frames_processed(self) -> int:
        return sum(c.processed for c in self.cameras)

    @property
    def frames_dropped(self) -> int:
        return sum(c.dropped for c in self.cameras)

    # ---- parameters -------------------------------------------------------------------------------
    def _whole_numbers_as_floats(self, params: list[rclpy.parameter.Parameter]) -> list[rclpy.parameter.Parameter]:
        """`ros2 param set /spatial_memory rate_hz 5` sends an integer, and rclpy refused it for a float parameter
        with "Wrong parameter type, expected '3' got '2'"; a whole number is the float it names."""
        double, integer = rclpy.parameter.Parameter.Type.DOUBLE, rclpy.parameter.Parameter.Type.INTEGER
        return [rclpy.parameter.Parameter(p.name, double, float(p.value))
                if p.type_ == integer and self.has_parameter(p.name)
                and self.get_parameter(p.name).type_ == double else p for p in params]

    def _validate_parameters(self, params: list[rclpy.parameter.Parameter]) -> SetParametersResult:
        new = {p.name: p.value for p in params}
        try:
            validate_live(new.get("rate_hz", self._rate_hz), new.get("marker_lifetime_s", 1.0),
                          new.get("depth_max_dt_s", self._depth_max_dt), new.get("tf_timeout_s", self._tf_timeout))
        except BadInputError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        # Applied here because the values are plain attributes read each frame; nothing can fail now.
        if "rate_hz" in new:
            self._rate_hz = float(new["rate_hz"])  # the worker reads it before each wait
        if "publish_debug_image" in new:
            self._debug = bool(new["publish_debug_image"])
        if "marker_lifetime_s" in new:
            self._marker_lifetime_s = float(new["marker_lifetime_s"])
        if "tf_timeout_s" in new:
            self._tf_timeout = float(new["tf_timeout_s"])
        if "depth_max_dt_s" in new:
            self._depth_max_dt = float(new["depth_max_dt_s"])
        return SetParametersResult(successful=True)

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
            image = conv.compressed_to_bgr(msg) if isinstance(msg, CompressedImage) else conv.image_to_bgr(msg)
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
        try:
            with camera.process_lock:
                result = self.pipelines[camera.index].update(frame)
        except BadInputError as exc:  # keyed by its subject (frame.T_map_cam, frame.depth, ...), as bad images are
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
        camera.mask_pub.publish(conv.bgr_to_image(result.change_mask, msg.header))
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

            camera.debug_pub.publish(conv.bgr_to_image(annotate(image, result), msg.header))

    # ---- diagnostics ------------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        """Each camera input's and the memory's health on /diagnostics (core/health.py says how each is graded)."""
        name = self.get_fully_qualified_name().lstrip("/")
        statuses = []
        for camera in self.cameras:
            report = camera.health.report(time.monotonic(), self._rate_hz)
            report = dataclasses.replace(report, values=report.values + (
                ("image topic", camera.image_topic), ("change", self.pipelines[camera.index].describe_change())))
            statuses.append(diagnostics.to_status(f"{name}: camera input{camera.label}", self.device, report))
        store = self.pipeline.memory.store
        aside = None if store is None or store.moved_aside_to is None else str(store.moved_aside_to)
        item_memory = self.pipeline.memory
        memory = memory_report(self.settings.pipeline.memory.db_path, len(item_memory.items()), aside,
                               item_memory.write_error, item_memory.unwritten)
        statuses.append(diagnostics.to_status(f"{name}: item memory", self.device, memory))
        self.diagnostics_pub.publish(diagnostics.to_array(self.get_clock().now().to_msg(), statuses))

    # ---- services ---------------------------------------------------------------------------------
    def _on_locate(self, request: LocateItem.Request, response: LocateItem.Response) -> LocateItem.Response:
        try:
            answer = self.pipeline.locate(request.item.strip())
        except (UnknownItemError, BadInputError) as exc:
            response.success, response.message = False, str(exc)
            return response
        conv.fill_locate_response(response, answer, self.settings.map_frame)
        return response

    def _on_list(self, request: ListItems.Request, response: ListItems.Response) -> ListItems.Response:
        answers = self.pipeline.list_items()
        response.items = [conv.answer_to_status(a, self.settings.map_frame) for a in answers]
        response.success, response.message = True, f"{len(answers)} items"
        return response

    def _on_save(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self.settings.pipeline.memory.db_path in ("", ":memory:"):  # a caller asking to persist must hear it did not
            response.success = False
            response.message = "memory.db_path is empty: the memory lives in RAM only and goes with the node; not saved"
            return response
        try:
            self.pipeline.save()
        except SpatialMemoryError as exc:
            response.success, response.message = False, f"save failed: {exc}"
            return response
        response.success = True
        response.message = f"memory saved to {self.settings.pipeline.memory.db_path}"
        return response

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._all_cameras_still():
            try:  # the memory is one: reset once, and first, so that a store that cannot be written changes nothing
                self.pipeline.reset(memory=True)
            except SpatialMemoryError as exc:
                response.success, response.message = False, f"reset failed, nothing was cleared: {exc}"
                self.get_logger().error(response.message)
                return response
            for pipeline in self.pipelines:
                if pipeline is not self.pipeline:
                    pipeline.reset(memory=False)
            with self._log_lock:  # RViz forgets too: the items' and tracks' markers stayed until their lifetime
                self.markers_pub.publish(self._markers.clear(self.get_clock().now().to_msg()))
        response.success, response.message = True, "memory, tracks and change reference cleared"
        self.get_logger().info("memory reset by service call")
        return response

    def _all_cameras_still(self) -> contextlib.ExitStack:
        """Every camera's process lock, always in the same order: no frame is processed while held."""
        stack = contextlib.ExitStack()
        for camera in self.cameras:
            stack.enter_context(camera.process_lock)
        return stack

    def close(self) -> None:
        """Stop the workers after their current frames, then commit and close the memory."""
        self._stopping.set()
        for worker in self._workers:
            if worker.is_alive():
                worker.join(timeout=10.0)
        self.pose_source.close()
        with self._all_cameras_still():
            for pipeline in self.pipelines:  # the shared memory is committed and closed by the first
                pipeline.close()


def make_executor(context: rclpy.Context | None = None) -> SingleThreadedExecutor:
    """The executor main() spins the node with: single-threaded (module docstring: MultiThreadedExecutor
    re-submits callbacks its pool has not started, in a loop, and starved the pool beside the worker)."""
    return SingleThreadedExecutor(context=context)


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    node: SpatialMemoryNode | None = None
    code = 0
    try:
        node = SpatialMemoryNode()
        executor = make_executor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except SpatialMemoryError as exc:  # bad configuration or an unusable store: say why and exit
        rclpy.logging.get_logger("spatial_memory").fatal(f"cannot start: {exc}")
        code = 1
    except Exception as exc:
        if rclpy.ok():
            raise
        rclpy.logging.get_logger("spatial_memory").info(f"stopped while starting ({type(exc).__name__}: {exc})")
        # SIGTERM or Ctrl-C while the node was being made (a model loading): rclpy's handler shut the context down
        # and the next rclpy call raised (NotInitializedException, a traceback and exit 1 before): a normal stop
    finally:
        _ignore_stop_signals()
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return code


def _ignore_stop_signals() -> None:
    """From here on the node is closing: a second Ctrl-C (pressed twice, or launch's SIGINT then SIGTERM) raised
    KeyboardInterrupt inside close(), which then neither committed the memory's last changes nor closed it, and
    the process ended with a traceback. close() waits at most for a frame's pose lookup (tf_timeout_s) and the
    frame itself; launch's SIGKILL, if it comes to that, still ends it (the store survives a kill)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, OSError):  # ValueError: not the main thread (a test's own main())
            signal.signal(sig, signal.SIG_IGN)
