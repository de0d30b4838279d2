"""The draws' rule (bench/draw_rule.py): what makes a retrained network a candidate."""

from __future__ import annotations

import dataclasses

import pytest

from spatial_memory_ros.bench.draw_rule import SHIPPED, SHIPPED_MEANS, VALIDATION_RUNS, Figures, judge
from spatial_memory_ros.bench.seeds import VALIDATION_SEEDS


def test_the_runs_are_validation_seeds_and_the_reference_covers_them() -> None:
    assert all(run.seed in VALIDATION_SEEDS for run in VALIDATION_RUNS)
    assert {run.name for run in VALIDATION_RUNS} == set(SHIPPED)
    # the recorded means agree with the recorded (rounded) figures
    for key in ("change_miou", "idf1"):
        mean = sum(getattr(f, key) for f in SHIPPED.values()) / len(SHIPPED)
        assert mean == pytest.approx(SHIPPED_MEANS[key], abs=5e-4)


def test_the_shipped_figures_pass_their_own_rule() -> None:
    assert judge(SHIPPED).passed is True


def test_a_depot_run_under_the_floor_fails_at_once() -> None:
    verdict = judge({"depot_patrol_200": Figures(0.776, 0.448, 0.450)})
    assert verdict.passed is False
    assert "depot_patrol_200" in verdict.reasons[0]
    assert len(verdict.missing) == len(VALIDATION_RUNS) - 1


def test_good_runs_so_far_leave_it_undecided() -> None:
    verdict = judge({name: SHIPPED[name] for name in ("depot_patrol_200", "warehouse_patrol_200")})
    assert verdict.passed is None
    assert verdict.reasons == ()


def test_a_mean_more_than_the_margin_below_fails() -> None:
    # one trained-map patrol that marks a floor (the seed-3000 draw of the twelfth session) sinks both means
    worse = dict(SHIPPED)
    worse["home_patrol_200"] = Figures(0.5904, 0.684, 0.724)
    verdict = judge(worse)
    assert verdict.passed is False
    assert any("change mIoU" in r for r in verdict.reasons) and any("IDF1" in r for r in verdict.reasons)


def test_a_drop_inside_the_margin_passes() -> None:
    slightly = {n: dataclasses.replace(f, change_miou=f.change_miou - 0.005, idf1=f.idf1 - 0.005)
                for n, f in SHIPPED.items()}
    assert judge(slightly).passed is True


def test_a_run_outside_the_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="warehouse_patrol_100"):
        judge({"warehouse_patrol_100": Figures(0.98, 0.97, 0.97)})
