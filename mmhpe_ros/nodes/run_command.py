"""Run the whole graph in one process: replayer -> camera/lidar/mmwave/wifi nodes -> fusion.

The same nodes and the same config/fusion.yaml as `ros2 launch mmhpe_ros fusion.launch.py`, for
pip installs without launch: composed in one process, one executor thread per node, over DDS (RViz,
Foxglove or `ros2 topic echo` on the same ROS_DOMAIN_ID see every topic). Prints fused frames/s and
the running MPJPE against the bag's ground truth; --record writes markers, joints and MPJPE to an
MCAP bag for Foxglove or `ros2 bag play`.

Example: mmhpe-ros run --duration 20 --record out/skeleton
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from mmhpe_ros.modalities import MODALITIES

HELP = "replay a bag through the sensor and fusion nodes in one process; live MPJPE and frames/s"
SENSOR_NODES: dict[str, tuple[str, str, str]] = {  # modality -> (module, class, node name)
    "rgb": ("mmhpe_ros.nodes.camera", "CameraNode", "camera_node"),
    "lidar": ("mmhpe_ros.nodes.lidar", "LidarNode", "lidar_node"),
    "mmwave": ("mmhpe_ros.nodes.mmwave", "MmwaveNode", "mmwave_node"),
    "wifi": ("mmhpe_ros.nodes.wifi", "WifiNode", "wifi_node"),
}
RECORDED_TOPICS = ("markers", "joints", "mpjpe")  # attributes of modalities.TOPICS
# Python's GIL hand-over interval for the composed process (default 5 ms). With a dozen threads
# (executors, replayer, inference) a shorter slice lets torch's worker get the GIL back between
# operators sooner: measured 96 -> 102 fused frames/s at x10 replay on 2 cores (docs/nodes.md).
GIL_SWITCH_INTERVAL_S = 0.001


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `mmhpe-ros run`."""
    parser.add_argument("--bag", type=Path, default=None,
                        help="bag directory or .mcap file to replay (default: the bundled sample bag)")
    parser.add_argument("--params", type=Path, default=None,
                        help="ROS 2 parameter file (default: the installed config/fusion.yaml)")
    parser.add_argument("--model", type=Path, default=None, help="model weights for every node (overrides --params)")
    parser.add_argument("--rate", type=float, default=None, help="replay speed factor (overrides --params)")
    parser.add_argument("--loop", action="store_true", help="replay the bag in a loop")
    parser.add_argument("--duration", type=float, default=None,
                        help="run this many seconds, looping the bag as needed (default: to the end of the bag; "
                             "forever with --loop)")
    parser.add_argument("--record", type=Path, default=None, metavar="OUT",
                        help="record markers, joints and MPJPE to a rosbag2 bag: folder OUT holding OUT.mcap")
    parser.add_argument("--modalities", nargs="+", choices=MODALITIES, default=None, metavar="MODALITY",
                        help=f"modalities to run and fuse (default: those of --params; {', '.join(MODALITIES)})")


def node_parameters(params: dict[str, dict[str, Any]], node_name: str, overrides: dict[str, Any]) -> list[Any]:
    """rclpy Parameters of one node: its section of the parameter file, then ``overrides``."""
    from rclpy.parameter import Parameter

    from mmhpe_ros.runtime.params_file import parameters_for

    values = {**parameters_for(params, node_name), **overrides}
    return [Parameter(name, value=value) for name, value in values.items()]


def build_graph(
    params_path: str | Path | None = None,
    *,
    bag: str | Path | None = None,
    model_path: str | Path | None = None,
    rate: float | None = None,
    loop: bool | None = None,
    modalities: Sequence[str] | None = None,
    replay: bool = True,
    extra: dict[str, dict[str, Any]] | None = None,
) -> list[Any]:
    """The graph's nodes (replayer first, fusion last), parameters from ``params_path``.

    Arguments that are not None override the file; ``extra`` maps node name -> further
    parameter overrides. With ``replay`` the sensor and fusion nodes follow the replayer's
    ``/clock`` (``use_sim_time``, as the launch file's default), so their diagnostics measure
    ages in bag time. rclpy must be initialised.
    """
    import importlib

    from mmhpe_ros.nodes.fusion import FusionNode
    from mmhpe_ros.nodes.replayer import Replayer
    from mmhpe_ros.resources import default_params_path
    from mmhpe_ros.runtime.params_file import load_parameter_file

    params = load_parameter_file(params_path or default_params_path())
    extra = extra or {}
    common = {} if model_path is None else {"model_path": str(model_path)}
    if replay:
        common["use_sim_time"] = True
    fusion_overrides = dict(common)
    if modalities is not None:
        fusion_overrides["modalities"] = list(modalities)
    fusion_params = node_parameters(params, "fusion_node", {**fusion_overrides, **extra.get("fusion_node", {})})
    enabled = next((p.value for p in fusion_params if p.name == "modalities"), list(MODALITIES))
    nodes: list[Any] = []
    for modality in MODALITIES:
        if modality not in enabled:
            continue
        module, class_name, name = SENSOR_NODES[modality]
        node_class = getattr(importlib.import_module(module), class_name)
        nodes.append(node_class(parameter_overrides=node_parameters(params, name, {**common, **extra.get(name, {})})))
    nodes.append(FusionNode(parameter_overrides=fusion_params))
    if replay:  # made last, so its start delay runs while nothing else is loading
        replay_overrides = {key: value for key, value in
                            (("bag", None if bag is None else str(bag)), ("rate", rate), ("loop", loop))
                            if value is not None}
        nodes.insert(0, Replayer(parameter_overrides=node_parameters(
            params, "replayer", {**replay_overrides, **extra.get("replayer", {})})))
    return nodes


class GraphSpinner:
    """Spins each node on its own SingleThreadedExecutor thread until :meth:`stop`.

    Multi-threaded composition without rclpy's MultiThreadedExecutor, which was measured far
    slower here (rclpy 9.1.2, the sample bag at x1: 8 of 50 frames fused and best-effort inputs
    lost, against 50 of 50 with a thread per node; docs/nodes.md).
    """

    def __init__(self, nodes: Sequence[Any]) -> None:
        import threading

        from rclpy.executors import SingleThreadedExecutor

        self.executors = []
        self.threads = []
        for node in nodes:
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            thread = threading.Thread(target=executor.spin, name=f"spin_{node.get_name()}", daemon=True)
            self.executors.append(executor)
            self.threads.append(thread)
        for thread in self.threads:
            thread.start()

    def alive(self) -> bool:
        return all(thread.is_alive() for thread in self.threads)

    def stop(self, timeout: float = 2.0) -> None:
        for executor in self.executors:
            executor.shutdown(timeout_sec=timeout)
        for thread in self.threads:
            thread.join(timeout)


class Recorder:
    """Writes the fusion outputs, as received over DDS (CDR bytes), to an MCAP bag."""

    def __init__(self, node: Any, path: Path) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore

        from mmhpe_ros.modalities import TOPICS
        from mmhpe_ros.nodes.fusion import OUTPUT_QOS

        self.path = Path(path).with_suffix("")  # rosbag2 bags are folders
        if self.path.exists():
            raise FileExistsError(f"{self.path} exists; choose another --record path")
        self._store = get_typestore(Stores.ROS2_KILTED)
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self.count = 0
        for topic_attr in RECORDED_TOPICS:
            topic = getattr(TOPICS, topic_attr)
            msgtype = {"markers": "visualization_msgs/msg/MarkerArray", "joints": "geometry_msgs/msg/PoseArray",
                       "mpjpe": "std_msgs/msg/Float64"}[topic_attr]
            connection = self._writer.add_connection("/" + topic, msgtype, typestore=self._store)
            node.create_subscription(_message_class(msgtype), topic,
                                     lambda data, c=connection: self._write(node, c, data), OUTPUT_QOS, raw=True)

    def _write(self, node: Any, connection: Any, data: bytes) -> None:
        self._writer.write(connection, node.get_clock().now().nanoseconds, data)
        self.count += 1

    def close(self) -> None:
        self._writer.close()


def _message_class(msgtype: str) -> type:
    import importlib

    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def init_composed_process() -> None:
    """Prepare a process that composes the graph's nodes: the short GIL switch interval, rclpy.init()."""
    import rclpy

    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    rclpy.init()


def run(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from tqdm import tqdm

    if args.rate is not None and not args.rate > 0:
        print("mmhpe-ros run: error: --rate must be > 0", file=sys.stderr)
        return 2
    if args.record is not None and args.record.with_suffix("").exists():
        print(f"mmhpe-ros run: error: {args.record.with_suffix('')} exists; choose another --record path",
              file=sys.stderr)
        return 2
    init_composed_process()
    nodes: list[Any] = []
    recorder: Recorder | None = None
    spinner: GraphSpinner | None = None
    try:
        nodes = build_graph(args.params, bag=args.bag, model_path=args.model, rate=args.rate,
                            loop=True if args.loop or args.duration is not None else None,
                            modalities=args.modalities)
        replayer, fusion = nodes[0], nodes[-1]
        if args.record is not None:
            recorder = Recorder(fusion, args.record)
        spinner = GraphSpinner(nodes)
        bag_s = (replayer.source.end_ns - replayer.source.start_ns) / 1e9 / replayer.player.clock.rate
        total = args.duration if args.duration is not None else (None if args.loop else bag_s + 2.0)
        start = time.monotonic()
        with tqdm(total=None if total is None else round(total), unit="s", desc="run",
                  bar_format="{desc} {n_fmt}/{total_fmt} s |{bar}|{postfix}") as bar:
            next_report = start + 1.0
            first_fused: tuple[float, int] | None = None  # (time, count) at the first report with output
            while rclpy.ok() and spinner.alive():
                time.sleep(0.1)
                now = time.monotonic()
                if now >= next_report:
                    next_report += 1.0
                    bar.update(1)
                    if first_fused is None and fusion.fused:
                        first_fused = (now, fusion.fused)
                    bar.set_postfix_str(_summary(fusion, first_fused, now))
                finished = replayer.player.loops >= 1 and not replayer.player.loop
                if (total is not None and now - start >= total) or (finished and now - start > 2.0
                                                                   and fusion.worker.join_idle(0.0)):
                    break
        print(_summary(fusion, first_fused, time.monotonic()))
        if recorder is not None:
            print(f"recorded {recorder.count} messages to {recorder.path}")
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if recorder is not None:
            recorder.close()
        if spinner is not None:
            spinner.stop()
        for node in reversed(nodes):
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def _summary(fusion: Any, first: tuple[float, int] | None, now: float) -> str:
    """One line: fused frames, their rate since output began, running MPJPE."""
    mean = fusion.mpjpe.mean_mm
    mpjpe = "n/a" if mean is None else f"{mean:.1f} mm over {fusion.mpjpe.count} frames"
    rate = 0.0 if first is None or now <= first[0] else (fusion.fused - first[1]) / (now - first[0])
    return f"fused {fusion.fused} frames ({rate:.1f}/s, {fusion.partial} partial), MPJPE {mpjpe}"
