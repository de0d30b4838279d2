"""Every node parameter, declared in one block with a description, read into one frozen settings object.

Defaults come from the core's config dataclasses (pipeline) and from NodeDefaults (node-only), and are
repeated in config/spatial_memory.yaml; a test keeps the two in step.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.exceptions import InvalidParameterTypeException
from rclpy.node import Node

from spatial_memory_ros.core.config import (
    ChangeConfig,
    DetectorConfig,
    LiftingConfig,
    MemoryConfig,
    PipelineConfig,
    TagConfig,
    TrackerConfig,
)
from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.core.settings_io import parse_items
from spatial_memory_ros.core.store import in_ram

from .camera_input import check_camera_names
from .pose_source import POSE_SOURCES


@dataclass(frozen=True)
class NodeSettings:
    device: str = "auto"
    rate_hz: float = 10.0
    map_frame: str = "map"
    camera_frame: str = ""
    pose_source: str = "tf"
    fixed_transform: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    tf_timeout_s: float = 0.2
    depth_max_dt_s: float = 0.05
    publish_debug_image: bool = False
    marker_lifetime_s: float = 1.0
    image_transport: str = "raw"
    image_rectified: bool = False
    check_jpeg: bool = True
    cameras: tuple[str, ...] = ("",)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)


# name -> (description, read_only). Live-changeable ones are those the node re-reads every frame.
_NODE_PARAMS: dict[str, tuple[str, bool]] = {
    "device": ("Inference device: auto (CUDA when available), cpu or cuda.", True),
    "rate_hz": ("Frames processed per second (a faster camera is cut to at most 1.2 x this on average); always "
                "the newest frame is taken.", False),
    "map_frame": ("Fixed frame for tracks, item locations and markers.", True),
    "camera_frame": ("Overrides the image header's frame_id for the pose lookup and the published images when "
                     "non-empty.", True),
    "pose_source": ("tf (tf2_ros if installed, else a /tf listener), tf2_ros, tf_topics or fixed.", True),
    "fixed_transform": ("map <- camera optical frame [x, y, z, qx, qy, qz, qw] (m) for pose_source=fixed.", True),
    "tf_timeout_s": ("Longest wait (s) for the camera pose at an image stamp before the frame is dropped.", False),
    "depth_max_dt_s": ("Largest stamp difference (s) for a depth image to count as aligned to a colour image.",
                       False),
    "publish_debug_image": ("Publish the annotated bgr8 image on debug_image (costs CPU).", False),
    "marker_lifetime_s": ("Lifetime (s) of every RViz marker (at least two frame periods of rate_hz); a stopped "
                          "node's markers vanish after it.", False),
    "image_transport": ("raw: sensor_msgs/Image on image; compressed: sensor_msgs/CompressedImage (jpeg, png) on "
                        "image/compressed (image_transport's name, following the remapped image topic).", True),
    "image_rectified": ("The image is the rectified one (image_proc's image_rect), its camera_info the raw camera's: "
                        "the pixels follow camera_info's P and no distortion is removed (a fisheye's too). False: "
                        "the raw image, undistorted by K and D.", True),
    "check_jpeg": ("With image_transport compressed: drop a JPEG whose scan libjpeg had to fill in (a frame cut "
                   "short or damaged in transit, which OpenCV decodes with its lost part grey; ros/jpeg_damage.py, "
                   "needs simplejpeg). false: decode every JPEG OpenCV reads, for a camera whose whole frames it "
                   "would refuse.", True),
    "cameras": ('[""]: one camera on image, camera_info, depth. Names, e.g. ["front", "rear"]: one pipeline per '
                "camera on front/image, front/camera_info, front/depth -> front/tracks, front/change_mask, "
                "front/debug_image (and rear/... alike), all over one item memory, each image's frame_id "
                "giving its pose.", True),
}
IMAGE_TRANSPORTS = ("raw", "compressed")

_PIPELINE_SECTIONS: dict[str, type] = {
    "change": ChangeConfig, "tracker": TrackerConfig, "memory": MemoryConfig,
    "detector": DetectorConfig, "lifting": LiftingConfig,
}

_PIPELINE_DESCRIPTIONS = {
    "tag_size_m": "AprilTag 36h11 edge length (m, black border); wrong values scale every item position.",
    "items": 'Item names for tag ids, as ["mug=3", "pallet_A=17"]; unmapped tags are reported as tag_<id>.',
    "change.method": "Change detector: classical (background difference, static camera) or learned (the trained "
                     "model; static or moving camera; needs torch).",
    "change.model_path": "Checkpoint of the learned change model; empty = the one shipped in the package.",
    "change.floor_memory": "learned: also mark what changed on the floor since the camera last saw that place "
    "(a per-camera floor memory; needs the camera pose from TF).",
    "change.still_edges": "learned: while the camera stands still, a per-pixel background model sets the "
    "mask's edges (3 px inside to 4 px outside the network's edge, at 320 px width).",
    "change.still_head_scale": "learned, a model with a still head: it compares a still camera's frame with its "
    "background at this many times the model's input (1-4), to see far, small things; a few ms a frame.",
    "change.follow_turns": "A camera that only turns (a pan-tilt head, a robot turning in place with the camera "
    "on its axis; pose from TF and camera_info) keeps its change reference (classical) or still background "
    "(learned), re-projected into each new view; a frame turned over 3 deg since the last is blurred and skipped. "
    "Off, a turn past 2 deg starts a new one.",
    "change.batch_cameras": "learned, several cameras: always = one model, its network stepping the cameras' "
    "frames that come together as one batch; never = a model per camera; auto = always with CUDA, never on a CPU "
    "(where two networks on two cores answer sooner).",
    "change.threshold": "Grey-level difference (0..255) that counts as change; lower finds more, and more noise.",
    "change.colour_angle_deg": "A pixel whose colour turned by more than this angle (degrees in RGB; a light "
                               "scaling it does not turn it) is a change too; 0 = grey levels only.",
    "change.stable_frames": "Frames a pixel must stay put before it becomes part of the reference scene.",
    "change.min_blob_area_px": "Smallest moving blob (px) turned into a dynamic-object detection.",
    "change.motion_reset_fraction": "Fraction of changed pixels taken to mean the view moved: reset.",
    "change.pose_reset_translation_m": "Camera translation (m) that resets the change reference and the still edges.",
    "change.pose_reset_rotation_deg": "Camera rotation (deg) that resets the change reference and the still edges.",
    "tracker.min_iou": "Minimum box IoU for a detection to continue a track.",
    "tracker.min_hits": "Matches before a track is confirmed (and may update item memory); 0 = auto: 3, or 1 "
                        "with change.method learned.",
    "tracker.max_age_s": "Seconds a track may go unmatched (state LOST) before it is deleted.",
    "tracker.velocity_smoothing": (
        "EMA weight (0..1] of the newest velocity estimate, for a frame 0.1 s or more after the last; "
        "a closer frame weighs its share of 0.1 s."
    ),
    "tracker.tentative_max_misses": "Missed frames in a row a tentative track survives; 0 deletes it on a miss.",
    "tracker.reid": "Re-identify by appearance (MobileNetV2 on class detections that name no item, e.g. people; "
                    "CPU cost per detection). Tags need none: the AprilTag-only path is unaffected.",
    "tracker.reid_weight": "Share [0, 1] of the appearance (cosine) distance in the matching cost; the rest: 1 - IoU.",
    "tracker.reid_max_distance": "Cosine distance above which a lost track is not re-identified by appearance.",
    "tracker.reid_max_age_s": "Seconds a lost track stays re-identifiable by appearance (published until max_age_s).",
    "tracker.reid_motion": "With change.method learned, moving blobs carry the model's re-identification "
                           "embedding, and a lost track of one is re-identified by it (no effect with classical).",
    "tracker.reid_motion_max_distance": "Cosine distance above which the learned model's look does not "
                                        "re-identify a lost moving-region track.",
    "tracker.reid_motion_max_age_s": "Seconds a lost moving-region track stays re-identifiable by the learned "
                                     "model's look (its looks tell agents apart only roughly: keep it short).",
    "tracker.reid_refresh_frames": "A detection that overlap alone matches to a steady track is embedded only every "
                                   "this many matches (saves re-id CPU); 1 = every detection every frame.",
    "memory.db_path": "SQLite file of the item memory; survives restarts. A relative path is under ROS_HOME "
    "(~/.ros by default), ~ is expanded. Empty keeps it in RAM only.",
    "memory.place_radius_m": "Observations within this distance (m) of a place belong to it.",
    "memory.displaced_distance_m": "An item farther than this (m) from its usual place is displaced; places closer "
                                   "than this are one spot.",
    "memory.max_dwell_gap_s": "Most an unobserved gap (s) between two sightings of an item staying adds to dwell.",
    "memory.max_places_per_item": "Places remembered per item; the least usual beyond this are forgotten.",
    "memory.absent_after_checks": "Frames a tagged item's place must be in view, decodable and unoccluded "
    "without its tag before it counts as seen empty (the item has gone); 0 = off.",
    "memory.dwell_per_return_s": "Seconds of dwell worth one return to a place when ranking the usual place.",
    "memory.min_stay_sightings": "Sightings of an item at a place, none at its last stay in between, before the "
                                 "place earns a return (a stay); fewer, e.g. a tag misread a glimpse at a time, "
                                 "earn none. 1 = every sighting.",
    "memory.return_prior": "Answer an item last seen displaced at its usual place (current_inferred) once the "
                           "learned return prior says it is more likely back than not.",
    "memory.return_prior_path": "Return prior JSON (spatial-memory fit-return-prior); empty = the shipped one.",
    "memory.return_prior_min_p": "Probability of being back above which the usual place is answered (0..1).",
    "detector.backend": "apriltag (tags only), coco (SSD-MobileNetV2 from a wheel, cv2.dnn) or onnx (a YOLO-style "
                        "model on onnxruntime, CUDA when available).",
    "detector.apriltag_items": "With coco/onnx, detect AprilTags too, so tagged items keep their tag identity.",
    "detector.model_path": "onnx backend: the YOLO-style .onnx file (layout: spatial_memory_ros/detect/onnx_yolo.py).",
    "detector.labels_path": "onnx backend: class names, one per line, in output order; empty = the 80 COCO classes.",
    "detector.score_threshold": "Detections scoring below this (0..1] are dropped; lower finds more, and more noise.",
    "detector.nms_iou": "onnx backend: boxes of one class overlapping more than this IoU are one detection.",
    "detector.item_classes": 'Classes tracked as items named after the class (e.g. "cup"); [""] for none.',
    "detector.dynamic_classes": 'Classes that move on their own (e.g. "person"); [""] for none. Others are dropped.',
    "detector.item_class_vote": "Name an item track by the score-weighted majority of its item classes while "
                                "tentative, item-class detections continuing it by overlap: one object, one "
                                "item, for a detector that gives it several class names.",
    "detector.follow_items": "Follow a confirmed item-class track by optical flow through frames the detector "
                             "misses (an object carried by hand), telling the memory where it went.",
    "detector.follow_max_s": "Stop following an item this long (s) after its last real detection.",
    "detector.learned_tag_reader": "Read tags the decoder gives up on (blurred, far, framed by their board) with "
                                   "a small learned net, as one of the configured items only (needs torch).",
    "detector.tag_reader_min_margin": "Nats by which a learned read must beat the next likeliest item's tag.",
    "lifting.ground_plane": "Without depth, place a detection where its box's bottom-centre ray meets the plane.",
    "lifting.plane_height_m": "Map-frame height (m) of that supporting plane: 0 for the floor.",
    "lifting.max_range_m": "Ground-plane hits farther than this (m) from the camera are dropped (near the horizon).",
    "lifting.min_standing_m": "A moving region that aligned depth shows within this (m) of the plane is a "
    "floor mark (stain, light, shadow), not a mover: dropped. 0 = off; no effect without depth.",
}


def pipeline_defaults() -> dict[str, Any]:
    """Flat name -> default for every pipeline parameter (items excluded: it has no default)."""
    out: dict[str, Any] = {"tag_size_m": TagConfig().tag_size_m}
    for section, cls in _PIPELINE_SECTIONS.items():
        for f in dataclasses.fields(cls):
            value = getattr(cls(), f.name)
            out[f"{section}.{f.name}"] = list(value) if isinstance(value, tuple) else value
    return out


def node_defaults() -> dict[str, Any]:
    d = NodeSettings()
    return {name: (list(v) if isinstance(v := getattr(d, name), tuple) else v) for name in _NODE_PARAMS}


def declare_parameters(node: Node) -> None:
    """Declare every parameter once, with its description; pipeline ones are read-only (restart to change).
    BadInputError: a value given (params file, -p) of another type than the parameter's."""
    for name, default in node_defaults().items():
        description, read_only = _NODE_PARAMS[name]
        descriptor = ParameterDescriptor(description=description, read_only=read_only)
        if name == "cameras":  # so that [""] (ROS's spelling of one unnamed camera) is a string array
            descriptor.type = ParameterType.PARAMETER_STRING_ARRAY
        _declare(node, name, default, descriptor)
    for name, default in pipeline_defaults().items():
        descriptor = ParameterDescriptor(description=_PIPELINE_DESCRIPTIONS[name], read_only=True)
        if isinstance(default, list):  # so that [""] (ROS's spelling of an empty list) is accepted
            descriptor.type = ParameterType.PARAMETER_STRING_ARRAY
        _declare(node, name, default, descriptor)
    _declare(node, "items", [""], ParameterDescriptor(description=_PIPELINE_DESCRIPTIONS["items"], read_only=True,
                                                      type=ParameterType.PARAMETER_STRING_ARRAY))


def _declare(node: Node, name: str, default: Any, descriptor: ParameterDescriptor) -> None:
    """node.declare_parameter, with rclpy's type error (a raw traceback at start) made a BadInputError that says
    what to write: YAML and -p read 10 as an integer (a float parameter wants 10.0) and on / off / yes / no as
    booleans (a string parameter wants them quoted)."""
    try:
        node.declare_parameter(name, default, descriptor)
    except InvalidParameterTypeException as e:
        said = str(e).removesuffix(f": {name}")  # rclpy's "Trying to set parameter 'x' to '10' ..."
        raise BadInputError(
            f"parameter {name} takes a {_type_name(default, descriptor)} (default {default!r}), not what it was "
            f"given ({said}): write a float with a decimal point (10.0), and quote a string that YAML would read "
            f"as a boolean or a number ('on', '1')") from None


def _type_name(default: Any, descriptor: ParameterDescriptor) -> str:
    if descriptor.type == ParameterType.PARAMETER_STRING_ARRAY:
        return "list of strings"
    return {bool: "boolean", int: "integer", float: "float", str: "string"}.get(type(default), type(default).__name__)


def unknown_parameters(node: Node) -> list[tuple[str, str | None]]:
    """The parameters given to node (params file, -p) that it does not have, each with the closest name it has
    (or None): ROS ignores them without a word, so a typo (change.metod) would silently run the default.
    qos_overrides.* are left out: rclpy declares those as subscriptions are made."""
    import difflib

    # rclpy keeps a node's overrides here and has no public accessor; without it, nothing is reported
    overrides: dict[str, Any] = getattr(node, "_parameter_overrides", {}) or {}
    declared = list(node.list_parameters([], 0).names)  # depth 0: every name, however many dots
    unknown = sorted(n for n in overrides if not n.startswith("qos_overrides.") and not node.has_parameter(n))
    return [(n, next(iter(difflib.get_close_matches(n, declared, n=1, cutoff=0.6)), None)) for n in unknown]


def read_settings(node: Node) -> NodeSettings:
    """Build and validate NodeSettings from the declared parameters; raises BadInputError."""
    get = lambda name: node.get_parameter(name).value  # noqa: E731
    sections: dict[str, Any] = {}
    for section, cls in _PIPELINE_SECTIONS.items():
        values = {f.name: get(f"{section}.{f.name}") for f in dataclasses.fields(cls)}
        for name, value in values.items():
            if isinstance(value, (list, tuple)):  # string arrays: class-name lists, blanks skipped
                values[name] = tuple(str(v).strip() for v in value if str(v).strip())
        sections[section] = cls(**values)
    sections["memory"] = dataclasses.replace(sections["memory"], db_path=memory_path(sections["memory"].db_path))
    items = parse_items([s for s in (get("items") or []) if s])
    pipeline = PipelineConfig(tags=TagConfig(tag_size_m=get("tag_size_m"), items=items), **sections).validate()
    settings = NodeSettings(
        **{name: get(name) for name in _NODE_PARAMS if name not in ("fixed_transform", "cameras")},
        fixed_transform=tuple(get("fixed_transform")),
        cameras=check_camera_names([str(c) for c in get("cameras") or [""]]),
        pipeline=pipeline,
    )
    if len(settings.cameras) > 1 and (settings.camera_frame or settings.pose_source == "fixed"):
        raise BadInputError("with several cameras each image's frame_id gives its pose: camera_frame must be empty "
                            "and pose_source not fixed (one transform cannot place two cameras)")
    validate_live(settings.rate_hz, settings.marker_lifetime_s, settings.depth_max_dt_s, settings.tf_timeout_s)
    if settings.device not in ("auto", "cpu", "cuda"):
        raise BadInputError(f"device must be auto, cpu or cuda, got {settings.device!r}")
    if settings.image_transport not in IMAGE_TRANSPORTS:
        raise BadInputError(f"image_transport must be one of {IMAGE_TRANSPORTS}, got {settings.image_transport!r}")
    if settings.pose_source not in POSE_SOURCES:
        raise BadInputError(f"pose_source must be one of {POSE_SOURCES}, got {settings.pose_source!r}")
    if not settings.map_frame:
        raise BadInputError("map_frame must not be empty")
    for name in ("map_frame", "camera_frame"):  # tf2 refuses such ids and RViz drops what carries them, silently
        value = getattr(settings, name)
        if value.startswith("/"):
            raise BadInputError(f"{name} {value!r}: tf2 frame ids do not start with '/'; write "
                                f"{value.lstrip('/')!r}")
    return settings


def memory_path(value: str, environ: dict[str, str] | None = None) -> str:
    """memory.db_path as the node opens it: "~" expanded, and a relative path under ROS_HOME (~/.ros unless set),
    where ROS 2 keeps its logs. Relative to the working directory, the one file became a different, empty memory
    whenever the node was started from another directory (a launch file, a systemd unit), and a planner got
    "unknown item" after a restart. "" and ":memory:" (RAM only) are kept."""
    if in_ram(value):
        return value
    env = os.environ if environ is None else environ
    path = os.path.expanduser(value)
    if not os.path.isabs(path):
        home = os.path.expanduser(env.get("ROS_HOME") or os.path.join("~", ".ros"))
        path = os.path.join(home, path)
    return os.path.abspath(path)


def validate_live(rate_hz: float, marker_lifetime_s: float, depth_max_dt_s: float, tf_timeout_s: float) -> None:
    if not 0.01 <= rate_hz <= 100:  # below a frame a minute and a half the worker's wait is all the node does
        raise BadInputError(f"rate_hz must be in [0.01, 100], got {rate_hz}")
    # written so that NaN fails too (every comparison with it is false), and inf, which no stamp or duration holds
    # over 0.1 ms (RViz 2 never expires a marker whose lifetime is 100,000 ns or less: 0 means "never") and under
    # 2^31 s (its sec is an int32)
    if not 1e-4 < marker_lifetime_s < 2**31:
        raise BadInputError(f"marker_lifetime_s must be over 0.0001 s and under 2^31 s, got {marker_lifetime_s}")
    if not 0 <= tf_timeout_s <= 5:
        raise BadInputError(f"tf_timeout_s must be in [0, 5], got {tf_timeout_s}")
    if not 0 <= depth_max_dt_s < math.inf:
        raise BadInputError(f"depth_max_dt_s must be >= 0 and finite, got {depth_max_dt_s}")
