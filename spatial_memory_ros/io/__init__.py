"""Offline inputs and outputs: recorded frames in, MOTChallenge / PNG / JSON results out. No ROS here.

Readers yield core.types.Frame; ``open_input`` picks one from the path (a ROS 2 bag: a folder with
metadata.yaml or a .mcap / .db3 file; another folder is a TUM RGB-D layout; another file is a video).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..core.errors import BadInputError
from ..core.types import Frame

if TYPE_CHECKING:
    from .bag_topics import BagOptions

# Called with (0-based frame index, error) for a frame that could not be read; None = raise instead.
OnBadFrame = Callable[[int, BadInputError], None]


class FrameSource(Protocol):
    """A recorded sequence of frames."""

    @property
    def map_frame(self) -> str:
        """What the map frame is for this input, in words (stated in items.json)."""
        ...

    @property
    def output_frame(self) -> str | None:
        """The map frame as a tf frame name (items.json's frame_id, --out-bag's headers); None = each image's own
        frame_id (a bag's static camera)."""
        ...

    def __len__(self) -> int:
        """Number of frames (from the container for videos, so possibly an estimate; 0 if unknown)."""
        ...

    def frames(
        self, on_bad: OnBadFrame | None = None, *, limit: int | None = None
    ) -> Iterator[tuple[int, Frame]]:
        """(0-based index in the input, frame) for each readable frame among the first `limit`, in order."""
        ...


def open_input(
    path: str | Path,
    *,
    fps: float | None = None,
    camera_yaml: str | Path | None = None,
    depth_units_per_m: float | None = None,
    bag: BagOptions | None = None,
) -> FrameSource:
    """A bag -> BagReader, another folder -> TumReader, a file -> VideoReader. BadInputError if the path does
    not exist.

    fps applies to videos only; depth_units_per_m to TUM folders only (see TumReader; None: its default, mm);
    bag (topics, frames) to bags only. Each is refused for another input, where it would do nothing.
    """
    # The readers are imported here, not at the top: they import OnBadFrame from this module (and rosbags
    # is only loaded for bags).
    path = Path(path)
    from .bag import BagOptions
    from .bag_files import bag_files, is_bag

    if is_bag(path):
        if fps is not None:
            raise BadInputError(f"{path} is a bag: its stamps come from the messages; drop --fps")
        from .bag import BagReader

        if depth_units_per_m is not None:  # a bag's depth says its units: 16UC1 mm or 32FC1 m
            raise BadInputError(f"{path} is a bag: its depth images carry their units (16UC1 mm, 32FC1 m); drop "
                                "--depth-scale")
        return BagReader(path, bag or BagOptions(), camera_yaml=camera_yaml)
    if bag is not None and bag != BagOptions():
        raise BadInputError(f"{path} is not a ROS 2 bag: topic and frame options apply to bags only")
    if path.is_dir():
        split = [f.name for f in bag_files(path)]
        if len(split) > 1:  # is_bag reads a split recording without metadata.yaml only when it is all .mcap
            raise BadInputError(
                f"{path} holds {len(split)} bag files ({', '.join(split[:3])}{', ...' if len(split) > 3 else ''}) "
                "and no metadata.yaml: a split SQLite (.db3) recording that was never closed. Write its "
                f"metadata.yaml with `ros2 bag reindex {path}`, or pass one of the files")
        if fps is not None:
            raise BadInputError(f"{path} is a TUM folder: its stamps come from the file names; drop --fps")
        from .tum import TumReader

        return TumReader(path, camera_yaml=camera_yaml,
                         depth_units_per_m=1000.0 if depth_units_per_m is None else depth_units_per_m)
    if depth_units_per_m is not None and path.is_file():
        raise BadInputError(f"{path} is a video: it has no depth; drop --depth-scale")
    if path.is_file():
        from .video import VideoReader

        return VideoReader(path, fps=fps, camera_yaml=camera_yaml)
    raise BadInputError(f"no input at {path} (expected a ROS 2 bag, a video file or a TUM RGB-D folder)")
