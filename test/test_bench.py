"""`spatial-memory bench`: a tiny run end to end, the export round trip, the seed policy and the baselines."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from spatial_memory_ros.bench.cli import HELP_DEFAULT_METHODS, check_seed, default_out
from spatial_memory_ros.bench.methods import (
    DEFAULT_METHODS,
    FrameTags,
    LastSeenMethod,
    Mog2Method,
    NoMemoryMethod,
    make_methods,
)
from spatial_memory_ros.bench.metrics import ChangeAccumulator, TrackingAccumulator
from spatial_memory_ros.bench.runner import BenchConfig, TrackedFrame, run_bench, truth_tracks
from spatial_memory_ros.bench.scene import bench_preset, make_bench_scene
from spatial_memory_ros.bench.seeds import BENCH_SEEDS, TRAIN_SEED_MIN, seed_role
from spatial_memory_ros.bench.stream import sim_frames
from spatial_memory_ros.cli.main import main
from spatial_memory_ros.core.change import ChangeDetector
from spatial_memory_ros.core.config import ChangeConfig, TagConfig
from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.core.types import CameraIntrinsics, Frame
from spatial_memory_ros.io.tum import TumReader

SCORES = {  # part of results.json -> (capability that scores it, its scores in [0, 1])
    "tracking": ("tracking", ("det_precision", "det_recall", "det_f1", "hota", "idf1", "mota")),
    "change": ("change", ("miou", "f1_changed")),
    "layout": ("memory", ("accuracy",)),
    "retrieval": ("memory", ("recall_at_1",)),
}


@pytest.mark.timeout(60)
def test_tiny_bench_writes_every_method_and_metric(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Static camera at the bench size, so that tags are read at all in 6 s. Seed 5: a worker carrying a pallet is in
    # view in all 60 frames and moves an item, so tracking and change are scored on something (seed 7 shows no
    # agent: a method that reported nothing scored a perfect change mIoU there).
    out = tmp_path / "run"
    code = main(["bench", "--preset", "warehouse", "--camera", "static", "--minutes", "0.1", "--query-period", "2",
                 "--out", str(out), "--seed", "5"])
    assert code == 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in DEFAULT_METHODS) and "det F1" in printed and "R@1" in printed
    doc = json.loads((out / "results.json").read_text())
    assert doc["benchmark"]["frames"] == 60 and doc["benchmark"]["seed_role"] == "test"
    assert set(doc["methods"]) == set(DEFAULT_METHODS)
    for name, s in doc["methods"].items():
        for part, (capability, keys) in SCORES.items():
            if capability not in s["capabilities"]:
                assert s[part] is None, (name, part)
                continue
            for key in keys:
                value = s[part][key]
                low = -math.inf if key == "mota" else 0.0
                assert low <= value <= 1.0, (name, part, key, value)
        assert s["cost"]["fps"] > 0 and s["cost"]["n_frames"] == 60
    pipeline = doc["methods"]["pipeline"]
    assert pipeline["layout"]["n"] > 0  # queries were asked about seen items
    # and answered (1.0 both): a pipeline that located nothing would score 0
    assert pipeline["layout"]["accuracy"] > 0 and pipeline["retrieval"]["recall_at_1"] > 0, pipeline
    # the truth has an agent and a moved item, and the pipeline finds them (det recall 0.73, change recall 0.94 and
    # 0.94 of the agents' pixels): one that reported no tracks and an empty change mask would score 0 here
    assert pipeline["tracking"]["num_gt"] > 0 and pipeline["tracking"]["det_recall"] > 0, pipeline["tracking"]
    change = pipeline["change"]
    assert change["agent_pixels"] > 0 and change["scene_pixels"] > 0, change
    assert change["recall_changed"] > 0 and change["recall_agents"] > 0, change
    seen = doc["seen"]  # the same queries, answered from the truth alone
    for s in doc["methods"].values():
        if s["layout"] is not None:
            assert s["layout"]["n"] == seen["n_layout"] and s["retrieval"]["n"] == seen["n_retrieval"]
            assert s["layout"]["accuracy"] <= seen["layout"]  # no method knows a home it was never shown
    assert "(seen)" in printed
    for s in doc["methods"].values():  # the change recall split by kind adds up to the whole recall
        if s["change"] is not None:
            c = s["change"]
            n_agents, n_scene = c["agent_pixels"], c["scene_pixels"]
            found = sum(c[key] * n for key, n in (("recall_agents", n_agents), ("recall_scene", n_scene)) if n)
            assert found == pytest.approx(c["recall_changed"] * (n_agents + n_scene))
    assert set(doc["methods"]["pipeline"]["retrieval"]["per_bucket"]) == {
        "1 min", "10 min", "60 min", "120 min", "> 120 min"
    }
    assert doc["run"]["peak_rss_mb"] > 0 and doc["run"]["fps"] > 0
    assert set(doc["items"]) == {it.name for it in bench_preset("warehouse", "static", 0.1).items}
    for png in ("metrics.png", "map.png", "samples.png"):
        image = cv2.imread(str(out / png))
        assert image is not None and image.shape[0] > 100 and image.shape[1] > 300, png


def test_training_seed_is_refused_without_permission(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "--seed", str(TRAIN_SEED_MIN), "--minutes", "0.01", "--out", str(tmp_path)])
    assert code == 2
    assert "training/tuning seed" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()
    check_seed(TRAIN_SEED_MIN + 5, allow_train_seed=True)  # allowed on request (with a warning)
    with pytest.raises(BadInputError, match="--allow-train-seed"):
        check_seed(TRAIN_SEED_MIN + 5, allow_train_seed=False)


@pytest.mark.parametrize(
    ("seed", "role"), [(0, "test"), (99, "test"), (100, "bench"), (199, "bench"), (200, "validation"),
                       (299, "validation"), (500, "unassigned"), (1000, "train")]
)
def test_seed_roles(seed: int, role: str) -> None:
    assert seed_role(seed) == role
    assert range(100, 200) == BENCH_SEEDS


def test_default_out_names_the_run() -> None:
    assert default_out("warehouse", "patrol", 120.0, 100) == Path("bench_out/warehouse_patrol_120min_seed100")


def test_bench_scene_uses_the_bench_camera_and_tags() -> None:
    static = bench_preset("home", "static", 2.0)
    patrol = bench_preset("warehouse", "patrol", 0.5)
    assert static.camera.mode == "static" and patrol.camera.mode == "patrol" and patrol.camera.pitch_deg == 45.0
    assert static.duration_s == 120.0 and (patrol.width, patrol.height) == (320, 240)
    assert {it.tag_m for it in patrol.items} == {0.4} and min(it.board_m for it in patrol.items) >= 0.6
    with pytest.raises(BadInputError, match="camera"):
        bench_preset("home", "drone", 1.0)


def test_the_depot_is_a_layout_no_training_stream_uses() -> None:
    """The bench's seeds change traffic, moves and light, never the map: the depot is the held-out map. Every
    training stream draws the warehouse or the home, and the depot shares no item place, tag id or rack with them."""
    from spatial_memory_ros.model.config import ModelConfig
    from spatial_memory_ros.model.data import training_preset

    drawn = {training_preset(seed, ModelConfig())[0].floor.extent for seed in range(1000, 1200)}
    depot = bench_preset("depot", "patrol", 0.5)
    trained = [bench_preset(p, "patrol", 0.5) for p in ("warehouse", "home")]
    assert depot.floor.extent not in drawn and drawn == {t.floor.extent for t in trained}
    for other in trained:
        assert not {it.home[:2] for it in depot.items} & {it.home[:2] for it in other.items}
        assert not {it.tag_id for it in depot.items} & {it.tag_id for it in other.items}
        assert not {f.rect for f in depot.floor.footprints} & {f.rect for f in other.floor.footprints}
    static = make_bench_scene("depot", "static", 0.1, 100, width=96, height=72)
    assert static.preset.camera.mode == "static" and static.preset.name == "depot"


def test_a_creeping_patrol_drives_the_same_route_slower_and_only_a_patrol_creeps() -> None:
    assert bench_preset("warehouse", "patrol", 0.5).camera.speed == 0.8
    slow = bench_preset("warehouse", "patrol", 0.5, patrol_speed=0.05)
    assert slow.camera.speed == 0.05 and slow.camera.route == bench_preset("warehouse", "patrol", 0.5).camera.route
    scene = make_bench_scene("warehouse", "patrol", 0.02, 1004, width=96, height=72, patrol_speed=0.05)
    frames = list(sim_frames(scene, jobs=1))
    step = np.linalg.norm(frames[1].T_map_cam[:3, 3] - frames[0].T_map_cam[:3, 3])
    assert step == pytest.approx(0.005, abs=1e-6), "5 cm/s at 10 Hz"
    for bad in ({"camera": "static", "patrol_speed": 0.05}, {"patrol_speed": -1.0}, {"patrol_speed": float("inf")}):
        kwargs = {"camera": "patrol", **bad}
        with pytest.raises(BadInputError, match="patrol_speed"):
            bench_preset("warehouse", kwargs.pop("camera"), 0.5, **kwargs)
        with pytest.raises(BadInputError, match="patrol_speed"):
            BenchConfig(preset="warehouse", minutes=0.5, **bad).validate()


def test_a_stopping_patrol_stands_at_each_corner_before_it_turns_and_is_otherwise_the_same_route() -> None:
    from spatial_memory_ros.sim.camera import CameraPath

    plain = bench_preset("warehouse", "patrol", 0.5).camera
    stopping = bench_preset("warehouse", "patrol", 0.5, patrol_stop_s=10.0).camera
    a, b = CameraPath(plain), CameraPath(stopping)
    corners = len(plain.route)
    assert b.period_s == pytest.approx(a.period_s + 10.0 * corners)
    first = float(np.linalg.norm(np.subtract(plain.route[1], plain.route[0]))) / plain.speed  # arrival, s
    assert np.allclose(a.pose(first - 1.0), b.pose(first - 1.0)), "the same drive up to the corner"
    standing = [b.pose(first + dt) for dt in (0.0, 4.0, 9.9)]
    assert all(np.allclose(standing[0], T) for T in standing), "stands 10 s"
    assert np.allclose(b.pose(first + 10.0 + 0.5), a.pose(first + 0.5)), "then turns as the plain route does"
    with pytest.raises(BadInputError, match="patrol_stop_s"):
        bench_preset("warehouse", "static", 0.5, patrol_stop_s=10.0)
    with pytest.raises(BadInputError, match="patrol_stop_s"):
        BenchConfig(preset="warehouse", minutes=0.5, patrol_stop_s=-1.0).validate()


def test_rendering_in_a_second_process_gives_the_same_frames() -> None:
    scene = make_bench_scene("home", "patrol", 0.02, 3, width=96, height=72)  # 12 frames
    inline = list(sim_frames(scene, jobs=1))
    spawned = list(sim_frames(scene, jobs=2))
    assert len(inline) == len(spawned) == 12
    for a, b in zip(inline, spawned):
        assert np.array_equal(a.image, b.image) and np.array_equal(a.truth.change_mask, b.truth.change_mask)
        assert [x.agent_id for x in a.truth.agents] == [x.agent_id for x in b.truth.agents]


def test_bench_frames_keep_where_the_agents_are() -> None:
    # 10 s of the static warehouse, seed 19: an agent walks into view at frame 46. The bench's frames carry
    # the instance mask cut to 0/1, which splits the change recall into agents and scene changes.
    scene = make_bench_scene("warehouse", "static", 10 / 60, 19)
    acc = ChangeAccumulator()
    for full, slim in zip(scene.frames(), sim_frames(scene, jobs=1)):
        assert slim.truth.instance_mask.dtype == np.uint8
        assert np.array_equal(slim.truth.instance_mask, (full.truth.instance_mask > 0).astype(np.uint8))
        acc.add(slim.truth.change_mask, full.truth.change_mask, slim.truth.instance_mask)
    s = acc.summary()
    assert s.agent_pixels > 0 and s.recall_agents == 1.0  # the truth's own mask finds every agent pixel


def test_an_agent_with_too_little_in_view_is_dont_care_and_boxing_it_costs_nothing() -> None:
    # The same 10 s (seed 19): the agent that walks into view at frame 46 shows fewer than 100 pixels for a
    # few frames first. A tracker that boxes every agent the truth has, small ones too, scores precision 1.
    scene = make_bench_scene("warehouse", "static", 10 / 60, 19)
    acc, small = TrackingAccumulator(), 0
    for f in scene.frames():
        gt_ids, gt_boxes, dont_care = truth_tracks(f, 100)
        assert len(gt_ids) + len(dont_care) == len(f.truth.agents)
        assert sorted(gt_ids.tolist()) == sorted(a.agent_id for a in f.truth.agents if a.visible_px >= 100)
        small += len(dont_care)
        every = np.array([a.box for a in f.truth.agents], float).reshape(-1, 4)
        acc.add(f.index, gt_ids, gt_boxes, np.array([a.agent_id for a in f.truth.agents], np.int64), every, dont_care)
    s = acc.summary()
    assert small > 0 and s.num_gt > 0
    assert (s.det_precision, s.det_recall, s.num_ignored) == (1.0, 1.0, small)


def test_watch_sees_every_frame_of_every_tracking_method_as_it_is_scored() -> None:
    # Seed 5's static warehouse (a worker in all 60 frames, as in the tiny bench above), two tracking methods.
    seen: dict[str, list[TrackedFrame]] = {}
    config = BenchConfig(preset="warehouse", camera="static", minutes=0.1, seed=5, methods=("pipeline", "mog2"),
                         jobs=1)
    result = run_bench(config, progress=False, watch=lambda t: seen.setdefault(t.method, []).append(t))
    assert set(seen) == {"pipeline"}  # mog2 does no tracking
    frames = seen["pipeline"]
    assert [t.frame.index for t in frames] == list(range(60))
    scored = result.methods["pipeline"]["tracking"]
    assert sum(len(t.gt_ids) for t in frames) == scored["num_gt"] > 0
    assert sum(len(t.track_ids) for t in frames) == scored["num_pred"] + scored["num_ignored"] > 0


def test_export_round_trip_is_read_by_the_tum_reader_and_run(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    seq = tmp_path / "seq"
    # an earlier, longer export in the same folder: its frames beyond this one's must not stay
    for sub, name in (("rgb", "99.000000.png"), ("depth", "99.000000.png"), ("gt/change_masks", "000150.png")):
        (seq / sub).mkdir(parents=True, exist_ok=True)
        (seq / sub / name).write_bytes(b"an earlier export's")
    (seq / "sequence.json").write_text("{}")  # an export's mark: only such a folder is cleaned up
    # 10 s of the static warehouse, seed 19: an agent walks into view at frame 46.
    args = ["--camera", "static", "--minutes", str(10 / 60), "--seed", "19"]  # at 320 x 240, the bench size
    assert main(["bench", "--export", str(seq), *args]) == 0
    assert len(list((seq / "rgb").iterdir())) == len(list((seq / "depth").iterdir())) == 100
    capsys.readouterr()
    scene = make_bench_scene("warehouse", "static", 10 / 60, 19)
    truth = list(scene.frames())
    reader = TumReader(seq)
    assert len(reader) == len(truth) == 100
    for f, sim in zip(reader, truth):
        assert f.stamp == pytest.approx(sim.stamp) and np.array_equal(f.image, sim.image)
        assert f.T_map_cam is not None and np.allclose(f.T_map_cam, sim.T_map_cam, atol=1e-5)
        assert f.intrinsics is not None and f.intrinsics.fx == pytest.approx(sim.intrinsics.fx)
        ok = np.isfinite(sim.depth) & (sim.depth < 60)
        assert f.depth is not None and np.allclose(f.depth[ok], sim.depth[ok], atol=6e-4)
    rows = [r.split(",") for r in (seq / "gt" / "gt.txt").read_text().splitlines()]
    assert rows and all(len(r) == 10 and r[6] in ("0", "1") and r[7:] == ["-1", "-1", "-1"] for r in rows)
    agent = next(a for a in truth[int(rows[0][0]) - 1].truth.agents if a.agent_id == int(rows[0][1]))
    # 1-based pixels, as MOTChallenge's truth: read back by the PETS09 reader, it is the box again (it was 1 px off)
    assert [float(v) for v in rows[0][2:4]] == pytest.approx((agent.box[:2] + 1).tolist(), abs=0.01)
    from spatial_memory_ros.evaluate.pets import read_mot_gt

    back = read_mot_gt(seq / "gt" / "gt.txt")[int(rows[0][0])]
    assert np.allclose(back.boxes[back.ids.tolist().index(agent.agent_id)], agent.box, atol=0.01)
    # flag 1 = what the bench scores, 0 = don't-care, row for row as truth_tracks splits them
    flags = [(int(r[0]) - 1, int(r[1]), r[6]) for r in rows]
    expect = [(f.index, a.agent_id, "1" if a.visible_px >= 100 else "0") for f in truth for a in f.truth.agents]
    assert flags == expect and {"0", "1"} <= {r[6] for r in rows}
    masks = sorted((seq / "gt" / "change_masks").glob("*.png"))
    assert [m.name for m in masks] == [f"{k:06d}.png" for k in range(1, 101)]
    assert np.array_equal(cv2.imread(str(masks[-1]), cv2.IMREAD_UNCHANGED), truth[-1].truth.change_mask)
    items = json.loads((seq / "gt" / "items.json").read_text())["items"]
    assert set(items) == set(scene.items) and all(len(v["timeline"]) >= 1 for v in items.values())
    assert json.loads((seq / "sequence.json").read_text())["frames"] == 100

    out = tmp_path / "run"
    assert main(["run", str(seq), "--config", str(seq / "params.yaml"), "--out", str(out)]) == 0
    assert "processed 100 frames" in capsys.readouterr().out
    assert len(list((out / "change_masks").glob("*.png"))) == 100
    names = {a["item"] for a in json.loads((out / "items.json").read_text())["items"]}
    assert names and names <= set(scene.items)  # params.yaml named the tags


def _frame(image: np.ndarray, x: float = 0.0) -> Frame:
    T = np.eye(4)
    T[0, 3] = x
    h, w = image.shape[:2]
    return Frame(image, 0.0, CameraIntrinsics(100.0, 100.0, w / 2, h / 2, w, h), T, None)


def test_mog2_starts_over_when_the_camera_moves() -> None:
    mog2 = Mog2Method(ChangeConfig())
    rng = np.random.default_rng(0)
    background = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    for _ in range(30):
        assert mog2.update(_frame(background)).change_mask is not None
    person = background.copy()
    person[20:40, 30:50] = (255, 0, 255)
    mask = mog2.update(_frame(person)).change_mask
    assert mask is not None and mask[20:40, 30:50].mean() > 200 and mask[:15].mean() < 5
    moved = mog2.update(_frame(person, x=1.0)).change_mask  # 1 m: a new view, a new model
    assert moved is not None and not moved.any()


def test_no_memory_gives_fresh_ids_and_knows_only_what_it_sees_now() -> None:
    tags = FrameTags(TagConfig())
    method = NoMemoryMethod(tags, ChangeConfig(min_blob_area_px=20))
    last_seen = LastSeenMethod(tags)
    background = np.full((60, 80, 3), 120, np.uint8)
    ids: list[int] = []
    for k in range(6):
        image = background.copy()
        image[20:40, 5 + 8 * k : 20 + 8 * k] = 20  # a dark block walking right
        frame = _frame(image)
        out = method.update(frame)
        last_seen.update(frame)
        assert out.track_ids is not None and out.track_boxes is not None
        assert out.track_boxes.shape == (len(out.track_ids), 4)
        ids += out.track_ids.tolist()
    assert ids and len(ids) == len(set(ids))  # never the same id twice
    tags.offer(frame, [])
    assert method.locate("mug") is None and last_seen.locate("mug") is None
    assert method.capabilities == {"tracking", "memory"} and last_seen.capabilities == {"memory"}


def test_first_seen_keeps_the_first_sighting_and_the_empty_mask_is_empty() -> None:
    """The trivial floors the headline scores are read against (BENCHMARKS "What the scores are made of")."""
    from spatial_memory_ros.bench.methods import EmptyMaskMethod, FirstSeenMethod

    tags = FrameTags(TagConfig())
    first, last = FirstSeenMethod(tags), LastSeenMethod(tags)
    frame = _frame(np.full((60, 80, 3), 120, np.uint8))
    for x in (1.0, 2.0):
        tags._frame, tags._positions = frame, {"mug": np.array([x, 0.0, 0.0])}  # as offer() leaves them
        first.update(frame)
        last.update(frame)
        frame = _frame(np.full((60, 80, 3), 120, np.uint8))
    assert first.locate("mug") is not None and first.locate("mug")[0][0] == 1.0  # type: ignore[index]
    assert last.locate("mug") is not None and last.locate("mug")[0][0] == 2.0  # type: ignore[index]
    mask = EmptyMaskMethod().update(frame).change_mask
    assert mask is not None and mask.shape == (60, 80) and not mask.any()


def test_the_baselines_run_the_classical_change_detector() -> None:
    """The benchmark's baselines are the classical pipeline whatever the package's default change method (learned
    since 2026-12-03), so their figures stay comparable across BENCHMARKS.md; the learned methods set their own."""
    assert ChangeConfig().method == "learned"
    scene = make_bench_scene("home", "static", 0.01, 1, width=96, height=72)
    methods = make_methods(["pipeline", "pipeline_reader", "pipeline_prior", "no_memory", "learned"], scene)
    try:
        pipeline, reader, prior, no_memory, learned = methods
        assert [m.pipeline.describe_change() for m in (pipeline, reader, prior)] == ["classical"] * 3  # type: ignore[attr-defined]
        assert type(no_memory._change) is ChangeDetector  # type: ignore[attr-defined]
        assert learned.pipeline.describe_change().startswith("learned (")  # type: ignore[attr-defined]
    finally:
        for method in methods:
            method.close()


def test_unknown_method_is_refused() -> None:
    scene = make_bench_scene("home", "static", 0.01, 1, width=96, height=72)
    with pytest.raises(BadInputError, match="unknown methods"):
        make_methods(["pipeline", "magic"], scene)


def _one_method_doc(n: int, accuracy: float, recall: float) -> dict:
    """A results.json of one memory method "m" whose layout and R@1 were asked n times."""
    layout = {"accuracy": accuracy, "n": n, "accuracy_when_displaced": 0.0, "n_displaced": 0}
    retrieval = {"recall_at_1": recall, "n": n, "per_bucket": {"1 min": {"recall_at_1": recall, "n": n}}}
    return {
        "methods": {"m": {"tracking": None, "change": None, "layout": layout, "retrieval": retrieval,
                          "cost": {"fps": 12.0}}},
        "run": {"fps": 10.0, "peak_rss_mb": 100.0, "growth_mb_per_hour": float("nan")},
    }


def test_table_says_n_a_where_nothing_was_asked() -> None:
    from spatial_memory_ros.bench.report import format_table

    doc = _one_method_doc(0, 0.0, 0.0)
    row = format_table(doc).splitlines()[2].split()
    assert row == ["m", *["-"] * 10, "n/a", "n/a", "n/a", "n/a", "12.0", "-", "-"]


def test_table_has_a_seen_row_only_when_the_run_had_one() -> None:
    from spatial_memory_ros.bench.report import format_table

    doc = _one_method_doc(4, 0.5, 0.25)
    assert "(seen)" not in format_table(doc)  # results.json from before the row existed
    doc["seen"] = {"layout": 0.75, "n_layout": 4, "retrieval": 0.0, "n_retrieval": 0}
    row = next(line for line in format_table(doc).splitlines() if line.startswith("(seen)")).split()
    assert row == ["(seen)", *["-"] * 10, "0.750", "n/a", "-", "-", "-", "-", "-"]


def test_table_gives_det_f1_with_its_interval(tmp_path: Path) -> None:
    from spatial_memory_ros.bench.plots import plot_metrics
    from spatial_memory_ros.bench.report import format_table

    doc = _one_method_doc(4, 0.5, 0.25)
    tracking = {"det_f1": 0.942, "det_f1_low": 0.9104, "det_f1_high": 0.9661, "hota": 0.8, "idf1": 0.9, "mota": 0.9}
    doc["methods"]["m"]["tracking"] = tracking
    doc["benchmark"] = {"preset": "warehouse", "camera": "patrol", "minutes": 10.0, "seed": 1}
    assert format_table(doc).splitlines()[2].split()[1:3] == ["0.942", "0.910-0.966"]
    plot_metrics(doc, tmp_path / "metrics.png")  # the interval as an error bar
    assert (tmp_path / "metrics.png").stat().st_size > 0
    del tracking["det_f1_low"], tracking["det_f1_high"]  # a results.json from before the interval
    assert format_table(doc).splitlines()[2].split()[1:3] == ["0.942", "n/a"]
    plot_metrics(doc, tmp_path / "metrics.png")


def test_export_never_deletes_a_folder_it_did_not_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A user's own TUM folder given as --export lost every PNG of rgb/ (the stale-frame clean-up)."""
    mine = tmp_path / "my_tum"
    (mine / "rgb").mkdir(parents=True)
    (mine / "rgb" / "1305031102.000000.png").write_bytes(b"my image")
    (mine / "groundtruth.txt").write_text("# my mocap\n")
    assert main(["bench", "--export", str(mine), "--minutes", "0.01", "--seed", "19"]) == 2
    assert "not an earlier export" in capsys.readouterr().err
    assert (mine / "rgb" / "1305031102.000000.png").read_bytes() == b"my image"
    assert (mine / "groundtruth.txt").read_text() == "# my mocap\n"


def test_export_checks_its_arguments_as_a_run_does(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--export skipped the checks: --minutes inf never ended, --width 0 was a traceback."""
    for bad, message in ((["--minutes", "inf"], "minutes must be > 0 and at most"),
                         (["--minutes", "0.01", "--width", "0"], "width and height must be >= 32 px"),
                         (["--minutes", "0.001"], "shorter than one frame")):  # exit 0, "wrote 0 frames"
        assert main(["bench", "--export", str(tmp_path / "seq"), *bad]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "seq").exists()


@pytest.mark.timeout(60)
def test_a_rerun_without_a_memory_method_leaves_no_earlier_map(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The earlier run's map.png stayed and was listed as written, beside results.json of another method set."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "map.png").write_bytes(b"an earlier run's map")
    assert main(["bench", "--minutes", "0.05", "--jobs", "1", "--methods", "mog2", "--out", str(out)]) == 0
    assert not (out / "map.png").exists() and "map.png" not in capsys.readouterr().out.splitlines()[-1]


def test_the_help_names_the_methods_a_plain_bench_runs() -> None:
    """`bench --help` writes the default methods out (so that it need not import them); they must be the ones run."""
    assert HELP_DEFAULT_METHODS.split(",") == list(DEFAULT_METHODS)


def test_tracking_with_nothing_in_view_and_nothing_claimed_is_n_a_not_zero() -> None:
    """A short run with no agent in view and no box: every tracking score read 0.000, as a tracker that failed."""
    from spatial_memory_ros.bench.report import format_table

    doc = _one_method_doc(4, 0.5, 0.25)
    empty = {"det_f1": 0.0, "det_f1_low": float("nan"), "det_f1_high": float("nan"), "hota": 0.0, "idf1": 0.0,
             "mota": 0.0, "num_gt": 0, "num_pred": 0}
    doc["methods"]["m"]["tracking"] = empty
    assert format_table(doc).splitlines()[2].split()[1:6] == ["n/a"] * 5
    doc["methods"]["m"]["tracking"] = {**empty, "mota": -3.0, "num_pred": 3}  # false alarms with nothing there
    assert format_table(doc).splitlines()[2].split()[1:6] == ["0.000", "n/a", "0.000", "0.000", "-3.000"]


def test_a_bench_refused_before_it_runs_leaves_no_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--out was made before the methods and the model were checked: a mistyped --methods left an empty folder."""
    from spatial_memory_ros.cli.main import main

    code = main(["bench", "--preset", "home", "--camera", "static", "--minutes", "0.01", "--seed", "100",
                 "--methods", "pipeline,magic", "--out", str(tmp_path / "o")])
    assert code == 2 and "unknown methods" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
