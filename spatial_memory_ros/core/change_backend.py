"""The change backend a pipeline runs: what it needs of one, the one config.change names, and each camera's (one
learned model shared by the cameras or not); apart from the pipeline and the classical detector because choosing the
backend is no part of a frame's flow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from .change import ChangeDetector, ChangeOutput
from .config import ChangeConfig, PipelineConfig
from .errors import BadInputError
from .types import CameraIntrinsics

if TYPE_CHECKING:
    from ..model.runtime import LearnedChangeDetector


class ChangeBackend(Protocol):
    """What the pipeline needs from a change detector: the classical ChangeDetector, or a learned one."""

    def update(
        self, image_bgr: np.ndarray, T_map_cam: np.ndarray | None = None, intrinsics: CameraIntrinsics | None = None,
        stamp: float | None = None,
    ) -> ChangeOutput: ...

    def reset(self) -> None: ...

    def describe(self) -> str: ...  # what the node's startup log calls it


def make_change_backend(
    config: ChangeConfig, *, device: str = "auto", motion_appearance: bool = True, cameras: int = 1
) -> ChangeDetector | LearnedChangeDetector:
    """The change detector config.method names: the classical ChangeDetector, or the learned model
    (config.model_path, "" = the shipped checkpoint) on `device` (auto | cpu | cuda), which embeds each motion
    box's region only with motion_appearance (the classical one has no appearance to give). cameras: the
    learned model's memory rows (model.camera_batch shares one model between cameras); the classical detector
    is one camera's."""
    if config.method == "classical":
        return ChangeDetector(config)
    if config.method != "learned":
        raise BadInputError(f"change.method must be classical or learned, got {config.method!r}")
    try:
        from ..model.runtime import LearnedChangeDetector
    except ImportError as e:  # torch is optional for the classical pipeline
        raise BadInputError(f"change.method learned needs torch ({e}); use change.method classical") from None
    try:
        return LearnedChangeDetector.from_change_config(config, device=device, motion_appearance=motion_appearance,
                                                        cameras=cameras)
    except ValueError as e:  # a missing or foreign checkpoint, a cuda device without CUDA
        raise BadInputError(f"change.method learned: {e}") from None


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
