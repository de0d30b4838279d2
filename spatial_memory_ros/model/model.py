"""SpatialMemoryModel: one recurrent step = read memory -> encode the frame -> heads -> write memory.

    model = SpatialMemoryModel.from_config(ModelConfig())
    state = model.initial_state(batch=1)
    out = model(image, K, T_map_cam, has_pose, state)   # StepOutput; feed out.state to the next step
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import ModelConfig
from .encoder import Mlp, PatchEncoder, camera_features, normalise_image, patch_pose_features
from .heads import ChangeHead, EmbedHead, PredictHead
from .memory import CrossAttention, RecurrentMemory


@dataclass
class StepOutput:
    change_logits: torch.Tensor  # (B, 1, H / s, W / s), s = config.mask_stride; sigmoid -> P(changed)
    patch_logits: torch.Tensor  # (B, N) coarse per-patch change logits
    embeddings: torch.Tensor  # (B, N, E) L2-normalised re-identification embeddings, one per patch
    tokens: torch.Tensor  # (B, N, D) encoder output
    state: torch.Tensor  # (B, S, D) the memory after this frame (the input state if memory is disabled)
    camera: torch.Tensor  # (B, D) embedding of this frame's camera pose


class SpatialMemoryModel(nn.Module):
    def __init__(
        self,
        config: ModelConfig,
        encoder: PatchEncoder,
        memory: RecurrentMemory,
        change_head: ChangeHead,
        embed_head: EmbedHead,
        predict_head: PredictHead,
        camera_embed: nn.Module,
    ) -> None:
        super().__init__()
        self.config = config.validate()
        self.encoder = encoder
        self.memory = memory
        self.change_head = change_head
        self.embed_head = embed_head
        self.predict_head = predict_head
        self.camera_embed = camera_embed  # (B, pose_features) -> (B, D)

    @classmethod
    def from_config(cls, config: ModelConfig) -> SpatialMemoryModel:
        config.validate()
        d, h = config.dim, config.heads
        return cls(
            config,
            PatchEncoder(config),
            RecurrentMemory(config, CrossAttention(d, h), CrossAttention(d, h)),
            ChangeHead(config),
            EmbedHead(config),
            PredictHead(config),
            Mlp(config.pose_features, d, d),
        )

    def initial_state(self, batch: int = 1, device: torch.device | str | None = None) -> torch.Tensor:
        """(B, S, D) memory before the first frame."""
        return self.memory.initial_state(batch, device)

    def forward(
        self,
        image: torch.Tensor,
        K: torch.Tensor,
        T_map_cam: torch.Tensor,
        has_pose: torch.Tensor,
        state: torch.Tensor,
        *,
        use_memory: bool | None = None,
    ) -> StepOutput:
        """One step.

        image: (B, 3, H, W) BGR, 0..255 (uint8 or float) at config.image_height x image_width;
        K: (B, 3, 3) intrinsics at that resolution; T_map_cam: (B, 4, 4); has_pose: (B,) bool;
        state: (B, S, D) from initial_state() or the previous step. use_memory None = config.use_memory;
        False reads the initial memory and leaves the state as it is (the ablation).
        """
        use = self.config.use_memory if use_memory is None else use_memory
        x = normalise_image(image)  # (B, 3, H, W)
        camera = self.camera_embed(camera_features(self.config, T_map_cam, has_pose))  # (B, D)
        pose = patch_pose_features(self.config, K, T_map_cam, has_pose)  # (B, N, P)
        source = state if use else self.memory.initial_state(image.shape[0], image.device)
        read = self.memory.read(source, camera)  # (B, R, D)
        tokens, _ = self.encoder(x, pose, read)  # (B, N, D)
        logits, patch_logits = self.change_head(tokens, x)
        new_state = self.memory.write(state, tokens) if use else state
        return StepOutput(logits, patch_logits, self.embed_head(tokens), tokens, new_state, camera)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
