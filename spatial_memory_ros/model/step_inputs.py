"""A network step's frames, checks and input tensors for LearnedChangeDetector: stateless, so apart from runtime."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..core.errors import BadInputError
from ..core.geometry import MAX_POSE_OFFSET_M, is_rigid, scale_intrinsics
from ..core.types import CameraIntrinsics
from .config import ModelConfig

_NOMINAL_FOCAL = 500.0 / 640.0  # focal length / image width when no intrinsics are given (~65 deg across)


@dataclass
class PreparedFrame:
    """One camera's frame made ready for the network step (LearnedChangeDetector.prepare)."""

    camera: int
    image: np.ndarray  # (H, W, 3) uint8 BGR, as given
    small: np.ndarray  # at the model's input size
    K_px: np.ndarray  # (3, 3) intrinsics at the image's size
    K: np.ndarray  # (3, 3) float32 at the model's input size
    pose: np.ndarray  # (4, 4) float64, identity when unknown
    T_map_cam: np.ndarray | None  # as given: None = no pose
    stamp: float | None
    blank: bool  # featureless: steps as the memory-disabled model (blank_std)
    seen: np.ndarray  # what the still background learns: small, or the frame at still_scale times the input
    background: np.ndarray | None = None  # the still background at seen's size; None without one
    valid: np.ndarray | bool = False  # the background's validity: per pixel at seen's size, or one flag
    seen_K: np.ndarray | None = None  # (3, 3) intrinsics at seen's size when turns are followed, else None


@dataclass
class NetworkStep:
    """A frame's part of a network step: change logits at the model's output size, and the change head's own
    (for the motion boxes) where a still head corrected them."""

    logits: np.ndarray
    regions: np.ndarray | None


@dataclass
class StepTensors:
    """Prepared frames as one batch of the model's inputs (SpatialMemoryModel.forward); None = not given."""

    image: torch.Tensor  # (n, 3, h, w) uint8 BGR at the model's input size
    K: torch.Tensor  # (n, 3, 3)
    pose: torch.Tensor  # (n, 4, 4) float32
    has_pose: torch.Tensor  # (n,) bool
    background: torch.Tensor | None
    background_valid: torch.Tensor | None
    still_image: torch.Tensor | None
    still_background: torch.Tensor | None
    still_valid: torch.Tensor | None


def step_tensors(frames: Sequence[PreparedFrame], config: ModelConfig, device: torch.device, still_scale: int,
                 with_backgrounds: bool) -> StepTensors:
    """The model's inputs for prepared frames of distinct cameras (LearnedChangeDetector.network_step).
    with_backgrounds: give each frame's still background (each has one then: prepare()); still_scale: the still
    head's, whose frame and background are given at that scale when it is over 1."""
    cfg, dev, n = config, device, len(frames)
    image_t = torch.from_numpy(np.stack([f.small for f in frames])).to(dev).permute(0, 3, 1, 2)  # (n, 3, h, w)
    K = torch.from_numpy(np.stack([f.K for f in frames])).to(dev)  # (n, 3, 3)
    poses = np.stack([f.pose for f in frames])  # (n, 4, 4) float64
    if cfg.floor_period_m > 0:
        # the network computes in float32, whose step at a UTM-scale map coordinate (5e6 m) is 0.5 m, the
        # shortest wavelength of the floor features: a coordinate beyond _FAR_M is moved near 0 by whole
        # periods first (in float64), which leaves every feature as it was; nearer ones are left bit for bit
        xy, period = poses[:, :2, 3], cfg.floor_period_m
        poses[:, :2, 3] = np.where(np.abs(xy) >= _FAR_M, xy - np.floor(xy / period) * period, xy)
    pose = torch.from_numpy(poses.astype(np.float32)).to(dev)  # (n, 4, 4)
    flag = torch.tensor([f.T_map_cam is not None for f in frames], device=dev)
    bg_t = bg_valid = fine_t = fine_bg_t = fine_valid = None
    if with_backgrounds:
        k = still_scale
        backgrounds = [f.background for f in frames if f.background is not None]  # each has one (prepare)
        assert len(backgrounds) == n
        valid = [f.valid for f in frames]
        per_pixel = any(isinstance(v, np.ndarray) and not (v.all() or not v.any()) for v in valid)
        if k > 1:
            # else the head adds nothing: the mask stays the change head's own. Per batch: a camera with no
            # background yet, batched with one that has, gets its (zero) correction at the finer size, so its
            # logits reach the image through one more bilinear upsampling: the same mask up to interpolation
            if any(np.any(v) for v in valid):
                fine_t = torch.from_numpy(np.stack([f.seen for f in frames])).to(dev).permute(0, 3, 1, 2)
                fine_bg_t = torch.from_numpy(np.stack(backgrounds)).to(dev).permute(0, 3, 1, 2)
                if per_pixel:
                    fine_valid = torch.from_numpy(np.stack([np.broadcast_to(v, f.seen.shape[:2]) for v, f
                                                            in zip(valid, frames)])).to(dev)
            backgrounds = [cv2.resize(b, (cfg.image_width, cfg.image_height), interpolation=cv2.INTER_AREA)
                           for b in backgrounds]
        bg_t = torch.from_numpy(np.stack(backgrounds)).to(dev).permute(0, 3, 1, 2)
        if per_pixel:  # at the model's input: a pixel is valid if all of the finer ones it covers are
            size = (cfg.image_width, cfg.image_height)
            bg_valid = torch.from_numpy(np.stack([
                cv2.resize(np.broadcast_to(v, f.seen.shape[:2]).astype(np.float32), size,
                           interpolation=cv2.INTER_AREA) > 0.999 for v, f in zip(valid, frames)])).to(dev)
        else:
            bg_valid = torch.tensor([bool(np.any(v)) for v in valid], device=dev)
    return StepTensors(image_t, K, pose, flag, bg_t, bg_valid, fine_t, fine_bg_t, fine_valid)


def camera_K(intr: CameraIntrinsics | None, w: int, h: int) -> np.ndarray:
    """(3, 3) intrinsics for an image of w x h px: the given ones (checked against the size and their values: a
    NaN or a zero focal length made the recurrent memory NaN for good) or nominal ones."""
    if intr is not None:
        intr.check_size(w, h)
        intr.check_values()
    if intr is None:
        f = _NOMINAL_FOCAL * w
        return np.array([[f, 0.0, w / 2.0], [0.0, f, h / 2.0], [0.0, 0.0, 1.0]])
    return np.asarray(intr.K, dtype=np.float64)


def model_K(K_px: np.ndarray, w: int, h: int, config: ModelConfig) -> np.ndarray:
    """(3, 3) float32 intrinsics at the model's input size, from K_px of an image of w x h px."""
    sx, sy = config.image_width / w, config.image_height / h
    return scale_intrinsics(K_px, sx, sy).astype(np.float32)


def check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 \
            or image.shape[0] == 0 or image.shape[1] == 0:
        got = (f"shape {image.shape} dtype {image.dtype}" if isinstance(image, np.ndarray)
               else type(image).__name__)  # the shape alone did not say what was wrong with a float frame
        raise BadInputError(f"image must be a non-empty (H, W, 3) uint8 BGR array, got {got}")


_FAR_M = 1024.0  # float32's step there is 0.06 mm, a ten-thousandth of the floor features' shortest wavelength


def checked_pose(T: np.ndarray | None) -> np.ndarray:
    """(4, 4) float64 pose, identity when unknown (the model is told by a flag); BadInputError if malformed."""
    if T is None:
        return np.eye(4)
    pose = np.array(T, dtype=np.float64)
    if pose.shape != (4, 4) or not np.isfinite(pose).all():
        raise BadInputError(f"T_map_cam must be a finite (4, 4) matrix, got shape {pose.shape}")
    # finite is not enough: a zero or scaled rotation, or a camera 1e30 m up, made the memory NaN for good (the
    # pipeline's validate_frame asks the same of a frame; the runtime is also driven without it)
    if not is_rigid(pose):
        raise BadInputError("T_map_cam must be a rigid transform: an orthonormal rotation (determinant 1) and a "
                            "last row of 0 0 0 1")
    if np.abs(pose[:3, 3]).max() > MAX_POSE_OFFSET_M:
        raise BadInputError(f"T_map_cam puts the camera {np.abs(pose[:3, 3]).max():.3g} m from the map origin "
                            f"(at most {MAX_POSE_OFFSET_M:.0e} m)")
    return pose
