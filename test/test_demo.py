"""`spatial-memory demo` end to end on a reduced scene, and the annotation helpers it shares with the node."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from spatial_memory_ros.cli.demo import run_demo
from spatial_memory_ros.core.types import FrameResult, TagDetection, TrackInfo, TrackState
from spatial_memory_ros.sim import make_scene
from spatial_memory_ros.viz import annotate, contact_sheet


def test_demo_answers_usual_home_and_current_truth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 480 x 360 keeps the far tags readable (3 px per cell) at about a quarter of the full demo's work.
    assert run_demo(tmp_path, seed=0, width=480, height=360, video=False) == 0
    out = capsys.readouterr().out
    assert "track" in out and "true home" in out
    doc = json.loads((tmp_path / "items.json").read_text())
    answers = {a["item"]: a for a in doc["items"]}
    last = list(make_scene("demo", seed=0, width=480, height=360))[-1]  # the truth at the end
    assert set(answers) == set(last.truth.items) == {"mug", "box", "pallet_A"}
    for name, truth in last.truth.items.items():
        a = answers[name]
        assert np.linalg.norm(np.array(a["usual"]["position"][:2]) - truth.home[:2]) < 0.1, name
        assert np.linalg.norm(np.array(a["current"]["position"][:2]) - truth.position[:2]) < 0.1, name
    assert (
        answers["box"]["displaced"] and not answers["mug"]["displaced"]
    )  # the mug came back, the box did not
    sheet = cv2.imread(str(tmp_path / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] > 300 and sheet.shape[1] > 1000
    assert len(list((tmp_path / "change_masks").glob("*.png"))) == 200
    assert (tmp_path / "tracks.txt").stat().st_size > 0


def test_demo_writes_a_readable_video(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # an earlier, longer run's results in the folder: its masks beyond this run's frames, its items.json
    (tmp_path / "change_masks").mkdir()
    (tmp_path / "change_masks" / "000150.png").write_bytes(b"an earlier run's")
    (tmp_path / "items.json").write_text("{}")
    stopped = None

    def stop_early(*args: object, **kwargs: object) -> None:  # a run stopped half way writes no items.json
        nonlocal stopped
        stopped = (tmp_path / "items.json").exists(), (tmp_path / "change_masks" / "000150.png").exists()
        raise KeyboardInterrupt

    import spatial_memory_ros.cli.demo as demo

    original = demo.write_items_json
    demo.write_items_json = stop_early  # type: ignore[assignment]
    try:
        with pytest.raises(KeyboardInterrupt):
            run_demo(tmp_path, width=320, height=240, duration_s=1.0)
    finally:
        demo.write_items_json = original
    assert stopped == (False, False)  # nothing of the earlier run is left to look like this one's
    assert run_demo(tmp_path, width=320, height=240, duration_s=1.0) == 0
    capsys.readouterr()
    cap = cv2.VideoCapture(str(tmp_path / "demo.avi"))
    ok, img = cap.read()
    cap.release()
    assert ok and img.shape == (240, 320, 3)


def test_a_ctrl_c_ends_every_output_on_one_frame_and_one_while_loading_keeps_the_last_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A Ctrl-C (or SIGTERM) mid-run raised at once: tracks.txt could end a frame before the masks, or be empty
    (buffered), and demo.avi was left unfinished. While the models loaded it emptied the last run's demo.avi and
    kept the rest of its outputs."""
    import os
    import signal

    import spatial_memory_ros.cli.demo as demo
    from spatial_memory_ros.core.pipeline import Pipeline

    assert run_demo(tmp_path, width=320, height=240, duration_s=1.0) == 0
    video = (tmp_path / "demo.avi").read_bytes()

    def loading_interrupted(cls: type, config: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Pipeline, "open", classmethod(loading_interrupted))
    with pytest.raises(KeyboardInterrupt):
        run_demo(tmp_path, width=320, height=240, duration_s=1.0)
    assert (tmp_path / "demo.avi").read_bytes() == video and (tmp_path / "items.json").is_file()
    monkeypatch.undo()

    real = demo.to_frame

    def ctrl_c_at_the_fifth(f: object) -> object:
        if f.index == 4:  # type: ignore[attr-defined]
            os.kill(os.getpid(), signal.SIGINT)
        return real(f)  # type: ignore[arg-type]

    monkeypatch.setattr(demo, "to_frame", ctrl_c_at_the_fifth)
    assert run_demo(tmp_path, width=320, height=240, duration_s=1.0) == 130
    assert "interrupted after 5 of" in capsys.readouterr().out
    masks = sorted(int(p.stem) for p in (tmp_path / "change_masks").glob("*.png"))
    assert masks == [1, 2, 3, 4, 5]
    rows = (tmp_path / "tracks.txt").read_text().splitlines()
    assert {int(r.split(",")[0]) for r in rows} <= set(masks)
    assert json.loads((tmp_path / "items.json").read_text())["items"]
    cap = cv2.VideoCapture(str(tmp_path / "demo.avi"))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert frames == 5


def test_annotate_draws_on_a_copy() -> None:
    image = np.full((120, 160, 3), 128, np.uint8)
    mask = np.zeros((120, 160), np.uint8)
    mask[10:30, 10:30] = 255
    corners = np.array([[60.0, 60.0], [80.0, 60.0], [80.0, 80.0], [60.0, 80.0]])
    track = TrackInfo(
        1,
        "item",
        "mug",
        TrackState.CONFIRMED,
        False,
        1.0,
        np.array([58.0, 58.0, 82.0, 82.0]),
        np.array([1.0, 2.0, 0.0]),
        np.zeros(3),
        0.0,
        1.0,
    )
    result = FrameResult(1.0, [track], mask, [TagDetection(3, corners, None, float("nan"))], [], False)
    out = annotate(image, result, names={3: "mug"}, caption="hello")
    assert np.all(image == 128) and out.shape == image.shape
    assert out[20, 20, 2] > out[20, 20, 0]  # red tint on the change
    assert not np.array_equal(out[55:85, 55:85], image[55:85, 55:85])  # tag and track drawn
    sheet = contact_sheet([out, out, out], 2, cell_width=80)
    assert sheet.shape == (2 * 60 + 3 * 4, 2 * 80 + 3 * 4, 3)
