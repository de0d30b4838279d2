"""The training losses' own promises, apart from any model."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from spatial_memory_ros.model.losses import consistency_loss  # noqa: E402


def _chunk(change: float, lanes: int = 2) -> torch.Tensor:
    """(3, lanes, 3, 16, 16) uint8 frames: grey with sensor noise, and `change` of the picture painted white in
    the second and third frame."""
    g = torch.Generator().manual_seed(0)
    frames = (120 + 2 * torch.randn(3, lanes, 3, 16, 16, generator=g)).clamp(0, 255).to(torch.uint8)
    cells = round(change * 256)
    for t in (1, 2):
        frames[t].view(lanes, 3, -1)[:, :, : t * cells // 2] = 255
    return frames


def test_memory_change_costs_where_nothing_was_seen_to_change() -> None:
    """The penalty was scale-free over its chunk: a chunk with nothing changing paid what one with much did."""
    step = [torch.zeros(2, 4, 8), torch.zeros(2, 4, 8), torch.ones(2, 4, 8), 2 * torch.ones(2, 4, 8)]
    still, busy = consistency_loss(step, _chunk(0.0)), consistency_loss(step, _chunk(0.3))
    assert float(still) > 0.9  # noise alone backs nothing: the memory's change (1.0 per step) is paid in full
    assert float(busy) < 0.01 * float(still)
    assert float(consistency_loss([torch.zeros(2, 4, 8)] * 4, _chunk(0.0))) == 0.0  # a memory that kept still


def test_one_frame_has_nothing_to_compare() -> None:
    assert float(consistency_loss([torch.zeros(1, 2, 2), torch.ones(1, 2, 2)], _chunk(0.1, lanes=1)[:1])) == 0.0
