"""A still camera's change head: residual change logits from the frame against the still background.

The network's change head works from 8 px patch tokens, which on the simulator's renders learned the agents'
colours and on real footage mark next to nothing; fine-tuning the whole network on still cameras and photos
(BENCHMARKS "What the network keys on" onwards) taught it real change but cost it the patrolling camera. This
head is added beside it: small convolutions at the input resolution over the frame, the still camera's
background (model/background.py) and their difference, plus the change head's own logits, give a correction
to those logits. It is multiplied by the background flag, so where there is no still background (a moving
camera, the memory-disabled ablation) the model's output is exactly the change head's; and its last layer
starts at zero, so a model fine-tuned from shipped weights starts as them. With `train --freeze-base` only
this head learns: everything the model does on a moving camera stays bit for bit the weights it started from.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig


class StillHead(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c, s = config.still_head, config.mask_stride
        self.stride = s
        self.diff = nn.Conv2d(9, c, kernel_size=3, padding=1)  # frame, background, |frame - background|
        self.down = nn.Conv2d(c, c, kernel_size=3, padding=1, stride=s)  # to the mask's resolution
        self.mix = nn.Conv2d(c + 1, c, kernel_size=3, padding=2, dilation=2)  # with the change head's logits
        self.out = nn.Conv2d(c, 1, kernel_size=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)  # type: ignore[arg-type]  # a Conv2d built with its bias

    def forward(self, x_in: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """x_in (B, 7, H, W): the normalised frame, background and flag plane (encoder.normalise_image);
        logits (B, 1, H / s, W / s) the change head's -> the correction to add, zero where the flag is."""
        frame, background, flag = x_in[:, :3], x_in[:, 3:6], x_in[:, 6:7]
        h = F.gelu(self.diff(torch.cat([frame, background, (frame - background).abs()], dim=1)))
        h = F.gelu(self.down(h))
        h = F.gelu(self.mix(torch.cat([h, logits.to(h.dtype)], dim=1)))
        return self.out(h) * flag[:, :, :: self.stride, :: self.stride]
