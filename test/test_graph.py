"""The whole graph over real DDS: replayer -> camera/lidar/mmwave/wifi nodes -> fusion -> markers.

Checks the MarkerArray content against the inputs, that the graph predicts exactly what the model
predicts offline on the same bag (so the live MPJPE is the model's), and the sensor faults of
issue 6: a sensor stops and returns, floods at 10x, stamps jump backwards (bag loop) and far
forwards (drivers switching to wall time), the nodes' clocks switch to sim time; fusion keeps
publishing from what is left, recovers, and its queues stay bounded.
"""
from __future__ import annotations

import importlib.util
import itertools
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed")
torch = pytest.importorskip("torch")
from geometry_msgs.msg import PoseArray  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image, PointCloud2  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from ros_domain import executor_params, lease_domain, node_processes, ros_domain  # noqa: E402
from mmhpe_ros.data import bag_format as fmt  # noqa: E402
from mmhpe_ros.data.bags import BagDataset  # noqa: E402
from mmhpe_ros.metrics import mpjpe  # noqa: E402
from mmhpe_ros.modalities import FRAME_IDS, MODALITIES, SENSOR_TOPICS, TOPICS  # noqa: E402
from mmhpe_ros.model.card import expected_joint_errors, read_card  # noqa: E402
from mmhpe_ros.model.checkpoint import load_model  # noqa: E402
from mmhpe_ros.model.inputs import prepare_inputs  # noqa: E402
from mmhpe_ros.model.observe import Rig  # noqa: E402
from mmhpe_ros.nodes.run_command import GraphSpinner, build_graph  # noqa: E402
from mmhpe_ros.resources import SAMPLE_BAG  # noqa: E402
from mmhpe_ros.runtime import codecs  # noqa: E402
from mmhpe_ros.runtime.diagnostics import Level  # noqa: E402
from mmhpe_ros.runtime.markers import MODALITY_COUNT_COLORS, error_colors  # noqa: E402
from mmhpe_ros.skeleton import BONES, NUM_JOINTS  # noqa: E402

ROS_DOMAIN_ID = lease_domain()  # this file's own DDS domains
TIMEOUT_S = 60.0  # a loaded 2-core machine: the graph is slow, not stuck
SAMPLE_DIR = SAMPLE_BAG.parent  # also a rosbag2 directory (metadata.yaml beside sample.mcap)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """The shipped model when there is one (its card is what MPJPE is compared with), else a small one."""
    torch.set_num_threads(1)
    from mmhpe_ros.resources import default_model_path

    try:
        return default_model_path()
    except FileNotFoundError:
        from mmhpe_ros.model.checkpoint import save_model
        from mmhpe_ros.model.config import ModelConfig
        from mmhpe_ros.model.pose_model import PoseModel

        torch.manual_seed(0)
        config = ModelConfig(feature_dim=16, hidden_dim=32, lidar_points=128, mmwave_points=32)
        return save_model(tmp_path_factory.mktemp("model") / "m.safetensors", PoseModel(config))


@pytest.fixture(scope="module")
def ros():
    with ros_domain(ROS_DOMAIN_ID):
        yield


class Collector:
    """A subscriber node keeping every MarkerArray and PoseArray the fusion node publishes."""

    def __init__(self) -> None:
        self.node = rclpy.create_node("graph_test_collector")
        self.markers: list[MarkerArray] = []
        self.joints: dict[int, np.ndarray] = {}
        self.node.create_subscription(MarkerArray, TOPICS.markers, self.markers.append, 100)
        self.node.create_subscription(
            PoseArray, TOPICS.joints,
            lambda msg: self.joints.__setitem__(codecs.header_stamp_ns(msg), codecs.read_pose_array(msg)), 100)


def wait_for(condition, timeout: float = TIMEOUT_S) -> None:
    end = time.monotonic() + timeout
    while not condition() and time.monotonic() < end:
        time.sleep(0.05)
    assert condition(), "timed out waiting for the graph"


def offline_predictions(model_path) -> dict[int, tuple[np.ndarray, np.ndarray, frozenset]]:
    """stamp -> (prediction, ground truth, modalities that observed the person) of the model on the
    sample bag, without ROS."""
    model, _ = load_model(model_path)
    model.eval()
    out = {}
    bags = BagDataset(SAMPLE_DIR)
    for frame in bags:
        rig = Rig(bags.calibration(frame.key.environment))
        inputs, body = prepare_inputs(frame.data, rig, model.config)
        assert body.person[0], "the sample's person is found in every frame"
        batch = {k: torch.from_numpy(v[None]) for k, v in inputs.items()}
        with torch.inference_mode():
            predicted = body.to_base(model(batch).double().numpy())[0]
        truth = rig.calibration.ground_truth_to_base().apply(frame.joints)
        used = frozenset(m for m, p in zip(model.config.modalities, inputs["present"]) if p)
        out[fmt.frame_stamp_ns(fmt.FIRST_SEQUENCE_NS, frame.index)] = (predicted, truth, used)
    return out


@pytest.fixture(scope="module", params=executor_params())
def sample_run(request, ros, model_path):
    """The sample bag replayed at 2x through the graph, with each executor: (collector, fusion node,
    offline predictions, incomplete CSI windows, statuses)."""
    expected = offline_predictions(model_path)  # before the graph starts: not competing with it for the CPU
    collector = Collector()
    nodes = build_graph(model_path=model_path, rate=2.0, extra={"replayer": {"delay": 0.5}})
    replayer, fusion = nodes[0], nodes[-1]
    spinner = GraphSpinner([*nodes, collector.node], request.param)
    try:
        wait_for(lambda: replayer.player.loops >= 1)
        wait_for(lambda: len(collector.joints) >= len(expected) - 2)
        time.sleep(0.3)
        statuses = {s.name: s for node in nodes[1:] for s in node.statuses()}
    finally:
        spinner.stop()
        for node in [*nodes, collector.node]:
            node.destroy_node()
    incomplete_csi = nodes[4].processor.assembler.counters.incomplete  # wifi windows with lost packets
    return collector, fusion, expected, incomplete_csi, statuses


def test_markers_carry_the_skeleton_of_each_input_frame(sample_run, model_path):
    collector, _, expected, _, statuses = sample_run
    counters = {name: {k: v for k, v in status.values.items() if k in ("late", "unmatched", "missing_from_sets",
                                                                          "partial", "incomplete_windows")}
                for name, status in statuses.items()}
    assert len(collector.markers) >= len(expected) - 2  # best-effort inputs: allow a lost frame or two
    expected_errors = expected_joint_errors(read_card(model_path))
    assert expected_errors is not None, f"{model_path}: the shipped card carries expected joint errors"
    fewer = 0
    for array in collector.markers:
        joints_marker, bones_marker = array.markers
        stamp = codecs.header_stamp_ns(joints_marker)
        assert stamp in expected, "marker stamps are the input frames' stamps"
        for marker in array.markers:
            assert marker.header.frame_id == FRAME_IDS["base"] and marker.ns == "person0"
            assert marker.action == Marker.ADD and marker.lifetime.nanosec > 0
        assert (joints_marker.id, joints_marker.type, bones_marker.id, bones_marker.type) == \
            (0, Marker.SPHERE_LIST, 1, Marker.LINE_LIST)
        points = np.array([(p.x, p.y, p.z) for p in joints_marker.points])
        assert points.shape == (NUM_JOINTS, 3)
        assert len(bones_marker.points) == 2 * len(BONES)
        np.testing.assert_allclose(points, collector.joints[stamp])
        np.testing.assert_allclose([bones_marker.points[0].x, bones_marker.points[1].y],
                                   [points[BONES[0][0], 0], points[BONES[0][1], 1]])
        colors = np.array([(c.r, c.g, c.b, c.a) for c in joints_marker.colors], dtype=np.float32)
        used = expected[stamp][2]
        # Joints are coloured by the card's errors for the modalities that observed the person; a set
        # fused without a late modality (partial) has the colours of that smaller subset.
        subsets = [frozenset(c) for k in range(len(used), 0, -1) for c in itertools.combinations(sorted(used), k)]
        matching = [subset for subset in subsets if np.allclose(
            colors, error_colors(expected_errors[subset], 40.0, 160.0), atol=1e-6)]
        assert matching, (f"frame {(stamp - min(expected)) // 100_000_000}: colours of no subset of {sorted(used)}; "
                          f"counters {counters}")
        fewer += matching[0] != used
    partial = int(statuses["fusion_node: fusion"].values["partial"])
    assert fewer <= partial, f"{fewer} skeletons coloured for fewer modalities than observed, {partial} partial sets"


def test_replayed_graph_runs_on_bag_time_and_diagnostics_are_live(sample_run):
    """The nodes follow the replayer's /clock, so a stream that just delivered is not STALE."""
    _, fusion, _, _, statuses = sample_run
    assert fusion.get_parameter("use_sim_time").value is True
    sensor_inputs = [s for name, s in statuses.items() if "fusion_node" not in name]
    assert len(sensor_inputs) >= 4 and len(statuses) >= len(sensor_inputs) + len(MODALITIES) + 1
    for name, status in statuses.items():
        assert status.level != Level.STALE, f"{name}: {status.message}"
        if "age_s" in status.values:
            assert float(status.values["age_s"]) < 5.0, f"{name}: age {status.values['age_s']} s"
    fused = next(s.values for name, s in statuses.items() if name.endswith(": fusion"))
    forward = [float(fused[f"forward_ms_{p}"]) for p in ("p50", "p99")]
    latency = [float(fused[f"latency_ms_{p}"]) for p in ("p50", "p99")]
    assert 0 < forward[0] <= forward[1] and 0 < latency[0] <= latency[1]
    assert latency[0] >= forward[0], "a set's latency includes its share of the forward pass"


def test_graph_predicts_what_the_model_predicts_offline(sample_run):
    collector, fusion, expected, incomplete_csi, _ = sample_run
    differ = [s for s, joints in collector.joints.items() if not np.allclose(joints, expected[s][0], atol=1e-4)]
    # Only frames whose CSI window lost packets on the way (best effort, a loaded machine) or that were
    # fused without a late modality (the first frames, while the nodes warm up) may differ.
    assert len(differ) <= incomplete_csi + fusion.partial and len(differ) <= len(collector.joints) // 5
    live_mm = np.mean([mpjpe(joints, expected[s][1]) for s, joints in collector.joints.items()])
    assert fusion.mpjpe.count >= len(collector.joints) - 2
    assert fusion.mpjpe.mean_mm == pytest.approx(live_mm, abs=0.5)


class BagPlay:
    """What `ros2 bag play --clock` does, with rosbags and plain rclpy publishers (none of the
    replayer's code): every recorded message's CDR bytes on its recorded topic and type, offered
    reliable (rosbag2's default; the recorded profile where the bag has one), at the recorded
    times over ``rate``, and /clock at 40 Hz (its --clock default)."""

    def __init__(self, bag_dir: Path, rate: float) -> None:
        import importlib

        from rclpy.qos import DurabilityPolicy, QoSProfile
        from rosbags.highlevel import AnyReader
        from rosbags.interfaces import QosDurability
        from rosbags.typesys import Stores, get_typestore
        from rosgraph_msgs.msg import Clock as ClockMsg

        self.node = rclpy.create_node("bag_play")
        self.rate = rate
        with AnyReader([bag_dir], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
            self.messages = [(c.topic, t, bytes(raw)) for c, t, raw in reader.messages()]
            self.publishers = {}
            for c in reader.connections:
                package, _, name = c.msgtype.split("/")
                qos = QoSProfile(depth=10)
                offered = c.ext.offered_qos_profiles
                if offered and offered[0].durability == QosDurability.TRANSIENT_LOCAL:
                    qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
                message_class = getattr(importlib.import_module(f"{package}.msg"), name)
                self.publishers[c.topic] = self.node.create_publisher(message_class, c.topic, qos)
        self.clock = self.node.create_publisher(ClockMsg, "/clock", 10)
        self.clock_type = ClockMsg

    def play(self) -> None:
        start_bag, start_wall = self.messages[0][1], time.monotonic()
        next_clock = 0.0
        for topic, stamp, raw in self.messages:
            due = start_wall + (stamp - start_bag) / 1e9 / self.rate
            while (now := time.monotonic()) < due:
                if now >= next_clock:
                    bag_now = start_bag + round((now - start_wall) * self.rate * 1e9)
                    self.clock.publish(self.clock_type(clock=codecs.ns_to_stamp(codecs.rclpy_types(), bag_now)))
                    next_clock = now + 1 / 40
                time.sleep(min(0.002, max(0.0, due - now)))
            self.publishers[topic].publish(raw)


def test_a_bag_play_without_our_replayer_drives_the_graph_equally(ros, model_path):
    """`ros2 bag play --clock` of the sample bag (emulated: BagPlay) into the sensor and fusion
    nodes on sim time: they fuse the frames and predict what the model predicts offline."""
    collector = Collector()
    player = BagPlay(SAMPLE_DIR, rate=2.0)
    nodes = build_graph(model_path=model_path, replay=False, extra={
        name: {"use_sim_time": True} for name in ("camera_node", "lidar_node", "mmwave_node", "wifi_node",
                                                  "fusion_node")})
    fusion = nodes[-1]
    spinner = GraphSpinner([*nodes, collector.node, player.node])
    try:
        expected = offline_predictions(model_path)
        wait_for(lambda: all(p.get_subscription_count() for t, p in player.publishers.items()
                             if t.lstrip("/") in SENSOR_TOPICS.values()))
        player.play()
        wait_for(lambda: len(collector.joints) >= len(expected) - 2)
        time.sleep(0.3)
        incomplete_csi = nodes[3].processor.assembler.counters.incomplete
        partial = fusion.partial
        wifi_counters = nodes[3].extra_counters(nodes[3].topic)
        sync_counters = {m: vars(c) for m, c in fusion.sync.counters.items()}
    finally:
        spinner.stop()
        for node in [*nodes, collector.node, player.node]:
            node.destroy_node()
    assert set(collector.joints) <= set(expected), "output stamps are the bag's frame stamps"
    differ = [s for s, joints in collector.joints.items() if not np.allclose(joints, expected[s][0], atol=1e-4)]
    # Only frames whose CSI window lost packets, or that were fused without a late modality, may differ.
    assert len(differ) <= incomplete_csi + partial and len(differ) <= len(collector.joints) // 5, (
        f"{len(differ)} frames differ ({differ}); {incomplete_csi} incomplete CSI windows, {partial} partial sets; "
        f"wifi {wifi_counters}; sync {sync_counters}")
    assert fusion.mpjpe.count >= len(collector.joints) - 2, "ground truth came through the bag play too"


def test_live_mpjpe_is_that_of_a_skeleton_placed_on_the_person(sample_run, model_path):
    """The sample's rig is none the model was trained on: its skeletons still land on the person
    (a skeleton at the wrong spot is off by metres, not by the card's held-out error)."""
    _, fusion, _, _, _ = sample_run
    card_mm = (read_card(model_path).get("metrics") or {}).get("holdout_mpjpe_mm")
    assert card_mm is not None, f"{model_path}: the card gives the held-out MPJPE of the best epoch"
    assert fusion.mpjpe.mean_mm < 1.5 * card_mm


# -- sensor faults (issue 6) --------------------------------------------------------------------


class SensorFeed:
    """Publishes the sample frames as raw sensor messages with stamps the test chooses."""

    PERIOD_NS = fmt.FRAME_PERIOD_NS

    def __init__(self) -> None:
        self.node = rclpy.create_node("graph_test_feed")
        self.types = codecs.rclpy_types()
        self.frames = list(BagDataset(SAMPLE_DIR))
        self.publishers = {
            m: self.node.create_publisher(Image if m == "wifi" else PointCloud2, SENSOR_TOPICS[m], qos_profile_sensor_data)
            for m in MODALITIES}

    def publish(self, index: int, stamp_ns: int, modalities=MODALITIES, repeat: int = 1) -> None:
        """Frame ``index`` of the sample stamped ``stamp_ns`` (``repeat`` copies of lidar: a flood)."""
        frame = self.frames[index % len(self.frames)]
        frame = type(frame)(frame.key, 0, frame.joints, frame.data)
        for stream, _, msg in fmt.frame_messages(self.types, frame, stamp_ns, modalities):
            modality = next((m for m, s in fmt.SENSOR_STREAMS.items() if s == stream), None)
            if modality is None:
                continue
            for _ in range(repeat if modality == "lidar" else 1):
                self.publishers[modality].publish(msg)
            if modality == "wifi":
                time.sleep(0.003)  # CSI packets are spaced, as a real 100 Hz source spaces them


def set_use_sim_time(nodes, value: bool) -> None:
    from rclpy.parameter import Parameter

    for node in nodes:
        assert node.set_parameters([Parameter("use_sim_time", value=value)])[0].successful


def test_faults_sensor_stops_floods_and_stamps_jump_back(ros, model_path):
    # Each frame's skeleton is coloured by how many modalities observed the person: the sample's
    # frames where one of them found nobody count fewer (from the model run offline).
    observed = [len(used) for _, (_, _, used) in sorted(offline_predictions(model_path).items())]
    without_lidar = [len(used - {"lidar"}) for _, (_, _, used) in sorted(offline_predictions(model_path).items())]
    collector = Collector()
    feed = SensorFeed()
    nodes = build_graph(model_path=model_path, replay=False, extra={"fusion_node": {"color_mode": "modalities"}})
    fusion = nodes[-1]
    spinner = GraphSpinner([*nodes, collector.node, feed.node])
    queue_peak = 0
    colors: dict[int, tuple] = {}

    def play(first_stamp_ns: int, frames: int, lidar: bool = True, repeat: int = 1) -> int:
        nonlocal queue_peak
        modalities = MODALITIES if lidar else tuple(m for m in MODALITIES if m != "lidar")
        for k in range(frames):
            feed.publish(k, first_stamp_ns + k * feed.PERIOD_NS, modalities, repeat)
            time.sleep(0.02)  # about 2x real time with the CSI packets' spacing
            queue_peak = max(queue_peak, max(fusion.sync.pending.values()))
        return first_stamp_ns + frames * feed.PERIOD_NS

    def fused_between(start_ns: int, end_ns: int, lidar: bool = True) -> list[int]:
        """Per set stamped in [start, end): modality count (from the skeleton colour) minus what the
        frame's observed modalities give (``lidar``: whether the LiDAR was sending): 0 = all fused."""
        for array in list(collector.markers):
            marker = array.markers[0]
            rgb = (round(marker.color.r, 2), round(marker.color.g, 2), round(marker.color.b, 2))
            colors[codecs.header_stamp_ns(marker)] = rgb
        by_color = {tuple(round(c, 2) for c in v[:3]): k for k, v in MODALITY_COUNT_COLORS.items()}
        full = observed if lidar else without_lidar
        return [by_color[c] - full[(s - start_ns) // feed.PERIOD_NS % len(full)]
                for s, c in sorted(colors.items()) if start_ns <= s < end_ns]

    try:
        wait_for(lambda: all(p.get_subscription_count() > 0 for p in feed.publishers.values()))
        t0 = 100 * 10**9
        t1 = play(t0, 12)  # all four
        t2 = play(t1, 12, lidar=False)  # the LiDAR stops ...
        t3 = play(t2, 12)  # ... and returns
        t4 = play(t3, 12, repeat=10)  # the LiDAR floods at 10x
        play(t0, 12)  # stamps jump back (a bag loop)
        wall0 = time.time_ns() // feed.PERIOD_NS * feed.PERIOD_NS
        t6 = play(wall0, 12)  # the drivers switch to wall time: stamps jump ~56 years forward
        set_use_sim_time(nodes, True)  # ... and the nodes' clocks switch to sim time (no /clock yet)
        back0 = t4 + 60 * 10**9
        t7 = play(back0, 12)  # back to bag time, the nodes on sim time
        time.sleep(1.0)
        statuses = fusion.statuses()  # diagnostics still work on a clock that reads 0

        settle = 3 * feed.PERIOD_NS  # sets next to a change may still be partial
        normal = fused_between(t0, t1 - settle)
        stopped = fused_between(t1 + settle, t2 - settle, lidar=False)
        returned = fused_between(t2 + settle, t3)
        flooded = fused_between(t3, t4)
        after_loop = fused_between(t0, t0 + 12 * feed.PERIOD_NS)  # stamps t0.. again, after the jump
        on_wall = fused_between(wall0 + settle, t6)
        back_on_sim = fused_between(back0 + settle, t7)
    finally:
        spinner.stop()
        for node in [*nodes, collector.node, feed.node]:
            node.destroy_node()

    print(f"fault phases, modalities per set minus those observing: normal {normal}, lidar stopped {stopped}, returned {returned}, "
          f"lidar flooding {flooded}, after loop {after_loop}, wall time {on_wall}, back on sim {back_on_sim}; "
          f"sync resets {fusion.sync.resets}, queue peak {queue_peak}/{fusion.sync.queue_size}, "
          f"lidar received {fusion.sync.counters['lidar'].received}")
    assert len(normal) >= 6 and all(n == 0 for n in normal[1:])  # the first may be fused before all started
    assert len(stopped) >= 4 and all(n == 0 for n in stopped), "fusion goes on without the LiDAR"
    assert len(returned) >= 6 and returned[-3:] == [0, 0, 0], "and recovers when it returns"
    assert len(flooded) >= 6 and flooded.count(0) >= len(flooded) - 2
    assert fusion.sync.resets >= 1 and len(after_loop) >= 6
    assert len(on_wall) >= 6 and all(n == 0 for n in on_wall), "a jump far forward is followed"
    assert len(back_on_sim) >= 6 and all(n == 0 for n in back_on_sim), "and so is the switch back"
    assert fusion.sync.resets >= 2  # the bag loop and the jump back from wall time
    assert [s.name for s in statuses][-1].endswith("fusion") and len(statuses) == len(MODALITIES) + 1
    assert queue_peak <= fusion.sync.queue_size
    lidar = fusion.sync.counters["lidar"]
    assert lidar.received >= 60  # more than the 48 frames sent: the flood reached the fusion node
    assert lidar.used + lidar.dropped + fusion.sync.pending["lidar"] == lidar.received  # surplus counted


def test_short_soak_keeps_memory_and_queues_flat(ros, model_path):
    """bench/bench_soak.py for a few seconds: the bag loops several times at x4."""
    spec = importlib.util.spec_from_file_location("bench_soak", Path(__file__).parents[1] / "bench" / "bench_soak.py")
    bench_soak = importlib.util.module_from_spec(spec)
    sys.modules["bench_soak"] = bench_soak  # its dataclasses look their module up
    spec.loader.exec_module(bench_soak)
    result = bench_soak.soak(seconds=6.0, rate=4.0, model_path=model_path, warm_up_s=3.0)
    assert result.loops >= 3 and result.sync_resets >= 2  # every loop jumps the stamps back
    assert result.fused >= 60  # fusion went on across the loops (x4: up to 40 sets/s)
    assert result.max_queued <= result.queue_size
    assert result.rss_growth < 0.10, f"RSS grew {100 * result.rss_growth:.1f} % in {result.seconds:.0f} s"


def test_run_command_records_markers_and_joints(tmp_path):
    """`mmhpe-ros run` (its own process and DDS domain) replays the sample and records its outputs."""
    import subprocess

    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    env = dict(os.environ, ROS_DOMAIN_ID=lease_domain())
    done = subprocess.run([sys.executable, "-m", "mmhpe_ros", "run", "--rate", "4", "--record", str(tmp_path / "out")],
                          env=env, capture_output=True, text=True, timeout=50)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = done.stdout.strip().splitlines()[-2]
    assert summary.startswith("fused ") and "MPJPE" in summary, done.stdout
    fused = int(summary.split()[1])
    with AnyReader([tmp_path / "out"], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        marker_conn = next(c for c in reader.connections if c.topic == "/" + TOPICS.markers)
        _, _, raw = next(reader.messages(connections=[marker_conn]))
        first = reader.deserialize(raw, marker_conn.msgtype)
    assert fused >= 45 and counts["/" + TOPICS.markers] == fused and counts["/" + TOPICS.joints] == fused
    assert [m.type for m in first.markers] == [Marker.SPHERE_LIST, Marker.LINE_LIST]


def test_run_command_with_a_process_per_node(tmp_path):
    """`mmhpe-ros run --processes`: the nodes as separate processes (as ros2 launch runs them), each
    stopped at the end; the parent's summary and recording come over DDS."""
    import subprocess

    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    env = dict(os.environ, ROS_DOMAIN_ID=lease_domain())
    done = subprocess.run([sys.executable, "-m", "mmhpe_ros", "run", "--processes", "--rate", "4",
                           "--record", str(tmp_path / "out")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = done.stdout.strip().splitlines()[-2]
    assert summary.startswith("fused ") and "MPJPE" in summary and "n/a" not in summary, done.stdout
    with AnyReader([tmp_path / "out"], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts["/" + TOPICS.markers] >= 40, f"most frames of the 50-frame sample bag were fused and " \
        f"recorded: {summary}; recorded {counts}; stderr: {done.stderr[-1500:]}"
    left = node_processes()
    assert not left, f"node processes left running: {left}"
