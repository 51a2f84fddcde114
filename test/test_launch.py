"""launch/fusion.launch.py, for real: colcon builds the package into a temporary workspace and
`ros2 launch` (../shared/ros-tools) runs it; a subscriber and `ros2 param get` check what runs.

Without the ROS tools only the checks that need none run: the graph's executables are entry points,
the RViz file names real topics and frame, and the graph's overrides (mmhpe_ros/nodes/graph.py,
shared with `mmhpe-ros run`) follow the arguments.
"""
from __future__ import annotations

import ast
import importlib.util
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from ros_domain import lease_domain, ros_tools_env
from mmhpe_ros.modalities import FRAME_IDS, TOPICS, Topics
from mmhpe_ros.nodes.graph import NODES, SENSOR_NODES, graph_overrides, parse_modalities
from mmhpe_ros.runtime.params_file import load_parameter_file

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILE = ROOT / "launch" / "fusion.launch.py"
PARAMS_FILE = ROOT / "config" / "fusion.yaml"
RVIZ_FILE = ROOT / "config" / "mmhpe.rviz"
ROS_DOMAIN_ID = lease_domain()
START_TIMEOUT_S = 180.0  # six Python processes importing torch on a busy 2-core machine


def setup_entry_points() -> dict[str, str]:
    """``NODES`` of setup.py (executable -> module:function), read without running setup()."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "NODES" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no NODES dict")


def test_every_node_of_the_graph_is_an_entry_point():
    entry_points = setup_entry_points()
    for name, node in NODES.items():
        assert entry_points.get(name) == f"{node.module}:main", name
        spec = importlib.util.find_spec(node.module)
        assert spec is not None and "def main(" in Path(spec.origin).read_text(), name


def test_modalities_are_parsed_as_yaml_lists():
    assert parse_modalities("['lidar', 'mmwave']") == ("lidar", "mmwave")
    assert parse_modalities("[wifi, rgb]") == ("rgb", "wifi")
    assert parse_modalities("lidar") == ("lidar",)
    for bad in ("[]", "[lidar, sonar]", "{a: 1}", "[lidar"):
        with pytest.raises(ValueError, match="modalities"):
            parse_modalities(bad)


def test_graph_overrides_follow_the_arguments():
    params = load_parameter_file(PARAMS_FILE)
    replay = graph_overrides(params, modalities=["mmwave", "lidar"])
    assert list(replay) == ["lidar_node", "mmwave_node", "fusion_node", "replayer"]
    assert replay["fusion_node"]["modalities"] == ["lidar", "mmwave"]
    assert all(replay[name]["use_sim_time"] for name in ("lidar_node", "mmwave_node", "fusion_node"))
    assert replay["replayer"]["wait_for_subscribers"] == ["lidar/points", "radar/points", TOPICS.ground_truth]
    live = graph_overrides(params, replay=False)
    assert list(live) == [*(n.name for n in SENSOR_NODES.values()), "fusion_node"]
    assert not any(values["use_sim_time"] for values in live.values())


def test_rviz_displays_name_real_topics_and_frame():
    config = yaml.safe_load(RVIZ_FILE.read_text())["Visualization Manager"]
    # relative, as TOPICS: RViz started in the launch namespace (namespace:=...) finds them there
    topics = {getattr(TOPICS, f) for f in Topics.__dataclass_fields__}
    topics |= {TOPICS.feature(m) for m in FRAME_IDS if m != "base"}
    shown = [d["Topic"]["Value"] for d in config["Displays"] if "Topic" in d]
    assert {TOPICS.markers, TOPICS.ground_truth, TOPICS.lidar_points, TOPICS.mmwave_points} <= set(shown)
    assert set(shown) <= topics, f"unknown topics: {set(shown) - topics}"
    assert config["Global Options"]["Fixed Frame"] == FRAME_IDS["base"]
    by_topic = {d["Topic"]["Value"]: d for d in config["Displays"] if "Topic" in d}
    # sensor streams are best effort: a reliable RViz subscription would never match them
    assert by_topic[TOPICS.lidar_points]["Topic"]["Reliability Policy"] == "Best Effort"


# -- the real thing: colcon build + ros2 launch ----------------------------------------------------

def tagged_processes(tag: str) -> list[str]:
    """Command lines of the running processes whose environment holds ``MMHPE_TEST_TAG=tag``."""
    found = []
    marker = f"MMHPE_TEST_TAG={tag}".encode()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes().split(b"\0"):
                found.append((environ.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:  # ended meanwhile, or not ours to read
            continue
    return found


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """The package colcon-built into a temporary workspace; its environment for `ros2`."""
    base = tmp_path_factory.mktemp("colcon_ws")
    env = ros_tools_env(ROS_DOMAIN_ID=ROS_DOMAIN_ID)
    done = subprocess.run(
        ["python", "-m", "colcon", "--log-base", str(base / "log"), "build", "--base-paths", str(ROOT),
         "--build-base", str(base / "build"), "--install-base", str(base / "install")],
        cwd=base, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    env = ros_tools_env(ROS_DOMAIN_ID=ROS_DOMAIN_ID, COLCON_TRACE="", AMENT_TRACE_SETUP_FILES="")
    sourced = subprocess.run(["bash", "-c", f'source "{base}/install/setup.bash" && env -0'], env=env,
                             capture_output=True, check=True)
    env = dict(item.split("=", 1) for item in sourced.stdout.decode().split("\0") if "=" in item)
    prefix = subprocess.run(["ros2", "pkg", "prefix", "mmhpe_ros"], env=env, capture_output=True, text=True)
    assert prefix.stdout.strip() == str(base / "install" / "mmhpe_ros"), prefix.stdout + prefix.stderr
    return base, env


class Launch:
    """`ros2 launch mmhpe_ros fusion.launch.py ARGS` with a tag in its (and its children's) environment."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.tag = uuid.uuid4().hex
        self.log = Path(env.get("TMPDIR", "/tmp")) / f"launch_{self.tag}.log"
        self._file = self.log.open("w")
        self.process = subprocess.Popen(["ros2", "launch", "mmhpe_ros", "fusion.launch.py", *args],
                                        env={**env, "MMHPE_TEST_TAG": self.tag}, stdout=self._file,
                                        stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """Ctrl-C (SIGINT to ros2 launch) and wait for it; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self._file.close()

    def wait(self, timeout: float = 120.0) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self._file.close()


def wait_gone(tag: str, timeout_s: float = 30.0) -> list[str]:
    """The tagged processes still running once none is left or after ``timeout_s``."""
    end = time.monotonic() + timeout_s
    while (left := tagged_processes(tag)) and time.monotonic() < end:
        time.sleep(0.2)
    return left


def ros2(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(["ros2", *args, "--no-daemon", "--spin-time", "3"], env=env, capture_output=True,
                          text=True, timeout=60)
    return done.stdout + done.stderr


def joint_stamps(topic: str, count: int, launch: Launch) -> list[float]:
    """Header stamps (s) of the first ``count`` PoseArrays on ``topic`` (a subscriber in this process)."""
    import rclpy
    from geometry_msgs.msg import PoseArray
    from rclpy.executors import SingleThreadedExecutor

    from ros_domain import ros_domain

    stamps: list[float] = []
    with ros_domain(ROS_DOMAIN_ID):
        node = rclpy.create_node(f"joints_listener_{launch.tag[:8]}")
        node.create_subscription(PoseArray, topic, lambda m: stamps.append(m.header.stamp.sec + m.header.stamp.nanosec
                                                                           * 1e-9), 50)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        end = time.monotonic() + START_TIMEOUT_S
        try:
            while len(stamps) < count and time.monotonic() < end and launch.process.poll() is None:
                executor.spin_once(timeout_sec=0.2)
        finally:
            executor.shutdown()
            node.destroy_node()
    assert len(stamps) >= count, f"{len(stamps)} joints on {topic}\n{launch.output()[-4000:]}"
    return stamps[:count]


def test_launch_in_a_namespace_with_the_parameter_file_and_a_yaml_modalities_list(workspace, tmp_path):
    """namespace:=robot1, modalities:="['lidar', 'mmwave']", a parameter file with slop 0.042: joints
    on /robot1/mmhpe/joints at 10 per second of bag time, the file's slop applied, only the LiDAR
    and radar nodes started; nothing left running after Ctrl-C."""
    _, env = workspace
    params = tmp_path / "fusion.yaml"
    params.write_text(re.sub(r"(\n    slop: )[0-9.]+", r"\g<1>0.042", PARAMS_FILE.read_text()))
    launch = Launch(env, "namespace:=robot1", "modalities:=['lidar', 'mmwave']", f"params_file:={params}",
                    "loop:=true")
    try:
        stamps = joint_stamps("/robot1/mmhpe/joints", 30, launch)
        assert "Double value is: 0.042" in ros2(env, "param", "get", "/robot1/fusion_node", "slop")
        assert "['lidar', 'mmwave']" in ros2(env, "param", "get", "/robot1/fusion_node", "modalities")
        nodes = set(ros2(env, "node", "list").split())
        assert {"/robot1/lidar_node", "/robot1/mmwave_node", "/robot1/fusion_node", "/robot1/replayer"} <= nodes
        assert not nodes & {"/robot1/camera_node", "/robot1/wifi_node", "/fusion_node"}, nodes
    finally:
        code = launch.stop()
    intervals = sorted(b - a for a, b in zip(stamps, stamps[1:]) if b > a)  # a bag loop steps back
    rate = 1.0 / intervals[len(intervals) // 2]
    assert 9.0 <= rate <= 11.0, f"{rate:.2f} joints per second of bag time"
    assert not wait_gone(launch.tag), tagged_processes(launch.tag)
    assert code == 0, launch.output()[-4000:]
    assert "tf2_ros is not installed" in launch.output() or "static_transform_publisher" in launch.output()


def test_live_sensors_run_on_wall_time(workspace):
    """replay:=false: no replayer, every node on wall time (use_sim_time false)."""
    _, env = workspace
    launch = Launch(env, "replay:=false", "use_wifi:=false", "modalities:=[rgb, wifi, lidar]")
    try:
        end = time.monotonic() + START_TIMEOUT_S
        while "/fusion_node" not in (nodes := ros2(env, "node", "list")) and time.monotonic() < end:
            assert launch.process.poll() is None, launch.output()[-4000:]
        for node in ("/fusion_node", "/camera_node", "/lidar_node"):
            assert "Boolean value is: False" in ros2(env, "param", "get", node, "use_sim_time"), node
        assert "/replayer" not in nodes and "/wifi_node" not in nodes, nodes
        assert "['rgb', 'lidar']" in ros2(env, "param", "get", "/fusion_node", "modalities")
    finally:
        code = launch.stop()
    assert not wait_gone(launch.tag), tagged_processes(launch.tag)
    assert code == 0, launch.output()[-4000:]


def test_a_node_failing_ends_the_launch_and_leaves_nothing(workspace, tmp_path):
    """A model that cannot be read: the nodes fail, the launch shuts the rest down and ends."""
    _, env = workspace
    bad = tmp_path / "no_model.safetensors"
    launch = Launch(env, f"model_path:={bad}")
    code = launch.wait(timeout=START_TIMEOUT_S)
    assert "was required: shutting down launched system" in launch.output(), launch.output()[-4000:]
    assert not wait_gone(launch.tag), tagged_processes(launch.tag)
    assert code != 0 or "process has died" in launch.output()


def test_a_killed_launch_leaves_no_node(workspace):
    """ros2 launch ended by SIGTERM (launch then leaves its processes: "using SIGTERM can result in
    orphaned processes") or SIGKILL: the nodes stop with their parent."""
    _, env = workspace
    for stop in (signal.SIGTERM, signal.SIGKILL):
        launch = Launch(env, "modalities:=[lidar]", "replay:=false")
        try:
            end = time.monotonic() + START_TIMEOUT_S
            while "fusing ['lidar']" not in launch.output() and time.monotonic() < end:
                assert launch.process.poll() is None, launch.output()[-4000:]
                time.sleep(0.5)
            assert len(tagged_processes(launch.tag)) >= 3, launch.output()[-4000:]  # launch, lidar, fusion
            launch.process.send_signal(stop)
        finally:
            launch.wait(timeout=60)
        assert not wait_gone(launch.tag), (stop, tagged_processes(launch.tag))


def test_a_bad_modalities_argument_starts_nothing(workspace):
    _, env = workspace
    launch = Launch(env, "modalities:=[lidar, sonar]")
    code = launch.wait(timeout=120)
    assert code != 0 and "unknown: sonar" in launch.output(), launch.output()[-4000:]
    assert "process started" not in launch.output()
    assert not wait_gone(launch.tag), tagged_processes(launch.tag)
