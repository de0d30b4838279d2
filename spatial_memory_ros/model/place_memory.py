"""Place memory: a fixed grid of floor cells, each remembering what the camera saw there, and how new the
view of each place is against it.

The slot memory (memory.py) holds a few global slots; it can say "something like this was seen", not
"this spot of the floor had a box on it three minutes ago", which is what a moved or vanished item needs.
Here each patch whose ray meets the floor looks up the cell under its floor point (map frame), so a patch
meets the memory of its own place however the camera got there:

- novelty: 1 - cosine between the patch's key (a projection of its encoder token) and the key the cell
  holds, 0 where the cell was never written. The change head adds `novelty_gain * novelty` to the patch's
  change logit: a direct path, where adding the cell to the encoder's input (tried first, BENCHMARKS "A
  place memory") left the network to discover the comparison and it never did.
- write: each cell moves towards the keys of the patches on it by an update gate from their tokens (a
  GRU-style gate: an agent passing over a place can leave it as it was), and is renormalised.

Cells are indexed modulo place_cells in x and y (a torus of place_cells * place_cell_m metres), so the
state has a fixed size for any map: places that far apart share a cell. State: (B, place_cells**2, dim),
zeros at the start (never written).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig


class PlaceMemory(nn.Module):
    """place_cells x place_cells floor cells of dim floats (a unit key, or zeros); novelty() and write()."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d = config.dim
        self.config = config
        self.key = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d))
        self.gate = nn.Linear(d, 1)
        nn.init.zeros_(self.gate.weight)
        nn.init.constant_(self.gate.bias, -2.2)  # about 0.1 of the way to each new view at first
        # 0 at first: a model without place memory is unchanged until training finds novelty useful. Stored
        # as a tenth of the gain: Adam moves a parameter about lr per step, and the gain has to reach several
        # logits (a floor patch sits near -6) within a CPU run of ~1,000 steps at lr 1e-3.
        self.novelty_gain_tenths = nn.Parameter(torch.zeros(()))

    @property
    def cells(self) -> int:
        return self.config.place_cells**2

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> torch.Tensor:
        """(B, cells, D) zeros: nothing seen anywhere."""
        return torch.zeros(batch, self.cells, self.config.dim, device=device)

    def cell_index(self, points: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """points (B, N, 2) map xy, valid (B, N) bool -> (B, N) cell index (0 where not valid)."""
        g, size = self.config.place_cells, self.config.place_cell_m
        ij = torch.remainder(torch.floor(points / size), g).long()  # (B, N, 2)
        return torch.where(valid, ij[..., 1] * g + ij[..., 0], torch.zeros_like(ij[..., 0]))

    def keys(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N, D) encoder tokens -> (B, N, D) unit keys, what a cell remembers of a view."""
        return F.normalize(self.key(tokens.float()), dim=-1)

    def novelty(
        self, state: torch.Tensor, index: torch.Tensor, valid: torch.Tensor, keys: torch.Tensor
    ) -> torch.Tensor:
        """(B, N) change-logit increment: novelty_gain x (1 - cos(the patch's key, the key its cell holds)),
        0 where the patch has no place or the cell was never written. state (B, cells, D); index, valid
        (B, N); keys (B, N, D) from keys()."""
        held = torch.gather(state, 1, index[..., None].expand(-1, -1, state.shape[-1])).float()  # (B, N, D)
        written = (held.abs().sum(dim=-1) > 0) & valid
        novelty = (1.0 - (keys * held).sum(dim=-1)) * written.float()  # held is a unit vector where written
        return self.novelty_gain * novelty

    @property
    def novelty_gain(self) -> torch.Tensor:
        return 10.0 * self.novelty_gain_tenths

    def write(
        self, state: torch.Tensor, index: torch.Tensor, valid: torch.Tensor, keys: torch.Tensor,
        tokens: torch.Tensor,
    ) -> torch.Tensor:
        """Move the cells under the frame's patches towards their keys (keys() of the tokens), by a gate from
        the tokens; cells no patch looks at stay as they were.

        Patches that share a cell are averaged first, so each touched cell takes one step per frame.
        """
        B, C, D = state.shape
        flat = (index + torch.arange(B, device=index.device)[:, None] * C)[valid]  # (K,) cells over the batch
        if flat.numel() == 0:
            return state
        cells, inverse = torch.unique(flat, return_inverse=True)  # (U,), (K,)
        key = keys[valid].float()  # (K, D)
        x = tokens[valid].float()
        gate = torch.sigmoid(self.gate(x)).float()  # (K, 1); fp32: under autocast the linear gives fp16
        ones = torch.ones_like(gate[:, 0])
        count = torch.zeros(len(cells), device=x.device, dtype=x.dtype).index_add_(0, inverse, ones)[:, None]
        mean_key = torch.zeros(len(cells), D, device=x.device, dtype=x.dtype).index_add_(0, inverse, key) / count
        mean_gate = torch.zeros(len(cells), 1, device=x.device, dtype=x.dtype).index_add_(0, inverse, gate) / count
        rows = state.reshape(B * C, D)
        old = rows[cells].float()
        unwritten = (old.abs().sum(dim=-1, keepdim=True) == 0).float()
        g = mean_gate + (1.0 - mean_gate) * unwritten  # a place seen for the first time takes its view whole
        new = F.normalize((1.0 - g) * old + g * mean_key, dim=-1)
        return rows.index_copy(0, cells, new.to(state.dtype)).reshape(B, C, D)
