"""Place memory: a fixed grid of floor cells, each a slot that remembers what the camera saw there.

The slot memory (memory.py) holds a few global slots; it can say "something like this was seen", not
"this spot of the floor had a box on it three minutes ago", which is what a moved or vanished item needs.
Here each patch whose ray meets the floor reads the cell under its floor point (map frame), so a patch
sees the memory of its own place however the camera got there, and after the encoder writes its token into
that cell through a GRU cell: the update gate lets a cell keep what it holds while an agent passes over it.

Cells are indexed modulo place_cells in x and y (a torus of place_cells * place_cell_m metres), so the
state has a fixed size for any map: places that far apart share a cell, and the model then sees the
other place's memory, as it would after a long absence. State: (B, place_cells**2, dim), zeros at start.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig


class PlaceMemory(nn.Module):
    """place_cells x place_cells floor cells of dim floats; read() and write() per patch."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d = config.dim
        self.config = config
        self.read_proj = nn.Linear(d + 1, d)  # the cell's content and whether it was ever written
        nn.init.zeros_(self.read_proj.weight)  # starts as "no place memory": a model without it is unchanged
        nn.init.zeros_(self.read_proj.bias)
        self.write_norm = nn.LayerNorm(d)
        self.gru = nn.GRUCell(d, d)

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

    def read(self, state: torch.Tensor, index: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """state (B, cells, D), index and valid (B, N) -> (B, N, D) to add to the patch tokens."""
        content = torch.gather(state, 1, index[..., None].expand(-1, -1, state.shape[-1]))  # (B, N, D)
        written = (content.abs().sum(dim=-1, keepdim=True) > 0).to(content.dtype)  # (B, N, 1)
        out = self.read_proj(torch.cat([content, written], dim=-1))
        return out * valid[..., None].to(out.dtype)

    def write(
        self, state: torch.Tensor, index: torch.Tensor, valid: torch.Tensor, tokens: torch.Tensor
    ) -> torch.Tensor:
        """Fold the frame's tokens (B, N, D) into the cells under them; cells no patch looks at stay as they were.

        Patches that share a cell are averaged first, so each touched cell takes one GRU step per frame.
        """
        B, C, D = state.shape
        flat = (index + torch.arange(B, device=index.device)[:, None] * C)[valid]  # (K,) cells over the batch
        if flat.numel() == 0:
            return state
        cells, inverse = torch.unique(flat, return_inverse=True)  # (U,), (K,)
        x = self.write_norm(tokens[valid].float())  # (K, D)
        total = torch.zeros(len(cells), D, device=x.device, dtype=x.dtype).index_add_(0, inverse, x)
        count = torch.zeros(len(cells), device=x.device, dtype=x.dtype).index_add_(0, inverse, torch.ones_like(x[:, 0]))
        rows = state.reshape(B * C, D)
        new = self.gru(total / count[:, None], rows[cells].float())  # (U, D)
        return rows.index_copy(0, cells, new.to(state.dtype)).reshape(B, C, D)
