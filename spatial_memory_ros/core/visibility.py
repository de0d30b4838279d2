"""Would the camera have decoded this tag here, now? Negative evidence for item memory.

A tag that is not decoded says something only when it would have been: its remembered place is in the
image, facing the camera and big enough to decode, and nothing stands in front of it (depth, or a dynamic
object's box). Only then does "not seen" count as "not there"; everywhere else it says nothing, which is
why last-seen memories never learn that an item has gone. The thresholds are deliberately on the strict
side: a false "seen empty" moves the memory's answer away from a correct place.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np

from .association import box_iou
from .geometry import invert, make_transform, transform_points
from .tags import tag_object_points
from .types import CameraIntrinsics, Frame, PlaceToCheck


@dataclass(frozen=True)
class ViewCheckConfig:
    """When a remembered tag place counts as checked (in view, decodable, unoccluded).

    min_side_px, max_tilt_deg: shortest projected tag edge, and angle between the tag's normal and the line
    of sight. Measured on simulated patrol frames (320x240, training seed 1001, 5 min, tags in view and
    unoccluded): the decoder read 80-90 % of tags with edges >= 18 px seen at <= 66 degrees, about 60 %
    at 14-18 px, and almost none beyond 66 degrees, where a miss proves nothing.
    margin_px: every corner this far inside the image (the decoder needs the whole border).
    occlusion_margin_m: depth this much nearer than the tag at its projection means something is in front.
    """

    min_side_px: float = 18.0
    margin_px: float = 6.0
    max_tilt_deg: float = 66.0
    occlusion_margin_m: float = 0.25


def tag_corners_px(
    position: np.ndarray,
    orientation: np.ndarray,
    tag_size_m: float,
    T_map_cam: np.ndarray,
    intrinsics: CameraIntrinsics,
) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Project a tag at (position (3,) m, orientation xyzw) in the map: ((4, 2) px corners, (4,) depth m,
    tilt deg), or None when any corner is behind the camera. Distortion is ignored (a pinhole is enough to
    say whether the tag is well inside the image)."""
    T_cam_tag = invert(T_map_cam) @ make_transform(position, orientation)
    pts = transform_points(T_cam_tag, tag_object_points(tag_size_m))  # (4, 3) camera frame, z forward
    z = pts[:, 2]
    if not np.all(z > 0.05):
        return None
    uv = np.column_stack([intrinsics.fx * pts[:, 0] / z + intrinsics.cx, intrinsics.fy * pts[:, 1] / z + intrinsics.cy])
    normal_cam = T_cam_tag[:3, 2]  # the tag's z axis: out of its face (tag_object_points), towards a reader
    sight = pts.mean(axis=0)
    # signed: a tag whose back faces the camera cannot be read (90 deg and over); |cos| passed it as face-on, and
    # five such frames made a still item "missing"
    cos = -float(normal_cam @ sight) / max(float(np.linalg.norm(sight)), 1e-9)
    tilt = float(np.degrees(np.arccos(np.clip(cos, 0.0, 1.0))))
    return uv, z, tilt


def tag_checkable(
    position: np.ndarray,
    orientation: np.ndarray,
    tag_size_m: float,
    T_map_cam: np.ndarray,
    intrinsics: CameraIntrinsics,
    *,
    depth: np.ndarray | None = None,
    occluder_boxes: Sequence[np.ndarray] | np.ndarray = (),
    config: ViewCheckConfig = ViewCheckConfig(),
) -> bool:
    """True when a tag at this pose would have been decoded in this frame had it been there.

    depth: (H, W) m, NaN where unknown; occluder_boxes: (N, 4) px x1 y1 x2 y2 of things that move on their
    own (people, forklifts, motion blobs): a tag place behind one is not checked.
    """
    projected = tag_corners_px(position, orientation, tag_size_m, T_map_cam, intrinsics)
    if projected is None:
        return False
    uv, z, tilt = projected
    m = config.margin_px
    if not (np.all(uv[:, 0] >= m) and np.all(uv[:, 0] <= intrinsics.width - 1 - m)):
        return False
    if not (np.all(uv[:, 1] >= m) and np.all(uv[:, 1] <= intrinsics.height - 1 - m)):
        return False
    sides = np.linalg.norm(uv - np.roll(uv, -1, axis=0), axis=1)
    if float(sides.min()) < config.min_side_px or tilt > config.max_tilt_deg:
        return False
    box = np.array([uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()])
    if np.any(box_iou(box, np.asarray(occluder_boxes, dtype=np.float64)) > 0.0):  # any overlap at all
        return False
    return depth is None or not _occluded_in_depth(depth, uv, z, config.occlusion_margin_m)


def probe_grid(uv: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The depth test's 5 x 5 grid of probes over a tag: (25, 2) px and the tag's depth there (25,) m. Its outer
    probes are 3 % of a side in from the edges: the decoder needs the whole black border, and probes at the centre
    and the corners pulled 25 % inward missed a post hiding the tag's outer 12 %, so a tag sitting there partly
    hidden was "checked" five frames running and its item "missing". The grid is bilinear in the picture (uv, z at
    the corners, in order around the tag): for a tag a few dozen pixels wide, within a pixel or two of the true
    points."""
    s = np.array([0.03, 0.25, 0.5, 0.75, 0.97])
    a, b = (g.reshape(-1) for g in np.meshgrid(s, s))  # (25,) each: along the first side, along the last
    w = np.column_stack([(1 - a) * (1 - b), a * (1 - b), a * b, (1 - a) * b])  # (25, 4) weights of the corners
    return w @ uv, w @ z


def probe_depths(depth: np.ndarray, probes: np.ndarray) -> np.ndarray:
    """(N,) m: the median of each probe's 3 x 3 pixels (clipped to the image), NaN where none has depth. A depth
    camera's noise is per pixel, an occluder is not, and 25 single pixels of a far tag's noisy depth (tens of cm
    at 3-5 m) hid it from checks more often than 5 did."""
    d = np.arange(-1, 2)
    cols = np.clip(np.round(probes[:, 0]).astype(int)[:, None] + d[None, :], 0, depth.shape[1] - 1)  # (N, 3)
    rows = np.clip(np.round(probes[:, 1]).astype(int)[:, None] + d[None, :], 0, depth.shape[0] - 1)
    patches = depth[rows[:, :, None], cols[:, None, :]].reshape(len(probes), 9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a patch with no depth at all: NaN, no evidence
        return np.nanmedian(patches, axis=1)


def _occluded_in_depth(depth: np.ndarray, uv: np.ndarray, z: np.ndarray, margin_m: float) -> bool:
    """Depth nearer than the tag by more than margin_m at any probe of probe_grid (probe_depths' medians)."""
    probes, expected = probe_grid(uv, z)
    # NaN (no depth) compares False: unknown depth is not evidence of an occluder.
    return bool(np.any(probe_depths(depth, probes) < expected - margin_m))


def empty_places(
    candidates: Sequence[PlaceToCheck],
    seen: Collection[str],
    tagged: Callable[[str], bool],
    tag_size_m: float,
    frame: Frame,
    occluder_boxes: np.ndarray,
    config: ViewCheckConfig = ViewCheckConfig(),
) -> list[tuple[str, int]]:
    """(item, place_id) of the candidates that this frame shows empty: tagged items not decoded anywhere in
    the frame (seen: the items decoded) whose place passes tag_checkable. Nothing without pose or intrinsics."""
    if frame.T_map_cam is None or frame.intrinsics is None:
        return []
    candidates = [c for c in candidates if c.item not in seen and tagged(c.item)]
    near = _maybe_checkable(np.array([c.position for c in candidates]).reshape(-1, 3), tag_size_m, frame.T_map_cam,
                            frame.intrinsics, config)
    return [
        (c.item, c.place_id)
        for c, maybe in zip(candidates, near, strict=True)
        if maybe
        and tag_checkable(
            c.position, c.orientation, tag_size_m, frame.T_map_cam, frame.intrinsics,
            depth=frame.depth, occluder_boxes=occluder_boxes, config=config,
        )
    ]


def _maybe_checkable(positions: np.ndarray, tag_size_m: float, T_map_cam: np.ndarray, intrinsics: CameraIntrinsics,
                     config: ViewCheckConfig) -> np.ndarray:
    """(N,) bool, False only for places tag_checkable must refuse whatever the tag's orientation, for all places in
    one array operation; the exact test then runs on the rest (per place it costs a transform and a projection,
    which at thousands of remembered places, a large warehouse, took most of a frame). The tag's centre is the
    mean of its corners and projects inside their quadrilateral, so a centre at a depth under 0.05 m, or projected
    outside the image's margin, means a corner is too. And no side can reach min_side_px when even the bound
    |d(p/z)| <= s (|p_xy| + r + z + r) / (z - r)^2, for corners within r = size / sqrt 2 of the centre, is under it."""
    if len(positions) == 0:
        return np.zeros(0, bool)
    p = transform_points(invert(T_map_cam), positions)  # (N, 3) centres in the camera frame
    z = p[:, 2]
    ahead = z > 0.05
    safe_z = np.where(ahead, z, 1.0)
    u = intrinsics.fx * p[:, 0] / safe_z + intrinsics.cx
    v = intrinsics.fy * p[:, 1] / safe_z + intrinsics.cy
    m = config.margin_px
    inside = (u >= m) & (u <= intrinsics.width - 1 - m) & (v >= m) & (v <= intrinsics.height - 1 - m)
    r = tag_size_m / np.sqrt(2.0)
    far = z - r > 0.05
    z_lo = np.where(far, z - r, 1.0)
    side = max(intrinsics.fx, intrinsics.fy) * tag_size_m * (np.linalg.norm(p[:, :2], axis=1) + z + 2 * r) / z_lo**2
    too_small = far & (side < config.min_side_px)
    return ahead & inside & ~too_small
