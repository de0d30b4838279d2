"""The installed node as a child process, started exactly as the launch file starts it: the executable the
build installed into lib/spatial_memory with the YAML installed into share/spatial_memory/config, plus
--ros-args overrides. Used by the integration tests and by `spatial-memory bench-node`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

INPUT_TOPICS = ("image", "image/compressed", "camera_info", "depth")


def _ament_prefix() -> None:
    if not os.environ.get("AMENT_PREFIX_PATH"):  # the pip venv is its own ament prefix
        os.environ["AMENT_PREFIX_PATH"] = sys.prefix


def installed_node() -> Path:
    from ament_index_python.packages import get_package_prefix

    _ament_prefix()
    return Path(get_package_prefix("spatial_memory")) / "lib" / "spatial_memory" / "spatial_memory_node"


def installed_config() -> Path:
    from ament_index_python.packages import get_package_share_directory

    _ament_prefix()
    return Path(get_package_share_directory("spatial_memory")) / "config" / "spatial_memory.yaml"


def stale_config_warning(installed: Path | None = None, checkout: Path | None = None) -> str | None:
    """A warning when the installed YAML (installed_config()) differs from this checkout's
    config/spatial_memory.yaml; None when they agree or there is no checkout (an installed package).

    The build copies the YAML at install time, so in a development tree an edit to config/ reaches a node
    started from the install only after the next build (scripts/setup_venv.sh, or colcon build): a
    benchmark would otherwise measure, silently, parameters other than the ones in the tree."""
    installed = installed or installed_config()
    checkout = checkout or Path(__file__).resolve().parents[2] / "config" / "spatial_memory.yaml"
    if not checkout.is_file() or not installed.is_file() or checkout.read_bytes() == installed.read_bytes():
        return None
    return (f"the node reads {installed}, which differs from this checkout's {checkout}: edits to config/ "
            "take effect after the next build (bash scripts/setup_venv.sh, or colcon build)")


def ros_env(domain: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment on its own DDS domain, discovery kept on this machine."""
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1",
               RCUTILS_COLORIZED_OUTPUT="0", PYTHONFAULTHANDLER="1")  # a hung node's stacks on SIGABRT
    env.update(extra or {})
    return env


class NodeProcess:
    """The installed node executable as a child process; its output goes to a log file.

    reliable_inputs: switch the camera topics to reliable through the node's QoS-override parameters. With
    the default sensor-data (best-effort) QoS, Fast DDS over loopback UDP drops about a third of 640x480
    images (they exceed its 512 KB shared-memory segment), which would make tests depend on luck.
    env: extra environment (e.g. FASTDDS_DEFAULT_PROFILES_FILE).
    """

    def __init__(self, domain: int, log_path: Path, params: dict[str, Any], namespace: str = "/t", *,
                 reliable_inputs: bool = True, env: dict[str, str] | None = None) -> None:
        args = [str(installed_node()), "--ros-args", "--params-file", str(installed_config()),
                "-r", f"__ns:={namespace}"]
        reliable = {f"qos_overrides.{namespace}/{topic}.subscription.reliability": "reliable"
                    for topic in INPUT_TOPICS} if reliable_inputs else {}
        for name, value in {**reliable, **params}.items():
            args += ["-p", f"{name}:={param_text(value)}"]
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, env=ros_env(domain, env), stdout=self._log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        if not self._log.closed:  # after stop() the file is complete
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu_seconds(self) -> float:
        """User + system CPU time the node has used so far (Linux /proc; 0 elsewhere)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        """The node's peak resident memory so far, MB (Linux /proc VmHWM; 0 elsewhere or once it has exited)."""
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return 0.0
        kb = next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")), "0")
        return int(kb) / 1024.0

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> int:
        """Send sig and wait; the exit code (negative: killed by that signal). A node still running after
        timeout gets SIGABRT first, so that Python's fault handler writes every thread's stack to the log
        (where it hung), then SIGKILL."""
        code = stop_process(self.proc, sig, timeout)
        self._log.close()
        return code


def stop_process(proc: subprocess.Popen[bytes], sig: int, timeout: float, grace_s: float = 5.0) -> int:
    """See NodeProcess.stop(); the child needs PYTHONFAULTHANDLER=1 (ros_env sets it) for the stacks."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
    try:
        return proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def param_text(value: Any) -> str:
    """A parameter value as `-p name:=value` spells it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(param_text(v) for v in value) + "]"
    if isinstance(value, str):
        return f"'{value}'" if value == "" else value
    return repr(value)
