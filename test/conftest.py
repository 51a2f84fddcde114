"""Test-wide settings: prepared-input caches (`cache_dir: auto`) go to a temporary folder, not ~/.cache."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache_home(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg_cache")))
    yield
    patch.undo()
