"""Gated recurrent memory with attention: a fixed set of slots, read by the encoder, written through GRU gates.

State: (B, memory_slots, dim) floats, the same size after one frame or a million. Writing: every slot
attends over the frame's tokens (slots are queries), and the attended vector is the input of a GRUCell
whose hidden state is the slot. The update gate lets a slot keep what it holds when the frame brings
nothing new; the GRU's convex blend of the old slot and a tanh candidate keeps every value within
[-1, 1] once the state starts there, so the state is bounded in value as well as in size.
Reading: learned queries, shifted by an embedding of the camera pose, attend over the slots and give
the encoder its memory tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig


class CrossAttention(nn.Module):
    """Multi-head attention of queries (B, Q, D) over a context (B, L, D)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, queries: torch.Tensor, context: torch.Tensor) -> torch.Tensor:  # -> (B, Q, D)
        B, Q, D = queries.shape
        L, h = context.shape[1], self.heads
        q = self.q(self.norm_q(queries)).reshape(B, Q, h, D // h).transpose(1, 2)  # (B, h, Q, D/h)
        kv = self.kv(self.norm_kv(context)).reshape(B, L, 2, h, D // h).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, kv[0], kv[1])  # (B, h, Q, D/h)
        return self.proj(out.transpose(1, 2).reshape(B, Q, D))


class RecurrentMemory(nn.Module):
    """memory_slots x dim state; read() gives the encoder its memory tokens, write() folds a frame in."""

    def __init__(self, config: ModelConfig, read_attention: CrossAttention, write_attention: CrossAttention) -> None:
        super().__init__()
        d = config.dim
        self.config = config
        self.initial = nn.Parameter(torch.randn(config.memory_slots, d) * 0.02)  # (S, D), |values| << 1
        self.read_queries = nn.Parameter(torch.randn(config.read_tokens, d) * 0.02)  # (R, D)
        self.read_attention = read_attention
        self.write_attention = write_attention
        self.gru = nn.GRUCell(d, d)

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> torch.Tensor:
        """(B, S, D) the state before the first frame (and the state a memory-disabled model keeps)."""
        return self.initial.to(device).unsqueeze(0).expand(batch, -1, -1).clone()

    def read(self, state: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
        """state (B, S, D), camera (B, D) pose embedding -> memory tokens (B, R, D)."""
        queries = self.read_queries.unsqueeze(0) + camera.unsqueeze(1)  # (B, R, D)
        return queries + self.read_attention(queries, state)

    def write(self, state: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """state (B, S, D), the frame's tokens (B, L, D) -> new state (B, S, D) through GRU gates."""
        B, S, D = state.shape
        update = self.write_attention(state, tokens)  # (B, S, D) what each slot finds in this frame
        new = self.gru(update.reshape(B * S, D), state.reshape(B * S, D))
        return new.reshape(B, S, D).to(state.dtype)  # float32 even under autocast: the state never drifts
