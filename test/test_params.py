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


@pytest.mark.parametrize("name, value", [
    ("marker_lifetime_s", float("nan")), ("marker_lifetime_s", float("inf")), ("marker_lifetime_s", 0.0),
    ("marker_lifetime_s", 3e9), ("marker_lifetime_s", 1e-10),  # wrapped to a negative sec; 0, "never expire"
    ("marker_lifetime_s", 1e-4),  # RViz 2 never expires a lifetime of 100,000 ns or less
    ("depth_max_dt_s", float("nan")), ("depth_max_dt_s", float("inf")), ("depth_max_dt_s", -0.1),
    ("rate_hz", float("nan")), ("tf_timeout_s", float("nan")),
    ("rate_hz", 1e-12),  # a wait past threading.TIMEOUT_MAX: the worker thread died with OverflowError
])
def test_live_values_that_no_frame_can_use_are_refused(name: str, value: float) -> None:
    """A NaN passes `x <= 0` (every comparison with it is false): `ros2 param set ... marker_lifetime_s .nan` was
    accepted and then failed every frame that had markers to publish (int(nan)), and a NaN depth_max_dt_s used
    depth images of any age."""
    good = {"rate_hz": 10.0, "marker_lifetime_s": 1.0, "depth_max_dt_s": 0.1, "tf_timeout_s": 0.1}
    params.validate_live(**good)
    with pytest.raises(params.BadInputError, match=name):
        params.validate_live(**{**good, name: value})


@pytest.mark.parametrize("name", ["map_frame", "camera_frame"])
def test_a_frame_id_with_a_leading_slash_is_refused(name: str) -> None:
    """tf2 refuses "/map" and RViz drops what carries it, without a word: the node published into nothing."""
    rclpy = pytest.importorskip("rclpy")
    from rclpy.parameter import Parameter

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("params_probe", context=context,
                                 parameter_overrides=[Parameter(name, value="/map")])
        params.declare_parameters(node)
        with pytest.raises(params.BadInputError, match=f"{name} '/map': tf2 frame ids do not start with '/'"):
            params.read_settings(node)
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_a_whole_number_set_live_on_a_float_parameter_is_that_float(tmp_path: Path) -> None:
    """`ros2 param set /spatial_memory rate_hz 5` sends an integer: refused with rclpy's "Wrong parameter type,
    expected '3' got '2'" (the same mistake at start names the fix)."""
    import rclpy
    from rclpy.parameter import Parameter
    from ros_support import fixed_pose_node

    node, context = fixed_pose_node(tmp_path / "m.db", 2.0)
    try:
        result = node.set_parameters([Parameter("rate_hz", value=5)])[0]
        assert result.successful, result.reason
        assert node.get_parameter("rate_hz").value == 5.0 and node._rate_hz == 5.0
        refused = node.set_parameters([Parameter("rate_hz", value=0)])[0]  # still validated as the float
        assert not refused.successful and "rate_hz" in refused.reason
        assert not node.set_parameters([Parameter("publish_debug_image", value=1)])[0].successful  # not a float
    finally:
        node.close()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_the_memory_path_does_not_depend_on_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    """A relative memory.db_path was opened relative to wherever the node was started (a launch file, a systemd
    unit), so one restart from another directory gave an empty memory; "~" made a folder named "~"."""
    home = str(tmp_path / "rh")
    assert params.memory_path("spatial_memory.db", {"ROS_HOME": home}) == f"{home}/spatial_memory.db"
    assert params.memory_path("a/../m.db", {"ROS_HOME": home}) == f"{home}/m.db"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert params.memory_path("m.db", {}) == f"{tmp_path}/.ros/m.db"
    assert params.memory_path("~/maps/m.db", {"ROS_HOME": home}) == f"{tmp_path}/maps/m.db"
    assert params.memory_path("/var/m.db", {"ROS_HOME": home}) == "/var/m.db"
    assert params.memory_path("", {}) == "" and params.memory_path(":memory:", {}) == ":memory:"

    import rclpy

    monkeypatch.setenv("ROS_HOME", home)
    monkeypatch.chdir(tmp_path)
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("params_probe", context=context)
        params.declare_parameters(node)
        assert params.read_settings(node).pipeline.memory.db_path == f"{home}/spatial_memory.db"
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
