"""The interface every appearance embedder implements, and the crop preparation they share."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import cv2
import numpy as np

# ImageNet statistics (RGB, 0..1): the MobileNetV2 weights were trained with them.
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@runtime_checkable
class AppearanceEmbedder(Protocol):
    """Boxes in an image -> one appearance vector per box.

    embed() returns (N, dim) float32 rows of unit length, so the dot product of two rows is their cosine
    similarity (1 = same look). A box with no pixels inside the image gets a zero row: "no appearance",
    which the tracker ignores. Rows from different embedders are not comparable.
    """

    dim: int

    def embed(self, image_bgr: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """image_bgr (H, W, 3) uint8, boxes (N, 4) px x1, y1, x2, y2 -> (N, dim) float32."""
        ...


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.where(norm > 1e-12, x / np.maximum(norm, 1e-12), 0.0).astype(np.float32)


def crop_batch(image_bgr: np.ndarray, boxes: np.ndarray, size_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Crops of boxes resized to size_hw, ImageNet-normalised RGB: ((N, 3, h, w) float32, valid (N,) bool).

    Boxes are clipped to the image; one with no pixel left (or not finite) is a zero crop and valid False.
    """
    h, w = size_hw
    img_h, img_w = image_bgr.shape[:2]
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = np.zeros((len(boxes), 3, h, w), dtype=np.float32)
    valid = np.zeros(len(boxes), dtype=bool)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        if not np.isfinite([x1, y1, x2, y2]).all():
            continue
        c1, r1 = int(np.clip(np.floor(x1), 0, img_w)), int(np.clip(np.floor(y1), 0, img_h))
        c2, r2 = int(np.clip(np.ceil(x2), 0, img_w)), int(np.clip(np.ceil(y2), 0, img_h))
        if c2 <= c1 or r2 <= r1:
            continue
        # INTER_AREA: crops are mostly shrunk, and area averaging does not alias stripes and textures.
        crop = cv2.resize(image_bgr[r1:r2, c1:c2], (w, h), interpolation=cv2.INTER_AREA)
        rgb = crop[:, :, ::-1].astype(np.float32) / 255.0  # (h, w, 3)
        out[i] = ((rgb - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)
        valid[i] = True
    return out, valid
