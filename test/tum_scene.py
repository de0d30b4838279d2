"""Test helper: a small TUM RGB-D folder with one fronto-parallel AprilTag at a known distance.

The tag (TAG_PX wide) is centred on the principal point, so with focal F it sits at
(0, 0, F * TAG_SIZE_M / TAG_PX) = (0, 0, 0.6) m in the camera frame.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from spatial_memory_ros.core.types import CameraIntrinsics
from spatial_memory_ros.io.camera_yaml import save_camera_yaml

W, H, F = 320, 240, 300.0
INTRINSICS = CameraIntrinsics(fx=F, fy=F, cx=(W - 1) / 2, cy=(H - 1) / 2, width=W, height=H,
                              distortion=(0.0, 0.0, 0.0, 0.0, 0.0))
TAG_ID = 3
TAG_PX = 80
TAG_SIZE_M = 0.16
TAG_Z_M = F * TAG_SIZE_M / TAG_PX
T0 = 1305031102.175304  # a real TUM fr1 stamp: float64 must keep its microseconds
DT = 0.1
DEPTH_OFFSET_S = 0.005  # depth frames are not triggered with the colour ones
DEPTH_MM = 600


def tag_image(tag_id: int = TAG_ID) -> np.ndarray:
    """(H, W, 3) uint8 BGR: white page, the tag centred on the principal point."""
    image = np.full((H, W), 255, np.uint8)
    tag = cv2.aruco.generateImageMarker(cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11),
                                        tag_id, TAG_PX)
    top, left = (H - TAG_PX) // 2, (W - TAG_PX) // 2
    image[top:top + TAG_PX, left:left + TAG_PX] = tag
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)


def gt_pose(t: float) -> tuple[np.ndarray, np.ndarray]:
    """Camera translation (m) and quaternion xyzw of the moving groundtruth: 1 m/s along x, 10 deg/s yaw."""
    s = t - T0
    return np.array([1.0 + s, 2.0, 0.5]), Rotation.from_euler("z", 10.0 * s, degrees=True).as_quat()


def stamp_name(t: float) -> str:
    return f"{t:.6f}.png"


def write_tum_folder(
    root: Path,
    n_frames: int = 6,
    *,
    camera: bool = True,
    depth: bool = True,
    groundtruth: bool = True,
    moving: bool = True,
) -> list[float]:
    """Write the folder; returns the colour stamps.

    Depth is DEPTH_MM everywhere except a zero (invalid) top-left 10x10 block, and is missing for the last
    frame (its depth stamp is 50 ms off). groundtruth.txt (at 20 Hz, with a comment line) covers the
    frames but the last two; a static one (moving=False) has the camera at the origin.
    """
    (root / "rgb").mkdir(parents=True)
    stamps = [T0 + i * DT for i in range(n_frames)]
    image = tag_image()
    for t in stamps:
        cv2.imwrite(str(root / "rgb" / stamp_name(t)), image)
    if depth:
        (root / "depth").mkdir()
        d = np.full((H, W), DEPTH_MM, np.uint16)
        d[:10, :10] = 0
        for i, t in enumerate(stamps):
            offset = 0.05 if i == n_frames - 1 else DEPTH_OFFSET_S
            cv2.imwrite(str(root / "depth" / stamp_name(t + offset)), d)
    if groundtruth:
        lines = ["# timestamp tx ty tz qx qy qz qw"]
        for k in range(int(round((n_frames - 2) * DT / 0.05))):
            t = T0 - 0.01 + k * 0.05
            p, q = gt_pose(t) if moving else (np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0]))
            lines.append(" ".join(f"{v:.9f}" for v in (t, *p, *q)))
        (root / "groundtruth.txt").write_text("\n".join(lines) + "\n")
    if camera:
        save_camera_yaml(INTRINSICS, root / "camera.yaml")
    return stamps
