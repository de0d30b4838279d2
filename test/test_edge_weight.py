"""train --edge-weight: the unchanged band around each change weighs more in the mask loss (losses.edge_band)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from dataclasses import replace  # noqa: E402

from test_model import moving_square_batch  # noqa: E402
from tiny_model import TINY, tiny_model  # noqa: E402

from spatial_memory_ros.model.config import TrainConfig  # noqa: E402
from spatial_memory_ros.model.losses import LossWeights, edge_band, mask_loss  # noqa: E402
from spatial_memory_ros.model.train import chunk_loss  # noqa: E402

PATCH = 8


def _square(size: int = 32) -> torch.Tensor:
    """Two lanes, each a 32 x 32 target with an 8 x 8 changed square at (12..19, 12..19)."""
    target = torch.zeros(2, 1, size, size)
    target[:, :, 12:20, 12:20] = 1.0
    return target


def _halo_logits(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits at mask stride 2 that mark the square and a ring of one cell around it (a halo)."""
    cells = torch.nn.functional.max_pool2d(target, 2)  # (2, 1, 16, 16)
    grown = torch.nn.functional.max_pool2d(cells, 3, stride=1, padding=1)
    logits = torch.where(grown > 0, 4.0, -4.0)
    patch = torch.zeros(2, (target.shape[-1] // PATCH) ** 2)
    return logits, patch


def test_the_band_is_the_ring_around_a_change_and_nothing_else() -> None:
    band = edge_band(_square(), 2)
    assert band[0, 0, 10:22, 10:22].sum() == 12 * 12 - 8 * 8  # the ring, 2 px wide
    assert band[0, 0, 12:20, 12:20].sum() == 0  # not the change itself
    assert band.sum() == 2 * (12 * 12 - 8 * 8)  # nothing farther


def test_a_halo_costs_more_with_the_edge_weight_on_the_lanes_asked_only() -> None:
    target = _square()
    logits, patch = _halo_logits(target)
    plain = mask_loss(logits, patch, target, PATCH, LossWeights())
    weighted = mask_loss(logits, patch, target, PATCH, LossWeights(edge=4.0))
    assert float(weighted) > 1.5 * float(plain)  # the halo's cells are most of the BCE, now weighted 5x

    none = mask_loss(logits, patch, target, PATCH, LossWeights(edge=4.0), edge_lanes=torch.tensor([False, False]))
    assert float(none) == pytest.approx(float(plain))
    one = mask_loss(logits, patch, target, PATCH, LossWeights(edge=4.0), edge_lanes=torch.tensor([True, False]))
    assert float(plain) < float(one) < float(weighted)

    exact = torch.where(torch.nn.functional.max_pool2d(target, 2) > 0, 4.0, -4.0)  # no halo: the weight costs little
    assert float(mask_loss(exact, patch, target, PATCH, LossWeights(edge=4.0))) < 0.5 * float(plain)


def test_training_weights_the_band_only_on_frames_with_a_still_background() -> None:
    """chunk_loss hands the batch's background_valid to the mask loss: no still frame, no edge term."""
    model = tiny_model(seed=5, config=replace(TINY, background=True))
    batch = moving_square_batch()
    T, B = batch["images"].shape[:2]
    batch["background"] = batch["images"][:1].expand(T, B, *batch["images"].shape[2:]).clone()
    only_mask = {"cpc": 0.0, "consistency": 0.0, "reid": 0.0}

    def mask_part(edge: float, valid: list[bool]) -> float:
        batch["background_valid"] = torch.tensor([valid] * T)
        with torch.no_grad():
            _, logs, _ = chunk_loss(model, batch, model.initial_state(B), LossWeights(edge=edge, **only_mask))
        return logs["mask"]

    assert mask_part(8.0, [False, False]) == pytest.approx(mask_part(0.0, [False, False]))
    assert mask_part(8.0, [True, False]) > mask_part(0.0, [True, False]) + 1e-4


def test_a_negative_edge_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="edge_weight"):
        TrainConfig(edge_weight=-1.0).validate()
