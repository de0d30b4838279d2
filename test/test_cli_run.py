"""`spatial-memory run`: outputs, bad-frame handling and error exits; end to end once Pipeline exists."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_io import write_video
from tum_scene import INTRINSICS, TAG_Z_M, stamp_name, write_tum_folder

from spatial_memory_ros.cli.main import main
from spatial_memory_ros.cli.run import run_offline
from spatial_memory_ros.core.config import PipelineConfig
from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.core.types import (
    Frame,
    FrameResult,
    ItemAnswer,
    ItemLocation,
    ItemObservation,
    TrackInfo,
    TrackState,
)
from spatial_memory_ros.io.camera_yaml import save_camera_yaml

HAVE_PIPELINE = importlib.util.find_spec("spatial_memory_ros.core.pipeline") is not None


class FakePipeline:
    """Stand-in for core.pipeline.Pipeline: one confirmed and one tentative track per frame."""

    def __init__(self, config: PipelineConfig, reject: int | None = None, explode: int | None = None):
        self.config = config
        self.reject, self.explode = reject, explode  # 1-based call numbers that raise
        self.calls = self.accepted = 0
        self.saved = self.closed = False

    def update(self, frame: Frame) -> FrameResult:
        self.calls += 1
        if self.calls == self.reject:
            raise BadInputError("image is all black")
        if self.calls == self.explode:
            raise RuntimeError("bug")
        self.accepted += 1
        box = np.array([10.0, 20.0, 30.0, 60.0])
        tracks = [
            TrackInfo(track_id=4, label="item", item="mug", state=TrackState.CONFIRMED, is_dynamic=False,
                      confidence=0.9, box=box, position=np.array([0.0, 0.0, 0.6]), velocity=np.zeros(3),
                      first_seen=0.0, last_seen=frame.stamp),
            TrackInfo(track_id=5, label="object", item="", state=TrackState.TENTATIVE, is_dynamic=True,
                      confidence=0.3, box=box, position=None, velocity=np.zeros(3), first_seen=0.0,
                      last_seen=frame.stamp),
        ]
        mask = np.zeros(frame.image.shape[:2], np.uint8)
        obs = [ItemObservation(item="mug", position=np.array([0.0, 0.0, 0.6]), stamp=frame.stamp)]
        return FrameResult(stamp=frame.stamp, tracks=tracks, change_mask=mask, tags=[], observations=obs,
                           camera_moved=False)

    def list_items(self) -> list[ItemAnswer]:
        here = ItemLocation(position=np.array([0.0, 0.0, 0.6]), orientation=np.array([0.0, 0.0, 0.0, 1.0]),
                            confidence=1.0, last_seen=1.0, observations=self.accepted, dwell_s=0.5)
        return [ItemAnswer(item="mug", usual=here, current=here, displaced=False, distance_m=0.0,
                           alternatives=[])]

    def save(self) -> None:
        self.saved = True

    def close(self) -> None:
        self.closed = True


def read_mot(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", ndmin=2)


def test_run_writes_every_output_and_skips_bad_frames(tmp_path: Path, capsys) -> None:
    stamps = write_tum_folder(tmp_path / "seq")
    (tmp_path / "seq" / "rgb" / stamp_name(stamps[1])).write_bytes(b"")  # unreadable: frame 2
    made: list[FakePipeline] = []

    def open_pipeline(config: PipelineConfig) -> FakePipeline:
        made.append(FakePipeline(config, reject=3))  # 3rd frame given to it = input frame 4
        return made[0]

    summary = run_offline(tmp_path / "seq", tmp_path / "out", PipelineConfig(), open_pipeline=open_pipeline)
    out = tmp_path / "out"
    pipeline = made[0]
    assert pipeline.config.memory.db_path == str(out / "memory.db")
    assert pipeline.saved and pipeline.closed

    assert (summary.frames, summary.bad_frames, summary.tracks, summary.observations) == (4, 2, 1, 4)
    assert stamp_name(stamps[1]) in summary.first_error
    err = capsys.readouterr().err
    assert "skipping frame 2" in err and "skipping frame 4: image is all black" in err

    mot = read_mot(out / "tracks.txt")  # confirmed tracks only; frame numbers are input positions, 1-based
    assert mot[:, 0].tolist() == [1, 3, 5, 6] and set(mot[:, 1]) == {4}
    np.testing.assert_allclose(mot[0, 2:], [11, 21, 20, 40, 0.9, 0.0, 0.0, 0.6])  # the box (10, 20), 1-based
    masks = sorted(p.name for p in (out / "change_masks").iterdir())
    assert masks == ["000001.png", "000003.png", "000005.png", "000006.png"]
    assert cv2.imread(str(out / "change_masks" / masks[0]), cv2.IMREAD_UNCHANGED).shape == (240, 320)
    doc = json.loads((out / "items.json").read_text())
    assert doc["frame_id"] == "map" and "groundtruth" in doc["map_frame"]
    assert [i["item"] for i in doc["items"]] == ["mug"] and doc["items"][0]["current"]["observations"] == 4


def test_run_limits_frames_and_replaces_stale_masks(tmp_path: Path) -> None:
    write_tum_folder(tmp_path / "seq")
    (tmp_path / "out" / "change_masks").mkdir(parents=True)
    (tmp_path / "out" / "change_masks" / "000099.png").write_bytes(b"old")
    (tmp_path / "out" / "change_masks" / "notes.txt").write_text("mine")
    summary = run_offline(tmp_path / "seq", tmp_path / "out", PipelineConfig(), max_frames=2,
                          open_pipeline=FakePipeline)
    assert summary.frames == 2
    assert sorted(p.name for p in (tmp_path / "out" / "change_masks").iterdir()) == [
        "000001.png", "000002.png", "notes.txt"]  # only our own numbered masks are replaced


def test_run_closes_the_pipeline_on_an_unexpected_error(tmp_path: Path) -> None:
    write_tum_folder(tmp_path / "seq")
    made: list[FakePipeline] = []

    def open_pipeline(config: PipelineConfig) -> FakePipeline:
        made.append(FakePipeline(config, explode=2))
        return made[0]

    with pytest.raises(RuntimeError, match="bug"):  # a bug is not a bad frame: it must surface
        run_offline(tmp_path / "seq", tmp_path / "out", PipelineConfig(), open_pipeline=open_pipeline)
    assert made[0].closed


@pytest.fixture
def fake_pipeline_module(monkeypatch: pytest.MonkeyPatch) -> list[FakePipeline]:
    """Make `main(["run", ...])` use FakePipeline; returns the pipelines it opened."""
    made: list[FakePipeline] = []

    def open_(config: PipelineConfig) -> FakePipeline:
        made.append(FakePipeline(config))
        return made[-1]

    module = types.ModuleType("spatial_memory_ros.core.pipeline")
    module.Pipeline = types.SimpleNamespace(open=open_)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "spatial_memory_ros.core.pipeline", module)
    return made


def test_main_run_applies_cli_settings_and_prints_a_summary(
    tmp_path: Path, capsys, fake_pipeline_module: list[FakePipeline]
) -> None:
    write_tum_folder(tmp_path / "seq")
    (tmp_path / "params.yaml").write_text(
        "/**:\n  ros__parameters:\n    tracker.min_hits: 1\n    items: [a=1]\n"
        "    rate_hz: 5.0\n"  # a node-only key: skipped
    )
    code = main(["run", str(tmp_path / "seq"), "--out", str(tmp_path / "out"), "--config",
                 str(tmp_path / "params.yaml"), "--items", "mug=3,box=7", "--tag-size", "0.1"])
    assert code == 0
    config = fake_pipeline_module[0].config
    assert config.tags.items == {"mug": 3, "box": 7} and config.tags.tag_size_m == 0.1
    assert config.tracker.min_hits == 1
    out = capsys.readouterr().out
    assert "processed 6 frames" in out and "mug" in out and "items.json" in out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--items", "mug"], "'mug' must look like 'name=id'"),
        (["--fps", "30"], "drop --fps"),
        (["--config", "missing.yaml"], "no config file at missing.yaml"),
        (["--camera", "missing.yaml"], "no camera calibration file at missing.yaml"),
    ],
)
def test_main_run_bad_settings_exit_2_without_traceback(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch, fake_pipeline_module, extra: list[str],
    message: str,
) -> None:
    write_tum_folder(tmp_path / "seq")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "seq", "--out", "out", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_main_run_missing_input_and_usage_errors(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch,
                                                 fake_pipeline_module: list[FakePipeline]) -> None:
    assert main(["run", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "out")]) == 2
    assert f"no input at {tmp_path / 'nope.mp4'}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing is created for an input that is not there
    write_tum_folder(tmp_path / "seq")  # an input that is there: only --max-frames 0 can be the error
    monkeypatch.chdir(tmp_path)
    assert main(["run", "seq", "--out", "o", "--max-frames", "0"]) == 2  # argparse usage error
    err = capsys.readouterr().err
    assert "--max-frames" in err and "must be >= 1" in err, err
    assert not fake_pipeline_module and not Path("o").exists()  # refused before any run
    assert main(["run", "x", "--out", "o"]) == 2
    assert "no input at x" in capsys.readouterr().err
    assert main(["run", "x"]) == 2  # --out is required
    err = capsys.readouterr().err
    assert "required" in err and "--out" in err and "no input at" not in err, err
    assert main(["--help"]) == 0


@pytest.mark.parametrize("args", [
    ["run", "x", "--out", ""],  # '' was the current folder, whose earlier results a run clears
    ["evaluate", "cup", "--out", " "],
    ["demo", "--out", ""],
    ["demo", "--seed", "-1"],  # numpy refused it with a traceback
    ["bench", "--seed", "-1"],
    ["bench", "--export", ""],
])
def test_an_empty_output_folder_or_a_negative_seed_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     capsys, args: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert ("an empty path" in err or "must be >= 0" in err) and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_yaml_error_is_one_line(tmp_path: Path, capsys) -> None:
    """PyYAML's own message quotes the lines around the fault: four lines for --config, eight for --camera."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("change:\n  method: [learned\n  floor_memory: true\n")
    for flag in ("--config", "--camera"):
        assert main(["run", str(tmp_path), "--out", str(tmp_path / "out"), flag, str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert "is not valid YAML" in err and "(line " in err and len(err.splitlines()) == 1, err


def test_main_run_reports_when_no_frame_could_be_processed(
    tmp_path: Path, capsys, fake_pipeline_module
) -> None:
    stamps = write_tum_folder(tmp_path / "seq", n_frames=2)
    for t in stamps:
        (tmp_path / "seq" / "rgb" / stamp_name(t)).write_bytes(b"")
    assert main(["run", str(tmp_path / "seq"), "--out", str(tmp_path / "out")]) == 2
    assert "no frame of" in capsys.readouterr().err


def test_a_run_whose_every_frame_fails_leaves_the_earlier_runs_results(tmp_path: Path, capsys) -> None:
    """A camera YAML of another image size: every frame refused. The earlier run's tracks.txt, masks and
    items.json were emptied before the first frame had been tried, and the summary said "wrote"."""
    write_tum_folder(tmp_path / "seq", n_frames=8, moving=False)
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "seq"), "--out", str(out)]) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix != ".db"
              and "memory.db" not in p.name}
    assert len(before) > 3
    capsys.readouterr()
    other = dataclasses.replace(INTRINSICS, width=INTRINSICS.width * 2, height=INTRINSICS.height * 2)
    save_camera_yaml(other, tmp_path / "other.yaml")
    assert main(["run", str(tmp_path / "seq"), "--out", str(out), "--camera", str(tmp_path / "other.yaml")]) == 2
    printed = capsys.readouterr()
    assert "no frame of" in printed.err and "left as it was" in printed.out and "wrote" not in printed.out
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix != ".db"
             and "memory.db" not in p.name}
    assert after == before


# ---- end to end with the real Pipeline -------------------------------------------------------------------

needs_pipeline = pytest.mark.skipif(not HAVE_PIPELINE, reason="core.pipeline not written yet")


def assert_outputs(out: Path, expected_mug: np.ndarray) -> None:
    mot = read_mot(out / "tracks.txt")
    assert len(mot) > 0 and mot.shape[1] == 10
    assert (mot[:, 0] >= 1).all() and (mot[:, 4] > 0).all() and (mot[:, 5] > 0).all()
    assert len(list((out / "change_masks").glob("*.png"))) > 0
    assert (out / "memory.db").is_file()
    doc = json.loads((out / "items.json").read_text())
    mug = {i["item"]: i for i in doc["items"]}["mug"]
    np.testing.assert_allclose(mug["current"]["position"], expected_mug, atol=0.02)
    assert mug["displaced"] is False


@needs_pipeline
def test_end_to_end_tum_folder(tmp_path: Path, capsys) -> None:
    write_tum_folder(tmp_path / "seq", n_frames=8, moving=False)  # camera at the map origin
    code = main(["run", str(tmp_path / "seq"), "--out", str(tmp_path / "out"), "--items", "mug=3"])
    assert code == 0, capsys.readouterr().err
    assert_outputs(tmp_path / "out", np.array([0.0, 0.0, TAG_Z_M]))


@needs_pipeline
def test_end_to_end_video(tmp_path: Path, capsys) -> None:
    write_video(tmp_path / "v.avi", n=8)
    save_camera_yaml(INTRINSICS, tmp_path / "camera.yaml")
    code = main(["run", str(tmp_path / "v.avi"), "--out", str(tmp_path / "out"), "--items", "mug=3",
                 "--camera", str(tmp_path / "camera.yaml")])
    assert code == 0, capsys.readouterr().err
    assert_outputs(tmp_path / "out", np.array([0.0, 0.0, TAG_Z_M]))  # static video: map = camera frame


def test_a_memory_moved_aside_is_not_called_extended(tmp_path: Path) -> None:
    """An unusable memory.db in --out is moved aside and the run starts empty: the summary must not say it
    extended the existing memory."""
    write_tum_folder(tmp_path / "seq")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "memory.db").write_bytes(b"not a database" * 100)
    summary = run_offline(tmp_path / "seq", tmp_path / "out", PipelineConfig(), max_frames=2)
    assert not summary.extended_memory
    assert any(p.name.startswith("memory.db.corrupt-") for p in (tmp_path / "out").iterdir())
    again = run_offline(tmp_path / "seq", tmp_path / "out", PipelineConfig(), max_frames=2)
    assert again.extended_memory  # a usable one is


def test_a_ctrl_c_while_the_command_starts_is_exit_130_without_a_traceback(monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Building the parser imports torch and every subcommand (a second or more): a Ctrl-C then gave a traceback."""
    import spatial_memory_ros.cli.main as cli

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["demo"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err


def test_a_first_ctrl_c_waits_for_the_frame_and_a_second_stops_at_once() -> None:
    import os
    import signal

    from spatial_memory_ros.cli.stopping import stop_after_the_frame

    before = signal.getsignal(signal.SIGINT)
    with stop_after_the_frame() as stopping:
        assert not stopping()
        os.kill(os.getpid(), signal.SIGINT)
        assert stopping()  # asked to stop, no KeyboardInterrupt: the frame in hand is finished first
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs as soon as os.kill returns
    assert signal.getsignal(signal.SIGINT) is before


def test_a_run_refused_at_its_start_leaves_no_memory_and_the_next_is_not_extended(tmp_path: Path) -> None:
    """A missing model file refused the run after memory.db was made: the next run 'extended the existing memory',
    an empty one."""
    import sqlite3

    from spatial_memory_ros.core.config import ChangeConfig

    write_tum_folder(tmp_path / "seq")
    missing = dataclasses.replace(PipelineConfig(), change=ChangeConfig(method="learned",
                                                                         model_path=str(tmp_path / "no.pt")))
    with pytest.raises(BadInputError, match="no.pt"):
        run_offline(tmp_path / "seq", tmp_path / "out", missing, max_frames=2)
    assert not (tmp_path / "out" / "memory.db").exists()
    assert not run_offline(tmp_path / "seq", tmp_path / "out", PipelineConfig(), max_frames=2).extended_memory
    # a reader holding the file at the end (spatial-memory locate): the run ends with a warning, not an error
    reader = sqlite3.connect(tmp_path / "out" / "memory.db")
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT * FROM items").fetchall()
        summary = run_offline(tmp_path / "seq", tmp_path / "out", PipelineConfig(), max_frames=2)
    finally:
        reader.close()
    assert summary.extended_memory and summary.frames == 2


def test_a_run_that_processes_no_frame_leaves_no_new_memory_bag_or_folder(tmp_path: Path, capsys) -> None:
    """Every frame refused (a camera YAML of another size) in a new folder with --out-bag: it left an empty
    memory.db that the next run said it "extended", an empty bag folder that made the retry fail ("exists"), and
    a summary that said both "left as it was" and "wrote" the bag."""
    write_tum_folder(tmp_path / "seq", n_frames=4, moving=False)
    other = dataclasses.replace(INTRINSICS, width=INTRINSICS.width * 2, height=INTRINSICS.height * 2)
    save_camera_yaml(other, tmp_path / "other.yaml")
    out, bag = tmp_path / "out", tmp_path / "results_bag"
    args = ["run", str(tmp_path / "seq"), "--out", str(out), "--out-bag", str(bag)]
    assert main([*args, "--camera", str(tmp_path / "other.yaml")]) == 2
    printed = capsys.readouterr()
    assert "left as it was" in printed.out and "wrote" not in printed.out
    assert not out.exists() and not bag.exists()
    assert main(args) == 0  # the retry is neither refused nor an "extension" of an empty memory
    printed = capsys.readouterr().out
    assert "extended" not in printed and f"wrote {bag}/" in printed and (out / "memory.db").exists()


def test_a_run_that_processes_no_frame_keeps_an_existing_folder_and_memory(tmp_path: Path) -> None:
    write_tum_folder(tmp_path / "seq", n_frames=4, moving=False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    first = run_offline(tmp_path / "seq", out, PipelineConfig(), max_frames=2)
    assert first.frames == 2
    other = dataclasses.replace(INTRINSICS, width=INTRINSICS.width * 2, height=INTRINSICS.height * 2)
    save_camera_yaml(other, tmp_path / "other.yaml")
    refused = run_offline(tmp_path / "seq", out, PipelineConfig(), camera_yaml=tmp_path / "other.yaml")
    assert refused.frames == 0 and refused.extended_memory
    assert (out / "memory.db").exists() and (out / "notes.txt").read_text() == "mine"
    assert run_offline(tmp_path / "seq", out, PipelineConfig(), max_frames=2).extended_memory


@pytest.mark.parametrize(("args", "message"), [
    (["run", "x", "--out", "o", "--depth-max-dt", "-1"], "must be >= 0"),  # dropped every depth image, silently
    (["run", "x", "--out", "o", "--depth-max-dt", "nan"], "finite"),  # paired an image with any depth image
    (["run", "x", "--out", "o", "--depth-scale", "inf"], "finite"),  # every depth became 0 m
    (["run", "x", "--out", "o", "--depth-scale", "0"], "must be > 0"),
    (["run", "x", "--out", "o", "--fps", "-5"], "must be > 0"),
    (["run", "x", "--out", "o", "--tag-size", "nan"], "finite"),
    (["run", "x", "--out", "o", "--tag-size", "-1"], "must be > 0"),
    (["evaluate", "cup", "--out", "o", "--assumed-distance-m", "0"], "must be > 0"),
])
def test_a_number_out_of_range_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys,
                                                args: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_the_library_refuses_those_numbers_too(tmp_path: Path) -> None:
    from spatial_memory_ros.io.bag_topics import BagOptions
    from spatial_memory_ros.io.tum import TumReader

    for bad in (-0.01, float("nan"), float("inf")):
        with pytest.raises(BadInputError, match="depth_max_dt"):
            BagOptions(depth_max_dt_s=bad)
    assert BagOptions(depth_max_dt_s=0.0).depth_max_dt_s == 0.0  # exact stamps only: allowed
    write_tum_folder(tmp_path / "seq", n_frames=2)
    with pytest.raises(BadInputError, match="depth_units_per_m"):
        TumReader(tmp_path / "seq", depth_units_per_m=float("inf"))


def test_run_help_lists_every_colour_encoding_the_decoder_accepts(capsys) -> None:
    from spatial_memory_ros.ros.decode import COLOUR_ENCODINGS

    assert main(["run", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    missing = [e for e in COLOUR_ENCODINGS if e not in text]
    assert not missing, f"run --help does not list {missing}"


def test_a_run_into_a_log_shows_its_progress(tmp_path: Path) -> None:
    """stderr a pipe (`run ... 2>&1 | tee log`, nohup): the bar was off, and a two-hour replay said nothing until it
    ended. tqdm draws the first and the last state whatever its interval."""
    import subprocess

    write_tum_folder(tmp_path / "seq", n_frames=3, moving=False)
    done = subprocess.run([sys.executable, "-m", "spatial_memory_ros.cli", "run", str(tmp_path / "seq"), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    assert "3/3 [" in done.stderr and "frame/s" in done.stderr, done.stderr


@pytest.mark.skipif(not HAVE_PIPELINE, reason="core.pipeline not written yet")
def test_run_into_a_memory_of_another_frame_is_refused_and_changes_nothing(tmp_path: Path, capsys) -> None:
    """The memory file held bare numbers: a run whose positions are in another frame added its own to them."""
    from spatial_memory_ros.core.store import MemoryStore

    write_tum_folder(tmp_path / "seq", n_frames=4, moving=False)
    assert main(["run", str(tmp_path / "seq"), "--out", str(tmp_path / "out"), "--items", "mug=3"]) == 0
    db = tmp_path / "out" / "memory.db"
    with MemoryStore(db, exclusive=False) as store:
        frame = store.map_frame
    assert frame  # the first run said its frame
    with MemoryStore(tmp_path / "other.db") as store:
        store.claim_frame("robot2/map")
    (tmp_path / "other.db").replace(db)
    before = db.read_bytes()
    capsys.readouterr()
    assert main(["run", str(tmp_path / "seq"), "--out", str(tmp_path / "out"), "--items", "mug=3"]) == 2
    err = capsys.readouterr().err
    assert f"holds positions in frame 'robot2/map', not '{frame}'" in err and "Traceback" not in err
    assert db.read_bytes() == before


def test_sigterm_is_a_ctrl_c_for_every_subcommand() -> None:
    """SIGTERM (kill, timeout, a CI cancel) killed the process at once: run's tracks.txt ended frames before its
    masks, with no items.json, and train lost the steps since its last checkpoint. It now does what Ctrl-C does."""
    import os
    import signal

    from spatial_memory_ros.cli.stopping import sigterm_as_ctrl_c, stop_after_the_frame

    before = signal.getsignal(signal.SIGTERM)
    with sigterm_as_ctrl_c():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)  # Python's own SIGINT handler: KeyboardInterrupt
        with stop_after_the_frame() as stopping:
            os.kill(os.getpid(), signal.SIGTERM)
            assert stopping()  # run's handler: the frame in hand is finished first
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before
    # a job started with & by a script has SIGINT ignored: a kill must still stop it (it did nothing at all)
    sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with sigterm_as_ctrl_c(), pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
    finally:
        signal.signal(signal.SIGINT, sigint)


def test_run_stopped_by_sigterm_ends_every_output_on_one_frame(tmp_path: Path) -> None:
    """The whole command, as `timeout` or `kill` stops it."""
    import signal
    import subprocess
    import time

    write_video(tmp_path / "v.avi", n=400)
    save_camera_yaml(INTRINSICS, tmp_path / "camera.yaml")
    out = tmp_path / "out"
    child = subprocess.Popen([sys.executable, "-m", "spatial_memory_ros.cli", "run", str(tmp_path / "v.avi"),
                              "--out", str(out), "--items", "mug=3", "--camera", str(tmp_path / "camera.yaml")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 120
        while child.poll() is None and time.monotonic() < end and len(list(out.glob("change_masks/*.png"))) < 10:
            time.sleep(0.05)
        assert child.poll() is None, "the run ended before it could be stopped"
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, err.decode()
    masks = sorted(int(p.stem) for p in out.glob("change_masks/*.png"))
    rows = (out / "tracks.txt").read_text().splitlines()
    assert rows and masks and masks[-1] < 400
    assert {int(r.split(",")[0]) for r in rows} <= set(masks) and int(rows[-1].split(",")[0]) == masks[-1]
    assert json.loads((out / "items.json").read_text())["items"], "no items.json written"
    assert b"Traceback" not in err
