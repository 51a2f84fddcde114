"""Progress bars: shown on a terminal, quiet on a pipe or file, forced by MMHPE_PROGRESS, off with enabled=False."""
from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest

from mmhpe_ros.progress import PROGRESS_ENV, bar_disabled, progress_bar

SCRIPT = ("from mmhpe_ros.progress import progress_bar\n"
          "for _ in progress_bar(range(3), desc='work', mininterval=0): pass\n")


def _stderr_of_script(env: dict[str, str], terminal: bool) -> str:
    """Run SCRIPT with stderr on a pseudo-terminal (``terminal``) or on a pipe; its stderr text."""
    if not terminal:
        return subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                              timeout=60, check=True).stderr
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # a new pty is 0 columns wide
    try:
        subprocess.run([sys.executable, "-c", SCRIPT], env=env, stderr=follower, stdout=subprocess.DEVNULL,
                       timeout=60, check=True)
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the pty's other end is closed: all read
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)


@pytest.mark.parametrize("terminal, forced, shown", [
    (True, None, True), (False, None, False), (False, "1", True), (True, "0", False)])
def test_a_bar_shows_on_a_terminal_only_unless_forced(terminal, forced, shown):
    env = {k: v for k, v in os.environ.items() if k != PROGRESS_ENV}
    if forced is not None:
        env[PROGRESS_ENV] = forced
    text = _stderr_of_script(env, terminal)
    assert ("work" in text and "3/3" in text) == shown, text


def test_enabled_false_hides_the_bar_whatever_the_environment(monkeypatch):
    monkeypatch.setenv(PROGRESS_ENV, "1")
    assert bar_disabled(False) is True
    assert bar_disabled(True) is False
    out = io.StringIO()
    for _ in progress_bar(range(3), enabled=False, file=out, desc="work"):
        pass
    assert out.getvalue() == ""


def test_an_unknown_setting_warns_and_leaves_it_to_the_terminal(monkeypatch):
    monkeypatch.setenv(PROGRESS_ENV, "sometimes")
    with pytest.warns(UserWarning, match=PROGRESS_ENV):
        assert bar_disabled() is None
