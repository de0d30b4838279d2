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
import signal
import threading
import time
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos_overriding_options import QoSOverridingOptions
from spatial_memory.srv import ListItems, LocateItem
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from spatial_memory_ros.core.camera_clocks import CameraClocks
from spatial_memory_ros.core.errors import BadInputError, SpatialMemoryError, UnknownItemError
from spatial_memory_ros.core.health import memory_report
from spatial_memory_ros.core.pipeline import Pipeline
from spatial_memory_ros.core.store import in_ram

from . import conversions as conv
from . import diagnostics
from .camera_input import OUTPUT_QOS, CameraInput, unused_remaps
from .markers import MarkerBuilder
from .node_frames import FrameProcessing
from .params import declare_parameters, read_settings, unknown_parameters, validate_live
from .pose_source import make_pose_source

_DIAGNOSTICS_PERIOD_S = 1.0  # diagnostic_updater's default period


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


class SpatialMemoryNode(FrameProcessing):
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
        # before the pipelines: a bad fixed_transform or a missing tf2_ros was found after the models had loaded and
        # the memory's file was locked, and the pipelines were left open
        self.pose_source = make_pose_source(self, self.settings.pose_source, self.settings.fixed_transform)
        # one pipeline per camera, over one item memory (core.pipeline.Pipeline.open_cameras). Refused here (a
        # damaged model, a memory file in use or of another frame), what was opened is closed, the pose source too:
        # its /tf thread, left blocked in rclpy's wait, woke during the interpreter's exit and aborted the process
        # (exit -6, not 1)
        self.pipelines = []
        try:
            self.pipelines = Pipeline.open_cameras(self.settings.pipeline, len(names), device=self.device)
            store = self.pipeline.memory.store
            if store is not None:  # the file's positions are in one frame: another map_frame would relabel them
                store.claim_frame(self.settings.map_frame)  # (FrameMismatchError)
        except BaseException:
            for pipeline in self.pipelines:
                pipeline.close()
            self.pose_source.close()
            raise
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
        if unsearched := conv.unsearched_tag_items(self.settings.pipeline):
            self.get_logger().warning(
                f"items {unsearched} are tags, but detector.apriltag_items is false with detector.backend "
                f"{self.settings.pipeline.detector.backend}: no tag is looked for, and locate_item answers them as "
                "unknown items")
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
        name = request.item.strip()
        try:
            answer = self.pipeline.locate(name)
        except BadInputError as exc:  # the empty name
            response.success, response.status, response.message = False, LocateItem.Response.STATUS_EMPTY_NAME, \
                str(exc)
            return response
        except UnknownItemError as exc:
            response.success = False
            if name in conv.configured_items(self.settings.pipeline):
                response.status = LocateItem.Response.STATUS_NOT_SEEN_YET
                response.message = f"{name!r} is configured but has not been seen yet"
            else:
                response.status, response.message = LocateItem.Response.STATUS_UNKNOWN_ITEM, str(exc)
            return response
        conv.fill_locate_response(response, answer, self.settings.map_frame)
        response.status = LocateItem.Response.STATUS_OK
        return response

    def _on_list(self, request: ListItems.Request, response: ListItems.Response) -> ListItems.Response:
        answers = self.pipeline.list_items()
        response.items = [conv.answer_to_status(a, self.settings.map_frame) for a in answers]
        response.success, response.message = True, f"{len(answers)} items"
        return response

    def _on_save(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if in_ram(self.settings.pipeline.memory.db_path):  # a caller asking to persist must hear it did not
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

    def close(self) -> bool:
        """Stop the workers after their current frames, then commit and close the memory. False (logged) when the
        last changes could not be written: the file keeps what was committed before, and everything is closed
        all the same (the error was raised out of the first pipeline: a traceback, the others left open)."""
        self._stopping.set()
        for worker in self._workers:
            if worker.is_alive():
                worker.join(timeout=10.0)
        self.pose_source.close()
        saved = True
        with self._all_cameras_still():
            for pipeline in self.pipelines:  # the shared memory is committed and closed by the first
                try:
                    pipeline.close()
                except SpatialMemoryError as exc:
                    saved = False
                    self.get_logger().error(
                        f"the memory's last changes were not written to {self.settings.pipeline.memory.db_path}: "
                        f"{exc}; the file keeps what was committed before")
        return saved


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
        if node is None:  # Ctrl-C while the models loaded: said nothing
            rclpy.logging.get_logger("spatial_memory").info("stopped while starting")
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
            if not node.close():
                code = 1
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
