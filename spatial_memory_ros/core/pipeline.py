"""The whole core for one camera: tags + change baseline -> tracker -> item memory.

ROS-free: the node converts messages to a Frame, calls update(), and converts the FrameResult back.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

import cv2
import numpy as np

from .change import ChangeDetector, ChangeOutput
from .config import PipelineConfig
from .errors import BadInputError
from .geometry import split_transform, transform_points
from .item_memory import ItemMemory
from .store import MemoryStore
from .tags import TagDetector
from .tracker import Tracker
from .types import (
    CameraIntrinsics,
    Detection,
    Frame,
    FrameResult,
    ItemAnswer,
    ItemObservation,
    PositionSource,
    TagDetection,
    TrackInfo,
    TrackState,
)

_TAG_ERROR_SCALE_PX = 2.0  # tag score = exp(-reprojection error / this): a poor pose fit is less trusted
_MOTION_SCORE = 0.5  # a frame-difference blob has no confidence of its own
# A moving blob that is mostly a tag's box (most of the blob in the tag, or most of the tag in a blob
# at most _TAG_BLOB_AREA_RATIO times its size) is that tag's item moving: its track already says so.
# A much larger blob holding a tag (a person carrying the item) stays a dynamic object of its own.
_TAG_OVERLAP = 0.5
_TAG_BLOB_AREA_RATIO = 4.0


class ChangeBackend(Protocol):
    """What the pipeline needs from a change detector: the classical ChangeDetector, or a learned one."""

    def update(self, image_bgr: np.ndarray, T_map_cam: np.ndarray | None = None) -> ChangeOutput: ...

    def reset(self) -> None: ...


class Pipeline:
    """Frames in, tracks + change mask + item memory updates out.

    Per frame: AprilTags give identified items (map-frame pose = T_map_cam @ T_cam_tag when both the
    intrinsics and the camera pose are known); the change baseline gives a change mask and moving
    blobs (positioned from the depth image when there is one); the tracker associates both. Only
    CONFIRMED item tracks matched in this frame are committed to memory, with this frame's tag pose,
    so a single spurious detection never moves an item's ``current`` place.

    update() must be called from one thread at a time; locate() and list_items() may be called from
    other threads meanwhile (ItemMemory holds its own lock).
    """

    def __init__(self, config: PipelineConfig, memory: ItemMemory, *, change: ChangeBackend | None = None) -> None:
        """change: the change backend; None = the classical ChangeDetector(config.change)."""
        self.config = config.validate()
        self.memory = memory
        self._tags = TagDetector(config.tags.tag_size_m)
        self._change: ChangeBackend = change if change is not None else ChangeDetector(config.change)
        self._tracker = Tracker(config.tracker)

    @classmethod
    def open(cls, config: PipelineConfig) -> Pipeline:
        """A pipeline whose memory lives in config.memory.db_path ("" or ":memory:": in RAM only)."""
        config.validate()
        store = MemoryStore(config.memory.db_path)
        try:
            return cls(config, ItemMemory(config.memory, store))
        except BaseException:
            store.close()  # do not leave the database open behind a failed start
            raise

    def update(self, frame: Frame) -> FrameResult:
        """Process one frame; raises BadInputError (and changes nothing) for a malformed frame."""
        _validate(frame)
        stamp = float(frame.stamp)
        intr, T_map_cam = frame.intrinsics, frame.T_map_cam

        tags = self._tags.detect(frame.image, intr)
        detections = [self._tag_detection(tag, T_map_cam) for tag in tags]
        change = self._change.update(frame.image, T_map_cam)
        tag_boxes = np.array([tag.box for tag in tags]).reshape(-1, 4)  # (T, 4)
        for box in change.motion_boxes:
            if _is_tag_motion(box, tag_boxes):
                continue
            position = None
            if frame.depth is not None and intr is not None and T_map_cam is not None:
                position = _depth_position(box, frame.depth, intr, T_map_cam)
            detections.append(
                Detection(
                    box=box,
                    label="object",
                    score=_MOTION_SCORE,
                    position=position,
                    is_dynamic=True,
                    position_source=PositionSource.DEPTH if position is not None else PositionSource.NONE,
                )
            )

        tracks = self._tracker.update(detections, stamp)
        observations = _confirmed_observations(tracks, detections, stamp)
        if observations:
            self.memory.observe(observations)
        return FrameResult(
            stamp=stamp,
            tracks=tracks,
            change_mask=change.mask,
            tags=tags,
            observations=observations,
            camera_moved=change.camera_moved,
        )

    def _tag_detection(self, tag: TagDetection, T_map_cam: np.ndarray | None) -> Detection:
        position = orientation = None
        score = 1.0  # a decoded 36h11 id is reliable (Hamming distance 11); only the pose can be poor
        if tag.T_cam_tag is not None:
            score = float(np.exp(-tag.reprojection_error_px / _TAG_ERROR_SCALE_PX))
            if T_map_cam is not None:
                position, orientation = split_transform(T_map_cam @ tag.T_cam_tag)
        return Detection(
            box=tag.box,
            label="item",
            score=score,
            item=self.config.tags.name_for(tag.tag_id),
            position=position,
            orientation=orientation,
            is_dynamic=False,
            position_source=PositionSource.TAG if position is not None else PositionSource.NONE,
        )

    def locate(self, item: str) -> ItemAnswer:
        """Usual and current place of an item; UnknownItemError if never seen, BadInputError if empty."""
        return self.memory.locate(item)

    def list_items(self) -> list[ItemAnswer]:
        """locate() for every remembered item, sorted by name."""
        return self.memory.list_all()

    def reset(self) -> None:
        """Forget tracks, the change reference and every remembered item (in the store too)."""
        self._tracker.reset()
        self._change.reset()
        self.memory.reset()

    def save(self) -> None:
        """Make the memory's file self-contained (observations are committed every frame anyway)."""
        self.memory.save()

    def close(self) -> None:
        """Commit anything pending and close the store."""
        self.memory.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _validate(frame: Frame) -> None:
    """BadInputError naming what is wrong with the frame, before any state changes."""
    image = frame.image
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise BadInputError(f"frame.image must be a (H, W, 3) uint8 BGR array, got {desc}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise BadInputError(f"frame.image is empty, shape {image.shape}")
    if not np.isfinite(frame.stamp):
        raise BadInputError(f"frame.stamp must be finite seconds, got {frame.stamp}")
    h, w = image.shape[:2]
    intr = frame.intrinsics
    if intr is not None and intr.width > 0 and intr.height > 0 and (intr.width, intr.height) != (w, h):
        raise BadInputError(
            f"intrinsics are for {intr.width}x{intr.height} images but the image is {w}x{h}: "
            "camera_info does not belong to this image stream"
        )
    if frame.T_map_cam is not None:
        T = np.asarray(frame.T_map_cam)
        if T.shape != (4, 4) or not np.isfinite(T).all():
            raise BadInputError(f"frame.T_map_cam must be a finite (4, 4) matrix, got shape {T.shape}")
    depth = frame.depth
    if depth is not None:
        if not isinstance(depth, np.ndarray) or not np.issubdtype(depth.dtype, np.floating):
            desc = str(depth.dtype) if isinstance(depth, np.ndarray) else type(depth).__name__
            raise BadInputError(f"frame.depth must be float metres (convert 16UC1 millimetres), got {desc}")
        if depth.shape != (h, w):
            raise BadInputError(f"frame.depth shape {depth.shape} does not match the image ({h}, {w})")


def _is_tag_motion(box: np.ndarray, tag_boxes: np.ndarray) -> bool:
    """Whether a motion blob's box (4,) is explained by one of the tag boxes (T, 4)."""
    if len(tag_boxes) == 0:
        return False
    iw = np.clip(np.minimum(box[2], tag_boxes[:, 2]) - np.maximum(box[0], tag_boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], tag_boxes[:, 3]) - np.maximum(box[1], tag_boxes[:, 1]), 0, None)
    inter = iw * ih  # (T,)
    box_area = max(float((box[2] - box[0]) * (box[3] - box[1])), 1e-9)
    tag_area = np.maximum((tag_boxes[:, 2] - tag_boxes[:, 0]) * (tag_boxes[:, 3] - tag_boxes[:, 1]), 1e-9)
    blob_in_tag = inter / box_area > _TAG_OVERLAP
    tag_in_small_blob = (inter / tag_area > _TAG_OVERLAP) & (box_area <= _TAG_BLOB_AREA_RATIO * tag_area)
    return bool((blob_in_tag | tag_in_small_blob).any())


def _depth_position(
    box: np.ndarray, depth: np.ndarray, intr: CameraIntrinsics, T_map_cam: np.ndarray
) -> np.ndarray | None:
    """(3,) map-frame point (m) at the box centre and the median valid depth inside the box, or None."""
    h, w = depth.shape
    x1, y1 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
    x2, y2 = min(int(np.ceil(box[2])), w), min(int(np.ceil(box[3])), h)
    patch = depth[y1:y2, x1:x2]
    valid = patch[np.isfinite(patch) & (patch > 0)]
    if valid.size == 0:
        return None
    z = float(np.median(valid))
    u, v = (box[0] + box[2] - 1) / 2.0, (box[1] + box[3] - 1) / 2.0  # centre, pixel-centre coordinates
    if len(intr.distortion) > 0:
        xy = cv2.undistortPoints(np.array([[[u, v]]], dtype=np.float64), intr.K, intr.dist_coeffs).reshape(2)
    else:
        xy = np.array([(u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy])
    p_cam = np.array([xy[0] * z, xy[1] * z, z])
    return transform_points(T_map_cam, p_cam)[0]


def _confirmed_observations(
    tracks: list[TrackInfo], detections: list[Detection], stamp: float
) -> list[ItemObservation]:
    """One observation per CONFIRMED item track matched in this frame and positioned by its tag."""
    best: dict[str, Detection] = {}  # the tracker keeps the highest-score detection of an item too
    for det in detections:
        if det.item and (det.item not in best or det.score > best[det.item].score):
            best[det.item] = det
    observations = []
    for track in tracks:
        if track.state != TrackState.CONFIRMED or track.last_seen != stamp or track.item not in best:
            continue
        det = best[track.item]
        if det.position is None or det.position_source != PositionSource.TAG or det.orientation is None:
            continue
        observations.append(
            ItemObservation(
                item=track.item,
                position=det.position,
                stamp=stamp,
                confidence=track.confidence,
                orientation=det.orientation,
            )
        )
    return observations
