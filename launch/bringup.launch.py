"""Start spatial_memory_node with its parameter file; topology arguments only.

    ros2 launch spatial_memory bringup.launch.py image:=/camera/color/image_raw \
        camera_info:=/camera/color/camera_info depth:=/camera/aligned_depth_to_color/image_raw rviz:=true

Every tuning parameter lives in the YAML (params_file), not here.
"""

import contextlib
import os
import re
import tempfile

import yaml
from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction, RegisterEventHandler
from launch.conditions import IfCondition
from launch.event_handlers import OnShutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("spatial_memory")
    args = [
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "spatial_memory.yaml"),
                              description="YAML file with the node's parameters"),
        DeclareLaunchArgument("namespace", default_value="", description="Namespace of the node and its topics"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="Use /clock (bag replay)"),
        # image, camera_info and depth remap the single camera's topics; a params file with cameras: [front, rear]
        # needs front/image:=... remaps of its own (the node warns that these do nothing then)
        DeclareLaunchArgument("image", default_value="image", description="Colour image topic of the single camera "
                              "(bgr8, rgb8, mono8, bgra8, rgba8, 16-bit, Bayer, YUV)"),
        DeclareLaunchArgument("camera_info", default_value="camera_info",
                              description="CameraInfo topic of the single camera"),
        DeclareLaunchArgument("depth", default_value="depth",
                              description="Depth aligned to the image (16UC1 mm or 32FC1 m) of the single camera; "
                              "optional"),
        DeclareLaunchArgument("rviz", default_value="false",
                              description="Also start RViz with our config (the single camera's image and mask)"),
    ]
    node = Node(
        package="spatial_memory",
        executable="spatial_memory_node",
        name="spatial_memory",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file"), {"use_sim_time": LaunchConfiguration("use_sim_time")}],
        remappings=[
            ("image", LaunchConfiguration("image")),
            ("camera_info", LaunchConfiguration("camera_info")),
            ("depth", LaunchConfiguration("depth")),
        ],
        output="screen",
        emulate_tty=True,
    )
    rviz = OpaqueFunction(function=_rviz, kwargs={"config": os.path.join(share, "config", "spatial_memory.rviz")},
                          condition=IfCondition(LaunchConfiguration("rviz")))
    return LaunchDescription([*args, node, rviz])


def _rviz(context: object, config: str) -> list:
    """RViz on our config, its topics those of the node's namespace and the image argument (the config's absolute
    topics showed nothing with namespace:=robot1)."""
    namespace = LaunchConfiguration("namespace").perform(context)
    image = LaunchConfiguration("image").perform(context)
    with open(config, encoding="utf-8") as f:
        original = f.read()
    fixed_frame = params_map_frame(LaunchConfiguration("params_file").perform(context), namespace)
    text = namespaced_rviz_config(original, namespace, image, fixed_frame)
    actions: list = []
    if text != original:  # a copy only where the topics differ, removed when launch shuts down
        fd, path = tempfile.mkstemp(prefix="spatial_memory_", suffix=".rviz")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        config = path
        actions.append(RegisterEventHandler(OnShutdown(on_shutdown=lambda *_: _remove(path))))
    return [*actions, Node(package="rviz2", executable="rviz2", arguments=["-d", config],
                           parameters=[{"use_sim_time": LaunchConfiguration("use_sim_time")}], output="screen")]


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def params_map_frame(params_file: str, namespace: str = "", node: str = "spatial_memory") -> str:
    """The node's map_frame in its params file ("map" when it sets none or cannot be read): RViz's fixed frame.
    With map_frame: odom the config's fixed frame map did not exist, and RViz drew no marker. The sections that
    apply to the node as rcl matches them: a section's name (nested keys joined with "/", a leading "/" implied)
    against the node's full name /<namespace>/<node>, with /** any number of names and /* one; in file order, the
    last that sets it wins. Without the namespace a multi-robot file gave another robot's frame."""
    try:
        with open(params_file, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except (OSError, yaml.YAMLError):
        return "map"
    full_name = "/" + "/".join(part for part in (namespace.strip("/"), node) if part)
    found = "map"

    def walk(section: object, path: str) -> None:
        nonlocal found
        if not isinstance(section, dict):
            return
        params = section.get("ros__parameters")
        if isinstance(params, dict) and _section_applies(path, full_name):
            value = params.get("map_frame")
            if isinstance(value, str) and value.strip("/"):
                found = value.strip("/")
        for key, sub in section.items():
            if key != "ros__parameters":
                walk(sub, f"{path}/{key}")

    walk(doc, "")
    return found


def _section_applies(section: str, full_name: str) -> bool:
    """Whether a params file's section (e.g. "/robot1/spatial_memory", "/**", "/*/spatial_memory") names the node."""
    parts = [p for p in section.split("/") if p]
    if not parts:
        return False
    pattern = "".join("(/[^/]+)*" if p == "**" else "/[^/]+" if p == "*" else "/" + re.escape(p) for p in parts)
    return re.fullmatch(pattern, full_name) is not None


def namespaced_rviz_config(text: str, namespace: str, image: str, fixed_frame: str = "map") -> str:
    """The RViz config's topics resolved as the node resolves its own: in namespace, the camera display on the
    image argument (a relative one in the namespace too); its fixed frame the node's map_frame."""
    text = text.replace("    Fixed Frame: map\n", f"    Fixed Frame: {fixed_frame}\n")

    def resolve(topic: str) -> str:
        if topic.startswith("/"):
            return topic
        return "/" + "/".join(part for part in (namespace.strip("/"), topic) if part)

    for topic in ("markers", "change_mask", "debug_image"):
        text = text.replace(f"Value: /{topic}\n", f"Value: {resolve(topic)}\n")
    return text.replace("Value: /image\n", f"Value: {resolve(image)}\n")
