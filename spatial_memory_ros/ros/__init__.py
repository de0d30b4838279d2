"""The ROS 2 adapter: the only package that imports rclpy and message types."""
