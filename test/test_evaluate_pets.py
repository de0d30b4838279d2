"""evaluate pets09 end to end on a made-up clip and truth (the real vtest.avi is scored in BENCHMARKS.md)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from spatial_memory_ros.cli.main import evaluation_config
from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.evaluate.config import default_config
from spatial_memory_ros.evaluate.pets import evaluate_pets09

FRAMES = 12


def _clip(tmp_path: Path) -> tuple[Path, Path]:
    """A still grey scene where a dark 'person' box walks right from frame 4 on; its truth box in gt.txt."""
    video, gt = tmp_path / "walk.avi", tmp_path / "gt.txt"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 7.0, (320, 240))
    rows = []
    for i in range(FRAMES):
        img = np.full((240, 320, 3), 170, np.uint8)
        cv2.rectangle(img, (0, 200), (320, 240), (90, 120, 90), -1)
        if i >= 4:
            x = 60 + 12 * (i - 4)
            cv2.rectangle(img, (x, 80), (x + 30, 180), (30, 30, 60), -1)
            rows.append(f"{i + 1},1,{x + 1},81,31,101,1,-1,-1,-1")  # MOT: 1-based left, top, width, height
        writer.write(img)
    writer.release()
    gt.write_text("\n".join(rows) + "\n")
    return video, gt


def test_evaluate_pets09_scores_the_change_mask_against_the_people(tmp_path: Path) -> None:
    video, gt = _clip(tmp_path)
    base = default_config()
    config = dataclasses.replace(base, change=dataclasses.replace(base.change, method="classical"),
                                 tracker=dataclasses.replace(base.tracker, reid=False))
    metrics = evaluate_pets09(tmp_path / "out", video=video, gt_path=gt, config=config)
    change = metrics["change"]
    assert metrics["frames"] == FRAMES and change["method"] == "classical" and change["frames"] == FRAMES
    assert change["boxes"] == FRAMES - 4
    # the classical mask finds the dark box on a flat scene in every frame, and marks nothing else
    assert change["box_found_fraction"] == 1.0 and change["box_coverage_mean"] > 0.9
    assert change["false_px_per_frame"] < 50
    assert change["box_found_fraction_by_height"]["90px_and_over"] == 1.0  # the box is 101 px tall
    # strict JSON: a clip too short for det F1's interval wrote a bare NaN, which JSON.parse refuses
    def no_nan(name: str) -> None:
        raise AssertionError(f"{name} in metrics.json")

    written = json.loads((tmp_path / "out" / "metrics.json").read_text(), parse_constant=no_nan)
    assert written["change"] == change and written["ours"]["det_f1_low"] is None


def test_evaluate_pets09_names_missing_inputs(tmp_path: Path) -> None:
    video, gt = _clip(tmp_path)
    with pytest.raises(BadInputError, match="no ground truth"):
        evaluate_pets09(tmp_path / "out", video=video, gt_path=tmp_path / "none.txt")
    with pytest.raises(BadInputError, match="no video"):
        evaluate_pets09(tmp_path / "out", video=tmp_path / "none.avi", gt_path=gt)


def test_evaluate_pets09_through_a_turning_camera_reprojects_frames_and_truth(tmp_path: Path) -> None:
    from spatial_memory_ros.evaluate.turning_view import TurningView

    video, gt = _clip(tmp_path)
    base = default_config()
    config = dataclasses.replace(base, change=dataclasses.replace(base.change, method="classical"),
                                 tracker=dataclasses.replace(base.tracker, reid=False))
    turning = TurningView(source_size=(320, 240), out_size=(240, 180), pan_deg=3.0, tilt_deg=0.0, period_s=2.0)
    metrics = evaluate_pets09(tmp_path / "out", video=video, gt_path=gt, config=config, turning=turning)
    assert metrics["sequence"].endswith("turning camera") and metrics["turning"]["pan_deg"] == 3.0
    assert metrics["turning"]["max_fraction_outside"] == 0.0
    # the truth went through the same re-projection: the dark box is found where the turned camera sees it, in
    # every frame while the detector follows the turn (change.follow_turns, the default) ...
    change = metrics["change"]
    assert change["boxes"] == FRAMES - 4 and change["box_found_fraction"] == 1.0
    # ... and but for the frames where it restarts (turned > 2 deg from its reference: an empty mask) without
    config = dataclasses.replace(config, change=dataclasses.replace(config.change, follow_turns=False))
    change = evaluate_pets09(tmp_path / "out2", video=video, gt_path=gt, config=config, turning=turning)["change"]
    assert change["boxes"] == FRAMES - 4 and 0.7 <= change["box_found_fraction"] < 1.0


def test_evaluate_cli_refuses_a_turn_for_the_clips_without_people(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from spatial_memory_ros.cli.main import main

    for args in (["cup", "--pan-deg", "5"], ["cup", "--exposure-ms", "30"],
                 ["pets09", "--exposure-ms", "30"],  # a still camera does not blur
                 ["cup", "--video", "x.mp4"], ["box", "--gt", "gt.txt"],  # were ignored: opencv-doc's clip was scored
                 ["pets09", "--pan-deg", "nan"], ["pets09", "--pan-deg", "5", "--exposure-ms", "nan"],
                 # these were ignored without a word
                 ["pets09", "--turn-period-s", "-5"], ["cup", "--turn-period-s", "3"],
                 ["pets09", "--assumed-hfov-deg", "70"]):
        assert main(["evaluate", *args, "--out", str(tmp_path / "o")]) == 2
        assert args[-2] in capsys.readouterr().err
        assert not (tmp_path / "o").exists()


def test_evaluate_config_keeps_the_files_memory_settings_but_not_its_file(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """`evaluate --config`: the file's settings over the evaluation's defaults, memory ones included (they were all
    silently replaced by the defaults'); only memory.db_path is refused, with a word: the memory stays in RAM."""
    path = tmp_path / "eval.yaml"
    path.write_text("change:\n  method: classical\nmemory:\n  displaced_distance_m: 2.0\n  place_radius_m: 0.9\n"
                    f"  db_path: {tmp_path / 'memory.db'}\n")
    config = evaluation_config(path, default_config())
    assert config.change.method == "classical" and config.detector.backend == "coco"
    assert config.memory.displaced_distance_m == 2.0 and config.memory.place_radius_m == 0.9
    assert config.memory.db_path == default_config().memory.db_path
    assert "memory.db_path" in capsys.readouterr().err
    assert not (tmp_path / "memory.db").exists()
    path.write_text("memory:\n  db_path: ''\n  place_radius_m: 0.9\n")  # '' keeps nothing on disk: no word
    assert evaluation_config(path, default_config()).memory.place_radius_m == 0.9
    assert "db_path" not in capsys.readouterr().err
