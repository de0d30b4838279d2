"""ROS-free core: numpy in, dataclasses out."""
