"""`spatial-memory bench-node`: the whole node's speed over real DDS.

The installed node runs as its own process (node_process.NodeProcess); this process publishes camera_info
and W x H bgr8 images at a fixed rate (stamp = publish time, wall clock) and collects the TrackArrays.
Per run: the sustained processed rate (TrackArrays received per second over the measured window, after a
warm-up) and the end-to-end latency (TrackArray received - image stamp) p50/p95/p99/max, the share of
published frames that got tracks, and the node's CPU use.

Frames: the demo simulation (static camera 3 m up, tags, walking people) or, with --video, a recording
resized to W x H (e.g. opencv-doc's vtest.avi: real people for the coco detector). The camera is static:
pose_source fixed with the scene's pose, so no /tf traffic is involved. With cameras > 1 the node serves that
many (its cameras parameter: cam0, cam1, ...), each fed the same frames at the same rate and stamp, placed by
one /tf message per frame (the node's tf listener), and the figures are over all of them; with stagger, camera
i publishes i / cameras of a period after camera 0, at a stamp and /tf message of its own.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.core.geometry import split_transform
from spatial_memory_ros.core.machine import cpu_name
from spatial_memory_ros.core.types import CameraIntrinsics

from .node_process import NodeProcess, stale_config_warning

FASTDDS_PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
_N_FRAMES = 60  # distinct frames, published in a loop


@dataclass(frozen=True)
class BenchSettings:
    detector: str = "coco"  # detector.backend: apriltag | coco
    seconds: float = 30.0  # measured window
    warmup_s: float = 5.0
    rate_hz: float = 10.0  # publish rate
    width: int = 640
    height: int = 480
    transport: str = "raw"  # raw: Image on image | compressed: jpeg CompressedImage on image/compressed
    reliable: bool = False  # reliable input subscriptions (QoS override); the node's default is best effort
    fastdds_profile: str = ""  # FASTDDS_DEFAULT_PROFILES_FILE for both processes; "" = Fast DDS's defaults
    video: str = ""  # frames from this video instead of the simulation
    node_params: dict[str, Any] = field(default_factory=dict)  # extra -p overrides
    cameras: int = 1  # cameras the node serves, each fed every frame
    # cameras not triggered together: camera i publishes i / cameras of a period after camera 0, with its own stamp
    stagger: bool = False


@dataclass
class BenchResult:
    settings: BenchSettings
    published: int  # frames published in the window
    received: int  # TrackArrays received for them
    processed_hz: float  # received / window
    latency_ms: dict[str, float]  # p50, p95, p99, max, mean
    node_cpu_percent: float  # of one core, over the window
    bench_cpu_percent: float  # this (publishing) process, of one core
    cpu_count: int
    machine: str
    lost_s: float = 0.0  # longest gap without a TrackArray, s
    # per camera: TrackArrays received for its published frames (one camera could starve while the sum looks fine)
    received_per_camera: list[int] = field(default_factory=list)
    node_peak_rss_mb: float = 0.0  # the node process's peak resident memory over the run (Linux)
    # the node's change backend as its last /diagnostics said, e.g. how many frames a shared model's step carried
    node_change: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def load_frames(settings: BenchSettings) -> tuple[list[np.ndarray], CameraIntrinsics, np.ndarray]:
    """(frames, intrinsics, T_map_cam) at the bench size."""
    w, h = settings.width, settings.height
    if settings.video:
        cap = cv2.VideoCapture(settings.video)
        frames: list[np.ndarray] = []
        while len(frames) < _N_FRAMES:
            ok, image = cap.read()
            if not ok:
                break
            frames.append(cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA))
        cap.release()
        if not frames:
            raise BadInputError(f"cannot read frames from {settings.video}")
        f = 0.8 * w
        return frames, CameraIntrinsics(f, f, w / 2.0, h / 2.0, w, h), np.eye(4)
    from spatial_memory_ros.sim.scene import make_scene

    scene = make_scene("demo", width=w, height=h)
    sims = list(scene.frames(limit=_N_FRAMES))
    return [s.image for s in sims], scene.intrinsics, sims[0].T_map_cam


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {k: float("nan") for k in ("p50", "p95", "p99", "max", "mean")}
    a = np.asarray(values) * 1000.0
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max()), "mean": float(a.mean())}


def run_bench(settings: BenchSettings, out_dir: Path, *, log: Any = print) -> BenchResult:
    """One run; writes out_dir/node.log. Raises BadInputError when the node never answers."""
    if settings.fastdds_profile and not Path(settings.fastdds_profile).is_file():
        raise BadInputError(f"no Fast DDS profile at {settings.fastdds_profile}")
    saved = os.environ.get(FASTDDS_PROFILE_ENV)
    # Set before rclpy creates this process's participant (Fast DDS reads it once per process), and put back
    # afterwards so that later participants of a caller (tests) are not changed behind its back.
    if settings.fastdds_profile:
        os.environ[FASTDDS_PROFILE_ENV] = str(Path(settings.fastdds_profile).resolve())
    else:
        os.environ.pop(FASTDDS_PROFILE_ENV, None)
    try:
        return _run(settings, out_dir, log)
    finally:
        if saved is None:
            os.environ.pop(FASTDDS_PROFILE_ENV, None)
        else:
            os.environ[FASTDDS_PROFILE_ENV] = saved


def _run(settings: BenchSettings, out_dir: Path, log: Any) -> BenchResult:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image
    from spatial_memory.msg import TrackArray
    from tqdm import tqdm

    from . import conversions as conv

    frames, intr, T_map_cam = load_frames(settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    stale = stale_config_warning()
    if stale:
        log(f"warning: {stale}")
    domain = random.randint(101, 200)  # away from the tests' 1..100
    t, q = split_transform(T_map_cam)
    names = [f"cam{i}" for i in range(settings.cameras)] if settings.cameras > 1 else [""]
    prefixes = [f"{n}/" if n else "" for n in names]
    frame_ids = [f"{n}_optical" if n else "camera_optical" for n in names]
    pose = ({"pose_source": "fixed", "fixed_transform": [*map(float, t), *map(float, q)]} if len(names) == 1
            else {"pose_source": "tf_topics", "cameras": names})  # one transform cannot place two cameras
    scratch = Path(tempfile.mkdtemp(prefix="bench_node_"))  # the node's memory file: removed at the end
    params = {
        "detector.backend": settings.detector, **pose, "image_transport": settings.transport,
        "memory.db_path": str(scratch / "memory.db"),
        **settings.node_params,
    }
    env = {FASTDDS_PROFILE_ENV: os.environ[FASTDDS_PROFILE_ENV]} if settings.fastdds_profile else {}
    node = NodeProcess(domain, out_dir / "node.log", params, namespace="/bench", reliable_inputs=settings.reliable,
                       env=env)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    driver = rclpy.create_node("bench_driver", namespace="/bench", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(driver)
    sent: dict[tuple[int, int, int], float] = {}  # (camera, stamp) -> publish time
    got: dict[tuple[int, int, int], float] = {}  # (camera, stamp) -> receive time
    lock = threading.Lock()

    def on_tracks(camera: int) -> Any:
        def on(msg: TrackArray) -> None:
            now = time.time()
            with lock:
                got.setdefault((camera, msg.header.stamp.sec, msg.header.stamp.nanosec), now)
        return on

    change = [""]  # the newest /diagnostics "change" value of a camera input status

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            for value in status.values:
                if value.key == "change":
                    change[0] = value.value

    driver.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    for i, prefix in enumerate(prefixes):
        driver.create_subscription(TrackArray, prefix + "tracks", on_tracks(i),
                                   QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50,
                                              reliability=ReliabilityPolicy.RELIABLE))
    camera_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=(
        ReliabilityPolicy.RELIABLE if settings.reliable else ReliabilityPolicy.BEST_EFFORT))
    info_pubs = [driver.create_publisher(CameraInfo, prefix + "camera_info", camera_qos) for prefix in prefixes]
    if settings.transport == "compressed":
        image_pubs = [driver.create_publisher(CompressedImage, prefix + "image/compressed", camera_qos)
                      for prefix in prefixes]
        msgs = [CompressedImage(format="bgr8; jpeg compressed bgr8",
                                data=cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
                for f in frames]
    else:
        image_pubs = [driver.create_publisher(Image, prefix + "image", camera_qos) for prefix in prefixes]
        msgs = [conv.bgr_to_image(f, conv.header("camera_optical", conv.sec_to_stamp(0.0))) for f in frames]
    tf_pub = None
    if len(names) > 1:
        from tf2_msgs.msg import TFMessage

        tf_pub = driver.create_publisher(TFMessage, "/tf", 100)
    info = CameraInfo(width=intr.width, height=intr.height, distortion_model="plumb_bob", d=[0.0] * 5,
                      k=[intr.fx, 0.0, intr.cx, 0.0, intr.fy, intr.cy, 0.0, 0.0, 1.0])
    stop = threading.Event()

    def spin() -> None:  # receive on a thread of its own, so publishing keeps its schedule
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        deadline = time.monotonic() + 120.0  # model loading on a busy machine
        while any(pub.get_subscription_count() == 0 for pub in image_pubs):
            if time.monotonic() > deadline or not node.alive():
                raise BadInputError(f"the node never subscribed to its image topic:\n{node.output()[-3000:]}")
            time.sleep(0.1)
        log(f"node up; publishing {settings.width}x{settings.height} at {settings.rate_hz} Hz "
            f"({settings.warmup_s:.0f} s warm-up + {settings.seconds:.0f} s measured)")
        period = 1.0 / settings.rate_hz
        n_warm = int(round(settings.warmup_s * settings.rate_hz))
        n_total = n_warm + int(round(settings.seconds * settings.rate_hz))
        start = time.monotonic()
        cpu_node0 = cpu_self0 = 0.0
        offsets = [i * period / len(names) if settings.stagger else 0.0 for i in range(len(names))]
        # a bar on a terminal (none in a log): the run takes warm-up + seconds, 35 s by default
        ticks = tqdm(range(n_total), desc="bench-node", unit="tick", disable=None, mininterval=1.0, leave=False)
        for k in ticks:
            time.sleep(max(0.0, start + k * period - time.monotonic()))
            if k == n_warm:
                cpu_node0, cpu_self0, t_window = node.cpu_seconds(), _self_cpu(), time.monotonic()
            msg = msgs[k % len(msgs)]
            stamp = None
            for i, (frame_id, info_pub, image_pub) in enumerate(zip(frame_ids, info_pubs, image_pubs)):
                time.sleep(max(0.0, start + k * period + offsets[i] - time.monotonic()))
                if stamp is None or settings.stagger:  # together: one stamp for all; staggered: each its own
                    now = time.time()
                    stamp = conv.sec_to_stamp(now)
                    if tf_pub is not None:  # the cameras where the scene's camera stands, at this stamp
                        placed = frame_ids if not settings.stagger else [frame_id]
                        tf_pub.publish(TFMessage(transforms=[conv.transform_to_msg("map", f, T_map_cam, stamp)
                                                             for f in placed]))
                msg.header = conv.header(frame_id, stamp)
                info.header = msg.header
                info_pub.publish(info)
                image_pub.publish(msg)
                if k >= n_warm:
                    sent[(i, stamp.sec, stamp.nanosec)] = now
        window = time.monotonic() - t_window
        cpu_node, cpu_self = node.cpu_seconds() - cpu_node0, _self_cpu() - cpu_self0
        time.sleep(1.0)  # stragglers
        peak_rss_mb = node.peak_rss_mb()
    finally:
        stop.set()
        spinner.join(timeout=5)
        driver.destroy_node()
        rclpy.try_shutdown(context=context)
        code = node.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    if code != 0:
        log(f"warning: the node exited with {code}; see {out_dir / 'node.log'}")
    with lock:
        latencies = [got[s] - t0 for s, t0 in sent.items() if s in got]
        per_camera = [sum(1 for s in sent if s in got and s[0] == i) for i in range(len(names))]
        times = sorted(got[s] for s in sent if s in got)
    gaps = np.diff(times) if len(times) > 1 else np.zeros(1)
    return BenchResult(
        settings=settings, published=len(sent), received=len(latencies), received_per_camera=per_camera,
        node_peak_rss_mb=peak_rss_mb, node_change=change[0],
        processed_hz=len(latencies) / window, latency_ms=_percentiles(latencies),
        node_cpu_percent=100.0 * cpu_node / window, bench_cpu_percent=100.0 * cpu_self / window,
        cpu_count=os.cpu_count() or 0, machine=_machine(), lost_s=float(gaps.max()),
    )


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _machine() -> str:
    cpu = cpu_name("unknown CPU")
    return f"{cpu}, {os.cpu_count()} cores visible, load average {os.getloadavg()[0]:.2f} at the end"


def format_result(r: BenchResult) -> str:
    s, lat = r.settings, r.latency_ms
    profile = Path(s.fastdds_profile).name if s.fastdds_profile else "Fast DDS defaults"
    rows = [
        ("detector", s.detector), ("input", f"{s.width}x{s.height} {s.transport}, {s.rate_hz:g} Hz, "
                                            f"{'reliable' if s.reliable else 'best effort'}, {profile}"),
        ("cameras", f"{s.cameras}{', staggered' if s.stagger else ''} (the figures below are over all of them)"
         if s.cameras > 1 else "1"),
        ("frames published / got tracks",
         f"{r.published} / {r.received} ({100.0 * r.received / max(r.published, 1):.0f} %)"
         + (f"; per camera {', '.join(map(str, r.received_per_camera))}" if len(r.received_per_camera) > 1 else "")),
        ("sustained processed rate", f"{r.processed_hz:.2f} Hz"),
        ("latency p50 / p95 / p99 / max", f"{lat['p50']:.0f} / {lat['p95']:.0f} / {lat['p99']:.0f} / "
                                          f"{lat['max']:.0f} ms"),
        ("longest gap between TrackArrays", f"{1000.0 * r.lost_s:.0f} ms"),
        ("CPU: node / publisher", f"{r.node_cpu_percent:.0f} % / {r.bench_cpu_percent:.0f} % of one core"),
        ("node peak memory (RSS)", f"{r.node_peak_rss_mb:.0f} MB"),
        ("change backend (node's /diagnostics)", r.node_change or "(no /diagnostics received)"),
        ("machine", r.machine),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def write_result(r: BenchResult, path: Path) -> None:
    path.write_text(json.dumps(r.to_json(), indent=2) + "\n")
