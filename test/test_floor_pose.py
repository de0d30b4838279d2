"""core.floor_pose: the floor memory's reach and allowance for a pose error, and the error meter."""

from __future__ import annotations

import numpy as np
import pytest

from spatial_memory_ros.core.floor_pose import PoseErrorMeter, edge_allowance, pose_reach, shift_cells


@pytest.mark.parametrize("height", [0.5, 1.0, 4.5])
def test_the_reach_is_where_the_error_moves_the_floor_by_the_most_cells_allowed(height: float) -> None:
    d = pose_reach(height, 0.4, 0.01, 3.0, 0.05)
    assert d > height
    at = shift_cells(np.array([d - 1e-3, d, d + 1e-3], np.float32), height, 0.4, 0.01, 0.05)
    assert at[0] < 3.0 < at[2] and at[1] == pytest.approx(3.0, rel=1e-3)
    assert pose_reach(height, 0.0, 0.01, 3.0, 0.05) == np.inf  # no rotation error: no limit
    assert pose_reach(height, 0.4, 0.2, 3.0, 0.05) == 0.0  # the shift alone is over the limit


def test_the_meter_measures_the_std_of_the_shifts_a_jittered_pose_makes() -> None:
    K = np.array([[250.0, 0.0, 160.0], [0.0, 250.0, 120.0], [0.0, 0.0, 1.0]])
    rng = np.random.default_rng(0)
    meter = PoseErrorMeter(frames=20)
    deg = []
    for _ in range(2000):
        dx, dy = np.tan(np.radians(0.3 * rng.standard_normal(2))) * 250.0
        meter.add(float(dx), float(dy), K)
        deg.append(meter.deg)
    assert np.median(deg[200:]) == pytest.approx(0.3, rel=0.15)
    for _ in range(200):  # the pose becomes exact: the meter forgets
        meter.add(0.01, -0.01, K)
    assert meter.deg < 0.01


def test_an_edge_is_forgiven_only_where_both_looks_have_it() -> None:
    floor = np.full((20, 20, 3), 100.0, np.float32)
    lined = floor.copy()
    lined[:, 10:] = 200.0  # a line's edge at column 10
    moved = floor.copy()
    moved[:, 11:] = 200.0  # the same edge a cell over: the pose, not the floor
    shift = np.full((20, 20), 1.5, np.float32)
    allowed = edge_allowance(moved, lined, shift, 3.0)
    assert allowed[10, 10] > 100.0  # the misregistered edge's whole difference is allowed
    # a board laid on the smooth floor: the old look has no edge there, so nothing is allowed
    assert edge_allowance(lined, floor, shift, 3.0).max() == 0.0
    assert edge_allowance(moved, lined, np.zeros((20, 20), np.float32), 3.0).max() == 0.0  # an exact pose
