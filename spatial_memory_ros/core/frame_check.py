"""The checks a Frame passes before the pipeline changes any state: a bad frame raises BadInputError naming what is
wrong, and the memory, tracks and change backends stay as they were."""

from __future__ import annotations

import numpy as np

from .errors import BadInputError
from .geometry import MAX_POSE_OFFSET_M, is_rigid
from .types import Frame


def validate_frame(frame: Frame) -> None:
    """BadInputError naming what is wrong with the frame, before any state changes."""
    image = frame.image
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise BadInputError(f"frame.image must be a (H, W, 3) uint8 BGR array, got {desc}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise BadInputError(f"frame.image is empty, shape {image.shape}")
    if not isinstance(frame.stamp, (int, float, np.integer, np.floating)) or not np.isfinite(frame.stamp):
        raise BadInputError(f"frame.stamp must be finite seconds, got {frame.stamp!r}")
    h, w = image.shape[:2]
    if frame.intrinsics is not None:
        frame.intrinsics.check_size(w, h)
        try:
            frame.intrinsics.check_values()
        except BadInputError as exc:
            raise BadInputError(f"frame.{exc}") from None
    if frame.T_map_cam is not None:
        try:
            T = np.asarray(frame.T_map_cam, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise BadInputError(f"frame.T_map_cam must be a finite (4, 4) matrix: {exc}") from exc
        if T.shape != (4, 4) or not np.isfinite(T).all():
            raise BadInputError(f"frame.T_map_cam must be a finite (4, 4) matrix, got shape {T.shape}")
        if not is_rigid(T):
            raise BadInputError("frame.T_map_cam is not a rigid transform (its 3 x 3 part must be a rotation, "
                                f"its last row 0 0 0 1), got {np.round(T, 4).tolist()}")
        if np.abs(T[:3, 3]).max() > MAX_POSE_OFFSET_M:  # the learned model's step refused it after the tracks moved
            raise BadInputError(f"frame.T_map_cam puts the camera {np.abs(T[:3, 3]).max():.3g} m from the map "
                                f"origin (at most {MAX_POSE_OFFSET_M:.0e} m)")
    depth = frame.depth
    if depth is not None:
        if not isinstance(depth, np.ndarray) or not np.issubdtype(depth.dtype, np.floating):
            desc = str(depth.dtype) if isinstance(depth, np.ndarray) else type(depth).__name__
            raise BadInputError(f"frame.depth must be float metres (convert 16UC1 millimetres), got {desc}")
        if depth.shape != (h, w):
            raise BadInputError(f"frame.depth shape {depth.shape} does not match the image ({h}, {w})")
