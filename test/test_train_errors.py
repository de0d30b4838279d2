"""A training run set up wrong stops at once with one line that says why (no traceback, before any work), and a
weights file being replaced is never left half written."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).parent))
from tiny_model import tiny_model, tiny_train  # noqa: E402

from spatial_memory_ros.cli.main import main  # noqa: E402
from spatial_memory_ros.core.errors import BadInputError  # noqa: E402
from spatial_memory_ros.model import tag_reader_train  # noqa: E402
from spatial_memory_ros.model.checkpoint import DEFAULT_CHECKPOINT, FORMAT, save_model, short_reason  # noqa: E402
from spatial_memory_ros.model.tag_reader import CellNet, TagReader  # noqa: E402

TINY_RUN = ["--steps", "2", "--batch", "1", "--clip", "2", "--stream-frames", "4", "--workers", "0",
            "--threads", "1", "--checkpoint-every", "1", "--device", "cpu"]


def _case(tmp_path: Path, case: str) -> tuple[list[str], str]:
    out = tmp_path / "model.pt"
    if case == "out is a folder":
        out.mkdir()
        return [], "is a folder"
    if case == "no time":
        return ["--time-limit", "0"], "time_limit must be > 0"
    if case == "negative learning rate":
        return ["--lr", "-1"], "lr must be > 0"
    if case == "init of another kind":  # the shipped model has the background input; this run does not
        return ["--init", str(DEFAULT_CHECKPOINT)], "does not fit this model: it was made with other options"
    if case == "init is a folder":
        (tmp_path / "dir.pt").mkdir()
        return ["--init", str(tmp_path / "dir.pt")], "is a folder, not a file"
    if case == "resume from a model file":
        save_model(out.with_name("model.pt.state"), tiny_model())
        return ["--resume"], "is a model file, not a training state"
    if case == "a run there already, no --resume":  # started again over it, it was thrown away without a word
        out.with_name("model.pt.state").write_bytes(b"hours of training")
        return [], "holds a training run already: --resume to go on from it"
    if case == "resume from another version's state":  # a ValueError traceback before
        state = {"format": FORMAT, "optimizer": {}, "step": 5, "next_stream": 5, "model": {}, "meta": {},
                 "config": {**tiny_model().config.to_dict(), "new_thing": 1}}
        torch.save(state, out.with_name("model.pt.state"))
        return ["--resume"], "is not a training state this version can resume"
    if case == "NaN weight":  # accepted: NaN passes "< 0"
        return ["--edge-weight", "nan"], "edge_weight must be a finite number, got nan"
    if case == "still head without background":  # a ValueError traceback before
        return ["--still-head", "8"], "still_head must be >= 0 and needs background"
    if case in ("init with NaN weights", "init whose weights are a list"):
        # NaN: trained on without a word, and wrote a file no loader takes; a list: a ValueError traceback
        from spatial_memory_ros.model.checkpoint import load_file

        data = load_file(DEFAULT_CHECKPOINT)
        if case == "init whose weights are a list":
            data["model"], expected = list(data["model"].values())[:3], "holds no weights this version reads"
        else:
            name = next(k for k, v in data["model"].items() if v.is_floating_point())
            data["model"][name] = data["model"][name].clone()
            data["model"][name].view(-1)[0] = float("nan")
            expected = "weights that are not finite numbers"
        torch.save(data, tmp_path / "init.pt")
        shipped_kind = ["--background", "--background-skips-changes", "--still-head", "16"]
        return [*shipped_kind, "--init", str(tmp_path / "init.pt")], expected
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["out is a folder", "no time", "negative learning rate", "init of another kind",
                                  "init is a folder",
                                  "resume from a model file", "a run there already, no --resume",
                                  "resume from another version's state", "still head without background",
                                  "NaN weight", "init with NaN weights", "init whose weights are a list"])
def test_a_run_set_up_wrong_says_why_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 case: str) -> None:
    extra, expected = _case(tmp_path, case)
    state = tmp_path / "model.pt.state"  # the run there already, the one --resume was to go on from
    before = state.read_bytes() if state.is_file() else None
    code = main(["train", "--out", str(tmp_path / "model.pt"), *TINY_RUN, *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in err, err
    assert not (tmp_path / "model.pt").is_file()  # nothing trained, nothing written
    # a state there is left as it was, byte for byte; none is made where there was none
    assert (state.read_bytes() if state.is_file() else None) == before
    if case == "a run there already, no --resume":
        assert before == b"hours of training"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--out", str(tmp_path / "model.pt"), *TINY_RUN, "--device", "cuda"])
    err = capsys.readouterr().err
    assert code == 2 and "no CUDA device" in err and "Traceback" not in err, err


def test_a_tag_reader_save_that_fails_leaves_the_old_file_whole(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """train-tag-reader's default --out is the package's shipped reader: a save killed or failing half way must
    not leave half a file there (it used to write onto the file itself)."""
    path = tmp_path / "tag_reader.pt"
    tag_reader_train.save(CellNet(8), path)
    before = path.read_bytes()
    save = torch.save

    def fails_half_way(obj: object, f: Any) -> None:
        f.write(b"half a fi")  # the open temporary file
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", fails_half_way)
    with pytest.raises(BadInputError, match="No space left on device"):
        tag_reader_train.save(CellNet(8), path)
    monkeypatch.setattr(torch, "save", save)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["tag_reader.pt"]
    TagReader([1, 2], path)  # still loads


def test_torchs_long_misfit_message_is_cut_to_one_line() -> None:
    e = RuntimeError("Error(s) in loading state_dict for M:\n\tsize mismatch for a: 1 vs 2.\n\tsize mismatch for b.\n"
                     "\tsize mismatch for c.")
    assert short_reason(e) == "Error(s) in loading state_dict for M: size mismatch for a: 1 vs 2. (+2 more)"
    assert len(short_reason(RuntimeError("x" * 1000))) == 240


@pytest.mark.parametrize(("args", "expected"), [
    (["bench-model", "--frames", "0"], "--frames: must be >= 1"),
    (["bench-model", "--cameras", "0"], "--cameras: must be >= 1"),
    (["bench-model", "--model", "no-such-file.pt"], "no model checkpoint at no-such-file.pt"),
    (["bench-model", "--json", "OUT"], "is a folder"),  # was found only after minutes of measuring
    (["bench", "--minutes", "inf", "--out", "OUT"], "minutes must be > 0 and at most"),
    (["fit-return-prior", "--minutes", "inf", "--out", "OUT/p.json"], "minutes"),
    (["train-tag-reader", "--out", "OUT/r.pt", "--val-scenes", "0"], "--val-scenes and --epochs must be >= 1"),
    (["train", "--out", "OUT/m.pt", "--workers", "-1"], "workers must be >= 0"),  # rendered in-process, unsaid
    (["bench", "--export", "OUT/e", "--model", "no-such-file.pt"], "--model: for a benchmark run"),  # ignored
])
def test_values_no_run_can_use_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                            expected: str) -> None:
    """Each of these used to end in a traceback, report nonsense (fps < 0) with exit code 0, benchmark untrained
    weights for a mistyped --model, or (minutes inf) never end."""
    code = main([a.replace("OUT", str(tmp_path)) for a in args])
    err = capsys.readouterr().err
    assert code == 2 and expected in err and "Traceback" not in err, err


@pytest.mark.parametrize("damage", [b"hi\n", b".", b"PK\x03\x04" + bytes(10)])
def test_a_few_bytes_of_text_are_a_damaged_checkpoint(tmp_path: Path, damage: bytes) -> None:
    from spatial_memory_ros.model.checkpoint import build_model

    path = tmp_path / "text.pt"
    path.write_bytes(damage)
    with pytest.raises(BadInputError, match="damaged"):
        build_model(path)


def test_ctrl_c_keeps_the_steps_done_and_resume_goes_on_from_them(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, a Ctrl-C saved nothing: up to --checkpoint-every steps were lost."""
    import re
    import signal
    import subprocess
    import threading
    import time

    import tqdm

    from spatial_memory_ros.model.checkpoint import load_file

    out = tmp_path / "model.pt"
    run = [*TINY_RUN]
    run[run.index("--steps") + 1] = "100000"
    run[run.index("--checkpoint-every") + 1] = "100000"
    cmd = [sys.executable, "-m", "spatial_memory_ros.cli", "train", "--out", str(out), *run]
    # SIGINT as a terminal gives it: a test run started in the background by a shell without job control (nohup
    # ... &) ignores SIGINT, and the child inherited that, so the Ctrl-C never arrived
    child = subprocess.Popen(cmd, stderr=subprocess.PIPE, cwd=Path(__file__).parents[1],
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # Wait for the progress bar to show a step taken (a fixed 15 s sleep was too short for a fresh clone's cold
    # start, and the Ctrl-C then came before any step, with nothing to keep).
    err = bytearray()

    def read_err() -> None:
        for chunk in iter(lambda: child.stderr.read1(4096), b""):  # type: ignore[union-attr]
            err.extend(chunk)

    threading.Thread(target=read_err, daemon=True).start()
    deadline = time.monotonic() + 120.0
    stepped = re.compile(rb"\b[1-9][0-9]*/100000\b")
    while not stepped.search(bytes(err)) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert child.poll() is None, bytes(err).decode(errors="replace")[-2000:]
    child.send_signal(signal.SIGINT)
    try:
        code = child.wait(60)
    except subprocess.TimeoutExpired:  # say why: the signal ignored (SigIgn, inherited), or the child busy
        status = Path(f"/proc/{child.pid}/status").read_text() if Path(f"/proc/{child.pid}/status").exists() else ""
        child.kill()
        ignored = [line for line in status.splitlines() if line.startswith(("SigIgn", "SigCgt", "State"))]
        raise AssertionError(f"train did not stop on SIGINT within 60 s; {ignored}; stderr:\n"
                             + bytes(err).decode(errors="replace")[-2000:]) from None
    assert code == 130
    state = load_file(out.with_name("model.pt.state"))
    assert state["step"] >= 1 and out.is_file()
    run[run.index("--steps") + 1] = str(state["step"] + 1)
    seen: dict[str, Any] = {}

    def counting_bar(steps: Any, total: int, initial: int, **_: object) -> Any:  # train's progress bar
        seen.update(initial=initial, taken=[])
        for step in steps:
            seen["taken"].append(step)
            yield step

    monkeypatch.setattr(tqdm, "tqdm", counting_bar)
    assert main(["train", "--out", str(out), *run, "--resume"]) == 0
    # it goes on from the step the Ctrl-C kept and takes only the one left, not all of them again from step 0
    assert seen == {"initial": state["step"], "taken": [state["step"]]}
    assert load_file(out.with_name("model.pt.state"))["step"] == state["step"] + 1


def test_a_ctrl_c_inside_an_optimizer_step_is_held_until_the_step_is_counted() -> None:
    """The Ctrl-C test above was flaky: a SIGINT landing inside optimizer.step() saved nothing (half-stepped
    weights), so a run lost every step since its last checkpoint. train() now holds it until the step is done and
    counted; the old code raised at the kill, before the step was counted."""
    import os
    import signal

    from spatial_memory_ros.model.train import interrupt_deferred

    before = signal.getsignal(signal.SIGINT)
    counted = []
    with pytest.raises(KeyboardInterrupt), interrupt_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # Python runs a handler between bytecodes: give it many
            pass
        counted.append("step")
    assert counted == ["step"]
    assert signal.getsignal(signal.SIGINT) is before, "the handler before the block is back"
    with interrupt_deferred():  # no signal: nothing raised
        counted.append("another")
    assert counted == ["step", "another"]


def test_a_stopped_and_resumed_run_ends_with_the_weights_of_a_straight_one(tmp_path: Path) -> None:
    """Resume started every lane on a new stream and re-seeded the generators: the weights differed by up to 6e-4
    from the run it continued. Stopped mid-stream, with streams waiting to be walked again and the memory carried."""
    from spatial_memory_ros.model.checkpoint import load_file

    straight, stopped = tmp_path / "straight.pt", tmp_path / "stopped.pt"
    tiny_train(straight)
    with pytest.raises(KeyboardInterrupt):
        tiny_train(stopped, stop_after=4)
    assert load_file(stopped.with_name("stopped.pt.state"))["step"] == 4
    seen: dict[str, Any] = {}
    tiny_train(stopped, resume=True, seen=seen)
    # it goes on from step 4 and takes only steps 4 and 5: a "resume" that started again from step 0 ends with the
    # same weights (the run is seeded), and only this tells them apart
    assert seen == {"initial": 4, "taken": [4, 5]}
    a, b = load_file(straight)["model"], load_file(stopped)["model"]
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:5]


def test_resume_refuses_other_settings_and_names_them(tmp_path: Path) -> None:
    out = tmp_path / "model.pt"
    with pytest.raises(KeyboardInterrupt):
        tiny_train(out, stop_after=2)
    with pytest.raises(BadInputError, match=r"resume with seed=1000\b.*only checkpoint_every"):
        tiny_train(out, resume=True, seed=1001)
    seen: dict[str, Any] = {}
    tiny_train(out, resume=True, steps=7, seen=seen)  # more steps: allowed, and it goes on from step 2
    assert seen == {"initial": 2, "taken": [2, 3, 4, 5, 6]}
    assert torch.load(out.with_name("model.pt.state"), weights_only=True)["step"] == 7


def test_a_ctrl_c_in_the_middle_of_a_step_resumes_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C in the forward pass (most of a step) saved the lanes, generators and stream count as they stood
    after the step's chunk was drawn but never trained: the resumed run skipped it (weights 8e-4 off)."""
    from spatial_memory_ros.model import train as train_module
    from spatial_memory_ros.model.checkpoint import load_file

    straight, cut = tmp_path / "straight.pt", tmp_path / "cut.pt"
    tiny_train(straight)
    real, calls = train_module.chunk_loss, []

    def interrupted_on_the_fourth(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "chunk_loss", interrupted_on_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        tiny_train(cut)
    monkeypatch.setattr(train_module, "chunk_loss", real)
    assert load_file(cut.with_name("cut.pt.state"))["step"] == 3
    tiny_train(cut, resume=True)
    a, b = load_file(straight)["model"], load_file(cut)["model"]
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:5]


def test_the_time_limit_counts_this_session_so_resume_goes_on(tmp_path: Path) -> None:
    """The limit counted every session's minutes: a run stopped by it and resumed with the same command took one
    step and stopped again."""
    out = tmp_path / "model.pt"
    with pytest.raises(KeyboardInterrupt):
        tiny_train(out, stop_after=2)
    state_path = out.with_name("model.pt.state")
    state = torch.load(state_path, weights_only=True)
    state["meta"]["minutes"] = 1000.0  # as if the first session had run into the 55-minute limit long ago
    torch.save(state, state_path)
    seen: dict[str, Any] = {}
    tiny_train(out, resume=True, seen=seen)  # the default limit, 55 min
    assert seen == {"initial": 2, "taken": [2, 3, 4, 5]}
    meta = torch.load(state_path, weights_only=True)["meta"]
    assert meta["final"] is True and meta["minutes"] > 1000.0  # the meta still adds the sessions up


def test_a_loss_that_is_not_finite_stops_the_run_and_keeps_the_last_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A diverged run wrote its non-finite weights over the last good checkpoint, leaving nothing to resume."""
    from spatial_memory_ros.model import train as train_module
    from spatial_memory_ros.model.checkpoint import build_model, load_file

    out = tmp_path / "model.pt"
    real, calls = train_module.chunk_loss, []

    def diverging_on_the_third(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        loss, logs, last = real(*args, **kwargs)
        if len(calls) >= 3:
            loss, logs = loss * float("nan"), {**logs, "loss": float("nan")}
        return loss, logs, last

    monkeypatch.setattr(train_module, "chunk_loss", diverging_on_the_third)
    with pytest.raises(BadInputError, match="the loss is not finite at step 3"):
        tiny_train(out, checkpoint_every=1)
    assert load_file(out.with_name("model.pt.state"))["step"] == 2
    build_model(out)  # finite: the loader takes it


def test_a_checkpoint_is_flushed_to_disk_before_and_after_its_rename(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Without fsyncs a power loss could leave the rename on disk and the data not: an empty OUT.state."""
    import os

    from spatial_memory_ros.core import atomic_file

    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(atomic_file.os, "fsync", fsync)
    save_model(tmp_path / "m.pt", tiny_model())
    assert len(synced) == 2 and synced[0].endswith(".tmp") and synced[1] == str(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


@pytest.mark.parametrize("group", [False, True], ids=["kill PID", "kill the process group"])
def test_sigterm_saves_like_ctrl_c_and_the_rendering_workers_go_with_it(tmp_path: Path, group: bool) -> None:
    """SIGTERM (kill, timeout, systemd) killed train with no save; sent to the process group it also killed a
    rendering worker that held the pool's queue lock, and the parent then waited for it forever after saving. Now
    SIGTERM is a Ctrl-C to the parent, and the workers, in a session of their own, neither get nor outlive it."""
    import os
    import re
    import signal
    import subprocess
    import threading
    import time

    from spatial_memory_ros.model.checkpoint import load_file

    out = tmp_path / "model.pt"
    run = [*TINY_RUN]
    run[run.index("--steps") + 1] = "100000"
    run[run.index("--checkpoint-every") + 1] = "100000"
    run[run.index("--workers") + 1] = "2"
    child = subprocess.Popen([sys.executable, "-m", "spatial_memory_ros.cli", "train", "--out", str(out), *run],
                             stderr=subprocess.PIPE, cwd=Path(__file__).parents[1], start_new_session=True)
    err = bytearray()

    def read_err() -> None:
        for chunk in iter(lambda: child.stderr.read1(4096), b""):  # type: ignore[union-attr]
            err.extend(chunk)

    threading.Thread(target=read_err, daemon=True).start()
    try:
        deadline = time.monotonic() + 120.0
        while not re.search(rb"\b[1-9][0-9]*/100000\b", bytes(err)) and child.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        assert child.poll() is None, bytes(err).decode(errors="replace")[-2000:]
        workers = [int(p) for p in subprocess.run(["pgrep", "-P", str(child.pid)], capture_output=True,
                                                  text=True).stdout.split()]
        assert len(workers) >= 2, workers
        if group:
            os.killpg(child.pid, signal.SIGTERM)
        else:
            child.send_signal(signal.SIGTERM)
        code = child.wait(60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    text = bytes(err).decode(errors="replace")
    assert code == 130, text[-2000:]
    assert "Traceback" not in text and "interrupted" in text
    assert load_file(out.with_name("model.pt.state"))["step"] >= 1 and out.is_file()
    time.sleep(1.0)
    assert not [w for w in workers if Path(f"/proc/{w}").exists()], "a rendering worker outlived train"


def test_a_third_walk_of_a_stream_is_refused() -> None:
    """reuse 3 put a stream's second and third walks in two lanes side by side: the same frames twice in a chunk,
    an exact copy of each positive among InfoNCE's negatives."""
    from spatial_memory_ros.model.config import TrainConfig

    TrainConfig(reuse=2).validate()
    with pytest.raises(ValueError, match="reuse must be 1 or 2"):
        TrainConfig(reuse=3).validate()


def test_a_clip_too_short_for_the_predictive_loss_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """--clip at or under predict_k left no frame k ahead in a chunk: the predictive loss was 0 at every step."""
    with caplog.at_level("WARNING", logger="spatial_memory_ros.model.train"):
        tiny_train(tmp_path / "m.pt", steps=1, clip=2)
    assert "the predictive (InfoNCE) loss is off in this run" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="spatial_memory_ros.model.train"):
        tiny_train(tmp_path / "n.pt", steps=1, clip=4, stream_frames=8)
    assert "InfoNCE" not in caplog.text


def test_the_file_records_the_machine_of_each_session(tmp_path: Path) -> None:
    """Training is not bit for bit the same across boxes, so a file says where it was made: the versions and the
    CPU kernels torch used, one entry per session, a resumed run's after the first's."""
    from spatial_memory_ros.model.checkpoint import checkpoint_meta

    out = tmp_path / "m.pt"
    with pytest.raises(KeyboardInterrupt):
        tiny_train(out, stop_after=3)
    first = checkpoint_meta(out)["machines"]
    assert len(first) == 1
    assert first[0]["torch"] == torch.__version__ and first[0]["threads"] == 1 and first[0]["device"] == "cpu"
    assert first[0]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    tiny_train(out, resume=True)
    both = checkpoint_meta(out)["machines"]
    assert len(both) == 2 and both[0] == first[0]
