"""One process per node (`mmhpe-ros run --processes`): command lines, start order, clean stop."""
from __future__ import annotations

import sys

import pytest

from mmhpe_ros.nodes.processes import GraphProcesses, node_command

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def test_node_command_passes_the_parameter_file_and_yaml_overrides():
    command = node_command("fusion_node", "/cfg/fusion.yaml",
                           {"modalities": ["rgb", "lidar"], "use_sim_time": True, "model_path": "/m b/x", "rate": 2.0})
    assert command[:3] == [sys.executable, "-m", "mmhpe_ros.nodes.fusion"]
    assert command[3:7] == ["--ros-args", "--params-file", "/cfg/fusion.yaml", "--log-level"]
    assert command[8:] == ["-p", 'modalities:=["rgb", "lidar"]', "-p", "use_sim_time:=true",
                           "-p", 'model_path:="/m b/x"', "-p", "rate:=2.0"]
    with pytest.raises(KeyError):
        node_command("no_such_node", "f.yaml", {})


def test_replayer_starts_only_when_the_rest_is_ready_and_stop_ends_every_process():
    polls = []

    def ready() -> bool:
        polls.append(1)
        return len(polls) >= 3

    graph = GraphProcesses({"fusion_node": SLEEPER, "replayer": SLEEPER}, ready=ready)
    assert list(graph.processes) == ["fusion_node", "replayer"] and len(polls) == 3
    assert graph.alive()
    codes = graph.stop(timeout_s=5.0)
    assert set(codes) == {"fusion_node", "replayer"} and all(code is not None for code in codes.values())
    assert not graph.alive()


def test_a_node_that_dies_at_start_up_is_reported_and_the_rest_stopped():
    crash = [sys.executable, "-c", "raise SystemExit(3)"]
    with pytest.raises(RuntimeError, match="exited during start-up: {'lidar_node': 3}"):
        GraphProcesses({"lidar_node": crash, "fusion_node": SLEEPER, "replayer": SLEEPER}, ready=lambda: False)
