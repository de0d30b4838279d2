"""train --anchor: a fine-tune kept near the model it started from, where that model knows (losses.anchor_loss)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from test_model import moving_square_batch  # noqa: E402
from tiny_model import tiny_model  # noqa: E402

from spatial_memory_ros.model.config import TrainConfig  # noqa: E402
from spatial_memory_ros.model.losses import LossWeights, anchor_loss  # noqa: E402
from spatial_memory_ros.model.train import _teacher_chunk, chunk_loss  # noqa: E402

ONLY_ANCHOR = LossWeights(mask=0.0, dice=0.0, patch=0.0, cpc=0.0, consistency=0.0, reid=0.0)


def _gap(student: torch.nn.Module, teacher_out: list, batch: dict, lane: int) -> float:
    """Mean |P(changed)| difference of student and teacher on one lane over the chunk."""
    state = student.initial_state(2)
    gaps = []
    with torch.no_grad():
        for t in range(batch["images"].shape[0]):
            out = student(batch["images"][t], batch["K"], batch["poses"][t], batch["has_pose"], state)
            state = out.state
            p, q = torch.sigmoid(out.change_logits[lane]), torch.sigmoid(teacher_out[t][0][lane])
            gaps.append(float((p - q).abs().mean()))
    return sum(gaps) / len(gaps)


def test_the_anchor_pulls_the_model_towards_its_start_on_the_lanes_asked_only() -> None:
    teacher, student = tiny_model(seed=3), tiny_model(seed=4).train()
    batch = moving_square_batch()
    anchor, _ = _teacher_chunk(teacher, batch, teacher.initial_state(2))

    batch["at_home"] = torch.tensor([False, False])  # every lane recoloured: nothing to keep
    _, logs, _ = chunk_loss(student, batch, student.initial_state(2), ONLY_ANCHOR, anchor=anchor, anchor_weight=1.0)
    assert logs["anchor"] == 0.0

    batch["at_home"] = torch.tensor([True, False])
    before = _gap(student, anchor, batch, lane=0)
    opt = torch.optim.AdamW(student.parameters(), lr=1e-2)
    for _ in range(40):
        loss, logs, _ = chunk_loss(student, batch, student.initial_state(2), ONLY_ANCHOR, anchor=anchor,
                                   anchor_weight=1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = _gap(student, anchor, batch, lane=0)
    assert after < before / 4, (before, after)


def test_anchor_loss_is_zero_with_no_lane_and_smallest_at_the_targets() -> None:
    logits = torch.randn(2, 1, 3, 4)
    patch = torch.randn(2, 12)
    none = anchor_loss(logits, patch, logits, patch, torch.tensor([False, False]))
    assert float(none) == 0.0
    at_target = anchor_loss(logits, patch, logits, patch, torch.tensor([True, True]))
    off_target = anchor_loss(logits + 1.0, patch - 1.0, logits, patch, torch.tensor([True, True]))
    assert float(off_target) > float(at_target) + 0.05


def test_anchor_needs_the_model_it_stays_near() -> None:
    with pytest.raises(ValueError, match="anchor"):
        TrainConfig(anchor=1.0).validate()
    with pytest.raises(ValueError, match="anchor"):
        TrainConfig(anchor=-1.0, init="x.pt").validate()
    TrainConfig(anchor=1.0, init="x.pt").validate()
