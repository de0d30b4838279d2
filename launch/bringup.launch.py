"""Start spatial_memory_node with its parameter file; topology arguments only.

    ros2 launch spatial_memory bringup.launch.py image:=/camera/color/image_raw \
        camera_info:=/camera/color/camera_info depth:=/camera/aligned_depth_to_color/image_raw rviz:=true

Every tuning parameter lives in the YAML (params_file), not here.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
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
        DeclareLaunchArgument("image", default_value="image", description="Colour image topic (bgr8/rgb8/mono8)"),
        DeclareLaunchArgument("camera_info", default_value="camera_info", description="CameraInfo topic"),
        DeclareLaunchArgument("depth", default_value="depth",
                              description="Depth aligned to the image (16UC1 mm or 32FC1 m); optional"),
        DeclareLaunchArgument("rviz", default_value="false", description="Also start RViz with our config"),
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
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        arguments=["-d", os.path.join(share, "config", "spatial_memory.rviz")],
        parameters=[{"use_sim_time": LaunchConfiguration("use_sim_time")}],
        condition=IfCondition(LaunchConfiguration("rviz")),
        output="screen",
    )
    return LaunchDescription([*args, node, rviz])
