"""The dynamic-scene benchmark: ground truth vs methods, metrics, baselines (no ROS)."""
