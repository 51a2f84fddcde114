"""Parameters are honest at run time: each one either takes effect when set or is read-only, so that
`ros2 param set` (the real CLI, from ../shared/ros-tools) is refused. Checked on every node of the
graph for the rule, and through the CLI for both kinds."""
from __future__ import annotations

import subprocess

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed")

from ros_domain import lease_domain, ros_domain, ros_tools_env  # noqa: E402

ROS_DOMAIN_ID = lease_domain()
BUILTIN = {"use_sim_time", "start_type_description_service"}  # rclpy's own: use_sim_time applies when set


@pytest.fixture(scope="module")
def ros():
    with ros_domain(ROS_DOMAIN_ID):
        yield


def settable(node) -> set[str]:
    """The parameters ``node`` applies when set."""
    from mmhpe_ros.nodes.replayer import RUNTIME_PARAMETERS, Replayer

    return set(RUNTIME_PARAMETERS) if isinstance(node, Replayer) else set(node.runtime.names)


@pytest.fixture(scope="module")
def graph(ros):
    """Every node of the graph, composed, spinning."""
    from mmhpe_ros.nodes.run_command import GraphSpinner, build_graph

    nodes = build_graph(loop=False)
    spinner = GraphSpinner(nodes, "single")
    yield {node.get_name(): node for node in nodes}
    spinner.stop()
    for node in nodes:
        node.destroy_node()


def test_every_parameter_is_read_only_or_applied(graph):
    assert set(graph) == {"replayer", "camera_node", "lidar_node", "mmwave_node", "wifi_node", "fusion_node"}
    for name, node in graph.items():
        applied = settable(node)
        assert applied, f"{name}: nothing settable at run time"
        for parameter in set(node._parameters) - BUILTIN:
            read_only = node.describe_parameter(parameter).read_only
            assert read_only != (parameter in applied), (
                f"{name}.{parameter}: {'read-only and applied' if read_only else 'settable but applied by nothing'}")


def ros2_param(*args: str) -> subprocess.CompletedProcess:
    """`ros2 param ...` without the daemon (no process left behind), 3 s to discover the nodes."""
    env = ros_tools_env(ROS_DOMAIN_ID=ROS_DOMAIN_ID)
    return subprocess.run(["ros2", "param", *args, "--no-daemon", "--spin-time", "3"], env=env, capture_output=True, text=True, timeout=60)


def test_ros2_param_set_applies_fusion_settings(graph):
    fusion = graph["fusion_node"]
    done = ros2_param("set", "/fusion_node", "slop", "0.031")
    assert done.returncode == 0 and "Set parameter successful" in done.stdout, done.stdout + done.stderr
    assert fusion.sync.slop_ns == 31_000_000
    done = ros2_param("set", "/fusion_node", "marker_lifetime", "0.8")
    assert "Set parameter successful" in done.stdout, done.stdout + done.stderr
    assert fusion.lifetime_ns == 800_000_000
    done = ros2_param("set", "/fusion_node", "deadline", "0.01")  # below slop: refused (the CLI exits 0 even so)
    assert "Setting parameter failed" in done.stderr and "slop" in done.stderr, done.stderr
    assert fusion.sync.deadline_ns == 250_000_000 and fusion.get_parameter("deadline").value == 0.25


def test_ros2_param_set_applies_the_lidar_search_region(graph):
    lidar = graph["lidar_node"]
    done = ros2_param("set", "/lidar_node", "search_x", "[0.5, 7.5]")
    assert "Set parameter successful" in done.stdout, done.stdout + done.stderr
    assert lidar.processor.rig.region.x == (0.5, 7.5)
    done = ros2_param("set", "/lidar_node", "search_x", "[7.5, 0.5]")
    assert "low < high" in done.stderr, done.stdout + done.stderr
    assert lidar.processor.rig.region.x == (0.5, 7.5)


@pytest.mark.parametrize("node, parameter, value", [
    ("fusion_node", "model_path", "/tmp/other.safetensors"),
    ("fusion_node", "modalities", "[lidar]"),
    ("lidar_node", "input_topic", "other/points"),
    ("replayer", "bag", "/tmp/other.mcap"),
])
def test_ros2_param_set_is_refused_for_read_only_parameters(graph, node, parameter, value):
    before = graph[node].get_parameter(parameter).value
    done = ros2_param("set", f"/{node}", parameter, value)
    assert "read-only" in done.stderr, done.stdout + done.stderr
    assert graph[node].get_parameter(parameter).value == before
