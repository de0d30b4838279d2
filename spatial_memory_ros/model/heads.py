"""Output heads: change mask, re-identification embeddings, and the predictive (CPC) head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .encoder import Mlp


class ChangeHead(nn.Module):
    """Patch tokens -> change logits at 1 / mask_stride of the model's input resolution.

    Each token predicts a block of mask_channels features (pixel shuffle); a 3x3 convolution over them
    and a shallow feature of the image itself puts the mask's edges on the image's edges, which 8 px
    patches alone cannot. The caller upsamples the logits (bilinear) to whatever resolution it needs.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c, p = config.mask_channels, config.patch_size // config.mask_stride
        self.config = config
        self.block = p
        self.norm = nn.LayerNorm(config.dim)
        self.expand = nn.Linear(config.dim, c * p * p)
        self.patch_logit = nn.Linear(config.dim, 1)  # coarse per-patch change probability
        self.stem = nn.Conv2d(3, c, kernel_size=3, padding=1, stride=config.mask_stride)
        self.fuse = nn.Conv2d(2 * c + 1, c, kernel_size=3, padding=1)
        self.out = nn.Conv2d(c, 1, kernel_size=1)

    def forward(
        self, tokens: torch.Tensor, image: torch.Tensor, extra: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, N, D), normalised image (B, 3, H, W) -> mask logits (B, 1, H / s, W / s) (s = mask_stride)
        and patch logits (B, N). extra (B, N): added to the patch logits (the place memory's novelty)."""
        B = tokens.shape[0]
        rows, cols = self.config.grid
        p = self.block
        x = self.norm(tokens)
        patch = self.patch_logit(x).squeeze(-1)  # (B, N)
        if extra is not None:
            patch = patch + extra.to(patch.dtype)
        fine = self.expand(x).transpose(1, 2).reshape(B, -1, rows, cols)  # (B, C * p * p, rows, cols)
        fine = F.pixel_shuffle(fine, p)  # (B, C, H / s, W / s)
        coarse = F.interpolate(patch.reshape(B, 1, rows, cols), scale_factor=p, mode="bilinear", align_corners=False)
        h = torch.cat([fine, F.gelu(self.stem(image)), coarse], dim=1)  # (B, 2C + 1, H / s, W / s)
        return coarse + self.out(F.gelu(self.fuse(h))), patch


class EmbedHead(nn.Module):
    """Patch tokens -> L2-normalised embeddings (B, N, E); pool them in a box to re-identify what is there."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(config.dim), nn.Linear(config.dim, config.embed_dim))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(tokens), dim=-1)


class PredictHead(nn.Module):
    """Contrastive predictive coding: memory at t plus the camera at t + k -> the features seen at t + k.

    predict() embeds the forecast, target() embeds what was actually seen; both (B, E), L2-normalised.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d = config.dim
        self.predictor = Mlp(2 * d, 2 * d, config.embed_dim)
        self.target_proj = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, config.embed_dim))

    def predict(self, state: torch.Tensor, camera_later: torch.Tensor) -> torch.Tensor:
        """state (B, S, D), camera_later (B, D) -> (B, E)."""
        return F.normalize(self.predictor(torch.cat([state.mean(dim=1), camera_later], dim=-1)), dim=-1)

    def target(self, tokens: torch.Tensor) -> torch.Tensor:
        """patch tokens (B, N, D) of the later frame -> (B, E)."""
        return F.normalize(self.target_proj(tokens.mean(dim=1)), dim=-1)
