"""csi-bridge: CSI tools' logs (written here from their documented layouts) read back with csiread,
framed for live input, and published on wifi/csi over DDS."""
from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

pytest.importorskip("csiread", reason="csiread (extra 'wifi') not installed")

from csi_logs import atheros_record, esp32_line, intel_record  # noqa: E402
from mmhpe_ros.runtime import codecs  # noqa: E402
from mmhpe_ros.runtime.csi_bridge import (  # noqa: E402
    CsiLogError,
    LogClock,
    RecordSplitter,
    StreamParser,
    default_layout,
    read_log,
)
from mmhpe_ros.runtime.csi_layout import LAYOUTS  # noqa: E402
from ros_domain import lease_domain  # noqa: E402

RNG = np.random.default_rng(11)


def _complex_ints(shape, limit):
    return RNG.integers(-limit, limit, shape) + 1j * RNG.integers(-limit, limit, shape)


def _atheros_log(path, packets=5, tones=114, nr=3, nc=1):
    csi = [_complex_ints((tones, nr, nc), 511) for _ in range(packets)]
    times = 1_000_000 + np.cumsum(RNG.integers(5_000, 15_000, packets))
    path.write_bytes(b"".join(atheros_record(c, int(t)) for c, t in zip(csi, times)))
    return csi, times


def _intel_log(path, packets=5, nrx=3, ntx=1, start_us=1_000):
    csi = [_complex_ints((30, nrx, ntx), 127) for _ in range(packets)]
    times = (start_us + np.cumsum(RNG.integers(5_000, 15_000, packets))) % 2**32
    path.write_bytes(b"".join(intel_record(c, int(t), i) for i, (c, t) in enumerate(zip(csi, times))))
    return csi, times


def _esp32_log(path, packets=5):
    bins = [_complex_ints(64, 100) for _ in range(packets)]
    times = 500 + np.cumsum(RNG.integers(5_000, 15_000, packets))
    path.write_text("".join(esp32_line(b, int(t)) for b, t in zip(bins, times)))
    return bins, times


@pytest.mark.parametrize("tones, nc", [(114, 1), (56, 1), (114, 2)])
def test_atheros_logs_read_back(tmp_path, tones, nc):
    csi, times = _atheros_log(tmp_path / "ath.dat", tones=tones, nc=nc)
    packets = read_log(tmp_path / "ath.dat", "atheros", tones=tones, tx_stream=nc - 1)
    assert len(packets) == 5 and default_layout("atheros", tones) == ("atheros_40mhz" if tones == 114 else
                                                                      "atheros_20mhz")
    for packet, written, t in zip(packets, csi, times):
        assert packet.iq.shape == (3, tones) == (3, len(LAYOUTS[default_layout("atheros", tones)]))
        np.testing.assert_array_equal(packet.iq, written[:, :, nc - 1].T)
        assert packet.time_us == t


def test_intel_logs_read_back_scaled_with_times_unwrapped(tmp_path):
    csi, times = _intel_log(tmp_path / "intel.dat", packets=6, start_us=2**32 - 30_000)  # the clock wraps
    packets = read_log(tmp_path / "intel.dat", "intel")
    assert len(packets) == 6
    unwrapped = [p.time_us for p in packets]
    assert np.all(np.diff(unwrapped) > 0) and unwrapped[-1] > 2**32 > unwrapped[0]
    np.testing.assert_array_equal(np.array(unwrapped) % 2**32, times)
    for packet, written in zip(packets, csi):
        assert packet.iq.shape == (3, 30)
        # scaled to the receive power: the same complex values up to one positive real factor
        ratio = packet.iq / written[:, :, 0].T
        assert np.allclose(ratio.imag, 0, atol=1e-9 * np.abs(ratio).max()) and (ratio.real > 0).all()
        np.testing.assert_allclose(ratio.real, ratio.real.flat[0])


def test_esp32_logs_keep_the_52_occupied_subcarriers_in_ascending_order(tmp_path):
    bins, times = _esp32_log(tmp_path / "esp.csv")
    packets = read_log(tmp_path / "esp.csv", "esp32")
    indices = np.array(LAYOUTS["esp32_ht20"])
    for packet, written, t in zip(packets, bins, times):
        assert packet.iq.shape == (1, 52) and packet.time_us == t
        np.testing.assert_array_equal(packet.iq[0], [written[i % 64] for i in indices])


@pytest.mark.parametrize("tool, write", [("atheros", _atheros_log), ("intel", _intel_log), ("esp32", _esp32_log)])
def test_live_records_parse_as_the_file_reader_does(tmp_path, tool, write):
    """The byte stream cut at arbitrary points (a growing log) gives the file reader's packets."""
    path = tmp_path / "log"
    write(path)
    data = path.read_bytes()
    splitter, parser, live = RecordSplitter(tool), StreamParser(tool), []
    cuts = sorted(RNG.integers(0, len(data), 7).tolist()) + [len(data)]
    start = 0
    for cut in cuts:
        for record in splitter.feed(data[start:cut]):
            packet = parser.parse(record)
            if packet is not None:
                live.append(packet)
        start = cut
    whole = read_log(path, tool)
    assert len(live) == len(whole) == 5
    for a, b in zip(live, whole):
        np.testing.assert_allclose(a.iq, b.iq, rtol=1e-5)  # csiread scales Intel CSI in float32 per record
        assert a.time_us == b.time_us


def test_log_times_map_to_ros_time_and_bad_input_is_refused(tmp_path):
    clock = LogClock(base_ns=7_000_000_000)
    assert [clock.stamp_ns(t) for t in (5_000, 15_000, 16_500)] == [7_000_000_000, 7_010_000_000, 7_011_500_000]
    with pytest.raises(CsiLogError, match="no such file"):
        read_log(tmp_path / "missing.dat", "atheros")
    with pytest.raises(CsiLogError, match="unknown CSI tool"):
        RecordSplitter("picoscenes")
    assert StreamParser("esp32").parse("I (1234) wifi: connected\n") is None


# -- over DDS -------------------------------------------------------------------------------------

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed")
ROS_DOMAIN_ID = lease_domain()


@pytest.fixture(scope="module")
def ros():
    from ros_domain import ros_domain

    with ros_domain(ROS_DOMAIN_ID):
        yield


def _receive_while(run, bridge, expected: int, timeout_s: float = 10.0) -> list:
    """Spin a subscriber of wifi/csi while ``run()`` publishes in a thread; the messages received."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    listener = rclpy.create_node("csi_bridge_listener")
    received = []
    listener.create_subscription(Image, "wifi/csi", received.append, qos_profile_sensor_data)
    executor = SingleThreadedExecutor()
    executor.add_node(listener)
    deadline = time.monotonic() + timeout_s
    while bridge.publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    while len(received) < expected and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    thread.join(timeout=timeout_s)
    executor.shutdown()
    listener.destroy_node()
    return received


def _bridge(**parameters):
    from rclpy.parameter import Parameter

    from mmhpe_ros.nodes.csi_bridge import CsiBridgeNode

    return CsiBridgeNode(parameter_overrides=[Parameter(k, value=v) for k, v in parameters.items()])


def test_a_log_is_published_at_its_own_timing_with_its_values(ros, tmp_path):
    bins, times = _esp32_log(tmp_path / "esp.csv", packets=12)
    bridge = _bridge(source=str(tmp_path / "esp.csv"), tool="esp32", mode="file", rate=1.0)
    try:
        start = bridge.now_ns()
        received = _receive_while(lambda: bridge.run(), bridge, expected=12)
    finally:
        bridge.destroy_node()
    assert len(received) == 12
    stamps = np.array([codecs.header_stamp_ns(m) for m in received])
    np.testing.assert_array_equal(np.diff(stamps), np.diff(times) * 1000)  # the log's own packet spacing
    assert 0 <= stamps[0] - start < 5e9
    indices = np.array(LAYOUTS["esp32_ht20"])
    for msg, written in zip(received, bins):
        assert msg.encoding == "complex64" and (msg.height, msg.width) == (1, 52) and msg.header.frame_id == "wifi"
        np.testing.assert_array_equal(codecs.read_csi_iq(msg)[0], [written[i % 64] for i in indices])


def test_udp_datagrams_are_published_stamped_with_their_receive_time(ros, tmp_path):
    csi, _ = _intel_log(tmp_path / "intel.dat", packets=8)
    data = (tmp_path / "intel.dat").read_bytes()
    records = list(RecordSplitter("intel").feed(data))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bridge = _bridge(source=str(port), tool="intel", mode="udp", udp_host="127.0.0.1")

    def send_then_run():
        sender = threading.Thread(target=_send, args=(records, port), daemon=True)
        sender.start()
        bridge.run(duration=3.0)

    try:
        before = bridge.now_ns()
        received = _receive_while(send_then_run, bridge, expected=8)
        after = bridge.now_ns()
    finally:
        bridge.destroy_node()
    assert len(received) == 8
    expected = read_log(tmp_path / "intel.dat", "intel")
    for msg, packet in zip(received, expected):
        assert before <= codecs.header_stamp_ns(msg) <= after
        np.testing.assert_allclose(codecs.read_csi_iq(msg), packet.iq, rtol=2e-5)  # complex64 on the wire


def _send(records, port):
    time.sleep(0.3)  # the bridge binds its socket first
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for record in records:
            sock.sendto(record, ("127.0.0.1", port))
            time.sleep(0.01)


def test_bridge_to_wifi_node_gives_model_windows_for_an_esp32_log(ros, tmp_path):
    """ESP32 log (1 x 52, irregular ~70 Hz) -> csi-bridge -> wifi node (csi_layout esp32_ht20) -> features."""
    torch = pytest.importorskip("torch")
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image

    from mmhpe_ros.model.checkpoint import save_model
    from mmhpe_ros.model.config import ModelConfig
    from mmhpe_ros.model.pose_model import PoseModel
    from mmhpe_ros.nodes.wifi import WifiNode
    from mmhpe_ros.runtime.features import feature_topic, read_features

    torch.set_num_threads(1)
    config = ModelConfig(feature_dim=8, hidden_dim=8, lidar_points=16, mmwave_points=8)
    model_path = str(save_model(tmp_path / "m.safetensors", PoseModel(config)))
    path = tmp_path / "esp.csv"
    bins = [_complex_ints(64, 100) for _ in range(45)]
    times = 500 + np.cumsum(RNG.integers(9_000, 20_000, 45))
    path.write_text("".join(esp32_line(b, int(t)) for b, t in zip(bins, times)))
    wifi = WifiNode(parameter_overrides=[Parameter("model_path", value=model_path),
                                         Parameter("csi_layout", value="esp32_ht20"),
                                         Parameter("subcarrier_mapping", value="stretch"),
                                         Parameter("window_timeout_s", value=0.3)])
    bridge = _bridge(source=str(path), tool="esp32", mode="file", rate=2.0)
    listener = rclpy.create_node("wifi_features_listener")
    received = []
    listener.create_subscription(Image, feature_topic("wifi"), received.append, 10)
    executor = SingleThreadedExecutor()
    for node in (wifi, listener):
        executor.add_node(node)
    try:
        deadline = time.monotonic() + 10.0
        while bridge.publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        thread = threading.Thread(target=bridge.run, daemon=True)
        thread.start()
        span_windows = (times[-1] - times[0]) / 100_000
        while len(received) < int(span_windows) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        thread.join(timeout=5.0)
    finally:
        executor.shutdown()
        for node in (wifi, listener, bridge):
            node.destroy_node()
    assert len(received) >= int(span_windows) - 1 >= 4
    stamps = [codecs.header_stamp_ns(m) for m in received]
    assert all(s % 100_000_000 == 0 for s in stamps) and stamps == sorted(stamps)
    for msg in received[1:-1]:  # whole windows inside the log: every slot resampled
        arrays = read_features("wifi", msg, config)
        assert arrays["wifi"].shape == (2, 3, 114, 10) and arrays["wifi_mask"].all()
        np.testing.assert_array_equal(arrays["wifi"][:, 0], arrays["wifi"][:, 2])  # one antenna, repeated


def test_a_growing_log_is_followed_from_its_end(ros, tmp_path):
    path = tmp_path / "ath.dat"
    old, _ = _atheros_log(path, packets=3)  # already there when the bridge starts: not published
    csi = [_complex_ints((114, 3, 1), 511) for _ in range(6)]
    records = [atheros_record(c, 5_000_000 + 10_000 * i) for i, c in enumerate(csi)]
    bridge = _bridge(source=str(path), tool="atheros", mode="follow")

    def append_then_follow():
        def writer():
            time.sleep(0.3)
            with open(path, "ab") as log:
                for record in records:  # written in two pieces, as a tool's buffered writes come
                    log.write(record[:40])
                    log.flush()
                    time.sleep(0.02)
                    log.write(record[40:])
                    log.flush()
        threading.Thread(target=writer, daemon=True).start()
        bridge.run(duration=2.0)

    try:
        received = _receive_while(append_then_follow, bridge, expected=6)
    finally:
        bridge.destroy_node()
    assert len(received) == 6
    for msg, written in zip(received, csi):
        np.testing.assert_array_equal(codecs.read_csi_iq(msg), written[:, :, 0].T)


def test_the_command_publishes_esp32_lines_from_stdin(ros, tmp_path):
    import os
    import subprocess
    import sys

    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    bins = [_complex_ints(64, 100) for _ in range(5)]
    listener = rclpy.create_node("csi_bridge_stdin_listener")
    received = []
    listener.create_subscription(Image, "wifi/csi", received.append, qos_profile_sensor_data)
    executor = SingleThreadedExecutor()
    executor.add_node(listener)
    command = [sys.executable, "-m", "mmhpe_ros", "csi-bridge", "-", "--tool", "esp32", "--duration", "6"]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**os.environ, "ROS_DOMAIN_ID": ROS_DOMAIN_ID})
    try:
        deadline = time.monotonic() + 20.0
        while listener.count_publishers("wifi/csi") == 0 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        time.sleep(0.5)  # discovery both ways before the first best-effort message
        process.stdin.write(b"I (31) boot: ESP-IDF v4.3\n")  # serial noise is skipped
        for i, b in enumerate(bins):
            process.stdin.write(esp32_line(b, 1000 * i).encode())
            process.stdin.flush()
            time.sleep(0.05)
        while len(received) < 5 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
        executor.shutdown()
        listener.destroy_node()
    assert process.returncode == 0, output.decode()
    assert b"published 5 CSI packets (esp32_ht20)" in output
    assert len(received) == 5
    indices = np.array(LAYOUTS["esp32_ht20"])
    np.testing.assert_array_equal(codecs.read_csi_iq(received[-1])[0], [bins[-1][i % 64] for i in indices])


def test_the_wifi_node_refuses_an_unknown_layout(ros, tmp_path):
    pytest.importorskip("torch")
    from rclpy.parameter import Parameter

    from mmhpe_ros.model.checkpoint import save_model
    from mmhpe_ros.model.config import ModelConfig
    from mmhpe_ros.model.pose_model import PoseModel
    from mmhpe_ros.nodes.wifi import WifiNode

    model_path = str(save_model(tmp_path / "m.safetensors", PoseModel(ModelConfig(feature_dim=8, hidden_dim=8))))
    with pytest.raises(ValueError, match="unknown CSI layout 'atheros_80mhz'"):
        WifiNode(parameter_overrides=[Parameter("model_path", value=model_path),
                                      Parameter("csi_layout", value="atheros_80mhz")])
    node = WifiNode(parameter_overrides=[Parameter("model_path", value=model_path),
                                         Parameter("subcarrier_indices", value=[-28.0, -14.0, 0.0, 14.0, 28.0])])
    try:
        assert node.processor.layout.subcarriers == 5
    finally:
        node.destroy_node()
