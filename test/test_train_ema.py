"""`train --ema`: the model file holds the weights' moving average, the optimizer's path is untouched, and a
stopped run resumes with its average."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).parent))
from tiny_model import tiny_train  # noqa: E402

from spatial_memory_ros.core.errors import BadInputError  # noqa: E402
from spatial_memory_ros.model.checkpoint import load_file  # noqa: E402
from spatial_memory_ros.model.config import TrainConfig  # noqa: E402


def _weights(path: Path) -> dict[str, Any]:
    return dict(load_file(path)["model"])


def test_the_file_holds_the_moving_average_and_the_state_the_raw_weights(tmp_path: Path) -> None:
    one, two, ema = tmp_path / "one.pt", tmp_path / "two.pt", tmp_path / "ema.pt"
    tiny_train(one, steps=1)
    tiny_train(two, steps=2)
    tiny_train(ema, steps=2, ema=0.75)
    w1, w2, averaged = _weights(one), _weights(two), _weights(ema)
    raw = dict(load_file(ema.with_name("ema.pt.state"))["model"])
    # the average never steers the run: the optimizer's weights are a plain run's, bit for bit
    assert not [k for k in w2 if not torch.equal(raw[k], w2[k])]
    # the first step's weights start the average; the second moves it a quarter of the way
    moved = [k for k in w1 if w1[k].is_floating_point() and not torch.equal(w1[k], w2[k])]
    assert moved, "the second step changed no weight: nothing tells the average from either step"
    for k in moved:
        torch.testing.assert_close(averaged[k], 0.75 * w1[k] + 0.25 * w2[k])
    assert load_file(ema)["meta"]["train_config"]["ema"] == 0.75


def test_a_stopped_run_with_an_average_resumes_to_a_straight_runs_file(tmp_path: Path) -> None:
    straight, stopped = tmp_path / "straight.pt", tmp_path / "stopped.pt"
    tiny_train(straight, ema=0.9)
    with pytest.raises(KeyboardInterrupt):
        tiny_train(stopped, ema=0.9, stop_after=3)
    tiny_train(stopped, ema=0.9, resume=True)
    a, b = _weights(straight), _weights(stopped)
    assert not [k for k in a if not torch.equal(a[k], b[k])]
    with pytest.raises(KeyboardInterrupt):  # the average may not be switched on or off on resume
        tiny_train(tmp_path / "plain.pt", stop_after=2)
    with pytest.raises(BadInputError, match=r"resume with ema=0\.0"):
        tiny_train(tmp_path / "plain.pt", ema=0.9, resume=True)


@pytest.mark.parametrize("decay", [-0.1, 1.0, float("nan")])
def test_a_decay_outside_0_to_1_is_refused(decay: float) -> None:
    with pytest.raises(ValueError, match="ema"):
        TrainConfig(ema=decay).validate()
