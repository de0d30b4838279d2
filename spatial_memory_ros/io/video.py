"""Frames from a video file (anything cv2.VideoCapture decodes)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ..core.errors import BadInputError
from ..core.types import CameraIntrinsics, Frame
from . import OnBadFrame
from .camera_yaml import load_camera_yaml
from .outputs import DEFAULT_CAMERA_FRAME


class VideoReader:
    """A video from a static camera.

    stamp = index / fps (s). The camera is assumed not to move, so every frame gets the identity pose:
    the map frame *is* the camera's optical frame and tag positions come out in it. Intrinsics (needed
    for tag poses) only come from an explicit camera_yaml; without them tags are identified but not
    located.

    fps: frames per second for the stamps. Overrides the container's rate (some containers report a
    wrong one) and is required when the video has none.
    """

    def __init__(self, path: str | Path, *, fps: float | None = None, camera_yaml: str | Path | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise BadInputError(f"no video file at {self.path}")
        if fps is not None and not (math.isfinite(fps) and fps > 0):
            raise BadInputError(f"fps must be > 0, got {fps}")
        self.intrinsics: CameraIntrinsics | None = load_camera_yaml(camera_yaml) if camera_yaml else None
        cap = self._open()
        try:
            rate = float(cap.get(cv2.CAP_PROP_FPS))
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        finally:
            cap.release()
        k = self.intrinsics
        if k is not None and size != (k.width, k.height):
            raise BadInputError(
                f"{self.path} is {size[0]}x{size[1]} but {camera_yaml} is for {k.width}x{k.height}"
            )
        if fps is None:
            if not (math.isfinite(rate) and rate > 0):
                raise BadInputError(f"{self.path} has no frame rate; pass one (--fps)")
            fps = rate
        self.fps = float(fps)
        self._count = max(count, 0)

    @property
    def map_frame(self) -> str:
        return "static camera: map frame = camera optical frame (x right, y down, z forward)"

    @property
    def output_frame(self) -> str:
        """The frame results are in, as a tf frame name: the camera's (a video names none)."""
        return DEFAULT_CAMERA_FRAME

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Frame]:
        return (frame for _, frame in self.frames())

    def frames(
        self, on_bad: OnBadFrame | None = None, *, limit: int | None = None
    ) -> Iterator[tuple[int, Frame]]:
        """Decode the first `limit` frames (all by default). A frame that fails to decode ends the stream, as
        OpenCV cannot tell a corrupt frame from the end of the file; when that comes well before the frame count
        the file's header gives (a copy cut short), on_bad is told once, so that the run says so."""
        cap = self._open()
        try:
            index = 0
            while limit is None or index < limit:
                ok, image = cap.read()
                if not ok or image is None:
                    # some containers only estimate the count (duration x rate): a few frames short is no cut
                    if on_bad is not None and index < self._count - max(2, 0.01 * self._count):
                        on_bad(index, BadInputError(
                            f"{self.path} ends at frame {index} of the {self._count} its header counts: the file "
                            "is cut short or damaged there"))
                    return
                # A fresh identity per frame: consumers may keep or modify the pose they were given.
                yield index, Frame(image=image, stamp=index / self.fps, intrinsics=self.intrinsics,
                                   T_map_cam=np.eye(4))
                index += 1
        finally:
            cap.release()

    def _open(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise BadInputError(f"cannot decode video {self.path} (not a video, or a codec OpenCV lacks)")
        return cap
