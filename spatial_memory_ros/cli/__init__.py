"""The `spatial-memory` command line (no ROS needed): see ``spatial-memory --help``."""
