"""ViT-style patch encoder whose tokens know where they look: pose-conditioned patches plus memory tokens.

Each patch token = patch embedding + learned grid position + an embedding of its viewing ray in the map
frame: the ray direction and, where the ray meets the floor (z = 0) within max_range_m, the Fourier
features of that floor point. So a moving camera sees "this texture at map (x, y)", which is what lets
the memory relate what it sees to where. Memory tokens read from the previous step's memory are
prepended to the patch tokens and attended to by every block.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig


def fourier(xy: torch.Tensor, frequencies: int, base_m: float) -> torch.Tensor:
    """(..., 2) metres -> (..., 4 * frequencies) sin/cos at wavelengths base_m * 2**k."""
    scales = (2 * math.pi / base_m) / (2.0 ** torch.arange(frequencies, device=xy.device, dtype=xy.dtype))
    angles = xy[..., :, None] * scales  # (..., 2, F)
    return torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(-2)  # (..., 4F)


def patch_floor_points(
    config: ModelConfig, K: torch.Tensor, T_map_cam: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where each patch centre's viewing ray meets the floor (z = 0).

    K: (B, 3, 3) intrinsics at the model's input resolution; T_map_cam: (B, 4, 4) camera optical frame in
    the map. Returns map xy (B, N, 2) (zeros where no floor), floor flag (B, N) bool (the ray points down
    and meets the floor within max_range_m), the unit ray in the map (B, N, 3) and the range (B, N) m.
    """
    rows, cols = config.grid
    p = config.patch_size
    dtype = torch.float32
    K, T = K.to(dtype), T_map_cam.to(dtype)
    v, u = torch.meshgrid(
        (torch.arange(rows, device=K.device, dtype=dtype) + 0.5) * p - 0.5,
        (torch.arange(cols, device=K.device, dtype=dtype) + 0.5) * p - 0.5,
        indexing="ij",
    )
    u, v = u.reshape(1, -1), v.reshape(1, -1)  # (1, N)
    x = (u - K[:, 0, 2:3]) / K[:, 0, 0:1]  # (B, N)
    y = (v - K[:, 1, 2:3]) / K[:, 1, 1:2]
    ray_cam = torch.stack([x, y, torch.ones_like(x)], dim=-1)  # (B, N, 3), z = 1: ray parameter = z-depth
    # float32 even under CUDA's fp16 autocast (runtime.network_step), which runs a matmul in fp16: the rays came
    # out fp16, floor points 2-5 cm off at a few metres and their finest Fourier features up to 0.45 off, not
    # what the float32-trained model learned from
    with torch.autocast(K.device.type, enabled=False):
        ray = ray_cam @ T[:, :3, :3].transpose(1, 2)  # (B, N, 3) map frame
    centre = T[:, None, :3, 3]  # (B, 1, 3)
    depth = -centre[..., 2] / ray[..., 2].clamp(max=-1e-6)  # (B, N) z-depth to the floor (where it points down)
    dist = depth * ray_cam.norm(dim=-1)  # (B, N) m along the ray
    # depth > 0: a camera at or below the floor (a map whose origin is the first camera pose, drifting down) sees
    # no floor; its negative depths made log1p(dist) NaN, which the recurrent memory then kept for good
    floor = (ray[..., 2] < -1e-6) & (depth > 0) & (dist < config.max_range_m)  # (B, N)
    point = centre[..., :2] + depth[..., None] * ray[..., :2]  # (B, N, 2) map xy
    point = torch.where(floor[..., None], point, torch.zeros_like(point))
    return point, floor, F.normalize(ray, dim=-1), dist


def patch_pose_features(
    config: ModelConfig, floor_points: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    has_pose: torch.Tensor,
) -> torch.Tensor:
    """Raw pose feature of every patch centre.

    floor_points: patch_floor_points() of the frame (the place memory looks its cells up by the same points);
    has_pose: (B,) bool, False where the pose is unknown (its features are all zero).
    Returns (B, N, config.pose_features).
    """
    point, floor, ray, dist = floor_points
    f = floor.to(torch.float32)[..., None]
    log_range = torch.log1p(dist.clamp(0.0, config.max_range_m)) / math.log1p(config.max_range_m)
    feats = torch.cat(
        [
            ray,
            f,
            log_range[..., None] * f,
            fourier(point, config.pose_frequencies, config.pose_base_m) * f,
        ],
        dim=-1,
    )  # (B, N, pose_features)
    return feats * has_pose.to(torch.float32)[:, None, None]


def camera_features(config: ModelConfig, T_map_cam: torch.Tensor, has_pose: torch.Tensor) -> torch.Tensor:
    """(B, 4, 4) camera poses -> (B, pose_features): optical axis in the map (3), pose flag, height, Fourier(xy)."""
    T = T_map_cam.float()
    feats = torch.cat(
        [
            T[:, :3, 2],
            torch.ones_like(T[:, :1, 3]),
            T[:, 2:3, 3],
            fourier(T[:, :2, 3], config.pose_frequencies, config.pose_base_m),
        ],
        dim=-1,
    )
    return feats * has_pose.float()[:, None]


class Mlp(nn.Sequential):
    def __init__(self, dim: int, hidden: int, out: int | None = None) -> None:
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, out or dim))


class Block(nn.Module):
    """Pre-norm transformer block (self-attention over all tokens, then an MLP)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, D) -> (B, L, D)
        B, L, D = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(B, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, h, L, D/h)
        x = x + self.proj(attn.transpose(1, 2).reshape(B, L, D))
        return x + self.mlp(self.norm2(x))


class PatchEncoder(nn.Module):
    """Image + per-patch pose features + memory tokens -> contextualised patch and memory tokens."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d, p = config.dim, config.patch_size
        self.config = config
        self.patch = nn.Conv2d(config.input_channels, d, kernel_size=p, stride=p)
        self.position = nn.Parameter(torch.randn(1, config.num_patches, d) * 0.02)
        self.pose = Mlp(config.pose_features, d, d)
        self.memory_type = nn.Parameter(torch.randn(1, 1, d) * 0.02)  # tells memory tokens from patches
        self.blocks = nn.ModuleList(Block(d, config.heads, config.mlp_ratio) for _ in range(config.depth))
        self.norm = nn.LayerNorm(d)

    def forward(
        self, image: torch.Tensor, pose: torch.Tensor, memory_tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """image (B, config.input_channels, H, W) normalised (normalise_image); pose (B, N, pose_features);
        memory_tokens (B, R, D).

        Returns patch tokens (B, N, D) and memory tokens (B, R, D), both after the final norm.
        """
        x = self.patch(image).flatten(2).transpose(1, 2)  # (B, N, D)
        x = x + self.position + self.pose(pose)
        r = memory_tokens.shape[1]
        x = torch.cat([memory_tokens + self.memory_type, x], dim=1)  # (B, R + N, D)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return x[:, r:], x[:, :r]


def normalise_image(image: torch.Tensor, background: torch.Tensor | None = None,
                    valid: torch.Tensor | None = None) -> torch.Tensor:
    """(B, 3, H, W) 0..255 -> zero mean, unit variance per image: a global light gain or offset cancels out.

    With a background (B, 3, H, W) 0..255 and valid (B,) bool: (B, 7, H, W), the frame, the background brought
    by the frame's own mean and spread (so that where they agree the channels agree), zero where there is
    none, and the flag as a constant plane. valid may also be (B, H, W), a flag per pixel (a background that
    follows a turning camera knows only what it has shown: model.turning_background)."""
    x = image.float()
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True)
    out = (x - mean) / (std + 1.0)
    if background is None or valid is None:
        return out
    flag = valid.to(out.dtype)[:, None, None, None] if valid.ndim == 1 else valid.to(out.dtype)[:, None]
    bg = (background.float() - mean) / (std + 1.0) * flag
    return torch.cat([out, bg, flag.expand(-1, 1, *out.shape[2:])], dim=1)
