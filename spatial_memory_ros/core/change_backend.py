"""The change backend a pipeline runs: what it needs of one, and each camera's (one learned model shared by the
cameras or not); apart from the pipeline because choosing the backend is no part of a frame's flow."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from .change import ChangeDetector, ChangeOutput, make_change_backend
from .config import PipelineConfig
from .types import CameraIntrinsics


class ChangeBackend(Protocol):
    """What the pipeline needs from a change detector: the classical ChangeDetector, or a learned one."""

    def update(
        self, image_bgr: np.ndarray, T_map_cam: np.ndarray | None = None, intrinsics: CameraIntrinsics | None = None,
        stamp: float | None = None,
    ) -> ChangeOutput: ...

    def reset(self) -> None: ...

    def describe(self) -> str: ...  # what the node's startup log calls it


def camera_change_backends(config: PipelineConfig, cameras: int, device: str) -> list[ChangeBackend | None]:
    """Each camera's change backend for Pipeline.open_cameras(): None = the pipeline makes its own (the classical
    detector, one camera, or change.batch_cameras never). Otherwise the cameras share one learned model and batch
    its steps (model.camera_batch): one step for the frames that come together, which on a GPU costs about what
    one frame's does. auto shares on CUDA only: on a CPU one network per camera runs on the cores at once."""
    change = config.change
    if cameras == 1 or change.method != "learned" or change.batch_cameras == "never":
        return [None] * cameras
    if change.batch_cameras == "auto":
        try:
            from ..model.checkpoint import resolve_device
        except ImportError:  # no torch: the pipeline's own make_change_backend says so
            return [None] * cameras
        try:
            if resolve_device(device).type != "cuda":
                return [None] * cameras
        except ValueError:  # cuda asked for without CUDA: said by make_change_backend below
            pass
    detector = make_change_backend(config.change, device=device, motion_appearance=wants_motion_appearance(config),
                                   cameras=cameras)
    assert not isinstance(detector, ChangeDetector)
    from ..model.camera_batch import SharedCameras  # imports torch, which the learned model above has

    return list(SharedCameras(detector).views())


def wants_motion_appearance(config: PipelineConfig) -> bool:
    """Whether the tracker uses moving blobs' appearance from the change backend (tracker.reid_motion)."""
    return config.tracker.reid and config.tracker.reid_motion
