"""Frames from a folder in the TUM RGB-D benchmark layout.

    FOLDER/rgb/<stamp>.png          colour images; stamps from the names, or from rgb.txt if present
    FOLDER/depth/<stamp>.png        optional 16-bit depth (see depth_units_per_m); or listed in depth.txt
    FOLDER/groundtruth.txt          optional camera poses "t tx ty tz qx qy qz qw", '#' comments
    FOLDER/camera.yaml              optional ROS camera_info YAML

rgb.txt / depth.txt lines are "<stamp> <path relative to FOLDER>", as in the TUM downloads.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ..core.errors import BadInputError
from ..core.geometry import interpolate, make_transform
from ..core.types import CameraIntrinsics, Frame
from . import OnBadFrame
from .camera_yaml import load_camera_yaml

# TUM's own associate.py tolerance; the depth and colour cameras are not triggered together.
DEPTH_MATCH_TOLERANCE_S = 0.02


class TumReader:
    """Random access to the frames of a TUM RGB-D folder.

    Pose: groundtruth.txt gives the colour camera's optical centre in the mocap world frame, used as
    T_map_cam, interpolated at each image stamp (linear + slerp). Frames outside the groundtruth span,
    or all frames without groundtruth.txt, get T_map_cam None (pose unknown) rather than an extrapolation.

    depth_units_per_m: depth PNG value of one metre. 1000 (mm) is ROS's 16UC1 convention and the default;
    the original TUM downloads are scaled by 5000. 0 means no reading and becomes NaN.
    camera_yaml: overrides FOLDER/camera.yaml.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        camera_yaml: str | Path | None = None,
        depth_units_per_m: float = 1000.0,
    ):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise BadInputError(f"no TUM folder at {self.folder}")
        if not (math.isfinite(depth_units_per_m) and depth_units_per_m > 0):  # inf turns every depth into 0 m
            raise BadInputError(f"depth_units_per_m must be a finite number > 0, got {depth_units_per_m}")
        self.depth_units_per_m = float(depth_units_per_m)

        self._camera_yaml = Path(camera_yaml) if camera_yaml else self.folder / "camera.yaml"
        self.intrinsics: CameraIntrinsics | None = None
        if camera_yaml or self._camera_yaml.is_file():
            self.intrinsics = load_camera_yaml(self._camera_yaml)

        self._rgb = _list_images(self.folder, "rgb", required=True)
        if not self._rgb:
            raise BadInputError(f"{self.folder / 'rgb'} holds no PNG images")
        self._depth = _list_images(self.folder, "depth", required=False)
        self._depth_stamps = np.array([t for t, _ in self._depth])
        self._gt_stamps, self._gt_poses = _read_groundtruth(self.folder / "groundtruth.txt")

    @property
    def output_frame(self) -> str:
        """The frame results are in, as a tf frame name: the groundtruth's world, called map."""
        return "map"

    @property
    def map_frame(self) -> str:
        if len(self._gt_stamps):
            return "groundtruth.txt world frame (motion-capture origin)"
        return "unknown: no groundtruth.txt, camera poses are not known"

    @property
    def stamps(self) -> np.ndarray:  # (N,) s, sorted
        return np.array([t for t, _ in self._rgb])

    def __len__(self) -> int:
        return len(self._rgb)

    def __getitem__(self, index: int) -> Frame:
        """Frame `index`; BadInputError naming the file if an image is missing, unreadable or mis-sized."""
        stamp, rgb_path = self._rgb[index]
        # the pixels as stored, like the depth beside them and camera.yaml's intrinsics: not turned by EXIF
        image = cv2.imread(str(rgb_path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if image is None:
            raise BadInputError(f"cannot read colour image {rgb_path}")
        h, w = image.shape[:2]
        k = self.intrinsics
        if k is not None and (w, h) != (k.width, k.height):
            raise BadInputError(f"{rgb_path} is {w}x{h} but {self._camera_yaml} is for {k.width}x{k.height}")
        depth = None
        depth_path = self._depth_for(stamp)
        if depth_path is not None:
            depth = self._read_depth(depth_path, (h, w))
        return Frame(image=image, stamp=stamp, intrinsics=k, T_map_cam=self.pose_at(stamp), depth=depth)

    def __iter__(self) -> Iterator[Frame]:
        return (self[i] for i in range(len(self)))

    def frames(
        self, on_bad: OnBadFrame | None = None, *, limit: int | None = None
    ) -> Iterator[tuple[int, Frame]]:
        """(index, frame) for the first `limit` frames; a bad one goes to on_bad, or raises without it."""
        for i in range(len(self) if limit is None else min(limit, len(self))):
            try:
                frame = self[i]
            except BadInputError as e:
                if on_bad is None:
                    raise
                on_bad(i, e)
                continue
            yield i, frame

    def pose_at(self, stamp: float) -> np.ndarray | None:
        """(4, 4) T_map_cam interpolated at stamp; None outside the groundtruth span."""
        s = self._gt_stamps
        if not len(s) or not s[0] <= stamp <= s[-1]:
            return None
        i = int(np.searchsorted(s, stamp, side="right"))
        if i == len(s) or s[i - 1] == stamp:
            return self._gt_poses[i - 1].copy()
        alpha = (stamp - s[i - 1]) / (s[i] - s[i - 1])
        return interpolate(self._gt_poses[i - 1], self._gt_poses[i], float(alpha))

    def _depth_for(self, stamp: float) -> Path | None:
        if not len(self._depth_stamps):
            return None
        i = int(np.argmin(np.abs(self._depth_stamps - stamp)))
        if abs(self._depth_stamps[i] - stamp) > DEPTH_MATCH_TOLERANCE_S:
            return None
        return self._depth[i][1]

    def _read_depth(self, path: Path, shape: tuple[int, int]) -> np.ndarray:
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise BadInputError(f"cannot read depth image {path}")
        if raw.dtype != np.uint16 or raw.ndim != 2:
            raise BadInputError(f"depth image {path} must be a 16-bit single-channel PNG, got {raw.dtype} "
                                f"with shape {raw.shape}")
        if raw.shape != shape:
            raise BadInputError(f"depth image {path} is {raw.shape[1]}x{raw.shape[0]}, "
                                f"the colour image {shape[1]}x{shape[0]}")
        depth = raw.astype(np.float32) / np.float32(self.depth_units_per_m)
        depth[raw == 0] = np.nan
        return depth


def _list_images(folder: Path, kind: str, *, required: bool) -> list[tuple[float, Path]]:
    """Sorted (stamp, path) of rgb/ or depth/, from <kind>.txt if present, else from the file names."""
    listing = folder / f"{kind}.txt"
    if listing.is_file():
        entries = []
        for lineno, fields in _data_lines(listing):
            if len(fields) != 2:
                got = " ".join(fields)
                raise BadInputError(f"{listing}:{lineno}: expected '<stamp> <file>', got {got!r}")
            entries.append((_stamp(fields[0], f"{listing}:{lineno}"), folder / fields[1]))
        return sorted(entries)
    images = folder / kind
    if not images.is_dir():
        if required:
            raise BadInputError(f"{folder} is not a TUM RGB-D folder: it has no {kind}/ folder or {kind}.txt")
        return []
    return sorted((_stamp(p.stem, f"{p} (name it <stamp>.png or list it in {kind}.txt)"), p)
                  for p in images.glob("*.png"))


def _read_groundtruth(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N,) sorted unique stamps and (N, 4, 4) poses; empty if the file is absent."""
    if not path.is_file():
        return np.zeros(0), np.zeros((0, 4, 4))
    rows: dict[float, np.ndarray] = {}
    for lineno, fields in _data_lines(path):
        where = f"{path}:{lineno}"
        if len(fields) != 8:
            raise BadInputError(f"{where}: expected 't tx ty tz qx qy qz qw', got {len(fields)} values")
        t = _stamp(fields[0], where)
        try:
            values = np.array([float(f) for f in fields[1:]])
            if not np.isfinite(values).all():
                raise ValueError("not finite")
            pose = make_transform(values[:3], values[3:])
        except ValueError as e:  # also scipy's zero-norm quaternion
            raise BadInputError(f"{where}: bad pose ({e})") from None
        rows.setdefault(t, pose)  # a repeated stamp would make the interpolation divide by zero
    if not rows:
        return np.zeros(0), np.zeros((0, 4, 4))
    stamps = np.array(sorted(rows))
    return stamps, np.stack([rows[t] for t in stamps])


def _data_lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(1-based line number, whitespace-split fields) of the non-comment, non-blank lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise BadInputError(f"cannot read {path}: {e}") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if line:
            yield lineno, line.split()


def _stamp(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BadInputError(f"{where}: {text!r} is not a timestamp in seconds") from None
    if not np.isfinite(value):
        raise BadInputError(f"{where}: {text!r} is not a finite timestamp")
    return value
