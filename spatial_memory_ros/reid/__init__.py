"""Appearance re-identification: embed detection crops so the tracker keeps ids across occlusions.

The MobileNetV2 embedder lives in ``reid.mobilenet`` and is not imported here: it imports torch, which
the AprilTag-only pipeline never needs.
"""

from .base import AppearanceEmbedder, crop_batch, l2_normalise

__all__ = ["AppearanceEmbedder", "crop_batch", "l2_normalise"]
