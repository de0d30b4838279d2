"""bench.depth_error: the depth camera's error the bench can put on the methods' depth, and only there."""

from __future__ import annotations

import json

import numpy as np
import pytest
from frame_recorder import BASE_RUN, run_exact_and_noisy

from spatial_memory_ros.bench import runner
from spatial_memory_ros.bench.depth_error import DepthError
from spatial_memory_ros.core.errors import BadInputError


def test_no_error_gives_the_exact_depth_back() -> None:
    depth = np.full((4, 5), 2.0, np.float32)
    out = DepthError().apply(depth, 3)
    assert np.array_equal(out, depth) and out is not depth and not DepthError().active


def test_the_noise_grows_with_the_square_of_the_distance_and_holes_have_their_share() -> None:
    depth = np.concatenate([np.full((200, 200), 1.0, np.float32), np.full((200, 200), 3.0, np.float32)])
    error = DepthError(sigma_at_1m=0.01, hole_share=0.05, seed=2)
    out = error.apply(depth, 11)
    near, far = out[:200], out[200:]
    assert np.isnan(out).mean() == pytest.approx(0.05, abs=0.005)
    assert np.nanstd(near - 1.0) == pytest.approx(0.01, rel=0.05)
    assert np.nanstd(far - 3.0) == pytest.approx(0.09, rel=0.05)  # 0.01 * 3 ** 2
    assert np.array_equal(error.apply(depth, 11), out, equal_nan=True)  # seeded by the frame: a rerun the same
    assert not np.array_equal(error.apply(depth, 12), out, equal_nan=True)
    assert np.all(depth[:200] == 1.0)  # the truth's array is left as it is


@pytest.mark.parametrize("bad", [{"sigma_at_1m": -0.1}, {"sigma_at_1m": float("nan")}, {"hole_share": 1.0},
                                 {"hole_share": -0.01}])
def test_a_bad_error_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(BadInputError, match="depth"):
        DepthError(**bad)


@pytest.mark.timeout(120)
def test_the_bench_moves_the_methods_depth_and_not_the_truth(monkeypatch: pytest.MonkeyPatch) -> None:
    exact, noisy, a, b = run_exact_and_noisy(monkeypatch, depth_noise_m=0.01, depth_holes=0.02)
    assert len(a.frames) == len(b.frames) == exact.frames == noisy.frames > 5
    for p, q in ((x.depth, y.depth) for x, y in zip(a.frames, b.frames, strict=True)):
        seen = ~np.isnan(p)
        holes = np.isnan(q[seen]).mean()
        assert 0.01 < holes < 0.03
        assert 0.0 < np.nanmedian(np.abs(q - p)[seen]) < 0.5
    assert json.dumps(exact.methods["recorder"]["change"]) == json.dumps(noisy.methods["recorder"]["change"])
    assert noisy.to_json()["benchmark"]["depth_noise_m"] == 0.01
    with pytest.raises(BadInputError, match="depth"):
        runner.BenchConfig(**BASE_RUN, depth_holes=1.5).validate()
