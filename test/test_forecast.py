"""The forecast probe (model.forecast): Recall@1 of the predictive head's forecasts, and the memory it reads."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the model needs it; without it the rest of the suite still runs
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from tiny_model import INTR, TINY, tiny_model  # noqa: E402

from spatial_memory_ros.model.forecast import (  # noqa: E402
    StreamForecasts,
    forecast_recall,
    persistence,
    run_stream,
    run_streams,
)

K = 2


def _stream(seed: int, length: int = 40, E: int = 8) -> StreamForecasts:
    """Random unit targets; forecasts that are exactly the frame k later."""
    targets = F.normalize(torch.randn(length, E, generator=torch.Generator().manual_seed(seed)), dim=-1)
    return StreamForecasts(targets[K:].clone(), targets, K)


def test_forecasts_of_the_right_frame_score_one_and_chance_is_one_in_the_candidates() -> None:
    streams = [_stream(0), _stream(1), _stream(2)]
    r = forecast_recall(streams, window=4)
    assert r.recall_at_1 == 1.0
    assert r.chance == pytest.approx(1 / 12)
    assert r.forecasts == 3 * 4 * ((40 - K) // 4)  # whole groups only
    spaced = forecast_recall(streams, window=4, stride=3)
    assert spaced.recall_at_1 == 1.0 and spaced.forecasts == 3 * 4 * ((40 - K) // 12)


def test_a_forecast_of_the_wrong_frame_or_stream_scores_nothing() -> None:
    a, b = _stream(0), _stream(1)
    late = StreamForecasts(a.targets[K + 1:K + 1 + len(a.forecasts) - 1], a.targets, K)  # one frame too late
    # each forecast but a group's last is exactly another candidate (the next frame's): never right
    assert forecast_recall([late], window=4).recall_at_1 <= 0.25
    swapped = [StreamForecasts(b.forecasts, a.targets, K), StreamForecasts(a.forecasts, b.targets, K)]
    assert forecast_recall(swapped, window=4).recall_at_1 == 0.0


def test_bad_windows_and_short_targets_are_refused() -> None:
    a = _stream(0)
    with pytest.raises(ValueError):
        forecast_recall([StreamForecasts(a.forecasts, a.targets[:10], K)], window=4)
    with pytest.raises(ValueError):
        forecast_recall([a], window=0)


def test_persistence_forecasts_the_frame_seen_now() -> None:
    # a stream that shows one view for 10 frames, then another: "nothing changes" is right except near a cut
    views = F.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(3)), dim=-1)
    targets = views.repeat_interleave(10, dim=0)
    p = persistence(StreamForecasts(torch.zeros(40 - K, 8), targets, K))
    assert torch.equal(p.forecasts, targets[:40 - K])
    # candidates 10 frames apart each show a different view: the frame itself finds the one k later
    assert forecast_recall([p], window=3, stride=10).recall_at_1 == 1.0


def _frames(seed: int, n: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for t in range(n):
        c, s = math.cos(0.05 * t), math.sin(0.05 * t)
        T = np.eye(4)
        T[:3, :3] = [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]  # turning: every frame has its own pose
        out.append((rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), INTR.K, T))
    return out


def test_without_memory_a_forecast_knows_only_where_the_camera_will_be() -> None:
    model = tiny_model()
    a, b = _frames(0, 12), _frames(1, 12)  # the same poses, other pictures
    off_a, off_b = (run_stream(model, f, use_memory=False) for f in (a, b))
    on_a, on_b = (run_stream(model, f, use_memory=True) for f in (a, b))
    assert off_a.forecasts.shape == (12 - TINY.predict_k, TINY.embed_dim) and off_a.k == TINY.predict_k
    assert off_a.targets.shape == (12, TINY.embed_dim)
    assert torch.allclose(off_a.forecasts, off_b.forecasts, atol=1e-6)  # the pictures never reach it
    assert not torch.allclose(off_a.forecasts[0], off_a.forecasts[5])  # the pose does
    assert not torch.allclose(on_a.forecasts, on_b.forecasts, atol=1e-3)  # the memory of the pictures does
    assert torch.equal(on_a.targets, off_a.targets)  # the target is the frame alone: no memory in it
    assert not torch.allclose(on_a.targets, on_b.targets, atol=1e-3)  # but the picture


def test_one_pass_for_the_memory_and_its_ablation_gives_the_two_runs() -> None:
    model = tiny_model()
    frames = _frames(2, 10)
    both = run_streams(model, frames, use_memory=(True, False))
    for run, memory in zip(both, (True, False), strict=True):
        alone = run_stream(model, frames, use_memory=memory)
        assert torch.allclose(run.forecasts, alone.forecasts, atol=1e-6) and torch.equal(run.targets, alone.targets)
    assert not torch.allclose(both[0].forecasts, both[1].forecasts, atol=1e-3)  # neither state leaked into the other
