"""Several cameras sharing one learned model (model.camera_batch): a camera's frames, stepped on its own thread and
batched with other cameras' as they come, give what a detector of its own would give."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tiny_model import INTR, TINY, tiny_model  # noqa: E402

from spatial_memory_ros.core.config import ChangeConfig, MemoryConfig, PipelineConfig  # noqa: E402
from spatial_memory_ros.core.errors import BadInputError  # noqa: E402
from spatial_memory_ros.core.pipeline import Pipeline  # noqa: E402
from spatial_memory_ros.model import camera_batch  # noqa: E402
from spatial_memory_ros.model.camera_batch import CameraView, SharedCameras  # noqa: E402
from spatial_memory_ros.model.runtime import LearnedChangeDetector  # noqa: E402

# with a still background and its head, so that the background's per-camera inputs are batched too
STILL = replace(TINY, background=True, still_head=4)
ATOL = {"cpu": 1e-5, "cuda": 1e-2}  # a batch's float sums may round differently from one frame's; CUDA runs fp16
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def _frames(seed: int, n: int, shape: tuple[int, int] = (120, 160)) -> list[np.ndarray]:
    """A still scene whose middle a block crosses: the still background has something to learn and to miss."""
    rng = np.random.default_rng(seed)
    scene = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    out = []
    for i in range(n):
        image = scene.copy()
        x = 10 + 6 * i
        image[40:70, x:x + 25] = (20, 200, 30)
        out.append(image)
    return out


def _detector(cameras: int, device: str = "cpu") -> LearnedChangeDetector:
    return LearnedChangeDetector(tiny_model(seed=5, config=STILL), device=device, cameras=cameras, intrinsics=INTR,
                                 min_blob_area_px=1, still_scale=2)


def _close(a: Any, b: Any, device: str = "cpu") -> bool:  # torch.Tensor (torch is imported only if present)
    return torch.allclose(a.float(), b.float(), atol=ATOL[device])


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_a_network_step_of_some_cameras_leaves_the_others_rows(device: str) -> None:
    """network_step() over cameras 0 and 2 of three steps their rows as two detectors alone would; row 1 stays."""
    shared = _detector(3, device)
    alone = [_detector(1, device) for _ in range(2)]
    frames = [_frames(1, 8), _frames(2, 8)]
    changed = 0
    for i in range(8):
        prepared = [shared.prepare(c, frames[k][i], np.eye(4)) for k, c in enumerate((0, 2))]
        outs = [shared.finish(p, s) for p, s in zip(prepared, shared.network_step(prepared))]
        for k, c in enumerate((0, 2)):
            single = alone[k].update(frames[k][i], np.eye(4))
            assert _close(shared.state[c], alone[k].state[0], device)
            assert np.mean(outs[k].mask != single.mask) < (1e-3 if device == "cpu" else 1e-2)
            changed += int(np.count_nonzero(single.mask))
        assert torch.equal(shared.state[1], shared.model.initial_state(1, shared.device)[0])
    assert changed > 0  # once the still background is known (the 6th frame), the block is marked
    with pytest.raises(ValueError, match="distinct cameras"):
        shared.network_step([prepared[0], prepared[0]])


def test_views_on_their_own_threads_batch_and_match_cameras_alone() -> None:
    """Three cameras' views, each on its own thread. The network step is made slow, and the second and third
    cameras' frames come while the first's step runs: they queue, and then step as one batch, fewer steps than
    frames. Each camera's masks and memory are those of a detector of its own."""
    shared = SharedCameras(_detector(3))
    views = shared.views()
    network_step = shared.detector.network_step
    n = 8  # the still background, and so the mask, comes from the 6th frame on
    sizes: list[int] = []
    front_stepping = [threading.Event() for _ in range(n)]  # camera 0's step of frame i has begun

    def slow_step(frames: Any) -> Any:
        sizes.append(len(frames))
        if any(f.camera == 0 for f in frames):
            next(e for e in front_stepping if not e.is_set()).set()
        time.sleep(0.2)
        return network_step(frames)

    shared.detector.network_step = slow_step  # type: ignore[method-assign]
    frames = [_frames(10 + c, n) for c in range(3)]
    masks: list[list[np.ndarray]] = [[] for _ in range(3)]

    def run(c: int) -> None:
        for i in range(n):
            if c > 0:  # cameras 1 and 2 while camera 0's step runs
                assert front_stepping[i].wait(10)
            masks[c].append(views[c].update(frames[c][i], np.eye(4), INTR, 0.1 * i).mask)
            if c == 0:  # the next frame once the others have had theirs
                while min(len(m) for m in masks) <= i:
                    time.sleep(0.005)

    threads = [threading.Thread(target=run, args=(c,)) for c in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(sizes) == 3 * n and max(sizes) == 2, sizes  # cameras 1 and 2 stepped together
    assert shared.frames_per_step == pytest.approx(1.5)  # two steps a frame: camera 0, then cameras 1 and 2
    assert sum(int(np.count_nonzero(m)) for m in masks[2]) > 0
    for c in range(3):
        alone = _detector(1)
        for i in range(n):
            assert np.mean(alone.update(frames[c][i], np.eye(4), INTR, 0.1 * i).mask != masks[c][i]) < 1e-3
        assert _close(shared.detector.state[c], alone.state[0])
    assert "one network for 3 cameras, 1.50 frames a step" in views[0].describe()


@pytest.mark.parametrize("prepare_s,max_wait_s,sizes", [(0.005, 2.0, [2, 2, 2]), (0.3, 0.02, [1, 1] * 3)])
def test_a_step_waits_for_frames_being_prepared_but_not_long(monkeypatch: pytest.MonkeyPatch, prepare_s: float,
                                                             max_wait_s: float, sizes: list[int]) -> None:
    """Two cameras triggered together: the rear's frame takes prepare_s to prepare. Within MAX_WAIT_S, and the
    front's step waits for it: one step of both. Longer, and the front steps alone, then the rear. (The first case
    allows 2 s, not the node's 20 ms, so that a busy test machine cannot make the rear late.)"""
    monkeypatch.setattr(camera_batch, "MAX_WAIT_S", max_wait_s)
    shared = SharedCameras(_detector(2))
    views = shared.views()
    detector = shared.detector
    prepare, network_step = detector.prepare, detector.network_step
    steps: list[list[int]] = []

    def slow_rear(camera: int, *args: Any) -> Any:
        if camera == 1:
            time.sleep(prepare_s)
        else:  # both triggered together: the front's frame is ready only once the rear has begun its own
            while 1 not in shared._preparing:
                time.sleep(0.001)
        return prepare(camera, *args)

    def record(frames: Any) -> Any:
        steps.append([f.camera for f in frames])
        return network_step(frames)

    detector.prepare = slow_rear  # type: ignore[method-assign, assignment]
    detector.network_step = record  # type: ignore[method-assign]
    frames = _frames(6, 3)
    start = threading.Barrier(2)

    def run(c: int) -> None:
        for image in frames:
            start.wait()
            views[c].update(image)

    threads = [threading.Thread(target=run, args=(c,)) for c in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [len(s) for s in steps] == sizes, steps
    assert sorted(c for s in steps for c in s) == [0, 0, 0, 1, 1, 1]


def test_an_error_in_a_step_reaches_its_callers_and_the_next_step_runs() -> None:
    shared = SharedCameras(_detector(2))
    view = shared.views()[0]
    network_step = shared.detector.network_step

    def failing(frames: Any) -> Any:
        raise RuntimeError("out of memory")

    shared.detector.network_step = failing  # type: ignore[method-assign]
    image = _frames(3, 1)[0]
    with pytest.raises(RuntimeError, match="out of memory"):
        view.update(image)
    shared.detector.network_step = network_step  # type: ignore[method-assign]
    assert view.update(image).mask.shape == image.shape[:2]  # not left waiting for the failed step


def test_every_camera_of_a_failed_step_gets_its_own_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    """One exception object raised in two threads would carry both tracebacks; the camera that did not run the
    step gets a copy, caused by the original."""
    monkeypatch.setattr(camera_batch, "MAX_WAIT_S", 2.0)  # the front waits for the rear's frame (see above)
    shared = SharedCameras(_detector(2))
    views = shared.views()
    detector = shared.detector
    prepare = detector.prepare
    batches: list[int] = []

    rear_started = threading.Event()

    def rear_first(camera: int, *args: Any) -> Any:
        if camera == 1:
            rear_started.set()
        else:  # the front's frame is ready only once the rear has begun its own, which waits for it: one batch
            assert rear_started.wait(10)
        return prepare(camera, *args)

    def failing(frames: Any) -> Any:
        batches.append(len(frames))
        raise RuntimeError("out of memory")

    detector.prepare = rear_first  # type: ignore[method-assign, assignment]
    detector.network_step = failing  # type: ignore[method-assign]
    errors: list[BaseException | None] = [None, None]
    image = _frames(7, 1)[0]

    def run(c: int) -> None:
        try:
            views[c].update(image)
        except BaseException as e:  # noqa: BLE001 - the test looks at what each thread got
            errors[c] = e

    threads = [threading.Thread(target=run, args=(c,)) for c in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert batches == [2]
    assert all(isinstance(e, RuntimeError) and str(e) == "out of memory" for e in errors), errors
    first, second = errors
    assert first is not second
    assert (first.__cause__ is second) != (second.__cause__ is first)  # exactly one is the original


def test_a_views_reset_and_bad_frames_touch_only_its_camera() -> None:
    shared = SharedCameras(_detector(2))
    front, rear = shared.views()
    for image in _frames(4, 2):
        front.update(image)
        rear.update(image)
    stepped = shared.detector.state.clone()
    with pytest.raises(BadInputError, match="uint8"):
        rear.update(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(BadInputError):  # a new size, with the old size's intrinsics: the memory stays too
        rear.update(np.zeros((60, 80, 3), np.uint8), None, INTR)
    assert torch.equal(shared.detector.state, stepped)
    rear.reset()
    initial = shared.detector.model.initial_state(1, shared.detector.device)[0]
    assert torch.equal(shared.detector.state[1], initial) and torch.equal(shared.detector.state[0], stepped[0])
    box = np.array([[0.0, 0.0, 40.0, 30.0]])
    assert shared.detector.embed_boxes(box, camera=0).shape[0] == 1  # the front still has its last frame
    with pytest.raises(BadInputError, match="needs a frame first"):  # the rear forgot its own, as a detector would
        shared.detector.embed_boxes(box, camera=1)


def test_pipelines_of_several_cameras_share_one_learned_model() -> None:
    """open_cameras() with the learned model and change.batch_cameras always: one network, a view per camera.
    auto shares only on CUDA; never, one camera, or the classical detector: each pipeline its own."""
    learned = ChangeConfig(method="learned", batch_cameras="always")
    config = replace(PipelineConfig(), memory=MemoryConfig(db_path=":memory:"), change=learned)
    pipelines = Pipeline.open_cameras(config, 2, device="cpu")
    try:
        changes = [p._change for p in pipelines]
        assert all(isinstance(c, CameraView) for c in changes)
        assert changes[0].shared is changes[1].shared and [c.camera for c in changes] == [0, 1]  # type: ignore[attr-defined]
        assert changes[0].shared.detector.cameras == 2  # type: ignore[attr-defined]
        assert pipelines[1].describe_change().startswith("learned (") and "one network for 2 cameras" in (
            pipelines[1].describe_change())
    finally:
        pipelines[0].close()
    for change, cameras in ((replace(learned, batch_cameras="auto"), 2), (replace(learned, batch_cameras="never"), 2),
                            (learned, 1), (ChangeConfig(method="classical", batch_cameras="always"), 2)):
        own = Pipeline.open_cameras(replace(config, change=change), cameras, device="cpu")
        assert not any(isinstance(p._change, CameraView) for p in own), change
        assert len({id(p._change) for p in own}) == cameras
        if change.method == "learned":
            assert all(isinstance(p._change, LearnedChangeDetector) and p._change.cameras == 1 for p in own)
        own[0].close()
    with pytest.raises(BadInputError, match="batch_cameras must be one of auto, always, never"):
        Pipeline.open_cameras(replace(config, change=replace(learned, batch_cameras="yes")), 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_auto_shares_the_model_on_cuda() -> None:
    config = replace(PipelineConfig(), memory=MemoryConfig(db_path=":memory:"), change=ChangeConfig(method="learned"))
    pipelines = Pipeline.open_cameras(config, 2, device="cuda")
    assert all(isinstance(p._change, CameraView) for p in pipelines)
    pipelines[0].close()


@pytest.mark.parametrize("sharing", ["shared", "separate"])
def test_bench_model_camera_threads_times_every_cameras_frames(sharing: str) -> None:
    """`bench-model --camera-threads`: each camera's thread steps its frames; a shared network's steps carry
    between one frame and one per camera, separate networks one each."""
    from spatial_memory_ros.model.thread_speed import measure_camera_threads

    r = measure_camera_threads(sharing=sharing, size=(64, 48), cameras=3, timed_frames=6,  # type: ignore[arg-type]
                               floor_memory=True)
    assert (r.sharing, r.cameras, r.frames_per_camera) == (sharing, 3, 6)
    assert 0 < r.slowest_camera_fps <= r.fps / 3 + 0.1 and r.fps > 0  # each rounded to 0.1
    assert 0 < r.latency_ms_p50 <= r.latency_ms_p95
    if sharing == "shared":
        assert 1.0 <= r.frames_per_step <= 3.0
    else:
        assert r.frames_per_step == 1.0


@pytest.mark.parametrize("failing_call", [5, 25])  # in the warm-up (10 a camera), in the timed frames
def test_bench_model_camera_threads_raises_a_cameras_error(monkeypatch, failing_call: int) -> None:
    """An error on a camera's thread reaches the caller; the timing does not hang on the other threads."""
    from spatial_memory_ros.model import thread_speed

    calls = {"n": 0}
    update = LearnedChangeDetector.update

    def failing(self, *a, **k):  # the nth update of any camera fails
        calls["n"] += 1
        if calls["n"] == failing_call:
            raise BadInputError("a broken frame")
        return update(self, *a, **k)

    monkeypatch.setattr(LearnedChangeDetector, "update", failing)
    with pytest.raises(BadInputError, match="a broken frame"):
        thread_speed.measure_camera_threads(sharing="separate", size=(64, 48), cameras=2, timed_frames=10,
                                            floor_memory=False)
