"""launch_pytest: `bringup.launch.py` really starts the node (runs where launch_pytest is installed).

launch_pytest does not exist as a pip wheel, so on the pip-wheel venv this module is skipped;
test_launch_file.py checks the same launch file there without the launch package.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

launch_pytest = pytest.importorskip(
    "launch_pytest", reason="launch_pytest is not installed (no pip wheel; it comes with a ROS 2 install)"
)
import rclpy  # noqa: E402
from ament_index_python.packages import get_package_share_directory  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from spatial_memory.srv import ListItems  # noqa: E402

import launch  # noqa: E402


@launch_pytest.fixture
def bringup(tmp_path: Path) -> launch.LaunchDescription:
    share = get_package_share_directory("spatial_memory")
    launch_file = os.path.join(share, "launch", "bringup.launch.py")
    # The installed YAML with only the database moved into the test's tmp dir.
    installed = Path(share, "config", "spatial_memory.yaml").read_text()
    params = tmp_path / "params.yaml"
    params.write_text(installed.replace("memory.db_path: spatial_memory.db", f"memory.db_path: {tmp_path / 'm.db'}"))
    return launch.LaunchDescription([
        launch.actions.IncludeLaunchDescription(
            PythonLaunchDescriptionSource(launch_file),
            launch_arguments={"namespace": "launch_test", "params_file": str(params)}.items(),
        ),
        launch_pytest.actions.ReadyToTest(),
    ])


@pytest.mark.launch(fixture=bringup)
def test_bringup_serves_list_items() -> None:
    rclpy.init()
    node = rclpy.create_node("launch_probe")
    try:
        client = node.create_client(ListItems, "/launch_test/list_items")
        assert client.wait_for_service(timeout_sec=30.0), "node from bringup.launch.py never served list_items"
        future = client.call_async(ListItems.Request())
        rclpy.spin_until_future_complete(node, future, timeout_sec=10.0)
        assert future.done() and future.result().success
    finally:
        node.destroy_node()
        rclpy.shutdown()
