"""`run`'s options for ROS 2 bag inputs and the --out-bag output (argparse only; nothing heavy imported)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..io.bag_topics import BagOptions
from .arg_types import non_negative_float

_TOPIC_FLAGS = {  # flag -> BagOptions field
    "--image-topic": "image_topic", "--compressed-topic": "compressed_topic",
    "--camera-info-topic": "camera_info_topic", "--depth-topic": "depth_topic",
}


def add_bag_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "ROS 2 bags (a folder with metadata.yaml, or a .mcap / .db3 file)",
        "Each topic is found automatically when the bag has exactly one candidate. The camera pose comes from "
        "the bag's tf (map frame <- the image's frame_id at its stamp); a bag without tf is a static camera.",
    )
    g.add_argument("--image-topic", metavar="TOPIC", help="sensor_msgs/Image colour topic: bgr8, rgb8, bgra8, rgba8, "
                   "mono8, 8UC3, 8UC1, bgr16, rgb16, mono16 (top 8 bits), bayer_rggb8, bayer_bggr8, bayer_gbrg8, "
                   "bayer_grbg8 (demosaiced), yuv422 or uyvy (UYVY), yuv422_yuy2 or yuyv (YUYV)")
    g.add_argument("--compressed-topic", metavar="TOPIC", help="sensor_msgs/CompressedImage topic (jpeg, png)")
    g.add_argument("--camera-info-topic", metavar="TOPIC", help="sensor_msgs/CameraInfo (--camera overrides it)")
    g.add_argument("--depth-topic", metavar="TOPIC", help="aligned depth, 16UC1 mm or 32FC1 m (default: the one "
                   "Image topic whose name contains 'depth', or of two the 'aligned' one, of the image's camera)")
    g.add_argument("--tf-topic", default="/tf", metavar="TOPIC", help="default /tf")
    g.add_argument("--tf-static-topic", default="/tf_static", metavar="TOPIC", help="default /tf_static")
    g.add_argument("--map-frame", default="map", metavar="FRAME", help="fixed frame of the outputs (default map)")
    g.add_argument("--camera-frame", default="", metavar="FRAME", help="overrides the image's frame_id")
    g.add_argument("--image-rectified", action="store_true",
                   help="the image topic is the rectified image (image_proc's image_rect) beside the raw camera's "
                        "camera_info: use its P, remove no distortion (the node's image_rectified)")
    g.add_argument("--no-jpeg-check", dest="check_jpeg", action="store_false",
                   help="decode every JPEG OpenCV reads, damaged or not (the node's check_jpeg: false); default: "
                        "a JPEG frame cut short or damaged in transit is skipped with the reason")
    g.add_argument("--depth-max-dt", type=non_negative_float, default=0.05, metavar="S",
                   help="largest image/depth stamp difference (default 0.05 s)")
    p.add_argument("--out-bag", type=Path, metavar="DIR",
                   help="also write /tracks, /change_mask and /markers to a new MCAP bag folder DIR (opens in "
                   "Foxglove; any input, not only bags)")


def bag_options(args: argparse.Namespace) -> BagOptions | None:
    """BagOptions from the parsed flags; None when every one is at its default."""
    options = BagOptions(
        **{field: getattr(args, flag[2:].replace("-", "_")) for flag, field in _TOPIC_FLAGS.items()},
        tf_topic=args.tf_topic, tf_static_topic=args.tf_static_topic, map_frame=args.map_frame,
        camera_frame=args.camera_frame, depth_max_dt_s=args.depth_max_dt, image_rectified=args.image_rectified,
        check_jpeg=args.check_jpeg,
    )
    return None if options == BagOptions() else options
