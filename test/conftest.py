"""Test-wide settings: prepared-input caches (`cache_dir: auto`) go to a temporary folder, not ~/.cache;
DDS discovery stays on this machine (tests lease their domain ids: ros_domain.lease_domain)."""
from __future__ import annotations

import os

import pytest

# Read by rcl when a context is created, in this process and in the node processes tests start.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_STATIC_PEERS", None)


@pytest.fixture(autouse=True, scope="session")
def _private_cache_home(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg_cache")))
    yield
    patch.undo()
