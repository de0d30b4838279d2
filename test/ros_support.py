"""Helpers for tests that run the real node as its own process over real DDS.

The node is started exactly as the launch file starts it: the executable the build installed into
lib/spatial_memory with the YAML installed into share/spatial_memory/config, plus --ros-args overrides.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

try:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from spatial_memory.srv import LocateItem  # noqa: F401  (our interfaces must be built)
except ImportError as exc:  # pip-only install without ROS: the core tests still run
    pytest.skip(f"ROS 2 or the spatial_memory interfaces are not importable: {exc}", allow_module_level=True)

from ament_index_python.packages import get_package_prefix, get_package_share_directory

if not os.environ.get("AMENT_PREFIX_PATH"):  # the pip venv is its own ament prefix
    os.environ["AMENT_PREFIX_PATH"] = sys.prefix


def installed_node() -> Path:
    return Path(get_package_prefix("spatial_memory")) / "lib" / "spatial_memory" / "spatial_memory_node"


def installed_config() -> Path:
    return Path(get_package_share_directory("spatial_memory")) / "config" / "spatial_memory.yaml"


def fresh_domain() -> int:
    return random.randint(1, 100)


def ros_env(domain: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1",
               RCUTILS_COLORIZED_OUTPUT="0")
    return env


class NodeProcess:
    """The installed node executable as a child process; its output goes to a log file.

    The camera topics are switched to reliable through the node's QoS-override parameters: with the
    default sensor-data (best-effort) QoS, Fast DDS over loopback UDP drops about a third of 640x480
    images (they exceed its 512 KB shared-memory segment), which would make the tests depend on luck.
    """

    def __init__(self, domain: int, log_path: Path, params: dict[str, Any], namespace: str = "/t") -> None:
        args = [str(installed_node()), "--ros-args", "--params-file", str(installed_config()),
                "-r", f"__ns:={namespace}"]
        reliable = {f"qos_overrides.{namespace}/{topic}.subscription.reliability": "reliable"
                    for topic in ("image", "image/compressed", "camera_info", "depth")}
        for name, value in {**reliable, **params}.items():
            args += ["-p", f"{name}:={_param_text(value)}"]
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, env=ros_env(domain), stdout=self._log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> int:
        if self.alive():
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._log.close()
        return code


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_param_text(v) for v in value) + "]"
    if isinstance(value, str):
        return f"'{value}'" if value == "" else value
    return repr(value)


class Driver:
    """A second ROS participant in the test process: publishes inputs, collects outputs, calls services."""

    def __init__(self, domain: int, namespace: str = "/t") -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node("test_driver", namespace=namespace, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.received: dict[str, list[Any]] = {}

    def collect(self, msg_type: type, topic: str) -> list[Any]:
        box: list[Any] = self.received.setdefault(topic, [])
        self.node.create_subscription(msg_type, topic, box.append, 10)
        return box

    def spin_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            self.executor.spin_once(timeout_sec=0.05)
        return predicate()

    def call(self, srv_type: type, name: str, request: Any, timeout: float = 10.0) -> Any:
        client = self.node.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                raise TimeoutError(f"service {name} not available after {timeout} s")
            future = client.call_async(request)
            self.spin_until(future.done, timeout)
            if not future.done():
                raise TimeoutError(f"service {name} did not answer in {timeout} s")
            return future.result()
        finally:
            self.node.destroy_client(client)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def top_down_camera(height_m: float) -> np.ndarray:
    """T_map_cam of a camera at (0, 0, height) looking straight down (optical x = map x)."""
    T = np.diag([1.0, -1.0, -1.0, 1.0])
    T[2, 3] = height_m
    return T
