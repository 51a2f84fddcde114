"""Node processes: plain rclpy.spin, a clean end on Ctrl-C, and an end within bounds when the clean-up
hangs (in Python or in C code holding the GIL); the composed graph's executors: which one is
chosen, that both run callbacks and stop."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from ros_domain import executor_params, lease_domain, node_processes
from mmhpe_ros.nodes import spin
from mmhpe_ros.nodes.spin import CLEANUP_TIMEOUT_ENV, EXECUTOR_ENV, STOP_GRACE_S, executor_kind

ROS_DOMAIN_ID = lease_domain()  # this file's own DDS domains
RUN_DOMAIN_IDS = {"one_process": lease_domain(), "processes": lease_domain()}


def test_the_choice_is_the_argument_then_the_environment_then_the_best_available(monkeypatch):
    monkeypatch.setattr(spin, "events_executor_available", lambda: True)
    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    assert executor_kind() == "events"
    monkeypatch.setenv(EXECUTOR_ENV, "")  # the launch file's default
    assert executor_kind() == "events"
    monkeypatch.setenv(EXECUTOR_ENV, "single")
    assert executor_kind() == "single"
    assert executor_kind("events") == "events"
    monkeypatch.delenv(EXECUTOR_ENV)
    monkeypatch.setattr(spin, "events_executor_available", lambda: False)
    assert executor_kind() == "single"  # Humble, Jazzy


def test_unknown_or_unavailable_executors_are_refused_with_the_choices(monkeypatch):
    monkeypatch.setenv(EXECUTOR_ENV, "multi")
    with pytest.raises(ValueError, match=f"unknown executor 'multi' \\(from {EXECUTOR_ENV}\\); choose one of "
                                         "events, single"):
        executor_kind()
    with pytest.raises(ValueError, match="from --executor"):
        executor_kind("fast")
    monkeypatch.setattr(spin, "events_executor_available", lambda: False)
    with pytest.raises(ValueError, match="no EventsExecutor"):
        executor_kind("events")


@pytest.fixture(scope="module")
def ros():
    pytest.importorskip("rclpy", reason="rclpy not installed")
    from ros_domain import ros_domain

    with ros_domain(ROS_DOMAIN_ID):
        yield


@pytest.mark.parametrize("kind", executor_params())
def test_graph_spinner_runs_timers_and_subscriptions_and_stops(ros, kind):
    import rclpy
    from std_msgs.msg import String

    from mmhpe_ros.nodes.run_command import GraphSpinner

    talker, listener = rclpy.create_node(f"talker_{kind}"), rclpy.create_node(f"listener_{kind}")
    heard: list[str] = []
    listener.create_subscription(String, f"chatter_{kind}", lambda msg: heard.append(msg.data), 10)
    publisher = talker.create_publisher(String, f"chatter_{kind}", 10)
    talker.create_timer(0.01, lambda: publisher.publish(String(data="tick")))
    spinner = GraphSpinner([talker, listener], kind)
    try:
        assert spinner.kind == kind
        end = time.monotonic() + 10.0
        while len(heard) < 20 and time.monotonic() < end:
            time.sleep(0.05)
        assert len(heard) >= 20, f"{kind}: {len(heard)} messages heard"
    finally:
        spinner.stop()
        talker.destroy_node()
        listener.destroy_node()
    assert not any(thread.is_alive() for thread in spinner.threads)
    count = len(heard)
    time.sleep(0.2)
    assert len(heard) == count, "nothing runs after stop()"


def test_a_node_process_stops_cleanly_on_ctrl_c():
    pytest.importorskip("rclpy", reason="rclpy not installed")
    env = dict(os.environ, ROS_DOMAIN_ID=ROS_DOMAIN_ID)
    process = subprocess.Popen([sys.executable, "-m", "mmhpe_ros.nodes.lidar"], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        first = process.stdout.readline()  # the node's start-up line: it is spinning
        assert "lidar_node" in first, first
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, first + out
    assert "Traceback" not in out, out


# A node whose destroy_node() never returns: in Python (time.sleep) or in C holding the GIL (libc
# sleep through ctypes.PyDLL, the stop signals blocked in that thread so they do not cut it short),
# as a DDS clean-up that hangs does.
HANGING_NODE = """
import ctypes, signal, sys, time
from rclpy.node import Node
from mmhpe_ros.nodes.spin import spin_node

class Hanging(Node):
    def __init__(self):
        super().__init__("hanging_node")
        self.timer = self.create_timer(0.05, self.spinning)

    def spinning(self):  # a callback ran: rclpy.spin is running
        self.timer.cancel()
        print("spinning", flush=True)

    def destroy_node(self):
        print("destroying", flush=True)
        if sys.argv[1] == "c":
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
            ctypes.PyDLL(None).sleep(600)
        else:
            time.sleep(600)

spin_node(Hanging)
"""


def start_hanging_node(where: str, timeout_s: float) -> subprocess.Popen:
    pytest.importorskip("rclpy", reason="rclpy not installed")
    env = dict(os.environ, ROS_DOMAIN_ID=ROS_DOMAIN_ID, **{CLEANUP_TIMEOUT_ENV: str(timeout_s)})
    process = subprocess.Popen([sys.executable, "-c", HANGING_NODE, where], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout.readline().strip() == "spinning"
    return process


def test_a_clean_up_stuck_in_c_holding_the_gil_ends_after_the_timeout():
    process = start_hanging_node("c", timeout_s=2.0)
    try:
        process.send_signal(signal.SIGINT)
        assert process.stdout.readline().strip() == "destroying"
        process.send_signal(signal.SIGINT)  # ignored: a Python handler cannot run while C holds the GIL
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 1, err
    assert "Timeout" in err and "destroy_node" in err, err  # faulthandler's watchdog: where it hung


def test_a_stop_signal_after_the_grace_period_ends_a_clean_up_that_hangs():
    process = start_hanging_node("python", timeout_s=300.0)
    try:
        process.send_signal(signal.SIGINT)
        assert process.stdout.readline().strip() == "destroying"
        process.send_signal(signal.SIGINT)  # the same Ctrl-C again (terminal + launcher): not an order to quit
        time.sleep(STOP_GRACE_S + 0.5)
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)  # as ros2 launch escalates
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM, err
    assert f"clean-up interrupted by signal {int(signal.SIGTERM)}" in err, err


@pytest.mark.parametrize("mode", [[], ["--processes"]], ids=["one_process", "processes"])
def test_ctrl_c_stops_mmhpe_ros_run_cleanly_with_its_summary(mode, tmp_path):
    """Ctrl-C (SIGINT to the run, as a terminal sends it) while frames are fused at x4: exit 0, no
    traceback or FATAL callback error from a node, the summary line printed, no node left."""
    pytest.importorskip("rclpy", reason="rclpy not installed")
    env = dict(os.environ, ROS_DOMAIN_ID=RUN_DOMAIN_IDS["processes" if mode else "one_process"],
               MMHPE_PROGRESS="1")  # the bar on a pipe too
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "mmhpe_ros", "run", *mode, "--rate", "4", "--loop"],
                                   env=env, text=True, stdout=subprocess.PIPE, stderr=stderr)
        try:
            end = time.monotonic() + 90.0
            while not re.search(r"MPJPE \d", log.read_text()) and time.monotonic() < end and process.poll() is None:
                time.sleep(0.2)  # the progress bar (stderr) shows a running MPJPE: frames are being fused
            assert process.poll() is None and re.search(r"MPJPE \d", log.read_text()), log.read_text()[-2000:]
            process.send_signal(signal.SIGINT)
            out, _ = process.communicate(timeout=30)
        finally:
            process.kill()
    errors = log.read_text()
    assert process.returncode == 0, errors[-2000:]
    assert "Traceback" not in errors and "FATAL" not in errors and "Aborted" not in errors, errors[-3000:]
    assert out.strip().splitlines()[-1].startswith("fused "), out
    left = node_processes()
    assert not left, f"node processes left running: {left}"


@pytest.mark.parametrize("kind", executor_params())
def test_parameter_services_answer_on_either_executor(ros, kind):
    """`ros2 param describe` and `ros2 param set` reach a node through its parameter services."""
    import rclpy
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import DescribeParameters, SetParameters
    from rclpy.node import ParameterDescriptor

    from mmhpe_ros.nodes.run_command import GraphSpinner

    node = rclpy.create_node(f"described_{kind}")
    node.declare_parameter("slop", 0.05, ParameterDescriptor(description="largest stamp spread in a set"))
    caller = rclpy.create_node(f"caller_{kind}")
    describe = caller.create_client(DescribeParameters, f"/described_{kind}/describe_parameters")
    set_parameters = caller.create_client(SetParameters, f"/described_{kind}/set_parameters")
    spinner = GraphSpinner([node, caller], kind)
    try:
        assert describe.wait_for_service(timeout_sec=10.0) and set_parameters.wait_for_service(timeout_sec=10.0)
        described = describe.call(DescribeParameters.Request(names=["slop"]), timeout_sec=10.0)
        value = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=0.08)
        result = set_parameters.call(SetParameters.Request(parameters=[Parameter(name="slop", value=value)]),
                                     timeout_sec=10.0)
        slop = node.get_parameter("slop").value
    finally:
        spinner.stop()
        node.destroy_node()
        caller.destroy_node()
    assert described.descriptors[0].description == "largest stamp spread in a set"
    assert result.results[0].successful and slop == 0.08


@pytest.mark.parametrize("mode", [[], ["--processes"]], ids=["one_process", "processes"])
def test_mmhpe_ros_run_refuses_an_unknown_executor_before_starting_anything(mode):
    env = dict(os.environ, ROS_DOMAIN_ID=ROS_DOMAIN_ID, **{EXECUTOR_ENV: "bogus"})
    done = subprocess.run([sys.executable, "-m", "mmhpe_ros", "run", *mode, "--duration", "3"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (f"mmhpe-ros run: error: unknown executor 'bogus' (from {EXECUTOR_ENV}); "
                                   "choose one of events, single")


# A node whose callback raises, after shutting rclpy down (what a stop signal does under a take that
# then fails) or while rclpy still runs (a real failure).
RAISING_NODE = """
import sys
import rclpy
from rclpy.node import Node
from mmhpe_ros.nodes.spin import spin_node

class Raising(Node):
    def __init__(self):
        super().__init__("raising_node")
        self.create_timer(0.05, self.fail)

    def fail(self):
        if sys.argv[1] == "after_shutdown":
            rclpy.shutdown()
        raise RuntimeError("Unable to convert call argument '0' to Python object")

spin_node(Raising)
"""


@pytest.mark.parametrize("when, code", [("after_shutdown", 0), ("running", 1)])
def test_an_error_after_shutdown_is_a_clean_stop_and_one_while_running_a_failure(when, code):
    pytest.importorskip("rclpy", reason="rclpy not installed")
    env = dict(os.environ, ROS_DOMAIN_ID=ROS_DOMAIN_ID)
    done = subprocess.run([sys.executable, "-c", RAISING_NODE, when], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == code, done.stderr[-2000:]
    assert ("Traceback" in done.stderr) == (code == 1), done.stderr[-2000:]
