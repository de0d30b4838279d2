"""Helpers for tests that run the real node as its own process over real DDS.

The node process itself (NodeProcess: started exactly as the launch file starts it) lives in
spatial_memory_ros/ros/node_process.py, shared with `spatial-memory bench-node`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

try:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from spatial_memory.srv import LocateItem  # noqa: F401  (our interfaces must be built)
except ImportError as exc:  # pip-only install without ROS: the core tests still run
    pytest.skip(f"ROS 2 or the spatial_memory interfaces are not importable: {exc}", allow_module_level=True)

from spatial_memory_ros.ros.node_process import (  # noqa: F401  (re-exported for the tests)
    NodeProcess,
    installed_config,
    installed_node,
    ros_env,
)


def fresh_domain() -> int:
    return random.randint(1, 100)


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


def statuses(arrays: list[Any], part: str) -> list[Any]:
    """Every diagnostic_msgs/DiagnosticStatus named "<node>: <part>" in the collected /diagnostics arrays, oldest
    first."""
    return [s for a in arrays for s in a.status if s.name.endswith(f": {part}")]


def newest(arrays: list[Any], part: str) -> Any | None:
    """The newest status of that part, or None."""
    found = statuses(arrays, part)
    return found[-1] if found else None


def frame_totals(status: Any) -> tuple[int, int, int]:
    """A camera input status's (images received, processed, dropped) since the node started."""
    values = {v.key: v.value for v in status.values}
    received, processed, dropped = map(int, values["images received / processed / dropped since start"].split(" / "))
    return received, processed, dropped


def top_down_camera(height_m: float) -> np.ndarray:
    """T_map_cam of a camera at (0, 0, height) looking straight down (optical x = map x)."""
    T = np.diag([1.0, -1.0, -1.0, 1.0])
    T[2, 3] = height_m
    return T


def fixed_pose_node(db_path: Any, height_m: float, *params: Any) -> tuple[Any, Any]:
    """(SpatialMemoryNode, its rclpy.Context): a node in this process on a fresh domain, the camera top-down at
    height_m by the fixed pose source (so that a frame reaches the pipeline), the memory at db_path; params:
    more rclpy Parameters. The caller closes, destroys and shuts down both."""
    from rclpy.parameter import Parameter

    from spatial_memory_ros.core.geometry import split_transform
    from spatial_memory_ros.ros.node import SpatialMemoryNode

    t, q = split_transform(top_down_camera(height_m))
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=fresh_domain())
    node = SpatialMemoryNode(context=context, parameter_overrides=[
        Parameter("memory.db_path", value=str(db_path)),
        Parameter("pose_source", value="fixed"),
        Parameter("fixed_transform", value=[*map(float, t), *map(float, q)]),
        *params,
    ])
    return node, context
