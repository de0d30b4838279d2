"""Plain data passed between the core's parts. Everything is numpy + dataclasses.

Conventions used everywhere in the package:
- times are float seconds (ROS stamps are converted at the node boundary);
- positions are metres in the map frame unless a name says otherwise;
- quaternions are (x, y, z, w), as in geometry_msgs;
- rigid transforms are (4, 4) float64 matrices named ``T_<to>_<from>``, so
  ``p_map = T_map_cam @ p_cam``; the camera frame is the optical frame
  (x right, y down, z forward);
- boxes are (x1, y1, x2, y2) float pixels, x2/y2 exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from .errors import BadInputError

# Label of the change backend's moving regions (Detection.label): they name no class, only "something moves".
MOTION_LABEL = "object"


# The ROS distortion models that are OpenCV's own (k1 k2 p1 p2 [k3 [k4 k5 k6 [s1 s2 s3 s4 [tx ty]]]]) and the
# coefficient counts OpenCV takes: what lifting (cv2.undistortPoints) and the tag pose (solvePnP) apply.
# equidistant (fisheye) is not one: its four coefficients would be read as k1 k2 p1 p2.
OPENCV_DISTORTION_MODELS = ("plumb_bob", "rational_polynomial")
OPENCV_DISTORTION_LENGTHS = (0, 4, 5, 8, 12, 14)


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics (pixels) and optional distortion (OpenCV order)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    distortion: tuple[float, ...] = ()

    @property
    def K(self) -> np.ndarray:  # (3, 3)
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def dist_coeffs(self) -> np.ndarray:  # (N,) or (0,)
        return np.asarray(self.distortion, dtype=np.float64)

    def check_size(self, width: int, height: int) -> None:
        """BadInputError if these intrinsics give a size (either side non-zero) and it is not width x height: the
        camera_info belongs to another image stream, or the image was resized."""
        if (self.width > 0 or self.height > 0) and (self.width, self.height) != (width, height):
            raise BadInputError(f"intrinsics are for {self.width}x{self.height} images but the image is "
                                f"{width}x{height}: camera_info does not belong to this image stream")

    def check_values(self) -> None:
        """BadInputError unless fx, fy > 0, all four finite and the distortion is OpenCV's (a count it takes,
        finite): a negative focal length mirrors every position, and a NaN reaches every lifted point and, in
        the learned backend, the recurrent memory for good."""
        if not (self.fx > 0 and self.fy > 0 and np.isfinite([self.fx, self.fy, self.cx, self.cy]).all()):
            raise BadInputError(f"intrinsics: fx and fy must be > 0 and all finite, got fx={self.fx} fy={self.fy} "
                                f"cx={self.cx} cy={self.cy}")
        if len(self.distortion) not in OPENCV_DISTORTION_LENGTHS or not np.isfinite(self.dist_coeffs).all():
            raise BadInputError(f"intrinsics: distortion must be {OPENCV_DISTORTION_LENGTHS} finite numbers "
                                f"(OpenCV's), got {len(self.distortion)}")


@dataclass(frozen=True)
class Frame:
    """One camera frame with everything the pipeline may use."""

    image: np.ndarray  # (H, W, 3) uint8 BGR
    stamp: float  # s
    intrinsics: CameraIntrinsics | None = None
    T_map_cam: np.ndarray | None = None  # (4, 4); None = camera pose unknown
    depth: np.ndarray | None = None  # (H, W) float32 m, NaN where invalid


@dataclass(frozen=True)
class TagDetection:
    """One AprilTag 36h11 fiducial seen in an image."""

    tag_id: int
    corners: np.ndarray  # (4, 2) px, OpenCV order (tl, tr, br, bl of the tag)
    T_cam_tag: np.ndarray | None  # (4, 4) tag pose in the camera frame; None without intrinsics
    reprojection_error_px: float  # mean corner reprojection error of the pose, px (nan if no pose)

    @property
    def box(self) -> np.ndarray:  # (4,) x1, y1, x2, y2
        c = self.corners
        return np.array([c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()], dtype=np.float64)


class PositionSource(IntEnum):
    """How a track's 3D position was obtained (mirrors the Track.msg constants)."""

    NONE = 0
    TAG = 1
    DEPTH = 2
    GROUND_PLANE = 3  # box bottom-centre ray meets the plane z = lifting.plane_height_m (no depth)


@dataclass(frozen=True)
class Detection:
    """Tracker input: one thing seen in one frame."""

    box: np.ndarray  # (4,) px
    label: str  # class: "item" for tags, "object" for moving blobs, else the detector's class name
    score: float  # 0..1
    item: str = ""  # item name when identified (a tag, or an item class such as "cup"), else ""
    position: np.ndarray | None = None  # (3,) m, map frame; None if unknown
    orientation: np.ndarray | None = None  # (4,) quaternion in map frame, if known
    is_dynamic: bool = False
    position_source: PositionSource = PositionSource.NONE
    appearance: np.ndarray | None = None  # (D,) unit-length appearance vector (spatial_memory_ros.reid); None = none
    followed: bool = False  # True: not detected in this frame, but an item track's box moved by optical flow


class TrackState(IntEnum):
    """Mirrors the Track.msg constants."""

    TENTATIVE = 0
    CONFIRMED = 1
    LOST = 2


@dataclass(frozen=True)
class TrackInfo:
    """A track as published: a snapshot, safe to hand to other threads."""

    track_id: int
    label: str
    item: str
    state: TrackState
    is_dynamic: bool
    confidence: float  # 0..1
    box: np.ndarray  # (4,) px, last matched box (or predicted when lost)
    position: np.ndarray | None  # (3,) m map frame
    velocity: np.ndarray  # (3,) m/s map frame; zeros if unknown
    first_seen: float  # s
    last_seen: float  # s
    position_source: PositionSource = PositionSource.NONE
    orientation: np.ndarray | None = None  # (4,) quaternion map frame


@dataclass(frozen=True)
class ItemObservation:
    """The input to item memory: an identified item seen at a place at a time."""

    item: str
    position: np.ndarray  # (3,) m, map frame
    stamp: float  # s
    confidence: float = 1.0  # 0..1
    orientation: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 0.0, 1.0]))  # (4,)
    # True: a box followed by optical flow, not a detection (core.item_follow). It moves `current` and counts
    # dwell, but never shifts a place's centre: frame after frame of a slowly carried object would drag the
    # place it started from along the carry path.
    followed: bool = False


@dataclass(frozen=True)
class ItemLocation:
    """Where an item is (current) or tends to be (usual / alternatives)."""

    position: np.ndarray  # (3,) m, map frame
    orientation: np.ndarray  # (4,) quaternion, map frame
    confidence: float  # 0..1
    last_seen: float  # s
    observations: int
    dwell_s: float  # s spent at this place (current: at the current place)


@dataclass(frozen=True)
class ItemAnswer:
    """The answer to "where is ITEM": the content of LocateItem's response."""

    item: str
    usual: ItemLocation
    current: ItemLocation
    displaced: bool  # current is farther than the configured distance from usual
    distance_m: float  # |current - usual|
    alternatives: list[ItemLocation]  # other places, most usual first
    # The place of the last sighting has been seen empty since: the item has moved, nobody saw where to.
    missing: bool = False
    # current is not a sighting but the likeliest remembered place (only when missing)
    current_inferred: bool = False


@dataclass(frozen=True)
class PlaceToCheck:
    """A remembered place of an item, for the pipeline to test whether it is in view and empty."""

    item: str
    place_id: int
    position: np.ndarray  # (3,) m, map frame
    orientation: np.ndarray  # (4,) quaternion xyzw, map frame


@dataclass(frozen=True)
class FrameResult:
    """Everything the pipeline produced for one frame."""

    stamp: float
    tracks: list[TrackInfo]
    change_mask: np.ndarray  # (H, W) uint8, 255 = changed, 0 = unchanged
    tags: list[TagDetection]
    observations: list[ItemObservation]  # item observations committed this frame
    camera_moved: bool  # the classical change baseline was reset because the view changed (never for the learned one)
    detections: list[Detection] = field(default_factory=list)  # this frame's tracker input, lifted
