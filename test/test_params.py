"""The node's parameter defaults (code) and config/spatial_memory.yaml agree, and every one is documented."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed")
from spatial_memory_ros.ros import params  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "config" / "spatial_memory.yaml"


def test_yaml_matches_code_defaults() -> None:
    yaml_params = yaml.safe_load(CONFIG.read_text())["/**"]["ros__parameters"]
    code = {**params.node_defaults(), **params.pipeline_defaults()}
    assert set(yaml_params) - {"items"} == set(code), "YAML and code declare different parameters"
    for name, default in code.items():
        assert yaml_params[name] == default, f"{name}: yaml {yaml_params[name]!r} != code {default!r}"


def test_every_parameter_declared_with_a_description() -> None:
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("params_probe", context=context)
        params.declare_parameters(node)
        names = set(node._parameters) - {"use_sim_time", "start_type_description_service"}
        expected = set(params.node_defaults()) | set(params.pipeline_defaults()) | {"items"}
        assert names == expected
        for name in names:
            assert node.describe_parameter(name).description, f"{name} has no description"
        settings = params.read_settings(node)
        assert settings.pipeline.tags.items == {} and settings.rate_hz == 10.0
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
