"""Which of a ROS 2 bag's topics to read (io.bag): the options a user gives, and each topic found automatically
when the bag has exactly one candidate of its type, or an error that lists the candidates."""

from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass

from ..core.errors import BadInputError

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
TF = "tf2_msgs/msg/TFMessage"


@dataclass(frozen=True)
class BagOptions:
    """Which topics and frames to use; None = find the one topic of that type (see the module docstring)."""

    image_topic: str | None = None
    compressed_topic: str | None = None
    camera_info_topic: str | None = None
    depth_topic: str | None = None
    tf_topic: str = "/tf"
    tf_static_topic: str = "/tf_static"
    map_frame: str = "map"
    camera_frame: str = ""  # overrides the image header's frame_id for the pose lookup
    depth_max_dt_s: float = 0.05
    image_rectified: bool = False  # the image is image_proc's image_rect: camera_info's P, no distortion removed
    check_jpeg: bool = True  # drop a damaged JPEG (ros/jpeg_damage.py; the node's check_jpeg)

    def __post_init__(self) -> None:
        # a negative window silently drops every depth image, NaN fails every comparison so that no depth is ever
        # too far (both were accepted); inf pairs an image with a depth image from any time
        if not (math.isfinite(self.depth_max_dt_s) and self.depth_max_dt_s >= 0):
            raise BadInputError(f"depth_max_dt must be a finite number of seconds >= 0, got {self.depth_max_dt_s}")


@dataclass(frozen=True)
class Topics:
    image: str
    compressed: bool  # image is a CompressedImage topic
    camera_info: str | None
    depth: str | None
    tf: list[str]


def choose_topics(types: dict[str, str], opts: BagOptions, *, have_camera_yaml: bool = False) -> Topics:
    """Resolve BagOptions against the bag's {topic: msgtype}; BadInputError that lists the candidates."""
    listing = ", ".join(f"{t} ({m})" for t, m in sorted(types.items())) or "none"

    def check(topic: str, want: str, flag: str) -> str:
        if topic not in types:
            raise BadInputError(f"the bag has no topic {topic} ({flag}); its topics: {listing}")
        if types[topic] != want:
            raise BadInputError(f"{topic} ({flag}) is {types[topic]}, expected {want}")
        return topic

    def of_type(want: str) -> list[str]:
        return sorted(t for t, m in types.items() if m == want)

    if opts.image_topic and opts.compressed_topic:
        raise BadInputError("give --image-topic or --compressed-topic, not both")
    depth = check(opts.depth_topic, IMAGE, "--depth-topic") if opts.depth_topic else None
    if opts.image_topic:
        image, compressed = check(opts.image_topic, IMAGE, "--image-topic"), False
    elif opts.compressed_topic:
        image, compressed = check(opts.compressed_topic, COMPRESSED, "--compressed-topic"), True
    else:
        # Depth is an Image too: by type alone the two cannot be told apart, so the name decides.
        raw = [t for t in of_type(IMAGE) if "depth" not in t.lower() and t != depth]
        packed = [t for t in of_type(COMPRESSED) if "depth" not in t.lower()]
        if len(raw) == 1:
            image, compressed = raw[0], False
        elif not raw and len(packed) == 1:
            image, compressed = packed[0], True
        else:
            found = ", ".join(raw + packed) or "none"
            raise BadInputError(f"cannot tell which colour image topic to use (candidates: {found}); choose one "
                                f"with --image-topic or --compressed-topic. The bag's topics: {listing}")
    # several cameras (colour topics under more than one first name): a lone depth or camera_info topic may be
    # another camera's
    colour = [t for t in of_type(IMAGE) + of_type(COMPRESSED) if "depth" not in t.lower()]
    several = len({_camera_root(t) for t in colour}) > 1
    if depth is None and opts.depth_topic is None:
        depth = _own_depth(image, [t for t in of_type(IMAGE) if "depth" in t.lower() and t != image], several)

    if opts.camera_info_topic:
        camera_info: str | None = check(opts.camera_info_topic, CAMERA_INFO, "--camera-info-topic")
    else:
        infos = of_type(CAMERA_INFO)
        base = posixpath.dirname(image[: -len("/compressed")] if compressed and image.endswith("/compressed")
                                 else image)
        sibling = posixpath.join(base, "camera_info")
        own = [t for t in infos if not several or _same_camera(image, t)]  # not another camera's lone one
        camera_info = sibling if sibling in infos else own[0] if len(own) == 1 and len(infos) == 1 else None
        if camera_info is None and not have_camera_yaml:
            raise BadInputError(f"cannot tell which camera_info topic belongs to {image} (candidates: "
                                f"{', '.join(infos) or 'none'}); choose one with --camera-info-topic or give "
                                f"a camera YAML (--camera). The bag's topics: {listing}")
    if have_camera_yaml:
        camera_info = None  # the YAML overrides the bag's calibration
    defaults = BagOptions()
    for topic, default, flag in ((opts.tf_topic, defaults.tf_topic, "--tf-topic"),
                                 (opts.tf_static_topic, defaults.tf_static_topic, "--tf-static-topic")):
        if topic != default and topic not in types:  # a typo made the camera static, silently
            check(topic, TF, flag)
    tf = [t for t in (opts.tf_topic, opts.tf_static_topic) if t in types]
    for t in tf:
        check(t, TF, "tf topic")
    others = [t for t in of_type(TF) if t not in tf]
    if opts.tf_topic not in types and others:
        # a namespaced robot's /robot1/tf: without it every pose was the identity (a static camera), labelled map
        raise BadInputError(f"the bag has no {opts.tf_topic} but has {', '.join(others)}: choose with --tf-topic "
                            "and --tf-static-topic (the camera pose comes from them)")
    return Topics(image=image, compressed=compressed, camera_info=camera_info, depth=depth, tf=tf)


def _camera_root(topic: str) -> str:
    """A topic's first name, which names its camera in a multi-camera bag (/front/color/image_raw: "front");
    "" for a topic at the root (/image_raw), which says nothing of its camera."""
    parts = [p for p in topic.split("/") if p]
    return parts[0] if len(parts) > 1 else ""


def _same_camera(image: str, other: str) -> bool:
    root = _camera_root(image)
    return not root or _camera_root(other) == root


def _own_depth(image: str, candidates: list[str], several: bool) -> str | None:
    """The depth topic of the image's camera: the one candidate (of its namespace, when the bag has several
    cameras), or of those the one aligned to colour (a RealSense records depth/image_rect_raw and
    aligned_depth_to_color/image_raw); None when that does not decide (give --depth-topic). A lone depth topic of
    another camera was taken, and lifted this camera's detections with that camera's depth."""
    own = [t for t in candidates if not several or _same_camera(image, t)]
    if len(own) > 1:
        own = [t for t in own if "aligned" in t.lower()]
    return own[0] if len(own) == 1 else None
