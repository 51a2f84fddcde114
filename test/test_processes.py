"""One process per node (`mmhpe-ros run --processes`): command lines, start order, clean stop."""
from __future__ import annotations

import sys

import pytest

from mmhpe_ros.nodes.processes import GraphProcesses, node_command

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def test_node_command_passes_every_value_as_yaml():
    command = node_command("fusion_node",
                           {"modalities": ["rgb", "lidar"], "use_sim_time": True, "model_path": "/m b/x", "rate": 2.0})
    assert command[:3] == [sys.executable, "-m", "mmhpe_ros.nodes.fusion"]
    assert command[3:6] == ["--ros-args", "--log-level", "info"]
    assert command[6:] == ["-p", 'modalities:=["rgb", "lidar"]', "-p", "use_sim_time:=true",
                           "-p", 'model_path:="/m b/x"', "-p", "rate:=2.0"]
    with pytest.raises(KeyError):
        node_command("no_such_node", {})


def test_overrides_win_over_any_section_of_the_file(tmp_path):
    """A file whose /** section comes before /**/fusion_node (rcl would let the file's section beat
    a -p override): the graph's values still carry the override."""
    from mmhpe_ros.nodes.graph import graph_overrides, node_parameters
    from mmhpe_ros.nodes.processes import graph_commands
    from mmhpe_ros.runtime.params_file import load_parameter_file

    path = tmp_path / "p.yaml"
    path.write_text("/**:\n  ros__parameters:\n    stale_after_s: 2.0\n"
                    "/**/fusion_node:\n  ros__parameters:\n    modalities: [rgb, lidar, mmwave, wifi]\n    slop: 0.04\n")
    params = load_parameter_file(path)
    overrides = graph_overrides(params, modalities=["lidar"], calibration={})
    assert list(overrides) == ["lidar_node", "fusion_node", "replayer"]
    fusion = node_parameters(params, "fusion_node", overrides["fusion_node"], "/robot1")
    assert fusion["modalities"] == ["lidar"] and fusion["slop"] == 0.04 and fusion["stale_after_s"] == 2.0
    command = graph_commands(path, overrides)["fusion_node"]
    assert 'modalities:=["lidar"]' in command and "slop:=0.04" in command and "--params-file" not in command


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
