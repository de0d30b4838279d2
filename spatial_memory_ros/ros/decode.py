"""Message -> numpy/dataclass decoding that imports no ROS: it reads fields by name, so it takes rclpy's
messages (the node) and rosbags' (offline bag replay, where rclpy may be absent) alike.

Replaces cv_bridge for the encodings we accept (cv_bridge is not installable from pip wheels).
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.core.geometry import make_transform
from spatial_memory_ros.core.types import OPENCV_DISTORTION_LENGTHS, OPENCV_DISTORTION_MODELS, CameraIntrinsics
from spatial_memory_ros.ros.compressed_size import compressed_kind, declared_size
from spatial_memory_ros.ros.jpeg_damage import jpeg_damage

_U8, _U16 = np.dtype(np.uint8), np.dtype(np.uint16)
# encoding -> (channels, sample type, cv2 conversion to BGR or None): what we accept on the colour topic, the
# colour encodings cv_bridge converts. Simulators publish rgba8 / bgra8, USB cameras yuv422 (UYVY) or
# yuv422_yuy2 (YUYV), machine-vision cameras their raw Bayer mosaic; 16-bit images keep their top 8 bits.
# OpenCV names a Bayer pattern by the 2x2 block starting at the second row and column, so ROS's rggb (the
# top-left block) is OpenCV's BG (test_conversions demosaics a known mosaic to check it).
COLOUR_ENCODINGS: dict[str, tuple[int, np.dtype, int | None]] = {
    "bgr8": (3, _U8, None), "8UC3": (3, _U8, None), "rgb8": (3, _U8, cv2.COLOR_RGB2BGR),
    "mono8": (1, _U8, cv2.COLOR_GRAY2BGR), "8UC1": (1, _U8, cv2.COLOR_GRAY2BGR),
    "bgra8": (4, _U8, cv2.COLOR_BGRA2BGR), "rgba8": (4, _U8, cv2.COLOR_RGBA2BGR),
    "bgr16": (3, _U16, None), "rgb16": (3, _U16, cv2.COLOR_RGB2BGR), "mono16": (1, _U16, cv2.COLOR_GRAY2BGR),
    "bayer_rggb8": (1, _U8, cv2.COLOR_BayerBG2BGR), "bayer_bggr8": (1, _U8, cv2.COLOR_BayerRG2BGR),
    "bayer_gbrg8": (1, _U8, cv2.COLOR_BayerGR2BGR), "bayer_grbg8": (1, _U8, cv2.COLOR_BayerGB2BGR),
    "yuv422": (2, _U8, cv2.COLOR_YUV2BGR_UYVY), "uyvy": (2, _U8, cv2.COLOR_YUV2BGR_UYVY),
    "yuv422_yuy2": (2, _U8, cv2.COLOR_YUV2BGR_YUY2), "yuyv": (2, _U8, cv2.COLOR_YUV2BGR_YUY2),
}
DEPTH_ENCODINGS: dict[str, np.dtype] = {
    "16UC1": np.dtype(np.uint16), "mono16": np.dtype(np.uint16), "32FC1": np.dtype(np.float32),
}


def stamp_to_sec(stamp: Any) -> float:
    """builtin_interfaces/Time -> float s."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def _bytes_view(data: Any) -> np.ndarray:
    """(N,) uint8 view of a uint8[] field: bytes (rclpy), array.array, or a numpy array (rosbags)."""
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError):  # a list, or a non-contiguous array
        return np.frombuffer(bytes(bytearray(data)), dtype=np.uint8)


def _image_array(msg: Any, channels: int, dtype: np.dtype) -> np.ndarray:
    """View msg.data as (H, W[, C]) honouring step (row padding) and endianness."""
    h, w = int(msg.height), int(msg.width)
    if h == 0 or w == 0:
        raise BadInputError(f"empty image ({w}x{h})")
    row_bytes = w * channels * dtype.itemsize
    if msg.step < row_bytes:
        raise BadInputError(f"step {msg.step} < width*channels*bytes = {row_bytes} for {msg.encoding}")
    buf = _bytes_view(msg.data)
    if buf.size < msg.step * h:
        raise BadInputError(f"data has {buf.size} bytes, expected step*height = {msg.step * h}")
    rows = buf[: msg.step * h].reshape(h, msg.step)[:, :row_bytes]
    dt = dtype.newbyteorder(">" if msg.is_bigendian else "<") if dtype.itemsize > 1 else dtype
    arr = np.ascontiguousarray(rows).view(dt).astype(dtype, copy=False)
    return arr.reshape(h, w, channels) if channels > 1 else arr.reshape(h, w)


def image_to_bgr(msg: Any) -> np.ndarray:
    """sensor_msgs/Image in any of COLOUR_ENCODINGS -> (H, W, 3) uint8 BGR. Raises BadInputError."""
    spec = COLOUR_ENCODINGS.get(msg.encoding)
    if spec is None:
        raise BadInputError(f"unsupported encoding {msg.encoding!r}; expected one of {sorted(COLOUR_ENCODINGS)}")
    channels, dtype, to_bgr = spec
    if channels == 2 and int(msg.width) % 2:
        raise BadInputError(f"{msg.encoding} needs an even width (two pixels share their colour), got {msg.width}")
    arr = _image_array(msg, channels, dtype)
    if dtype == _U16:
        arr = (arr >> 8).astype(np.uint8)
    if to_bgr is None:
        return arr.copy()  # the message buffer may be reused by rclpy
    return cv2.cvtColor(np.ascontiguousarray(arr), to_bgr)


# The largest compressed image decoded: 8192 x 8192 px (twice an 8K frame; 200 MB of BGR). A header may declare
# any size in a few kilobytes (compressed_size), and OpenCV's own limit (2^30 px) is 3 GB of BGR a frame.
MAX_COMPRESSED_PIXELS = 8192 * 8192


def compressed_to_bgr(msg: Any, *, check_jpeg: bool = True) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg, png, anything cv2.imdecode reads) -> (H, W, 3) uint8 BGR.

    format follows image_transport: "jpeg", "png", or "<raw encoding>; <codec> compressed <encoding>". The
    decoded pixels are taken as BGR (what compressed_image_transport encodes) unless the format says they
    were compressed as rgb8. Raises BadInputError for empty or undecodable data, for a JPEG whose pixels the
    decoder would have had to make up (ros.jpeg_damage: a frame cut short or damaged in transit) and for
    compressedDepth. check_jpeg False skips the JPEG check (the node's check_jpeg parameter).
    """
    fmt = str(msg.format).strip()
    if "compresseddepth" in fmt.lower().replace(" ", ""):
        raise BadInputError(f"format {fmt!r} is a compressed depth image, not a colour image")
    buf = _bytes_view(msg.data)
    if buf.size == 0:
        raise BadInputError(f"empty compressed image (format {fmt!r})")
    size = declared_size(buf)
    if size is None and (kind := compressed_kind(buf)) is not None:
        # the codec would refuse it too; reading on would decode a size nobody checked
        raise BadInputError(f"cannot decode compressed image ({buf.size} bytes, format {fmt!r}): a {kind.upper()} "
                            "whose header declares no size (malformed or cut short)")
    if size is not None and size[0] * size[1] > MAX_COMPRESSED_PIXELS:
        raise BadInputError(f"compressed image (format {fmt!r}) declares {size[0]} x {size[1]} px, over the "
                            f"{MAX_COMPRESSED_PIXELS} px decoded: a corrupt or hostile header, not decoded")
    try:
        # as compressed_image_transport decodes: the pixels as sent, not turned by an EXIF orientation tag (a
        # turned frame no longer fits camera_info's intrinsics, or its size)
        image = cv2.imdecode(buf, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error as exc:  # some corrupt headers make the codec raise rather than return None
        raise BadInputError(f"cannot decode compressed image (format {fmt!r}): {exc}") from None
    if image is None or image.size == 0:
        raise BadInputError(f"cannot decode compressed image ({buf.size} bytes, format {fmt!r}): corrupt or "
                            "not an image format OpenCV reads")
    if check_jpeg and bytes(buf[:2]) == b"\xff\xd8" and (damage := jpeg_damage(buf)) is not None:
        raise BadInputError(f"damaged JPEG ({buf.size} bytes, format {fmt!r}): {damage}; a frame cut short or "
                            "damaged in transit, dropped (its decoded pixels are partly made up)")
    if "compressed rgb" in fmt.lower():
        image = np.ascontiguousarray(image[:, :, ::-1])
    return image


def depth_to_metres(msg: Any) -> np.ndarray:
    """Depth image (16UC1 mm or 32FC1 m) -> (H, W) float32 m with NaN where invalid."""
    dtype = DEPTH_ENCODINGS.get(msg.encoding)
    if dtype is None:
        raise BadInputError(f"unsupported depth encoding {msg.encoding!r}; expected 16UC1 (mm) or 32FC1 (m)")
    arr = _image_array(msg, 1, dtype)
    if dtype == np.uint16:
        depth = arr.astype(np.float32) * 1e-3
        depth[(arr == 0) | (arr == 0xFFFF)] = np.nan  # 0: no reading; 65535: a saturated one (no sensor sees 65.5 m)
    else:
        depth = arr.astype(np.float32, copy=True)
        depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth


def camera_info_to_intrinsics(msg: Any, *, rectified: bool = False) -> CameraIntrinsics:
    """CameraInfo -> CameraIntrinsics; raises BadInputError for an uncalibrated (all-zero K) camera.

    rectified: the image is the rectified one (image_proc's image_rect), which image_proc publishes beside the
    raw camera's camera_info: its pixels follow P (the projection of the rectified image), with no distortion
    left to remove, whatever D and the distortion model (a fisheye's too) say. REP 104 / image_geometry."""
    if msg.width == 0 or msg.height == 0:
        raise BadInputError("camera_info has zero width or height")
    d: tuple[float, ...]
    if rectified:
        p = [float(v) for v in msg.p]
        if len(p) != 12 or not (p[0] > 0 and p[5] > 0):
            raise BadInputError("camera_info has no projection for the rectified image (P[0] or P[5] <= 0; "
                                "image_rectified is true)")
        k, d = [p[0], p[1], p[2], p[4], p[5], p[6], 0.0, 0.0, 1.0], ()
    else:
        k = [float(v) for v in msg.k]
        if not (k[0] > 0 and k[4] > 0):
            raise BadInputError("camera_info has no calibration (K[0] or K[4] <= 0)")
        d = tuple(float(v) for v in msg.d)
    model = str(getattr(msg, "distortion_model", "") or "")
    if any(v != 0.0 for v in d):  # all zero (a rectified image's) is no distortion, whatever the model says
        if model and model not in OPENCV_DISTORTION_MODELS:  # unnamed: plumb_bob, as in camera_yaml
            raise BadInputError(
                f"camera_info distortion_model {model!r} is not supported (use one of {OPENCV_DISTORTION_MODELS}); "
                "for a fisheye camera, subscribe to the rectified image (image_proc's image_rect) and set "
                "image_rectified: true (its camera_info's P is then used)")
    else:
        d = d if len(d) in OPENCV_DISTORTION_LENGTHS else ()  # zeros OpenCV would not take: none
    # K and width / height are the full sensor's; a driver that bins or crops (binning_x/y, roi) sends the smaller
    # image: its pixel u is the sensor's (u * binning_x + roi.x_offset), as image_geometry reads it (REP 104).
    # D works on normalised coordinates and stays. An roi of zero size is the whole sensor.
    bx, by = max(1, int(getattr(msg, "binning_x", 0) or 0)), max(1, int(getattr(msg, "binning_y", 0) or 0))
    roi = getattr(msg, "roi", None)
    x0, y0, width, height = 0, 0, int(msg.width), int(msg.height)
    if roi is not None and roi.width and roi.height:
        x0, y0, width, height = int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height)
        if x0 + width > msg.width or y0 + height > msg.height:  # the image centre would be silently wrong
            raise BadInputError(f"camera_info roi (x {x0}, y {y0}, {width}x{height}) lies outside the sensor's "
                                f"{msg.width}x{msg.height}")
    if width // bx == 0 or height // by == 0:
        raise BadInputError(f"camera_info's image is empty after binning {bx}x{by} of {width}x{height}")
    intrinsics = CameraIntrinsics(fx=k[0] / bx, fy=k[4] / by, cx=(k[2] - x0) / bx, cy=(k[5] - y0) / by,
                                  width=width // bx, height=height // by, distortion=d)
    try:
        intrinsics.check_values()  # a NaN would reach every lifted position; D of a length OpenCV does not take
    except BadInputError as exc:
        raise BadInputError(f"camera_info {exc}: K {k}, D {list(d)}") from None
    return intrinsics


def transform_to_matrix(msg: Any) -> np.ndarray:
    """geometry_msgs/TransformStamped -> (4, 4) T_parent_child; ValueError for a NaN or infinite value (tf2 refuses
    them too; kept, one would make every pose through that link NaN until it is sent again)."""
    t, r = msg.transform.translation, msg.transform.rotation
    values = [t.x, t.y, t.z, r.x, r.y, r.z, r.w]
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"transform is not finite: translation {values[:3]}, rotation {values[3:]}")
    return make_transform(values[:3], values[3:])
