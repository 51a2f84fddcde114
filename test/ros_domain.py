"""One rclpy context on a test file's own DDS domain, so test files running side by side never cross-talk."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def ros_domain(domain_id: str) -> Iterator[None]:
    """``rclpy.init()`` with ``ROS_DOMAIN_ID=domain_id`` (read when the context is created); restored after."""
    import rclpy

    previous = os.environ.get("ROS_DOMAIN_ID")
    os.environ["ROS_DOMAIN_ID"] = domain_id
    rclpy.init()
    try:
        yield
    finally:
        rclpy.try_shutdown()
        if previous is None:
            os.environ.pop("ROS_DOMAIN_ID")
        else:
            os.environ["ROS_DOMAIN_ID"] = previous
