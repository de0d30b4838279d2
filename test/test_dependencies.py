"""Every third-party module the package imports is declared: a rosdep key in package.xml, which
`rosdep install --from-paths src` (README, "With a ROS 2 install") turns into apt packages, or a pip-only pin
in requirements*.txt. An import declared in neither is found by a user at the first run of the path that
needs it, on a machine set up exactly as README says."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from catkin_pkg.package import parse_package

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "spatial_memory_ros"

# module -> the rosdep key that installs it (rosdistro's base.yaml / python.yaml and the ROS packages' own names)
ROSDEP = {
    "numpy": "python3-numpy",
    "cv2": "python3-opencv",
    "scipy": "python3-scipy",
    "yaml": "python3-yaml",
    "tqdm": "python3-tqdm",
    "torch": "python3-torch",
    "rclpy": "rclpy",
    "ament_index_python": "ament_index_python",
    "tf2_ros": "tf2_ros_py",
    "builtin_interfaces": "builtin_interfaces",
    "diagnostic_msgs": "diagnostic_msgs",
    "geometry_msgs": "geometry_msgs",
    "rcl_interfaces": "rcl_interfaces",
    "sensor_msgs": "sensor_msgs",
    "std_msgs": "std_msgs",
    "std_srvs": "std_srvs",
    "tf2_msgs": "tf2_msgs",
    "visualization_msgs": "visualization_msgs",
}
# module -> its pip distribution: tools (bench, evaluate, bags) and optional backends with no apt package;
# README's dependency table says why each is there
PIP_ONLY = {
    "rosbags": "rosbags",
    "mcap": "mcap",
    "zstandard": "zstandard",
    "matplotlib": "matplotlib",
    "trackeval": "trackeval",
    "supervision": "supervision",
    "deep_sort_realtime": "deep-sort-realtime",
    "onnxruntime": "onnxruntime",
    "simplejpeg": "simplejpeg",
}
OWN = {"spatial_memory_ros", "spatial_memory"}  # the module and its generated msg/srv


def third_party_imports(root: Path) -> dict[str, set[str]]:
    """Top-level module -> the files importing it (import statements and importlib.import_module("name")),
    neither the standard library nor relative imports nor our own."""
    found: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr == "import_module" and node.args
                  and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                names = [node.args[0].value]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in OWN:
                    found.setdefault(top, set()).add(str(path.relative_to(root.parent)))
    return found


def package_xml_keys(package_dir: Path) -> set[str]:
    """The run and build keys of package.xml, as rosdep reads them (catkin_pkg: <depend> is both)."""
    package = parse_package(package_dir)
    return {d.name for d in package.build_depends + package.exec_depends + package.build_export_depends}


def pinned_distributions(*paths: Path) -> set[str]:
    """Distribution names pinned with == in requirements files, lower case, '_' as '-'."""
    out = set()
    for p in paths:
        for line in p.read_text().splitlines():
            m = re.match(r"\s*([A-Za-z0-9_.-]+)\s*==", line)
            if m:
                out.add(m.group(1).lower().replace("_", "-"))
    return out


def test_every_third_party_import_is_declared() -> None:
    imports = third_party_imports(PACKAGE)
    assert {"numpy", "torch", "rclpy"} <= imports.keys()  # the scan sees imports at all
    keys = package_xml_keys(ROOT)
    pins = pinned_distributions(ROOT / "requirements.txt", ROOT / "requirements-nodeps.txt")
    undeclared = {m: sorted(f)[:3] for m, f in imports.items() if m not in ROSDEP and m not in PIP_ONLY}
    assert not undeclared, f"imported, but neither a rosdep key nor pip-only here: {undeclared}"
    missing_keys = {m: ROSDEP[m] for m in imports if m in ROSDEP and ROSDEP[m] not in keys}
    assert not missing_keys, f"package.xml lacks these rosdep keys: {missing_keys}"
    unpinned = {m: PIP_ONLY[m] for m in imports if m in PIP_ONLY and PIP_ONLY[m] not in pins}
    assert not unpinned, f"pip-only, but not pinned in requirements*.txt: {unpinned}"


def test_the_scan_finds_function_level_and_importlib_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("import os\nfrom . import b\n\ndef f():\n    import torch.nn\n")
    (pkg / "b.py").write_text("import importlib\nm = importlib.import_module('simplejpeg')\nfrom yaml import x\n")
    assert set(third_party_imports(pkg)) == {"torch", "simplejpeg", "yaml"}
