"""`spatial-memory bench-node`: a short run over real DDS gives a rate, latencies and the JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import ros_support  # noqa: F401  (skips without ROS 2 and our interfaces)

from spatial_memory_ros.cli.main import main

pytestmark = pytest.mark.timeout(120)
CONFIG = Path(__file__).resolve().parents[1] / "config"


def test_bench_node_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench"
    code = main(["bench-node", "--detector", "apriltag", "--size", "320x240", "--rate", "5", "--seconds", "3",
                 "--warmup", "1", "--fastdds-profile", str(CONFIG / "fastdds_large_shm.xml"), "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "sustained processed rate" in text and "latency p50 / p95 / p99" in text
    result = json.loads((out / "results.json").read_text())
    assert result["published"] == 15 and 0 < result["received"] <= 15
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p99"] < 5000
    assert 100 < result["node_peak_rss_mb"] < 8000  # rclpy, OpenCV and numpy alone are over 100 MB
    # the startup log names the change backend: the installed node's default, the learned one
    assert "change=learned (" in (out / "node.log").read_text()
    assert result["node_change"].startswith("learned (")  # and so does /diagnostics, which the bench records


@pytest.mark.parametrize("stagger", [False, True])
def test_bench_node_with_two_cameras(tmp_path: Path, capsys: pytest.CaptureFixture[str], stagger: bool) -> None:
    """--cameras 2: the node serves cam0 and cam1 placed by /tf; every frame counted per camera. --stagger: cam1
    half a period after cam0, each placed by /tf at its own stamp."""
    out = tmp_path / "bench"
    code = main(["bench-node", "--detector", "apriltag", "--size", "320x240", "--rate", "5", "--seconds", "3",
                 "--warmup", "1", "--cameras", "2", "--fastdds-profile", str(CONFIG / "fastdds_large_shm.xml"),
                 "--out", str(out), *(["--stagger"] if stagger else [])])
    assert code == 0
    says = "2, staggered (the figures" if stagger else "2 (the figures below are over all of them)"
    assert says in capsys.readouterr().out
    result = json.loads((out / "results.json").read_text())
    assert result["settings"]["cameras"] == 2 and result["settings"]["stagger"] == stagger
    assert result["published"] == 30 and 15 < result["received"] <= 30
    assert len(result["received_per_camera"]) == 2 and all(n > 5 for n in result["received_per_camera"])
    assert sum(result["received_per_camera"]) == result["received"]
    log = (out / "node.log").read_text()
    assert "/bench/cam0/image" in log and "/bench/cam1/image" in log, log
    # a first image may come before its camera_info (another topic), or cam1's before cam0's first is processed
    # (cam0's clock is the reference cam1 is checked against: core/camera_clocks.py); nothing else may be dropped
    drops = [line for line in log.splitlines() if "dropped frame" in line]
    assert all("no valid camera_info received yet" in line or "for camera cam0's first image" in line
               for line in drops), drops


def test_the_startup_log_names_the_learned_backend_its_memories_and_its_still_head() -> None:
    """Pipeline.describe_change(), the node's startup log: what the loaded backend runs, the checkpoint's still
    head included (only the loaded model knows it has one)."""
    from dataclasses import replace

    from spatial_memory_ros.core.config import ChangeConfig, MemoryConfig, PipelineConfig
    from spatial_memory_ros.core.pipeline import Pipeline

    base = PipelineConfig(change=ChangeConfig(method="classical"), memory=MemoryConfig(db_path=":memory:"))
    learned = replace(base.change, method="learned")
    cases = [
        (base, "classical"),
        (replace(base, change=learned), "learned (floor memory, still edges, still head x2, following turns)"),
        (replace(base, change=replace(learned, floor_memory=False, still_edges=False, still_head_scale=1,
                                      follow_turns=False)), "learned (still head)"),
    ]
    for config, expected in cases:
        with Pipeline.open(config, device="cpu") as pipeline:
            assert pipeline.describe_change() == expected
    from spatial_memory_ros.model.runtime import LearnedChangeDetector

    ablation = LearnedChangeDetector.from_change_config(learned, device="cpu", use_memory=False)
    assert ablation.describe() == "learned (memory off)"  # no floor memory, edges or still head run without it


def test_bench_node_rejects_a_bad_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench-node", "--size", "big"]) == 2
    assert "--size must look like 640x480" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--size", "0x0"], ["--seconds", "nan"], ["--rate", "inf"], ["--warmup", "nan"]])
def test_bench_node_rejects_values_no_run_can_have(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """These started the node, then failed with a traceback (NaN seconds, a 0x0 image)."""
    assert main(["bench-node", *args]) == 2
    err = capsys.readouterr().err
    assert ("--seconds and --rate must be > 0" in err or "must be a finite number" in err) and "Traceback" not in err


def test_bench_node_reads_node_parameters_as_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    from spatial_memory_ros.cli.bench_node import parse_params

    assert parse_params(["change.method=learned", "change.still_edges=false", "rate_hz=5",
                         "items=[mug=3, box=7]"]) == {
        "change.method": "learned", "change.still_edges": False, "rate_hz": 5, "items": ["mug=3", "box=7"]}
    assert main(["bench-node", "--param", "change.method"]) == 2
    assert "--param must look like NAME=VALUE" in capsys.readouterr().err
    assert main(["bench-node", "--param", "items=[a, b"]) == 2
    assert "is not YAML" in capsys.readouterr().err


def test_a_stale_installed_config_is_named(tmp_path: Path) -> None:
    # The build copies config/spatial_memory.yaml into the install; a benchmark of a node started from the
    # install must say when the tree's copy has been edited since (it would measure other parameters).
    from spatial_memory_ros.ros.node_process import stale_config_warning

    installed, checkout = tmp_path / "installed.yaml", tmp_path / "checkout.yaml"
    installed.write_text("a: 1\n")
    checkout.write_text("a: 1\n")
    assert stale_config_warning(installed, checkout) is None
    checkout.write_text("a: 2\n")
    warning = stale_config_warning(installed, checkout)
    assert warning is not None and str(installed) in warning and "setup_venv.sh" in warning
    assert stale_config_warning(installed, tmp_path / "no_checkout.yaml") is None  # an installed package


def test_a_child_that_ignores_the_stop_signal_leaves_its_stacks_and_is_ended(tmp_path: Path) -> None:
    """NodeProcess.stop(): a node still running after the timeout gets SIGABRT, and with the fault handler on
    (ros_env) its log says where every thread was; then it is gone. (A CI run once saw a node exit nonzero at
    stop with nothing in its log.)"""
    import signal
    import subprocess
    import sys
    import time

    from spatial_memory_ros.ros.node_process import ros_env, stop_process

    script = ("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nprint('up', flush=True)\n"
              "def stuck_in_here():\n    while True:\n        time.sleep(0.05)\nstuck_in_here()\n")
    log = tmp_path / "child.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", script], env=ros_env(0), stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30.0
        while b"up" not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        assert stop_process(proc, signal.SIGINT, timeout=0.5) == -signal.SIGABRT
    text = log.read_text()
    assert "Fatal Python error: Aborted" in text and "stuck_in_here" in text, text
