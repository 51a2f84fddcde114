"""Helpers of the tests that run rclpy: one context on a test file's own DDS domain (so test files
running side by side never cross-talk), executor parameters, node processes left running."""
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


def executor_params() -> list:
    """pytest params for each executor kind; the events one skipped where rclpy lacks it (Humble, Jazzy)."""
    import pytest

    from mmhpe_ros.nodes.spin import EXECUTORS, events_executor_available

    return [pytest.param(kind, marks=pytest.mark.skipif(
        kind == "events" and not events_executor_available(), reason="this rclpy has no EventsExecutor"))
        for kind in EXECUTORS]


def node_processes() -> list[str]:
    """Command lines of the running ``python -m mmhpe_ros.nodes.*`` processes."""
    from pathlib import Path

    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:  # ended meanwhile
            continue
        if b"-m" in args and any(a.startswith(b"mmhpe_ros.nodes.") for a in args):
            found.append(b" ".join(args).decode(errors="replace"))
    return found
