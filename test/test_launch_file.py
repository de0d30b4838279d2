"""bringup.launch.py parses and starts an executable and a config that the build installs.

Runs without the launch package (not available as a pip wheel): the launch modules are replaced by
recorders, so the file's own generate_launch_description() runs and what it asks for is checked against
what CMake installed into the prefix. With a real ROS install, test_launch_pytest.py also starts it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILE = ROOT / "launch" / "bringup.launch.py"


class _Recorded:
    def __init__(self, kind: str, *args: Any, **kwargs: Any) -> None:
        self.kind, self.args, self.kwargs = kind, args, kwargs


def _recorder(kind: str) -> type:
    return type(kind, (_Recorded,), {"__init__": lambda self, *a, **k: _Recorded.__init__(self, kind, *a, **k)})


def _stub_launch_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    names = {
        "launch": ["LaunchDescription"],
        "launch.actions": ["DeclareLaunchArgument", "IncludeLaunchDescription", "OpaqueFunction",
                           "RegisterEventHandler"],
        "launch.conditions": ["IfCondition", "UnlessCondition"],
        "launch.event_handlers": ["OnShutdown"],
        "launch.substitutions": ["LaunchConfiguration", "PathJoinSubstitution"],
        "launch_ros": [],
        "launch_ros.actions": ["Node"],
    }
    for module_name, classes in names.items():
        module = types.ModuleType(module_name)
        for cls in classes:
            setattr(module, cls, _recorder(cls))
        monkeypatch.setitem(sys.modules, module_name, module)


def _install_prefix() -> Path:
    ament_index = pytest.importorskip("ament_index_python.packages")
    os.environ.setdefault("AMENT_PREFIX_PATH", sys.prefix)
    try:
        return Path(ament_index.get_package_prefix("spatial_memory"))
    except ament_index.PackageNotFoundError:
        pytest.skip("spatial_memory is not installed (run scripts/setup_venv.sh or colcon build)")


def _load_launch_file(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    spec = importlib.util.find_spec("launch")
    if spec is not None and spec.origin is not None:  # a real launch package, not only our launch/ folder
        pytest.skip("real launch package present: covered by test_launch_pytest.py")
    _stub_launch_modules(monkeypatch)
    spec = importlib.util.spec_from_file_location("bringup_launch", LAUNCH_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_launch_file_starts_installed_node_with_installed_config(monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = _install_prefix()
    module = _load_launch_file(monkeypatch)
    description = module.generate_launch_description()

    entities = description.args[0]
    nodes = [e for e in entities if e.kind == "Node"]
    ours = [n for n in nodes if n.kwargs["package"] == "spatial_memory"]
    assert len(ours) == 1
    node = ours[0].kwargs
    executable = prefix / "lib" / "spatial_memory" / node["executable"]
    assert executable.is_file() and os.access(executable, os.X_OK), f"not installed: {executable}"

    arguments = {e.args[0]: e.kwargs for e in entities if e.kind == "DeclareLaunchArgument"}
    assert all(a.get("description") for a in arguments.values()), "every launch argument needs a description"
    params_file = Path(arguments["params_file"]["default_value"])
    assert params_file == prefix / "share" / "spatial_memory" / "config" / "spatial_memory.yaml"
    assert yaml.safe_load(params_file.read_text())["/**"]["ros__parameters"]["rate_hz"] > 0
    assert node["parameters"][0].args == ("params_file",)  # the node really gets that file
    remapped = {src for src, _ in node["remappings"]}
    assert {"image", "camera_info", "depth"} <= remapped
    assert {"namespace", "use_sim_time", "rviz"} <= set(arguments)

    (rviz,) = [e for e in entities if e.kind == "OpaqueFunction"]
    assert Path(rviz.kwargs["kwargs"]["config"]).is_file()
    assert rviz.kwargs["condition"].args[0].args == ("rviz",)
    # namespace:=robot1: the config's absolute topics showed nothing; the camera display ignored image:=
    text = Path(rviz.kwargs["kwargs"]["config"]).read_text()
    spaced = module.namespaced_rviz_config(text, "robot1", "camera/image_raw")
    for topic in ("markers", "change_mask", "debug_image"):
        assert f"Value: /{topic}\n" in text and f"Value: /robot1/{topic}\n" in spaced
    assert "Value: /robot1/camera/image_raw\n" in spaced and "Value: /image\n" not in spaced
    assert module.namespaced_rviz_config(text, "", "/cam/image") == text.replace("Value: /image\n",
                                                                                 "Value: /cam/image\n")
    # the fixed frame follows the node's map_frame: with odom, RViz found no frame map and drew no marker
    assert "    Fixed Frame: map\n" in text
    assert "    Fixed Frame: odom\n" in module.namespaced_rviz_config(text, "", "image", "odom")
    assert module.params_map_frame(str(params_file)) == "map"


def test_rviz_fixed_frame_is_the_params_files_map_frame(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    module = _load_launch_file(monkeypatch)
    odom = tmp_path / "odom.yaml"
    odom.write_text("/**:\n  ros__parameters:\n    map_frame: /odom\n    rate_hz: 5.0\n")
    assert module.params_map_frame(str(odom)) == "odom"
    named = tmp_path / "named.yaml"
    named.write_text("spatial_memory:\n  ros__parameters:\n    map_frame: world\n")
    assert module.params_map_frame(str(named)) == "world"
    for text in ("/**:\n  ros__parameters:\n    rate_hz: 5.0\n", "not: [valid", ""):
        odom.write_text(text)
        assert module.params_map_frame(str(odom)) == "map"
    assert module.params_map_frame(str(tmp_path / "missing.yaml")) == "map"
    # another node's section is not ours; ours after /** wins; a namespace before the node's name, nested
    other = tmp_path / "other.yaml"
    other.write_text("slam_toolbox:\n  ros__parameters:\n    map_frame: map\n"
                     "/**:\n  ros__parameters:\n    map_frame: base\n"
                     "spatial_memory:\n  ros__parameters:\n    map_frame: odom\n")
    assert module.params_map_frame(str(other)) == "odom"
    nested = tmp_path / "nested.yaml"
    nested.write_text("robot1:\n  spatial_memory:\n    ros__parameters:\n      map_frame: odom\n")
    assert module.params_map_frame(str(nested), "robot1") == "odom"
    assert module.params_map_frame(str(nested)) == "map"  # /spatial_memory is not /robot1/spatial_memory


PARAM_FILES = {
    "two robots": "robot2:\n  spatial_memory:\n    ros__parameters:\n      map_frame: robot2/map\n"
                  "/robot1/spatial_memory:\n  ros__parameters:\n    map_frame: robot1/map\n",
    "no namespace in the file": "spatial_memory:\n  ros__parameters:\n    map_frame: world\n",
    "one name": "/*:\n  ros__parameters:\n    map_frame: odom\n",
    "any namespace": "/**/spatial_memory:\n  ros__parameters:\n    map_frame: odom\n"
                     "/**:\n  ros__parameters:\n    rate_hz: 5.0\n",
    "one namespace": "/*/spatial_memory:\n  ros__parameters:\n    map_frame: odom\n",
    "later wins": "/**:\n  ros__parameters:\n    map_frame: base\n"
                  "robot1:\n  spatial_memory:\n    ros__parameters:\n      map_frame: odom\n",
}


@pytest.mark.parametrize("name", sorted(PARAM_FILES))
@pytest.mark.parametrize("namespace", ["", "robot1", "robot2", "fleet/robot1"])
def test_rviz_fixed_frame_is_the_map_frame_rclpy_gives_the_node(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                 name: str, namespace: str) -> None:
    """The launch file's reading of the params file against rclpy's own, for the node in each namespace: it read
    every section whose last name was the node's, whatever the namespace, and did not know /*."""
    rclpy = pytest.importorskip("rclpy")
    from rclpy.node import Node

    module = _load_launch_file(monkeypatch)
    path = tmp_path / "params.yaml"
    path.write_text(PARAM_FILES[name])
    context = rclpy.Context()
    rclpy.init(args=["--ros-args", "--params-file", str(path)], context=context)
    try:
        node = Node("spatial_memory", namespace=namespace or None, context=context,
                    automatically_declare_parameters_from_overrides=True)
        given = node.get_parameter("map_frame").value if node.has_parameter("map_frame") else "map"
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    assert module.params_map_frame(str(path), namespace) == given.strip("/")


def test_rviz_config_copy_only_where_topics_differ_and_removed_at_shutdown(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    """Each `rviz:=true` launch wrote a temporary .rviz that was never removed."""
    module = _load_launch_file(monkeypatch)
    config = ROOT / "config" / "spatial_memory.rviz"

    class Configuration:  # LaunchConfiguration(name).perform(context) reads the launch arguments
        def __init__(self, name: str) -> None:
            self.name = name

        def perform(self, context: dict[str, str]) -> str:
            return context[self.name]

    monkeypatch.setattr(module, "LaunchConfiguration", Configuration)
    monkeypatch.setattr(module.tempfile, "tempdir", str(tmp_path))
    yaml_file = str(ROOT / "config" / "spatial_memory.yaml")
    (rviz,) = module._rviz({"namespace": "", "image": "image", "params_file": yaml_file},
                           str(config))  # defaults: the installed config
    assert rviz.kind == "Node" and rviz.kwargs["arguments"] == ["-d", str(config)]
    assert list(tmp_path.iterdir()) == []

    handler, rviz = module._rviz({"namespace": "robot1", "image": "image", "params_file": yaml_file}, str(config))
    (copy,) = tmp_path.iterdir()
    assert rviz.kwargs["arguments"] == ["-d", str(copy)] and "Value: /robot1/markers\n" in copy.read_text()
    assert handler.kind == "RegisterEventHandler"
    (shutdown,) = handler.args
    assert shutdown.kind == "OnShutdown"
    shutdown.kwargs["on_shutdown"](object(), object())
    assert list(tmp_path.iterdir()) == []


def test_the_launcher_templates_are_executable() -> None:
    """CMake's configure_file copies a template's mode, and colcon's --symlink-install links lib/spatial_memory's
    node to that copy: from a 0644 template `ros2 run` and the launch file found no executable."""
    templates = sorted((ROOT / "scripts").glob("*.in"))
    assert {t.name for t in templates} >= {"spatial_memory_node.in", "spatial_memory_cli.in"}
    for template in templates:
        assert os.access(template, os.X_OK), template
        assert template.read_text().startswith("#!/bin/sh\n'''exec' \"@Python3_EXECUTABLE@\"")
    cmake = (ROOT / "CMakeLists.txt").read_text()
    # the command line of a ROS install: colcon ignores setup.py's console script
    assert "scripts/spatial_memory_cli.in ${CMAKE_CURRENT_BINARY_DIR}/spatial-memory" in cmake
    assert "ENV ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST" in cmake  # colcon test on this machine only, as test.sh
