"""spatial_memory: a memory of space that changes, for ROS 2 robots.

The algorithm lives in :mod:`spatial_memory_ros.core` and imports no ROS; the node in
:mod:`spatial_memory_ros.ros` is a thin adapter around it.
"""

__version__ = "0.1.0"
