"""The return prior: its Kaplan-Meier fit, the stays it is fitted to, the fit command, and ItemMemory using it."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from spatial_memory_ros.bench.scene import bench_preset
from spatial_memory_ros.cli.main import main
from spatial_memory_ros.core.config import MemoryConfig
from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.core.item_memory import ItemMemory
from spatial_memory_ros.core.return_prior import fit_return_prior, load_return_prior
from spatial_memory_ros.core.store import MemoryStore
from spatial_memory_ros.core.types import ItemObservation
from spatial_memory_ros.sim import get_preset
from spatial_memory_ros.sim.script import build_script
from spatial_memory_ros.sim.spec import MoveSpec
from spatial_memory_ros.sim.stays import displaced_stays

HOME = (0.0, 0.0, 0.0)
AWAY = (3.0, 0.0, 0.0)


# ---- the fit -----------------------------------------------------------------------------------------------


def test_kaplan_meier_without_censoring_is_the_empirical_survival() -> None:
    prior = fit_return_prior([100.0, 200.0, 300.0, 400.0], [True] * 4, step_s=10.0)
    assert [prior.survival_at(t) for t in (0.0, 99.0, 100.0, 250.0, 399.0, 400.0, 1e6)] == [
        1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0
    ]
    assert prior.meta["median_s"] == 200.0 and prior.meta["stays"] == 4


def test_a_censored_stay_counts_while_at_risk_only() -> None:
    # 150 s censored: at 100 s 1 of 3 returns (S = 2/3); at 200 s the only one left at risk returns (S = 0).
    prior = fit_return_prior([100.0, 150.0, 200.0], [True, False, True], step_s=10.0)
    assert prior.survival_at(150.0) == pytest.approx(2 / 3)
    assert prior.survival_at(200.0) == 0.0


def test_p_back_is_conditional_on_what_is_known() -> None:
    prior = fit_return_prior([200.0, 400.0], [True, True], step_s=10.0)  # S = 1, then 0.5 from 200, 0 from 400
    assert prior.p_back(250.0) == pytest.approx(0.5)
    assert prior.p_back(250.0, known_away_s=210.0) == 0.0  # still there after 200 s: it is the 400 s kind
    assert prior.p_back(410.0, known_away_s=210.0) == 1.0
    assert prior.p_back(500.0, known_away_s=450.0) == 0.0  # longer than any stay: the prior does not apply
    assert prior.time_back(0.4) == 200.0 and prior.time_back(0.5) == 400.0


@pytest.mark.parametrize("durations, returned", [([], []), ([10.0], [False]), ([-1.0], [True]), ([1.0], [])])
def test_a_fit_without_returns_or_with_bad_stays_is_refused(durations: list[float], returned: list[bool]) -> None:
    with pytest.raises(BadInputError):
        fit_return_prior(durations, returned)


def test_stays_come_from_put_downs_away_and_back_home() -> None:
    base = get_preset("demo")
    mug = base.items[0]
    moves = (
        MoveSpec(mug.name, 10.0, 12.0, (1.0, 1.0, 0.0)),  # away at 12
        MoveSpec(mug.name, 50.0, 55.0, mug.home),  # home at 55: a 43 s stay, returned
        MoveSpec(mug.name, 60.0, 61.0, (2.0, 1.0, 0.0)),  # away at 61
        MoveSpec(mug.name, 70.0, 72.0, (1.0, 2.0, 0.0)),  # elsewhere at 72: censored after 11 s
    )  # and still away when the scene ends at 100 s: censored after 28 s
    preset = replace(base, moves=moves, shuffle=None, walkers=(), agents=(), duration_s=100.0)
    script = build_script(preset, np.random.default_rng(0))
    stays = [(s.item, s.duration_s, s.returned) for s in displaced_stays(script)]
    assert stays == [(mug.name, 43.0, True), (mug.name, 11.0, False), (mug.name, 28.0, False)]


def test_fit_command_writes_the_curve_of_the_generator_round_trips(tmp_path: Path) -> None:
    out = tmp_path / "prior.json"
    assert main(["fit-return-prior", "--presets", "warehouse", "--seeds", "1000-1001", "--minutes", "20",
                 "--step", "5", "--out", str(out)]) == 0
    prior = load_return_prior(out)
    # Independently of displaced_stays: each shuffle round trip is (out to a spot, back home) in the moves
    # list; time away = put down home - put down at the spot.
    durations = []
    for seed in (1000, 1001):
        script = build_script(bench_preset("warehouse", "patrol", 20.0), np.random.default_rng([seed, 0]))
        homes = {it.name: it.home for it in script.preset.items}
        by_item: dict[str, list[MoveSpec]] = {}
        for m in script.moves:
            by_item.setdefault(m.item, []).append(m)
        for name, ms in by_item.items():
            durations += [b.t_place - a.t_place for a, b in zip(ms[::2], ms[1::2], strict=True) if b.to == homes[name]]
    d = np.array(durations)
    assert prior.meta["stays"] == len(d) > 20 and prior.meta["seeds"] == "1000-1001"
    for t in (0.0, 150.0, 300.0, 500.0, 700.0, 950.0):
        assert prior.survival_at(t) == pytest.approx(np.mean(d > np.floor(t / 5) * 5), abs=1e-6)
    assert json.loads(out.read_text())["meta"]["command"].startswith("spatial-memory")


@pytest.mark.parametrize("step_s", [1e-9, 0.0, -1.0, math.nan, math.inf])
def test_a_step_that_makes_no_sane_curve_is_refused_before_any_allocation(step_s: float) -> None:
    """--step 1e-9: numpy was asked for 6.6 TiB and the command ended in a MemoryError traceback."""
    with pytest.raises(BadInputError, match="step"):
        fit_return_prior([100.0, 7200.0], [True, True], step_s=step_s)
    assert len(fit_return_prior([100.0, 7200.0], [True, True], step_s=0.1).survival) == 72_001  # fine grid: allowed


def test_fit_command_refuses_a_week_and_more_of_minutes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--minutes 1e300 built a scene script without end, printing nothing."""
    assert main(["fit-return-prior", "--seeds", "1000", "--minutes", "1e300", "--out", str(tmp_path / "p.json")]) == 2
    assert "at most 10080" in capsys.readouterr().err and not (tmp_path / "p.json").exists()


def test_fit_command_refuses_held_out_seeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit-return-prior", "--seeds", "100-105", "--out", str(tmp_path / "p.json")]) == 2
    assert "training seeds" in capsys.readouterr().err and not (tmp_path / "p.json").exists()


def test_fit_command_with_nothing_to_fit_or_a_folder_to_write_says_so(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """It said "fit_return_prior needs finite durations >= 0, one flag each, at least one return"."""
    assert main(["fit-return-prior", "--presets", "home", "--seeds", "1000", "--minutes", "1", "--out",
                 str(tmp_path / "p.json")]) == 2
    assert "no item goes back to its usual place in home" in capsys.readouterr().err
    assert main(["fit-return-prior", "--seeds", "1000", "--minutes", "1", "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_the_shipped_prior_loads_and_was_fitted_on_training_seeds() -> None:
    prior = load_return_prior()
    assert int(str(prior.meta["seeds"]).split("-")[0]) >= 1000
    assert 120.0 < prior.time_back(0.5) < 900.0  # inside the presets' away ranges (90-900 s plus carrying)


# ---- ItemMemory with the prior ---------------------------------------------------------------------------


def obs(at: tuple[float, float, float], t: float) -> ItemObservation:
    return ItemObservation(item="mug", position=np.array(at), stamp=t, confidence=0.9)


def memory_with(prior_path: Path, *, on: bool = True, store: MemoryStore | None = None) -> ItemMemory:
    config = MemoryConfig(db_path="", return_prior=on, return_prior_path=str(prior_path), return_prior_min_p=0.5)
    return ItemMemory(config, store)


@pytest.fixture
def prior_path(tmp_path: Path) -> Path:
    """Every training stay lasted 200 s or 400 s: back with P 0.5 after 200 s, surely after 400 s."""
    path = tmp_path / "prior.json"
    path.write_text(json.dumps(fit_return_prior([200.0, 400.0], [True, True], step_s=10.0).to_json()))
    return path


def _home_then_away(memory: ItemMemory, seen_away_until: float = 1000.0) -> None:
    memory.observe([obs(HOME, float(t)) for t in range(0, 901, 10)])  # 15 min at home: its usual place
    memory.observe([obs(AWAY, float(t)) for t in range(1000, int(seen_away_until) + 1, 10)])


def test_the_last_sighting_stands_until_the_learned_time_then_current_is_usual(prior_path: Path) -> None:
    memory = memory_with(prior_path)
    _home_then_away(memory)
    before = memory.locate("mug", now=1000.0 + 390.0)  # P(back) 0.5: not more likely than not
    assert before.current.position[0] == AWAY[0] and before.displaced and not before.current_inferred
    after = memory.locate("mug", now=1000.0 + 401.0)
    assert after.current.position[0] == pytest.approx(HOME[0]) and not after.displaced
    assert after.current_inferred and not after.missing and after.current.confidence == 1.0
    assert after.usual.position[0] == pytest.approx(HOME[0])


def test_a_lower_threshold_answers_home_sooner(prior_path: Path) -> None:
    config = MemoryConfig(db_path="", return_prior=True, return_prior_path=str(prior_path))
    assert config.return_prior_min_p == 0.4  # the default, tuned on training seeds
    memory = ItemMemory(config)
    _home_then_away(memory)
    assert memory.locate("mug", now=1000.0 + 250.0).current_inferred


def test_the_time_away_counts_from_the_first_sighting_there_and_knows_it_stayed(prior_path: Path) -> None:
    memory = memory_with(prior_path, on=True)
    _home_then_away(memory, seen_away_until=1250.0)  # still there 250 s after it was first seen there
    assert not memory.locate("mug", now=1000.0 + 390.0).current_inferred  # the 400 s kind: not yet
    assert memory.locate("mug", now=1000.0 + 401.0).current_inferred  # arrived 1000, not 1250


def test_a_look_at_the_usual_place_that_finds_it_empty_is_known_not_back(prior_path: Path) -> None:
    config = MemoryConfig(db_path="", return_prior=True, return_prior_path=str(prior_path), return_prior_min_p=0.4)
    looked, not_looked = ItemMemory(config), ItemMemory(config)
    for memory in (looked, not_looked):
        _home_then_away(memory)
    home_id = next(p.place_id for p in looked.places_to_check() if p.position[0] == pytest.approx(HOME[0]))
    for _ in range(config.absent_after_checks):  # home seen empty 250 s after it was first seen away
        looked.observe_absent([("mug", home_id)], 1250.0)
    assert not_looked.locate("mug", now=1260.0).current_inferred  # P(back) 0.5 > 0.4
    answer = looked.locate("mug", now=1260.0)  # not back at 1250: the 400 s kind
    assert not answer.current_inferred and not answer.missing and answer.current.position[0] == AWAY[0]
    assert looked.locate("mug", now=1401.0).current_inferred


def test_off_by_default_and_when_disabled(prior_path: Path) -> None:
    assert not MemoryConfig().return_prior
    memory = memory_with(prior_path, on=False)
    _home_then_away(memory)
    answer = memory.locate("mug", now=1e6)
    assert answer.current.position[0] == AWAY[0] and not answer.current_inferred and answer.displaced


def test_an_item_at_its_usual_place_is_left_alone(prior_path: Path) -> None:
    memory = memory_with(prior_path)
    memory.observe([obs(HOME, float(t)) for t in range(0, 901, 10)])
    answer = memory.locate("mug", now=1e5)
    assert not answer.current_inferred and answer.current.confidence == 0.9


def test_the_clock_is_the_newest_stamp_and_survives_a_restart(prior_path: Path, tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    memory = memory_with(prior_path, store=MemoryStore(db))
    _home_then_away(memory)
    assert not memory.locate("mug").current_inferred  # now = the last sighting, 1000 s
    memory.advance(1401.0)
    memory.advance(math.nan)  # ignored
    memory.advance(5.0)  # never back
    assert memory.locate("mug").current_inferred
    memory.close()
    again = memory_with(prior_path, store=MemoryStore(db))  # clock and arrival restored from the store
    # the clock too: it used to fall back to the last sighting, and the restarted memory answered the mug away
    assert again.locate("mug").current_inferred
    assert again.locate("mug", now=1401.0).current_inferred
    again.close()


def test_a_missing_prior_file_says_what_to_change(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="return_prior_path"):
        memory_with(tmp_path / "nope.json")
    with pytest.raises(BadInputError, match="return_prior_min_p"):
        ItemMemory(MemoryConfig(db_path="", return_prior_min_p=1.0))


@pytest.mark.parametrize("content", ['{"format": "spatial_memory.return_prior/1", "step_s": 10}',
                                     '{"format": "spatial_memory.return_prior/1", "step_s": "ten", "survival": [1]}',
                                     '{"format": "spatial_memory.return_prior/1", "step_s": 10, "survival": 3}',
                                     '{"format": "spatial_memory.return_prior/1", "ste'])
def test_a_damaged_prior_file_names_itself(tmp_path: Path, content: str) -> None:
    """A key missing, a number that is not one, a file cut short: BadInputError naming the file and the fix."""
    path = tmp_path / "prior.json"
    path.write_text(content)
    with pytest.raises(BadInputError, match="fit-return-prior") as err:
        memory_with(path)
    assert str(path) in str(err.value)


def test_a_binary_prior_file_or_one_that_is_no_curve_says_so(tmp_path: Path) -> None:
    """Bytes that are not text were a raw UnicodeDecodeError; numbers that read but make no survival curve
    (one that rises) were called "damaged" around ReturnPrior's own reason. Each names the file once."""
    binary = tmp_path / "prior.json"
    binary.write_bytes(bytes(range(128, 256)) * 8)
    with pytest.raises(BadInputError, match="cannot read the return prior") as err:
        memory_with(binary)
    assert str(binary) in str(err.value)
    rising = tmp_path / "rising.json"
    rising.write_text('{"format": "spatial_memory.return_prior/1", "step_s": 10, "survival": [1.0, 0.5, 0.8]}')
    with pytest.raises(BadInputError) as err:
        memory_with(rising)
    assert str(rising) in str(err.value) and "damaged" not in str(err.value)
    assert str(err.value).count(str(rising)) == 1, str(err.value)


# ---- the benchmark's methods ------------------------------------------------------------------------------


def test_bench_methods_with_and_without_the_prior() -> None:
    from spatial_memory_ros.bench.methods import make_methods
    from spatial_memory_ros.bench.scene import make_bench_scene

    scene = make_bench_scene("warehouse", "patrol", 0.1, 0, width=64, height=48)
    methods = make_methods(["pipeline", "pipeline_prior"], scene)
    try:
        assert [m.name for m in methods] == ["pipeline", "pipeline_prior"]
        assert [m.pipeline.config.memory.return_prior for m in methods] == [False, True]  # type: ignore[attr-defined]
    finally:
        for m in methods:
            m.close()


@pytest.mark.parametrize("return_prior, name", [(True, "learned"), (False, "learned_no_prior")])
def test_the_learned_method_uses_the_prior_and_its_ablation_does_not(return_prior: bool, name: str) -> None:
    pytest.importorskip("torch")
    from spatial_memory_ros.bench.methods import pipeline_config
    from spatial_memory_ros.bench.scene import make_bench_scene
    from spatial_memory_ros.model.bench_method import LearnedMethod

    config = pipeline_config(make_bench_scene("warehouse", "patrol", 0.1, 0, width=64, height=48))
    method = LearnedMethod(config, return_prior=return_prior, device="cpu")
    try:
        assert method.name == name and method.pipeline.config.memory.return_prior is return_prior
    finally:
        method.close()
