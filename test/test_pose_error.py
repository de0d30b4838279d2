"""bench.pose_error: the localiser's error the bench can put on the methods' camera pose, and only there."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from frame_recorder import run_exact_and_noisy

from spatial_memory_ros.bench.pose_error import PoseError
from spatial_memory_ros.core.errors import BadInputError


def _pose(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    R, _ = cv2.Rodrigues(rng.normal(0.0, 1.0, 3))
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, rng.normal(0.0, 5.0, 3)
    return T


def test_no_error_gives_the_exact_pose_back() -> None:
    T = _pose()
    out = PoseError().apply(T, 7)
    assert np.array_equal(out, T) and out is not T and not PoseError().active


def test_the_error_has_the_asked_spread_and_keeps_a_rigid_pose() -> None:
    error, T = PoseError(rotation_deg=0.5, translation_m=0.03, seed=3), _pose(1)
    angles, shifts = [], []
    for index in range(2000):
        out = error.apply(T, index)
        R = out[:3, :3]
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-9) and np.isclose(np.linalg.det(R), 1.0)
        assert out[2, 3] == T[2, 3] and np.array_equal(out[3], [0, 0, 0, 1])  # the height is known
        rotvec, _ = cv2.Rodrigues(T[:3, :3].T @ R)  # the error in the camera's own axes
        angles.append(np.degrees(rotvec.ravel()))
        shifts.append(out[:2, 3] - T[:2, 3])
    assert np.std(angles, axis=0) == pytest.approx([0.5] * 3, rel=0.08)
    assert np.std(shifts, axis=0) == pytest.approx([0.03] * 2, rel=0.08)
    assert np.abs(np.mean(angles, axis=0)).max() < 0.05  # jitter, no bias


def test_the_same_frame_gets_the_same_error_and_the_next_frame_another() -> None:
    error, T = PoseError(rotation_deg=0.3, translation_m=0.01, seed=5), _pose()
    assert np.array_equal(error.apply(T, 10), PoseError(0.3, 0.01, seed=5).apply(T, 10))
    assert not np.allclose(error.apply(T, 10), error.apply(T, 11))
    assert not np.allclose(error.apply(T, 10), PoseError(0.3, 0.01, seed=6).apply(T, 10))


@pytest.mark.parametrize("bad", [{"rotation_deg": -0.1}, {"translation_m": math.nan}, {"rotation_deg": math.inf}])
def test_a_negative_or_non_finite_spread_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(BadInputError, match="pose error"):
        PoseError(bad.get("rotation_deg", 0.0), bad.get("translation_m", 0.0))


@pytest.mark.timeout(120)
def test_the_bench_moves_the_methods_pose_and_not_the_truth(monkeypatch: pytest.MonkeyPatch) -> None:
    exact, noisy, a, b = run_exact_and_noisy(monkeypatch, pose_noise_deg=0.5, pose_noise_m=0.03)
    assert len(a.frames) == len(b.frames) == exact.frames == noisy.frames > 5
    moved = [np.linalg.norm(p.T_map_cam[:2, 3] - q.T_map_cam[:2, 3]) for p, q in zip(a.frames, b.frames)]
    assert 0.0 < np.median(moved) < 0.2  # every frame's pose is a few cm off
    # the same truth: an empty mask scores the same against it (NaN where a kind of change never happened)
    assert json.dumps(exact.methods["recorder"]["change"]) == json.dumps(noisy.methods["recorder"]["change"])
    assert noisy.to_json()["benchmark"]["pose_noise_deg"] == 0.5
