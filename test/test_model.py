"""The learned model (spatial_memory_ros.model): shapes, determinism, bounded state, overfitting, checkpoints,
the runtime wrapper in the pipeline, and the shipped checkpoint on a held-out benchmark frame."""

from __future__ import annotations

import gc
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tiny_model import INTR, TINY, tiny_model  # noqa: E402

from spatial_memory_ros.core.change_backend import make_change_backend  # noqa: E402
from spatial_memory_ros.core.config import LEARNED_MIN_HITS, ChangeConfig, MemoryConfig, PipelineConfig  # noqa: E402
from spatial_memory_ros.core.errors import BadInputError  # noqa: E402
from spatial_memory_ros.core.item_memory import ItemMemory  # noqa: E402
from spatial_memory_ros.core.pipeline import Pipeline  # noqa: E402
from spatial_memory_ros.core.types import Frame  # noqa: E402
from spatial_memory_ros.model.bench_method import LearnedMethod  # noqa: E402
from spatial_memory_ros.model.boxes import complete_at_border, mask_regions, trim_bottom  # noqa: E402
from spatial_memory_ros.model.checkpoint import DEFAULT_CHECKPOINT, build_model, save_model  # noqa: E402
from spatial_memory_ros.model.config import ModelConfig  # noqa: E402
from spatial_memory_ros.model.losses import LossWeights  # noqa: E402
from spatial_memory_ros.model.model import SpatialMemoryModel  # noqa: E402
from spatial_memory_ros.model.runtime import LearnedChangeDetector  # noqa: E402
from spatial_memory_ros.model.train import chunk_loss  # noqa: E402
from spatial_memory_ros.sim.camera import look_at  # noqa: E402

torch.set_num_threads(1)  # tests share 2 cores with everything else


def inputs(B: int, cfg: ModelConfig = TINY, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (B, 3, cfg.image_height, cfg.image_width), generator=g, dtype=torch.uint8)
    K = torch.tensor([[30.0, 0, 16], [0, 30, 12], [0, 0, 1]]).expand(B, 3, 3)
    T = torch.eye(4).repeat(B, 1, 1)
    T[:, :3, :3] = torch.tensor([[1.0, 0, 0], [0, -0.6, -0.8], [0, 0.8, -0.6]])  # looking down at the floor
    T[:, 2, 3] = 1.5
    return image, K, T, torch.ones(B, dtype=torch.bool)


def test_shapes() -> None:
    model, B, cfg = tiny_model(), 3, TINY
    state = model.initial_state(B)
    assert state.shape == (B, cfg.memory_slots, cfg.dim)
    out = model(*inputs(B), state)
    rows, cols = cfg.grid
    s = cfg.mask_stride
    assert out.change_logits.shape == (B, 1, cfg.image_height // s, cfg.image_width // s)
    assert out.patch_logits.shape == (B, rows * cols)
    assert out.embeddings.shape == (B, rows * cols, cfg.embed_dim)
    assert torch.allclose(out.embeddings.norm(dim=-1), torch.ones(B, rows * cols), atol=1e-5)
    assert out.tokens.shape == (B, rows * cols, cfg.dim)
    assert out.state.shape == state.shape and out.camera.shape == (B, cfg.dim)
    pred = model.predict_head.predict(out.state, out.camera)
    assert pred.shape == (B, cfg.embed_dim) == model.predict_head.target(out.tokens).shape


def test_memory_disabled_keeps_the_state() -> None:
    model = tiny_model()
    state = model.initial_state(2)
    on = model(*inputs(2), state)
    off = model(*inputs(2), state, use_memory=False)
    assert not torch.equal(on.state, state)
    assert torch.equal(off.state, state)


def test_bad_config_is_named() -> None:
    with pytest.raises(ValueError, match="multiples of patch_size"):
        ModelConfig(image_width=30).validate()
    with pytest.raises(ValueError, match="unknown model settings"):
        ModelConfig.from_dict({**TINY.to_dict(), "colour": 1})


def test_deterministic() -> None:
    a, b = tiny_model(seed=3), tiny_model(seed=3)
    x = inputs(2, seed=5)
    with torch.inference_mode():
        out_a = a(*x, a.initial_state(2))
        out_b = b(*x, b.initial_state(2))
        again = a(*x, a.initial_state(2))
    assert torch.equal(out_a.change_logits, out_b.change_logits)
    assert torch.equal(out_a.change_logits, again.change_logits)
    assert torch.equal(out_a.state, out_b.state)


def test_state_bounded_over_many_steps() -> None:
    """500 steps: the state keeps its size and stays in [-1, 1]; no Python objects pile up."""
    det = LearnedChangeDetector(tiny_model(), device="cpu")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(4)]
    T = np.eye(4)
    shape = det.state.shape
    for i in range(500):
        T[0, 3] = 0.01 * i  # a moving camera
        det.update(images[i % 4], T)
        if i == 99:
            gc.collect()
            objects_before = len(gc.get_objects())
    gc.collect()
    growth = len(gc.get_objects()) - objects_before
    assert det.state.shape == shape == (1, TINY.memory_slots, TINY.dim)
    assert float(det.state.abs().max()) <= 1.0
    assert growth < 50, f"{growth} more Python objects after 400 more steps"


def moving_square_batch(T: int = 3, B: int = 2) -> dict[str, torch.Tensor]:
    """A fixed tiny sequence: a bright square moving over a textured background; the square is 'changed'."""
    rng = np.random.default_rng(1)
    H, W = TINY.image_height, TINY.image_width
    images = np.repeat(rng.integers(40, 120, (1, B, 3, H, W)), T, axis=0).astype(np.uint8)
    masks = np.zeros((T, B, 1, H, W), np.float32)
    labels = np.zeros((T, B, *TINY.grid), np.int64)
    for t in range(T):
        for b in range(B):
            x, y = 2 + 5 * t + 3 * b, 4 + 2 * b
            images[t, b, :, y : y + 10, x : x + 8] = 230
            masks[t, b, 0, y : y + 10, x : x + 8] = 1.0
            labels[t, b, (y + 5) // 8, (x + 4) // 8] = b + 1
    _, K, pose, has_pose = inputs(B)
    return {
        "images": torch.from_numpy(images), "masks": torch.from_numpy(masks), "labels": torch.from_numpy(labels),
        "poses": pose.expand(T, B, 4, 4), "K": K, "has_pose": has_pose,
    }


def test_tiny_model_overfits_a_tiny_sequence() -> None:
    """The supervised mask loss (BCE + dice + patch BCE; about 1.1 untrained) drops below 0.25 in 30 steps."""
    torch.manual_seed(0)
    model = SpatialMemoryModel.from_config(TINY).train()
    batch = moving_square_batch()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = last = None
    for _ in range(30):
        loss, logs, _ = chunk_loss(model, batch, model.initial_state(2), LossWeights())
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = logs["mask"] if first is None else first
        last = logs["mask"]
    assert first is not None and last is not None
    assert last < 0.25 < first, (first, last)


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    model = tiny_model(seed=7)
    path = tmp_path / "m.pt"
    save_model(path, model, {"seed": 1000})
    loaded = build_model(path, "cpu")
    assert loaded.config == TINY and not loaded.training
    x = inputs(2, seed=9)
    with torch.inference_mode():
        a = model(*x, model.initial_state(2))
        b = loaded(*x, loaded.initial_state(2))
    assert torch.equal(a.change_logits, b.change_logits) and torch.equal(a.state, b.state)
    with pytest.raises(ValueError, match="no model checkpoint"):
        build_model(tmp_path / "missing.pt")


@pytest.mark.parametrize("damage", ["cut short", "random bytes", "empty", "a list", "another model's weights"])
def test_a_damaged_checkpoint_gives_a_clear_error(tmp_path: Path, damage: str) -> None:
    """A copy cut short, a file overwritten, or weights that do not fit their config: BadInputError (a
    ValueError) naming the file, never torch's raw error (its advice for a damaged file is weights_only=False,
    which would run the file's code); the learned backend says which parameter it came from."""
    good = tmp_path / "good.pt"
    save_model(good, tiny_model())
    path = tmp_path / "bad.pt"
    if damage == "cut short":
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif damage == "random bytes":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "a list":
        torch.save([1, 2, 3], path)
    else:
        data = torch.load(good, weights_only=True)
        data["model"] = {k: v[..., :1] if v.ndim else v for k, v in data["model"].items()}
        torch.save(data, path)
    expected = "do not fit" if damage == "another model's weights" else (
        "not a spatial memory model checkpoint" if damage == "a list" else "damaged")
    with pytest.raises(BadInputError, match=expected) as err:
        build_model(path)
    assert str(path) in str(err.value) and "weights_only=False" not in str(err.value)
    with pytest.raises(BadInputError, match=f"change.method learned: .*{expected}"):
        make_change_backend(ChangeConfig(method="learned", model_path=str(path)), device="cpu")


def test_a_checkpoint_that_cannot_be_read_is_not_called_damaged(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A permission or I/O error says so: the file itself may be fine, and "damaged" would send the user to
    replace a good file. (Tests may run as root, which reads any file: the error is raised by a stand-in.)"""
    path = tmp_path / "good.pt"
    save_model(path, tiny_model())

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(torch, "load", denied)
    with pytest.raises(BadInputError, match="Permission denied") as err:
        build_model(path)
    assert str(path) in str(err.value) and "damaged" not in str(err.value)


def test_runtime_in_the_pipeline() -> None:
    """The detector is a ChangeBackend: full-size masks, boxes from the mask, any image size, no pose."""
    det = LearnedChangeDetector(tiny_model(), device="cpu", min_blob_area_px=1)
    config = PipelineConfig(memory=MemoryConfig(db_path=":memory:"))
    pipeline = Pipeline(config, ItemMemory(config.memory), change=det)
    rng = np.random.default_rng(0)
    for i in range(3):
        image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
        result = pipeline.update(Frame(image=image, stamp=0.1 * i, intrinsics=INTR, T_map_cam=None))
        assert result.change_mask.shape == (120, 160) and result.change_mask.dtype == np.uint8
    out = det.update(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))  # another size: memory restarts
    assert out.mask.shape == (48, 64) and not out.camera_moved
    for box in out.motion_boxes:
        assert out.mask[int(box[1]) : int(box[3]), int(box[0]) : int(box[2])].any()
    emb = det.embed_boxes(np.array([[0, 0, 32, 24], [30, 20, 34, 26]]))
    assert emb.shape == (2, TINY.embed_dim) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_runtime_keeps_the_visible_part_of_boxes_it_completes() -> None:
    """With a camera pose, regions at the border are completed to whole agents; motion_seen_boxes keeps each
    region's own box (for lifting to 3D; its bottom edge trimmed to the feet, model.boxes.trim_bottom), in the
    same order."""
    T = look_at(np.array([0.0, 0.0, 1.5]), np.array([1.5, 0.0, 0.0]))  # pitched 45 degrees down
    det = LearnedChangeDetector(tiny_model(), device="cpu", min_blob_area_px=1, intrinsics=INTR)
    cell_px = 120 / (det.config.image_height // det.config.mask_stride)  # image rows per mask row
    rng = np.random.default_rng(0)
    completed = 0
    for _ in range(5):
        out = det.update(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8), T)
        assert out.motion_seen_boxes is not None
        regions = [trim_bottom(box, cell_px, 120) for box, _area in mask_regions(out.mask, 1)]
        np.testing.assert_array_equal(np.reshape(out.motion_seen_boxes, (-1, 4)), np.reshape(regions, (-1, 4)))
        for seen, box in zip(out.motion_seen_boxes, out.motion_boxes, strict=True):
            assert (box[:2] <= seen[:2]).all() and (box[2:] >= seen[2:]).all()
            completed += not np.array_equal(seen, box)
    assert completed > 0, "some random region should touch the border and be completed"


def test_runtime_judges_flecks_on_the_region_as_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """side_fleck's limits were set on regions as found and their completions: the runtime must give it that
    pair, not the found region beside the trimmed region's completion (trim_bottom)."""
    from spatial_memory_ros.model import runtime

    calls: list[tuple[np.ndarray, np.ndarray]] = []

    def record(seen: np.ndarray, area_px: int, whole: np.ndarray, height: int) -> bool:
        calls.append((seen.copy(), whole.copy()))
        return False

    monkeypatch.setattr(runtime, "side_fleck", record)
    T = look_at(np.array([0.0, 0.0, 1.5]), np.array([1.5, 0.0, 0.0]))
    det = LearnedChangeDetector(tiny_model(), device="cpu", min_blob_area_px=1, intrinsics=INTR)
    rng = np.random.default_rng(0)
    for _ in range(5):
        det.update(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8), T)
    trimmed = 0
    for seen, whole in calls:
        np.testing.assert_array_equal(whole, complete_at_border(seen, INTR.K, T, 160, 120, det.agent_height_m))
        trimmed += seen[3] < 120
    assert trimmed > 0, "some judged region should be one the trim moves"


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_cameras_batched_match_cameras_alone(device: str) -> None:
    """update_batch() steps two cameras (different image sizes) at once, as two detectors would one by one
    (on CUDA too, where fp16 autocast allows a looser tolerance)."""
    model = tiny_model(seed=2)
    both = LearnedChangeDetector(model, device=device, cameras=2)
    alone = [LearnedChangeDetector(model, device=device) for _ in range(2)]
    atol = 1e-5 if device == "cpu" else 1e-2
    rng = np.random.default_rng(3)
    for _ in range(3):
        images = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)]
        poses = [np.eye(4), None]
        batched = both.update_batch(images, poses)
        for c in range(2):
            single = alone[c].update(images[c], poses[c])
            assert batched[c].mask.shape == single.mask.shape == images[c].shape[:2]
            assert torch.allclose(both.state[c].float(), alone[c].state[0].float(), atol=atol)
    with pytest.raises(BadInputError, match="call update_batch"):
        both.update(images[0])
    both.reset(1)
    initial = model.initial_state(1, both.device)[0]
    assert torch.equal(both.state[1], initial) and not torch.equal(both.state[0], both.state[1])


def test_a_featureless_frame_steps_as_the_ablation_and_leaves_the_memory() -> None:
    """A flat frame (a surface right against the lens) reads the initial memory, as the memory-disabled model
    does, and leaves the memory as it was; a textured frame in the same batch still updates its camera's row.
    blank_std=0 treats every frame alike."""
    model = tiny_model(seed=1)
    rng = np.random.default_rng(4)
    flat = np.clip(rng.normal((30.0, 140.0, 240.0), 1.0, (48, 64, 3)), 0, 255).astype(np.uint8)  # orange, sensor noise
    one = LearnedChangeDetector(model, device="cpu", min_blob_area_px=1)
    ablation = LearnedChangeDetector(model, device="cpu", use_memory=False, min_blob_area_px=1)
    two = LearnedChangeDetector(model, device="cpu", cameras=2, min_blob_area_px=1)
    for _ in range(3):
        textured = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        one.update(textured)
        ablation.update(textured)
        two.update_batch([textured, textured], [None, None])
    before, before_two = one.state.clone(), two.state.clone()
    np.testing.assert_array_equal(one.update(flat).mask, ablation.update(flat).mask)
    assert torch.equal(one.state, before)
    two.update_batch([flat, rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)], [None, None])
    assert torch.equal(two.state[0], before_two[0]) and not torch.equal(two.state[1], before_two[1])
    always = LearnedChangeDetector(model, device="cpu", blank_std=0.0)
    start = always.state.clone()
    always.update(flat)
    assert not torch.equal(always.state, start)
    with pytest.raises(ValueError, match="blank_std"):
        LearnedChangeDetector(model, device="cpu", blank_std=-1.0)


def test_the_slot_ablation_keeps_the_initial_slots_and_forgets_the_history() -> None:
    """slot_memory=False (the bench's learned_no_slots): the slots never leave their initial state, so a frame's
    logits are the same whatever came before; with the slots on, two histories give two answers."""
    model = tiny_model(seed=2)
    rng = np.random.default_rng(5)
    history = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(4)]
    probe = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)

    def logits_after(frames: list[np.ndarray], slot_memory: bool) -> tuple[np.ndarray, torch.Tensor]:
        det = LearnedChangeDetector(model, device="cpu", slot_memory=slot_memory)
        initial = det.state.clone()
        for f in frames:
            det.update(f)
        if not slot_memory:
            assert torch.equal(det.state, initial)
        step = det.network_step([det.prepare(0, probe, None)])[0]
        return step.logits, det.state

    off_long, _ = logits_after(history, slot_memory=False)
    off_short, _ = logits_after(history[-1:], slot_memory=False)
    np.testing.assert_array_equal(off_long, off_short)
    on_long, _ = logits_after(history, slot_memory=True)
    on_short, _ = logits_after(history[-1:], slot_memory=True)
    assert not np.array_equal(on_long, on_short)
    assert "slots off" in LearnedChangeDetector(model, device="cpu", slot_memory=False).describe()


def test_change_method_parameter_selects_the_learned_model(tmp_path: Path) -> None:
    save_model(tmp_path / "m.pt", tiny_model())
    change = ChangeConfig(method="learned", model_path=str(tmp_path / "m.pt"), min_blob_area_px=7)
    det = make_change_backend(change, device="cpu")
    assert isinstance(det, LearnedChangeDetector) and det.min_blob_area_px == 7
    assert det.floor_memory is not None  # change.floor_memory is on by default
    assert det.still_edges is not None and (det.still_edges.move_m, det.still_edges.move_deg) == (0.05, 2.0)
    far = make_change_backend(replace(change, pose_reset_translation_m=0.3, pose_reset_rotation_deg=5.0), device="cpu")
    assert isinstance(far, LearnedChangeDetector) and far.still_edges is not None
    assert (far.still_edges.move_m, far.still_edges.move_deg) == (0.3, 5.0), "they follow change.pose_reset_*"
    off = make_change_backend(replace(change, floor_memory=False), device="cpu")
    assert isinstance(off, LearnedChangeDetector) and off.floor_memory is None
    with pytest.raises(BadInputError, match="no model checkpoint"):
        make_change_backend(ChangeConfig(method="learned", model_path=str(tmp_path / "nope.pt")))
    with pytest.raises(BadInputError, match="change.method must be one of classical, learned"):
        PipelineConfig(change=ChangeConfig(method="magic")).validate()


def test_bench_method_confirms_learned_regions_with_its_own_min_hits(tmp_path: Path) -> None:
    """The bench's learned method is the pipeline with the learned backend and tracker.min_hits LEARNED_MIN_HITS."""
    save_model(tmp_path / "m.pt", tiny_model())
    config = PipelineConfig(change=ChangeConfig(model_path=str(tmp_path / "m.pt")), memory=MemoryConfig(db_path=""))
    method = LearnedMethod(config, use_memory=False, device="cpu")
    try:
        assert method.name == "learned_no_memory"
        assert config.tracker.min_hits == 0 and method.pipeline.config.change.method == "learned"
        assert method.pipeline.config.resolved_tracker().min_hits == LEARNED_MIN_HITS
        assert method.pipeline._tracker.config.min_hits == LEARNED_MIN_HITS  # what the tracker confirms with
    finally:
        method.close()
    method = LearnedMethod(config, slot_memory=False, device="cpu")
    try:  # the slot ablation keeps every other memory
        assert method.name == "learned_no_slots" and method.pipeline._change.use_memory
        assert not method.pipeline._change.slot_memory
    finally:
        method.close()
    by_hand = replace(config, tracker=replace(config.tracker, min_hits=2))
    method = LearnedMethod(by_hand, use_memory=False, device="cpu")
    try:
        assert method.pipeline._tracker.config.min_hits == 2
    finally:
        method.close()


def random_mask_iou(pred_rate: float, true_rate: float) -> float:
    """Expected IoU of the changed class for a random mask with positive rate pred_rate (independent pixels)."""
    inter = pred_rate * true_rate
    return inter / (pred_rate + true_rate - inter)


@pytest.mark.skipif(not DEFAULT_CHECKPOINT.is_file(), reason="no shipped checkpoint yet (spatial-memory train)")
def test_shipped_checkpoint_beats_chance_on_held_out_benchmark_frames() -> None:
    """Benchmark seed 102 (held out), home, static camera, the bench's 320x240: the model sees frames 0-149
    and is scored on 90-149, where a person walks through. The changed-class IoU must exceed 0.5 and
    5x the IoU of a random mask with the same positive rate."""
    bench_scene = pytest.importorskip("spatial_memory_ros.bench.scene")
    scene = bench_scene.make_bench_scene("home", "static", 0.3, 102)
    det = LearnedChangeDetector(intrinsics=scene.intrinsics, device="cpu")
    tp = pred_n = true_n = n = 0
    for f in scene.frames(limit=150):
        pred = det.update(f.image, f.T_map_cam).mask > 0
        if f.index < 90:
            continue
        true = f.truth.change_mask > 0
        tp += int((pred & true).sum())
        pred_n, true_n, n = pred_n + int(pred.sum()), true_n + int(true.sum()), n + pred.size
    assert true_n > 0.01 * n, "the scored frames must hold changes"
    iou = tp / (pred_n + true_n - tp)
    chance = random_mask_iou(pred_n / n, true_n / n)
    assert iou > 0.5 and iou > 5 * chance, (iou, chance)


def test_bench_model_steps_cameras_as_one_batch() -> None:
    """`spatial-memory bench-model --cameras 2`: two memory rows (twice the state), frames counted per camera,
    and the long run keeps the state's size."""
    from spatial_memory_ros.model.speed import measure

    one = measure(size=(64, 48), timed_frames=4, long_steps=10, sample_every=5, progress=False)
    two = measure(size=(64, 48), timed_frames=4, long_steps=10, sample_every=5, progress=False, cameras=2)
    assert (one.cameras, two.cameras) == (1, 2)
    assert two.state_bytes == 2 * one.state_bytes > 0
    assert two.fps > 0 and two.model_fps > 0 and two.long_steps == 10


def test_a_camera_below_the_floor_leaves_the_memory_finite() -> None:
    """A map whose origin is the first camera pose puts the camera at z ~ 0, and a drift takes it below: its
    negative ranges made the pose features NaN, and the recurrent memory kept the NaN for good."""
    det = LearnedChangeDetector(tiny_model(), device="cpu", intrinsics=INTR)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    for z in (1.0, -0.01, 1.0, 1.0):
        det.update(image, look_at([0.0, 0.0, z], [1.0, 0.0, z]))  # level: half its rays point up
        assert torch.isfinite(det.state).all(), z


@pytest.mark.parametrize("bad", [{"fx": 0.0, "fy": 0.0}, {"cx": float("nan")}, {"fx": float("inf")}])
def test_intrinsics_no_camera_has_are_refused_before_the_network(bad: dict[str, float]) -> None:
    """A NaN or zero focal length reached the network and made the memory NaN for good."""
    det = LearnedChangeDetector(tiny_model(), device="cpu")
    image = np.zeros((120, 160, 3), np.uint8)
    before = det.state.clone()
    with pytest.raises(BadInputError, match="fx and fy must be > 0 and all finite"):
        det.update(image, np.eye(4), intrinsics=replace(INTR, **bad))
    assert torch.equal(det.state, before)


def test_update_batch_refuses_every_camera_before_it_touches_one() -> None:
    """The second camera's intrinsics of another size were found in its prepare(), after the first camera's
    memory had been reset and its image size changed."""
    det = LearnedChangeDetector(tiny_model(), device="cpu", cameras=2)
    rng = np.random.default_rng(1)
    small = [rng.integers(0, 256, (30, 40, 3), dtype=np.uint8) for _ in range(2)]
    det.update_batch(small, [np.eye(4), np.eye(4)])
    before = det.state.clone()
    images = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(2)]  # a new size: cam 0 resets
    with pytest.raises(BadInputError, match="intrinsics are for"):
        det.update_batch(images, [np.eye(4), np.eye(4)], intrinsics=[INTR, replace(INTR, width=1280, height=720)])
    assert torch.equal(det.state, before)


@pytest.mark.parametrize("shape", [(0, 160, 3), (120, 0, 3)])
def test_an_empty_image_is_bad_input(shape: tuple[int, int, int]) -> None:
    with pytest.raises(BadInputError, match="non-empty"):
        LearnedChangeDetector(tiny_model(), device="cpu").update(np.zeros(shape, np.uint8))


def test_a_place_memory_steps_under_autocast() -> None:
    """The CUDA path runs the step under fp16 autocast (training, bf16): the place memory's gate and keys came out
    of their linears in half precision and index_add_ into its fp32 sums raised. CPU autocast does the same; bf16
    here, the half precision every torch's CPU autocast takes (2.1 refuses fp16 on the CPU)."""
    det = LearnedChangeDetector(tiny_model(config=replace(TINY, place_cells=8)), device="cpu", intrinsics=INTR)
    image = np.random.default_rng(2).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast is thread state: the step inside runs under it
        det.update(image, look_at([0.0, 0.0, 1.5], [1.0, 0.0, 0.0]))
    assert torch.isfinite(det.state).all() and bool((det.state[0, TINY.memory_slots:].abs().sum(-1) > 0).any())


def test_a_map_far_from_its_origin_gives_the_same_memory() -> None:
    """A UTM-scale map frame (x 5e5 m, y 5e6 m): in float32 its floor points moved by up to 0.5 m, the shortest
    wavelength of the floor features. Shifted by whole periods, the model must see the same floor."""
    model = tiny_model(seed=4)
    near, far = (LearnedChangeDetector(model, device="cpu", intrinsics=INTR) for _ in range(2))
    rng = np.random.default_rng(5)
    shift = np.array([512_000.0, 5_120_000.0, 0.0])  # whole multiples of the longest wavelength
    assert np.all(shift[:2] % TINY.floor_period_m == 0)
    for i in range(4):
        image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
        T = look_at([0.3 * i + 0.123, 1.7, 1.5], [0.3 * i + 2.0, 1.9, 0.0])
        T_far = T.copy()
        T_far[:3, 3] += shift
        a, b = near.update(image, T), far.update(image, T_far)
        assert torch.allclose(near.state, far.state, atol=1e-4), i
        assert np.array_equal(a.mask, b.mask)


def test_bench_model_times_the_threads_it_reports(monkeypatch) -> None:
    """The detector set torch to 1 thread after measure() had set --threads: `bench-model --threads 2` timed one
    thread and reported two."""
    from spatial_memory_ros.model import speed

    seen: list[int] = []
    timed = speed._model_fps
    monkeypatch.setattr(speed, "_model_fps", lambda *a: (seen.append(torch.get_num_threads()), timed(*a))[1])
    try:
        result = speed.measure(size=(64, 48), timed_frames=2, long_steps=2, sample_every=1, progress=False,
                               threads=2)
    finally:
        torch.set_num_threads(1)
    assert seen == [2] and result.threads == 2


def test_floor_geometry_stays_float32_under_autocast() -> None:
    """On CUDA the step runs under fp16 autocast, which ran the rays' matmul in fp16: floor points cm off and pose
    features unlike those the float32-trained model learned. CPU autocast (bfloat16, coarser still) shows it."""
    from spatial_memory_ros.model.encoder import patch_floor_points

    config = ModelConfig()
    tilt = np.radians(20.0)
    R = np.array([[1.0, 0.0, 0.0], [0.0, -np.sin(tilt), np.cos(tilt)], [0.0, -np.cos(tilt), -np.sin(tilt)]])
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, [7.3, 3.1, 1.2]  # optical frame: looks along +y, 20 deg down, 1.2 m up
    K = torch.tensor([[[100.0, 0.0, 64.0], [0.0, 100.0, 48.0], [0.0, 0.0, 1.0]]])
    exact = patch_floor_points(config, K, torch.tensor(T, dtype=torch.float32)[None])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cast = patch_floor_points(config, K, torch.tensor(T, dtype=torch.float32)[None])
    assert exact[1].any()  # some patches see the floor
    for a, b in zip(exact, cast):
        assert b.dtype == a.dtype
        assert torch.equal(a, b)


@pytest.mark.parametrize("broken", ["zero_rotation", "scaled_rotation", "far", "mirror", "last_row"])
def test_a_pose_that_is_no_rigid_transform_is_refused(broken: str) -> None:
    """A zero or scaled rotation and a camera 1e30 m up passed the finiteness check and made the memory NaN."""
    det = LearnedChangeDetector(tiny_model(), device="cpu", intrinsics=INTR)
    image = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    good = look_at(np.array([0.0, 0.0, 1.5]), np.array([2.0, 0.0, 0.0]))
    det.update(image, good)
    T = good.copy()
    if broken == "zero_rotation":
        T[:3, :3] = 0.0
    elif broken == "scaled_rotation":
        T[:3, :3] *= 1e6
    elif broken == "far":
        T[2, 3] = 1e30
    elif broken == "mirror":
        T[:3, 0] *= -1.0
    else:
        T[3, 0] = 0.5
    with pytest.raises(BadInputError, match="T_map_cam"):
        det.update(image, T)
    det.update(image, good)
    assert torch.isfinite(det.state).all()


def test_a_step_that_comes_out_nan_keeps_the_memory() -> None:
    """Intrinsics that pass every check (a focal length of 1e-40 px) made the state NaN, kept for good."""
    from dataclasses import replace as dc_replace

    det = LearnedChangeDetector(tiny_model(), device="cpu", intrinsics=INTR)
    image = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    pose = look_at(np.array([0.0, 0.0, 1.5]), np.array([2.0, 0.0, 0.0]))
    det.intrinsics = dc_replace(INTR, fx=1e-40, fy=1e-40)
    det.update(image, pose)
    kept = det.state.clone()
    det.update(image, pose)
    assert torch.isfinite(det.state).all() and torch.equal(det.state, kept)


def test_a_checkpoint_with_weights_or_settings_that_are_not_numbers_is_refused(tmp_path: Path) -> None:
    """NaN weights, or a NaN pose_base_m (which passed `<= 0`), loaded and gave an empty mask ever after."""
    model = tiny_model()
    with torch.no_grad():
        next(model.parameters())[0].fill_(float("nan"))
    save_model(tmp_path / "nan.pt", model, {})
    with pytest.raises(BadInputError, match="not finite"):
        build_model(tmp_path / "nan.pt")
    with pytest.raises(ValueError, match="pose_base_m must be a finite number"):
        replace(TINY, pose_base_m=float("nan")).validate()


def test_a_checkpoint_holding_other_python_objects_says_so(tmp_path: Path) -> None:
    """A whole file that weights_only refuses (numpy values in its meta) was called "damaged (cut short?)"."""
    torch.save({"format": 1, "meta": {"x": np.float64(1.0)}}, tmp_path / "np.pt")
    with pytest.raises(BadInputError, match="Python objects besides tensors") as info:
        build_model(tmp_path / "np.pt")
    assert "cut short" not in str(info.value)


def test_a_frame_of_the_wrong_kind_is_refused_naming_what_is_wrong() -> None:
    """A float frame of a valid shape was refused with its shape alone, which did not say what was wrong."""
    from spatial_memory_ros.core.errors import BadInputError
    from spatial_memory_ros.model.step_inputs import check_image

    check_image(np.zeros((4, 6, 3), np.uint8))
    for bad, said in [(np.zeros((4, 6, 3), np.float32), "dtype float32"), (np.zeros((4, 6), np.uint8), "(4, 6)"),
                      ([[0]], "got list")]:
        with pytest.raises(BadInputError, match=said.replace("(", r"\(").replace(")", r"\)")):
            check_image(bad)  # type: ignore[arg-type]
