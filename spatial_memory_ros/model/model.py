"""SpatialMemoryModel: one recurrent step = read memory -> encode the frame -> heads -> write memory.

    model = SpatialMemoryModel.from_config(ModelConfig())
    state = model.initial_state(batch=1)
    out = model(image, K, T_map_cam, has_pose, state)   # StepOutput; feed out.state to the next step
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .encoder import Mlp, PatchEncoder, camera_features, normalise_image, patch_floor_points, patch_pose_features
from .heads import ChangeHead, EmbedHead, PredictHead
from .memory import CrossAttention, RecurrentMemory
from .place_memory import PlaceMemory
from .still_head import StillHead


@dataclass
class StepOutput:
    change_logits: torch.Tensor  # (B, 1, H / s, W / s), s = config.mask_stride; sigmoid -> P(changed)
    patch_logits: torch.Tensor  # (B, N) coarse per-patch change logits
    embeddings: torch.Tensor  # (B, N, E) L2-normalised re-identification embeddings, one per patch
    tokens: torch.Tensor  # (B, N, D) encoder output
    state: torch.Tensor  # (B, S (+ place cells), D) the memory after this frame (the input state if memory is disabled)
    camera: torch.Tensor  # (B, D) embedding of this frame's camera pose
    # (B, 1, H / s, W / s) the change head's logits before the still head's correction (the same tensor as
    # change_logits without a still head): what moves, for motion boxes (model.runtime)
    region_logits: torch.Tensor


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
        place: PlaceMemory | None = None,
        still: StillHead | None = None,
    ) -> None:
        super().__init__()
        self.config = config.validate()
        self.place = place  # None unless config.place_cells
        self.still = still  # None unless config.still_head
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
            PlaceMemory(config) if config.place_cells else None,
            StillHead(config) if config.still_head else None,
        )

    def initial_state(self, batch: int = 1, device: torch.device | str | None = None) -> torch.Tensor:
        """(B, S, D) memory before the first frame; (B, S + place_cells**2, D) with a place memory: the
        slots, then the floor cells, one tensor so that every caller carries one state of a fixed size."""
        slots = self.memory.initial_state(batch, device)
        if self.place is None:
            return slots
        return torch.cat([slots, self.place.initial_state(batch, slots.device)], dim=1)

    def forward(
        self,
        image: torch.Tensor,
        K: torch.Tensor,
        T_map_cam: torch.Tensor,
        has_pose: torch.Tensor,
        state: torch.Tensor,
        *,
        use_memory: bool | None = None,
        background: torch.Tensor | None = None,
        background_valid: torch.Tensor | None = None,
        still_image: torch.Tensor | None = None,
        still_background: torch.Tensor | None = None,
        still_valid: torch.Tensor | None = None,
    ) -> StepOutput:
        """One step.

        image: (B, 3, H, W) BGR, 0..255 (uint8 or float) at config.image_height x image_width;
        K: (B, 3, 3) intrinsics at that resolution; T_map_cam: (B, 4, 4); has_pose: (B,) bool;
        state: (B, S, D) from initial_state() or the previous step. use_memory None = config.use_memory;
        False reads the initial memory and leaves the state as it is (the ablation).
        background, background_valid: with config.background, the still camera's background (B, 3, H, W) 0..255
        and whether there is one (B,) bool (model.background), or per pixel (B, H, W) bool; None = none. The
        ablation gets none either.
        still_image, still_background: the frame and its background at k times the input size (B, 3, kH, kW) for
        the still head alone (runtime's still_scale); the change head's logits are upsampled k times to meet its
        correction, so the mask comes out k times finer. None = the still head reads the input size.
        still_valid: (B, kH, kW) bool, the finer background's validity per pixel; None = background_valid's.
        """
        use = self.config.use_memory if use_memory is None else use_memory
        if not self.config.background:
            x_in = normalise_image(image)  # (B, 3, H, W)
        else:
            if background is None or background_valid is None or not use:
                background = torch.zeros_like(image)
                background_valid = torch.zeros(image.shape[0], dtype=torch.bool, device=image.device)
            x_in = normalise_image(image, background, background_valid)  # (B, 7, H, W)
        x = x_in[:, :3]  # the frame alone (normalised once), for the change head
        camera = self.camera_embed(camera_features(self.config, T_map_cam, has_pose))  # (B, D)
        floor_points = patch_floor_points(self.config, K, T_map_cam)
        pose = patch_pose_features(self.config, floor_points, has_pose)  # (B, N, P)
        S = self.config.memory_slots
        slots, cells = state[:, :S], state[:, S:]
        source = slots if use else self.memory.initial_state(image.shape[0], image.device)
        read = self.memory.read(source, camera)  # (B, R, D)
        tokens, _ = self.encoder(x_in, pose, read)  # (B, N, D)
        novelty = where = valid = keys = None
        if self.place is not None and use:
            points, floor = floor_points[0], floor_points[1]
            valid = floor & has_pose[:, None]  # (B, N): a place only where the pose says where the patch looks
            where = self.place.cell_index(points, valid)
            keys = self.place.keys(tokens)  # (B, N, D), compared with the cells and then written into them
            novelty = self.place.novelty(cells, where, valid, keys)  # (B, N) logit increments
        logits, patch_logits = self.change_head(tokens, x, novelty)
        region = logits
        if self.still is not None:  # a correction where there is a still background, exactly zero elsewhere
            x_still = x_in
            if still_image is not None and still_background is not None:  # a still head implies the 7-channel x_in
                # its convolutions do not care about the size: a finer input shows it smaller things
                if still_valid is None:
                    still_valid = F.interpolate(x_in[:, 6:7], size=still_image.shape[-2:], mode="nearest")[:, 0] > 0
                x_still = normalise_image(still_image, still_background, still_valid)
                logits = F.interpolate(logits, scale_factor=still_image.shape[-1] // image.shape[-1],
                                       mode="bilinear", align_corners=False)
            logits = logits + self.still(x_still, logits)
        new_state = state
        if use:
            new_state = self.memory.write(slots, tokens)
            if self.place is not None:
                assert where is not None and valid is not None and keys is not None
                new_state = torch.cat([new_state, self.place.write(cells, where, valid, keys, tokens)], dim=1)
        return StepOutput(logits, patch_logits, self.embed_head(tokens), tokens, new_state, camera, region)

    def frame_tokens(self, image: torch.Tensor) -> torch.Tensor:
        """The frame's own patch tokens (B, N, D): the encoder given no pose, the initial memory and no background.

        image: (B, 3, H, W) BGR 0..255 at the input size. The predictive loss's target: forward()'s tokens also carry
        the frame's pose features and its memory read, and those picked the right frame among the chunk's others
        with one picture in every frame (BENCHMARKS "The predictive loss has a shortcut"). These differ only where
        the pictures do."""
        B, dev = image.shape[0], image.device
        no_pose = torch.zeros(B, dtype=torch.bool, device=dev)
        if self.config.background:
            x_in = normalise_image(image, torch.zeros_like(image), no_pose)
        else:
            x_in = normalise_image(image)
        identity = torch.eye(4, device=dev).expand(B, 4, 4)
        camera = self.camera_embed(camera_features(self.config, identity, no_pose))  # the same for every frame
        pose = torch.zeros(B, self.config.num_patches, self.config.pose_features, device=dev)
        tokens, _ = self.encoder(x_in, pose, self.memory.read(self.memory.initial_state(B, dev), camera))
        return tokens

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
