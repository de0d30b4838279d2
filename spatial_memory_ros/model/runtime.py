"""LearnedChangeDetector: the learned model behind the pipeline's change-backend protocol.

    detector = LearnedChangeDetector(intrinsics=intr)          # the shipped checkpoint, device auto
    out = detector.update(image_bgr, T_map_cam)                # ChangeOutput, as the classical detector's
    Pipeline(config, memory, change=detector)

The model keeps a fixed-size memory (memory_slots x dim floats) on its device between frames; reset()
forgets it. Unlike the classical baseline it never resets on camera motion: the camera pose tells it
where each patch looks, so a moving camera gets change masks too.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from ..core.change import ChangeOutput
from ..core.errors import BadInputError
from ..core.types import CameraIntrinsics
from .checkpoint import DEFAULT_CHECKPOINT, build_model, resolve_device
from .model import SpatialMemoryModel

_NOMINAL_FOCAL = 500.0 / 640.0  # focal length / image width when no intrinsics are given (~65 deg across)


class LearnedChangeDetector:
    """Change mask from the learned model; motion boxes from the mask's connected regions.

    model: a SpatialMemoryModel, a checkpoint path, or None for the shipped checkpoint.
    intrinsics: the camera's (for the image size given to update()); None = a nominal 65-degree lens,
    fine for a static camera, approximate for a moving one. update() may also be given them per frame.
    device: "auto" (CUDA when available), "cpu" or "cuda"; on CUDA the step runs under fp16 autocast.
    threshold: P(changed) above which a pixel is changed; lower finds more, with more false alarms.
    use_memory: None = the checkpoint's setting; False = the memory-disabled ablation (same weights).
    min_blob_area_px: changed regions smaller than this (in the caller's pixels) give no motion box.
    threads: torch CPU threads, set for the whole process (torch has one global pool). 1 suits this small
    model: on a busy 2-core machine 2 threads ran it 5x slower (threads spin-wait on each other); None
    leaves torch's setting alone.
    """

    def __init__(
        self,
        model: SpatialMemoryModel | str | Path | None = None,
        *,
        intrinsics: CameraIntrinsics | None = None,
        device: str = "auto",
        threshold: float = 0.5,
        use_memory: bool | None = None,
        min_blob_area_px: int = 150,
        threads: int | None = 1,
    ) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        self.device = resolve_device(device)
        if threads is not None and self.device.type == "cpu":
            torch.set_num_threads(threads)
        if isinstance(model, SpatialMemoryModel):
            self.model = model.to(self.device).eval()
        else:
            self.model = build_model(DEFAULT_CHECKPOINT if model is None else model, self.device)
        self.config = self.model.config
        self.intrinsics = intrinsics
        self.threshold = threshold
        self.use_memory = self.config.use_memory if use_memory is None else use_memory
        self.min_blob_area_px = min_blob_area_px
        self._logit_threshold = float(np.log(threshold / (1.0 - threshold)))
        self._amp = self.device.type == "cuda"
        self.reset()

    def reset(self) -> None:
        """Forget everything seen: the memory goes back to its initial state."""
        with torch.inference_mode():
            self._state = self.model.initial_state(1, self.device)  # (1, S, D), stays on the device
        self._embeddings: torch.Tensor | None = None  # (1, N, E) of the last frame
        self._image_size: tuple[int, int] | None = None  # (W, H) of the last frame

    @property
    def state(self) -> torch.Tensor:
        """(1, S, D) the memory; its size never changes."""
        return self._state

    @torch.inference_mode()
    def update(
        self, image_bgr: np.ndarray, T_map_cam: np.ndarray | None = None, intrinsics: CameraIntrinsics | None = None
    ) -> ChangeOutput:
        """One frame: (H, W, 3) uint8 BGR, T_map_cam (4, 4) camera optical frame in the map if known."""
        if not isinstance(image_bgr, np.ndarray) or image_bgr.dtype != np.uint8 or image_bgr.ndim != 3:
            raise BadInputError(f"image must be a (H, W, 3) uint8 BGR array, got {getattr(image_bgr, 'shape', None)}")
        h, w = image_bgr.shape[:2]
        if (w, h) != self._image_size and self._image_size is not None:
            self.reset()  # another camera or resolution: the memory does not describe this view
        self._image_size = (w, h)
        cfg = self.config
        small = cv2.resize(image_bgr, (cfg.image_width, cfg.image_height), interpolation=cv2.INTER_AREA)
        image = torch.from_numpy(small).to(self.device).permute(2, 0, 1).unsqueeze(0)  # (1, 3, h, w) uint8
        K = torch.from_numpy(self._model_K(intrinsics or self.intrinsics, w, h)).to(self.device).unsqueeze(0)
        has_pose = T_map_cam is not None
        if T_map_cam is not None:
            T = np.asarray(T_map_cam, dtype=np.float32)
            if T.shape != (4, 4) or not np.isfinite(T).all():
                raise BadInputError(f"T_map_cam must be a finite (4, 4) matrix, got shape {T.shape}")
        else:
            T = np.eye(4, dtype=np.float32)
        pose = torch.from_numpy(T).to(self.device).unsqueeze(0)
        flag = torch.tensor([has_pose], device=self.device)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self._amp):
            out = self.model(image, K, pose, flag, self._state, use_memory=self.use_memory)
        self._state = out.state
        self._embeddings = out.embeddings
        logits = out.change_logits[0, 0].float().cpu().numpy()  # (h / s, w / s)
        logits = cv2.resize(logits, (w, h), interpolation=cv2.INTER_LINEAR)
        mask = (logits > self._logit_threshold).astype(np.uint8) * 255
        return ChangeOutput(mask=mask, motion_boxes=self._boxes(mask), camera_moved=False)

    def _model_K(self, intr: CameraIntrinsics | None, w: int, h: int) -> np.ndarray:
        """(3, 3) float32 intrinsics at the model's input size, for an image of w x h px."""
        if intr is not None and intr.width > 0 and intr.height > 0 and (intr.width, intr.height) != (w, h):
            raise BadInputError(f"intrinsics are for {intr.width}x{intr.height} but the image is {w}x{h}")
        if intr is None:
            f = _NOMINAL_FOCAL * w
            K = np.array([[f, 0.0, w / 2.0], [0.0, f, h / 2.0], [0.0, 0.0, 1.0]])
        else:
            K = intr.K
        sx, sy = self.config.image_width / w, self.config.image_height / h
        # Pixel centres: u_small + 0.5 = (u + 0.5) * s, so cx_small = (cx + 0.5) * s - 0.5.
        out = np.array([[K[0, 0] * sx, 0.0, (K[0, 2] + 0.5) * sx - 0.5],
                        [0.0, K[1, 1] * sy, (K[1, 2] + 0.5) * sy - 0.5],
                        [0.0, 0.0, 1.0]], dtype=np.float32)
        return out

    def _boxes(self, mask: np.ndarray) -> list[np.ndarray]:
        """(4,) x1, y1, x2, y2 boxes of the changed regions of at least min_blob_area_px, largest first."""
        n, _labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        boxes = []
        for i in np.argsort(-stats[1:, cv2.CC_STAT_AREA]) + 1:
            x, y, bw, bh, area = stats[i]
            if area >= self.min_blob_area_px:
                boxes.append(np.array([x, y, x + bw, y + bh], dtype=np.float64))
        return boxes

    @torch.inference_mode()
    def embed_boxes(self, boxes: np.ndarray) -> np.ndarray:
        """(M, 4) px boxes in the last frame -> (M, E) L2-normalised re-identification embeddings.

        Each box's embedding is the normalised mean of the patch embeddings whose centres lie in it (the
        nearest patch for a box smaller than a patch). Compare with a dot product: 1 = same look.
        """
        if self._embeddings is None or self._image_size is None:
            raise BadInputError("embed_boxes() needs a frame first: call update()")
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        rows, cols = self.config.grid
        w, h = self._image_size
        emb = self._embeddings[0].float().reshape(rows, cols, -1).cpu().numpy()  # (rows, cols, E)
        out = np.zeros((len(boxes), emb.shape[-1]), dtype=np.float32)
        cx = (np.arange(cols) + 0.5) * w / cols
        cy = (np.arange(rows) + 0.5) * h / rows
        for i, (x1, y1, x2, y2) in enumerate(boxes):
            ix = np.flatnonzero((cx >= x1) & (cx < x2))
            iy = np.flatnonzero((cy >= y1) & (cy < y2))
            if len(ix) == 0:
                ix = np.array([int(np.clip((x1 + x2) / 2 * cols / w, 0, cols - 1))])
            if len(iy) == 0:
                iy = np.array([int(np.clip((y1 + y2) / 2 * rows / h, 0, rows - 1))])
            v = emb[np.ix_(iy, ix)].reshape(-1, emb.shape[-1]).mean(axis=0)
            out[i] = v / max(float(np.linalg.norm(v)), 1e-9)
        return out
