"""scripts/train_shipped.sh: the commands it gives the trainer (the shipped recipe, and another draw of it by seed).

The trainer is replaced by a stub that logs its arguments, so this checks the script's wiring, not training."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_shipped.sh"


def _run(tmp_path: Path, *args: str) -> list[list[str]]:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    log = tmp_path / "calls.log"
    stub = venv / "bin" / "spatial-memory"
    stub.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$*" >> "{log}"\n')
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ, SPATIAL_MEMORY_VENV=str(venv))
    subprocess.run(["bash", str(SCRIPT), *args], env=env, check=True, capture_output=True, timeout=60)
    return [line.split() for line in log.read_text().splitlines()]


@pytest.mark.parametrize("seed_args,seed", [((), "3000"), (("1000",), "1000")])
def test_both_runs_get_the_seed_and_the_second_starts_from_the_first(tmp_path: Path, seed_args: tuple[str, ...],
                                                                     seed: str) -> None:
    out = tmp_path / "out"
    calls = _run(tmp_path, str(out), *seed_args)
    assert len(calls) == 2
    first, second = calls
    assert first == ["train", "--out", f"{out}/spatial_memory_model.pt", "--seed", seed]
    assert second[:6] == ["train", "--out", f"{out}/still.pt", "--seed", seed, "--init"]
    assert second[6] == f"{out}/spatial_memory_model.pt"
    # the still head on a frozen base: the options that make run 2 the shipped recipe's second run
    for option in ("--still-head", "--freeze-base", "--background", "--photos", "--steps"):
        assert option in second
    assert "--resume" not in first + second  # nothing to resume in a fresh folder
