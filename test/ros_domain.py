"""Helpers of the tests that run rclpy: DDS domains leased per test file (so test files running side
by side never cross-talk), one rclpy context on such a domain, node processes left running.

Domain ids come from 1..101, the range the ROS 2 docs call safe on Linux (higher ids use ports in
the ephemeral range); conftest.py restricts discovery to this machine
(``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``).
"""
from __future__ import annotations

import fcntl
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

DOMAIN_IDS = range(1, 102)
LEASE_DIR = Path(tempfile.gettempdir()) / "mmhpe_ros_test_domains"
_leases: list[int] = []  # open lock files: each holds its domain until this process ends


def lease_domain() -> str:
    """A DDS domain id (as ROS_DOMAIN_ID's string) that no other process running these tests holds:
    an exclusive lock on a file per id, kept until this process ends. RuntimeError when all are taken."""
    LEASE_DIR.mkdir(exist_ok=True)
    start = os.getpid() % len(DOMAIN_IDS)  # processes starting together try different ids first
    for offset in range(len(DOMAIN_IDS)):
        domain = DOMAIN_IDS[(start + offset) % len(DOMAIN_IDS)]
        fd = os.open(LEASE_DIR / f"{domain}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _leases.append(fd)
        return str(domain)
    raise RuntimeError(f"every DDS domain id in {DOMAIN_IDS.start}..{DOMAIN_IDS.stop - 1} is leased")


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


def ros_tools_env(**extra: str) -> dict[str, str]:
    """``os.environ`` with the venv's ``ros-tools.env`` applied (``ros2``, launch, colcon) and
    ``extra``; skips the test where ../shared/ros-tools was not installed into this venv."""
    import subprocess
    import sys

    import pytest

    env_file = Path(sys.prefix) / "ros-tools.env"
    if not env_file.is_file():
        pytest.skip(f"the ROS 2 tools (ros2 launch/param/topic, colcon) are not installed in {sys.prefix}: "
                    "../shared/ros-tools/install.sh .venv (make test does it where ../shared/ros-tools exists)")
    done = subprocess.run(["bash", "-c", f'source "{env_file}" && env -0'], capture_output=True, check=True,
                          env={**os.environ, **extra})
    return dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
