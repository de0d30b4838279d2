"""The predictive (InfoNCE) loss asks the memory to forecast the picture: its target is the frame alone.

Its target used to be the mean of forward()'s tokens, which carry the frame's pose features and memory read, so the
positive could be picked among the chunk's frames with one picture in every frame (BENCHMARKS "The predictive loss
has a shortcut"; scripts/cpc_shortcut_probe.py trains on it)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tiny_model import TINY, tiny_model  # noqa: E402

from spatial_memory_ros.model.losses import LossWeights  # noqa: E402
from spatial_memory_ros.model.train import chunk_loss  # noqa: E402

torch.set_num_threads(1)
T, B = 6, 4
ONLY_CPC = LossWeights(mask=0.0, dice=0.0, patch=0.0, consistency=0.0, reid=0.0, cpc=1.0)
K_TINY = torch.tensor([[[40.0, 0.0, 16.0], [0.0, 40.0, 12.0], [0.0, 0.0, 1.0]]])


def _poses(rng: np.random.Generator, n: int) -> torch.Tensor:
    """n cameras 1.2 m up looking down at the floor from random places and headings, (n, 4, 4)."""
    out = np.tile(np.eye(4, dtype=np.float32), (n, 1, 1))
    for i in range(n):
        yaw = rng.uniform(-math.pi, math.pi)
        c, s = math.cos(yaw), math.sin(yaw)
        down = np.array([[c, s * 0.6, s * 0.8], [-s, c * 0.6, c * 0.8], [0.0, -0.8, 0.6]])  # optical z tilted down
        out[i, :3, :3] = down @ np.diag([1.0, -1.0, -1.0])
        out[i, :3, 3] = (*rng.uniform(-3, 3, 2), 1.2)
    return torch.from_numpy(out)


def _batch(pictures: np.ndarray, has_pose: bool, seed: int = 0) -> dict[str, torch.Tensor]:
    """pictures (T, B, 3, h, w) uint8, a random pose per frame."""
    rng = np.random.default_rng(seed)
    h, w = TINY.image_height, TINY.image_width
    return {"images": torch.from_numpy(pictures), "masks": torch.zeros(T, B, 1, h, w),
            "poses": _poses(rng, T * B).reshape(T, B, 4, 4), "K": K_TINY.expand(B, 3, 3),
            "has_pose": torch.full((B,), has_pose), "labels": torch.zeros(T, B, *TINY.grid, dtype=torch.long)}


def _one_picture(seed: int = 0) -> np.ndarray:
    picture = np.random.default_rng(seed).integers(0, 256, (1, 1, 3, TINY.image_height, TINY.image_width), np.uint8)
    return np.broadcast_to(picture, (T, B, 3, TINY.image_height, TINY.image_width)).copy()


def test_frame_tokens_see_the_picture_and_nothing_else() -> None:
    model = tiny_model()
    rng = np.random.default_rng(1)
    image = torch.from_numpy(rng.integers(0, 256, (1, 3, TINY.image_height, TINY.image_width), np.uint8))
    other = torch.from_numpy(rng.integers(0, 256, (1, 3, TINY.image_height, TINY.image_width), np.uint8))
    with torch.no_grad():
        base = model.frame_tokens(image)
        again = model.frame_tokens(torch.cat([image, other]))  # batched with another frame
        # forward()'s tokens with two poses and two memories differ: the shortcut the target must not carry
        state = model.initial_state(1)
        moved = model(image, K_TINY, _poses(rng, 1), torch.ones(1, dtype=torch.bool), state).state
        a = model(image, K_TINY, _poses(rng, 1), torch.ones(1, dtype=torch.bool), state).tokens
        b = model(image, K_TINY, _poses(rng, 1), torch.ones(1, dtype=torch.bool), moved).tokens
    assert not torch.allclose(a, b, atol=1e-4)
    assert torch.allclose(again[:1], base, atol=1e-6)
    assert not torch.allclose(again[1:], base, atol=1e-3)


@pytest.mark.parametrize("has_pose", [True, False])
def test_one_picture_everywhere_leaves_the_loss_at_chance(has_pose: bool) -> None:
    """With one picture in every frame nothing tells the positive from the negatives: InfoNCE is ln(candidates),
    even after training on it (it fell to 0.44 with poses, to ln 4 without, when the target carried them)."""
    torch.manual_seed(0)
    model = tiny_model().train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    chance = math.log((T - TINY.predict_k) * B)
    for step in range(15):
        loss, logs, _ = chunk_loss(model, _batch(_one_picture(), has_pose, seed=step), model.initial_state(B),
                                   ONLY_CPC)
        assert logs["cpc"] == pytest.approx(chance, abs=1e-4), step
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_the_loss_trains_the_memory_not_the_encoder_toward_its_target() -> None:
    """The memory (through the forecast) and the target's projection learn from it; the target's encoder pass has
    no gradient, so the encoder is reached only through what the memory wrote."""
    model = tiny_model().train()
    pictures = np.random.default_rng(3).integers(0, 256, (T, B, 3, TINY.image_height, TINY.image_width), np.uint8)
    loss, logs, _ = chunk_loss(model, _batch(pictures, True), model.initial_state(B), ONLY_CPC)
    assert logs["cpc"] > 0
    loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert grads["predict_head.target_proj.1.weight"] is not None
    assert grads["memory.gru.weight_ih"] is not None and float(grads["memory.gru.weight_ih"].abs().sum()) > 0


def test_no_predictive_loss_without_a_memory_or_a_head_to_train() -> None:
    model = tiny_model().train()
    pictures = np.random.default_rng(4).integers(0, 256, (T, B, 3, TINY.image_height, TINY.image_width), np.uint8)
    batch = _batch(pictures, True)
    _, on, _ = chunk_loss(model, batch, model.initial_state(B), ONLY_CPC)
    assert on["cpc"] > 0
    # a memory-dropout chunk (the ablation in training): its forecasts would read the carried memory
    _, off, _ = chunk_loss(model, batch, model.initial_state(B), ONLY_CPC, use_memory=False)
    assert off["cpc"] == 0.0
    # a --freeze-base fine-tune: the head cannot learn, so no encoder pass is spent on its targets
    model.requires_grad_(False)
    _, frozen, _ = chunk_loss(model, batch, model.initial_state(B), ONLY_CPC)
    assert frozen["cpc"] == 0.0
    # and a chunk with no frame k ahead
    short = {key: (v[: TINY.predict_k] if v.ndim and v.shape[0] == T else v) for key, v in batch.items()}
    _, none_ahead, _ = chunk_loss(tiny_model().train(), short, model.initial_state(B), ONLY_CPC)
    assert none_ahead["cpc"] == 0.0


@pytest.mark.parametrize("background", [False, True])
def test_frame_tokens_are_forward_given_no_pose_no_memory_and_no_background(background: bool) -> None:
    """frame_tokens is the lighter twin of forward()'s encoder input (no heads): it must stay what forward gives a
    frame without pose, with the memory off and, for a model with the still-background input, no background."""
    model = tiny_model(config=replace(TINY, background=background))
    rng = np.random.default_rng(5)
    image = torch.from_numpy(rng.integers(0, 256, (2, 3, TINY.image_height, TINY.image_width), np.uint8))
    carried = model.initial_state(2) + 0.3  # not the initial memory: use_memory=False must not read it
    with torch.no_grad():
        tokens = model.frame_tokens(image)
        plain = model(image, K_TINY.expand(2, 3, 3), _poses(rng, 2), torch.zeros(2, dtype=torch.bool), carried,
                      use_memory=False).tokens
    assert tokens.shape == (2, TINY.num_patches, TINY.dim)
    assert torch.allclose(tokens, plain, atol=1e-5)
