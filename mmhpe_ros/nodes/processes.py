"""The graph as one process per node, as `ros2 launch` runs it: `mmhpe-ros run --processes`.

Each node is ``python -m <its module> --ros-args -p name:=value ...`` with every value the composed
graph gives it: the parameter file's and the overrides
(:func:`~mmhpe_ros.nodes.graph.graph_overrides`), which rcl applies as the composed graph's
:func:`~mmhpe_ros.nodes.graph.node_parameters` does. Separate processes do not share Python's
GIL, so on several cores the graph keeps up where one process cannot (docs/nodes.md, Measured).
The sensor and fusion nodes start first; the replayer once they have subscribed their topics.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from mmhpe_ros.nodes.graph import NODES

STARTUP_TIMEOUT_S = 60.0  # for every node to be up (each imports rclpy, the model, torch)
STOP_TIMEOUT_S = 5.0  # after SIGINT, before SIGKILL


def node_command(name: str, values: dict[str, Any], log_level: str = "info") -> list[str]:
    """The command line that runs node ``name`` with the parameter ``values`` (all of them:
    :func:`~mmhpe_ros.nodes.graph.node_parameters`)."""
    command = [sys.executable, "-m", NODES[name].module, "--ros-args", "--log-level", log_level]
    for key, value in values.items():
        command += ["-p", f"{key}:={json.dumps(value)}"]  # JSON is YAML, as rcl parses -p values
    return command


def graph_commands(params_path: str | Path, overrides: dict[str, dict[str, Any]],
                   log_level: str = "warn") -> dict[str, list[str]]:
    """node name -> command line, for each node of ``graph_overrides()``: the values of the
    parameter file at ``params_path`` for it, with its overrides on top."""
    from mmhpe_ros.nodes.graph import node_parameters
    from mmhpe_ros.runtime.params_file import load_parameter_file

    params = load_parameter_file(params_path)
    return {name: node_command(name, node_parameters(params, name, values), log_level)
            for name, values in overrides.items()}


class GraphProcesses:
    """Starts ``commands`` (node name -> command line) and stops them on :meth:`stop`.

    ``ready()`` is polled after the non-replayer nodes have started, before the replayer starts.
    ``env`` is added to this process's environment for them.
    """

    def __init__(self, commands: dict[str, Sequence[str]], ready: Callable[[], bool],
                 timeout_s: float = STARTUP_TIMEOUT_S, env: dict[str, str] | None = None) -> None:
        self.processes: dict[str, subprocess.Popen] = {}
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        try:
            for name, command in commands.items():
                if name == "replayer":
                    self.wait_until(ready, timeout_s)
                self.processes[name] = subprocess.Popen(list(command), env=env)
        except BaseException:
            self.stop()
            raise

    def wait_until(self, ready: Callable[[], bool], timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Poll ``ready()`` until true; RuntimeError if a node exits first, TimeoutError after ``timeout_s``."""
        end = time.monotonic() + timeout_s
        while not ready():
            if not self.alive():
                raise RuntimeError(f"node process(es) exited during start-up: {self.exited()}")
            if time.monotonic() > end:
                raise TimeoutError(f"the nodes were not up after {timeout_s:.0f} s")
            time.sleep(0.1)

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.processes.values())

    def exited(self) -> dict[str, int]:
        """node name -> exit status of the processes that have ended."""
        return {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> dict[str, int]:
        """SIGINT every node (as Ctrl-C / ros2 launch do), SIGKILL what is left after
        ``timeout_s``; returns each node's exit status."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        end = time.monotonic() + timeout_s
        for process in self.processes.values():
            try:
                process.wait(max(0.0, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return {name: p.returncode for name, p in self.processes.items()}
