"""CameraIntrinsics from / to the ROS camera_info YAML (as camera_calibration and camera_info_manager write).

Only the fields the pipeline uses are read: image size, camera_matrix and distortion_coefficients.
rectification_matrix / projection_matrix are written for other tools but ignored on read: the pipeline
works on the raw (distorted) image with OpenCV's distortion model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import BadInputError
from ..core.settings_io import yaml_error
from ..core.types import OPENCV_DISTORTION_MODELS, CameraIntrinsics


def load_camera_yaml(path: str | Path) -> CameraIntrinsics:
    """Read a camera_info YAML file; BadInputError naming the file if it is missing or malformed."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInputError(f"no camera calibration file at {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInputError(f"cannot read camera calibration {path}: {e}") from None
    except yaml.YAMLError as e:
        raise BadInputError(f"camera calibration {path} is not valid YAML: {yaml_error(e)}") from None
    try:
        return camera_info_to_intrinsics(data)
    except BadInputError as e:
        raise BadInputError(f"camera calibration {path}: {e}") from None


def camera_info_to_intrinsics(data: Any) -> CameraIntrinsics:
    """Parse an already-loaded camera_info mapping (also usable on a sensor_msgs/CameraInfo turned dict)."""
    if not isinstance(data, Mapping):
        raise BadInputError("expected a mapping with image_width, image_height and camera_matrix")
    width = _positive_int(data, "image_width")
    height = _positive_int(data, "image_height")
    K = _matrix(data, "camera_matrix", rows=3, cols=3)
    fx, fy, cx, cy = K[0], K[4], K[2], K[5]
    if K[1] != 0 or K[3] != 0 or K[6:] != [0.0, 0.0, 1.0]:
        raise BadInputError(f"camera_matrix must be [fx 0 cx; 0 fy cy; 0 0 1], got {K}")

    model = data.get("distortion_model", "plumb_bob")
    # OpenCV's pinhole distortion vectors only: "equidistant" (fisheye) would silently give wrong tag poses.
    if model not in OPENCV_DISTORTION_MODELS:
        raise BadInputError(f"distortion_model {model!r} is not supported (use one of {OPENCV_DISTORTION_MODELS})")
    dist: list[float] = []
    if data.get("distortion_coefficients") is not None:
        dist = _matrix(data, "distortion_coefficients", rows=None, cols=None)
    intrinsics = CameraIntrinsics(fx=fx, fy=fy, cx=cx, cy=cy, width=width, height=height, distortion=tuple(dist))
    intrinsics.check_values()  # fx, fy > 0; all finite (YAML reads .inf and .nan as numbers); OpenCV's D
    return intrinsics


def intrinsics_to_camera_info(intrinsics: CameraIntrinsics, camera_name: str = "camera") -> dict[str, Any]:
    """The camera_info YAML mapping for these intrinsics (no rectification: monocular)."""
    k = intrinsics
    dist = [float(d) for d in k.distortion]
    return {
        "image_width": int(k.width),
        "image_height": int(k.height),
        "camera_name": camera_name,
        "camera_matrix": {"rows": 3, "cols": 3, "data": [k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0]},
        "distortion_model": "rational_polynomial" if len(dist) > 5 else "plumb_bob",
        "distortion_coefficients": {"rows": 1, "cols": len(dist), "data": dist},
        "rectification_matrix": {"rows": 3, "cols": 3, "data": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]},
        "projection_matrix": {
            "rows": 3,
            "cols": 4,
            "data": [k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0],
        },
    }


def save_camera_yaml(intrinsics: CameraIntrinsics, path: str | Path, camera_name: str = "camera") -> None:
    """Write intrinsics as a camera_info YAML that load_camera_yaml (and ROS) read back."""
    data = intrinsics_to_camera_info(intrinsics, camera_name)
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None)  # flow-style lists, like ROS
    Path(path).write_text(text, encoding="utf-8")


def _positive_int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BadInputError(f"{key} must be a positive integer, got {value!r}")
    return value


def _matrix(data: Mapping[str, Any], key: str, rows: int | None, cols: int | None) -> list[float]:
    """The row-major `data` of a {rows, cols, data} block, checked against its own and the expected shape."""
    block = data.get(key)
    if not isinstance(block, Mapping) or not isinstance(block.get("data"), list):
        raise BadInputError(f"{key} must be a mapping with a 'data' list")
    values = block["data"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise BadInputError(f"{key}.data must hold numbers, got {values}")
    r, c = block.get("rows", rows), block.get("cols", cols)
    if not all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in (r, c)):
        raise BadInputError(f"{key}.rows and .cols must be integers, got {r!r}, {c!r}")
    if (rows is not None and r != rows) or (cols is not None and c != cols):
        raise BadInputError(f"{key} must be {rows}x{cols}, got {r}x{c}")
    if r is not None and c is not None and r * c != len(values):
        raise BadInputError(f"{key} says {r}x{c} but has {len(values)} values")
    return [float(v) for v in values]
