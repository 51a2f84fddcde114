"""ROS 2 nodes: thin rclpy shells over the core."""
