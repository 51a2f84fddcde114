"""Run the whole graph: replayer -> camera/lidar/mmwave/wifi nodes -> fusion.

The same nodes and the same config/fusion.yaml as `ros2 launch mmhpe_ros fusion.launch.py`, for
pip installs without launch: composed in one process, one executor thread per node, or with
--processes one process per node as ros2 launch runs them (mmhpe_ros/nodes/processes.py); over
DDS either way (RViz, Foxglove or `ros2 topic echo` on the same ROS_DOMAIN_ID see every topic). Prints fused frames/s and
the running MPJPE against the bag's ground truth; --record writes markers, joints, MPJPE, the ground
truth and the sensors' points to an MCAP bag for `mmhpe-ros render`, Foxglove or `ros2 bag play`.

Example: mmhpe-ros run --duration 20 --record out/skeleton
"""
from __future__ import annotations

import argparse
import atexit
import signal
import sys
import threading
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from mmhpe_ros.modalities import MODALITIES, TOPICS
from mmhpe_ros.nodes.graph import NODES, graph_calibration, graph_overrides, node_parameters  # noqa: F401 (API)
from mmhpe_ros.nodes.spin import EXECUTOR_ENV, EXECUTORS, bounded_cleanup, executor_kind, make_executor, spin_until

HELP = "replay a bag through the sensor and fusion nodes in one process; live MPJPE and frames/s"
RECORD_QUEUE_DEPTH = 1000  # reliable, as the fusion publishes; deep enough for a stalled recorder not to lose any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `mmhpe-ros run`."""
    parser.add_argument("--bag", type=Path, default=None,
                        help="bag directory or .mcap file to replay (default: the bundled sample bag)")
    parser.add_argument("--params", type=Path, default=None,
                        help="ROS 2 parameter file (default: the installed config/fusion.yaml)")
    parser.add_argument("--model", type=Path, default=None, help="model weights for every node (overrides --params)")
    parser.add_argument("--calibration", type=Path, default=None,
                        help="the rig's calibration file (docs/calibrating.md; default: the one the bag stores, "
                             "else the installed config/calibration.yaml)")
    parser.add_argument("--rate", type=float, default=None, help="replay speed factor (overrides --params)")
    parser.add_argument("--loop", action="store_true", help="replay the bag in a loop")
    parser.add_argument("--duration", type=float, default=None,
                        help="run this many seconds, looping the bag as needed (default: to the end of the bag; "
                             "forever with --loop)")
    parser.add_argument("--record", type=Path, default=None, metavar="OUT",
                        help="record markers, joints, MPJPE, ground truth and the sensors' points and keypoints "
                             "to a rosbag2 bag (folder OUT holding OUT.mcap) for `mmhpe-ros render`")
    parser.add_argument("--foxglove", nargs="?", const="8765", default=None, metavar="[HOST:]PORT", type=_address,
                        help="serve the skeleton, joints, point clouds and MPJPE to the Foxglove app over its "
                             "WebSocket protocol (no ROS install needed; default 127.0.0.1:8765; docs/viewing.md)")
    parser.add_argument("--processes", action="store_true",
                        help="one process per node, as ros2 launch runs them (no shared GIL: keeps up at higher "
                             "replay rates on several cores); default: all nodes in this process")
    parser.add_argument("--executor", choices=EXECUTORS, default=None,
                        help=f"rclpy executor of every node (default: ${EXECUTOR_ENV}, else 'events' where rclpy has "
                             "the EventsExecutor, ROS 2 Kilted or later, else 'single')")
    parser.add_argument("--modalities", nargs="+", choices=MODALITIES, default=None, metavar="MODALITY",
                        help=f"modalities to run and fuse (default: those of --params; {', '.join(MODALITIES)})")


def build_graph(params_path: str | Path | None = None, **options: Any) -> list[Any]:
    """The graph's nodes in one process (replayer first, fusion last), parameters from
    ``params_path`` and ``options`` (those of :func:`graph_overrides`; without ``calibration``,
    :func:`graph_calibration`'s default). rclpy must be initialised."""
    import importlib

    from mmhpe_ros.resources import default_params_path
    from mmhpe_ros.runtime.params_file import load_parameter_file

    from rclpy.parameter import Parameter

    params = load_parameter_file(params_path or default_params_path())
    if options.get("calibration") is None:
        options["calibration"] = graph_calibration(None, options.get("bag"))
    overrides = graph_overrides(params, **options)
    nodes: list[Any] = []
    for name, values in overrides.items():  # the replayer made last, so its start delay runs while nothing loads
        spec = NODES[name]
        node_class = getattr(importlib.import_module(spec.module), spec.class_name)
        parameters = [Parameter(k, value=v) for k, v in node_parameters(params, name, values).items()]
        nodes.append(node_class(parameter_overrides=parameters, use_global_arguments=False))
    if "replayer" in overrides:
        nodes.insert(0, nodes.pop())
    return nodes


class GraphSpinner:
    """Spins each node on an executor of its own (:func:`~mmhpe_ros.nodes.spin.make_executor`), in a
    thread of its own, until :meth:`stop`.

    Not rclpy's MultiThreadedExecutor, which was measured far slower here (rclpy 9.1.2, the sample
    bag at x1: 8 of 50 frames fused and best-effort inputs lost, against 50 of 50 with a thread per
    node; docs/nodes.md).
    """

    def __init__(self, nodes: Sequence[Any], executor: str | None = None) -> None:
        import threading

        self.kind = executor_kind(executor)
        self.executors = []
        self.threads = []
        self._stopping = False
        for node in nodes:
            spun = make_executor(self.kind)
            spun.add_node(node)
            thread = threading.Thread(target=self._spin, args=(spun,), name=f"spin_{node.get_name()}", daemon=True)
            self.executors.append(spun)
            self.threads.append(thread)
        for thread in self.threads:
            thread.start()
        atexit.register(self.stop)  # an events executor destroyed while it spins aborts the process

    def alive(self) -> bool:
        return all(thread.is_alive() for thread in self.threads)

    def _spin(self, executor: Any) -> None:
        try:
            spin_until(executor, lambda: self._stopping)
        except Exception:  # noqa: BLE001 - a handle destroyed under a callback while stopping is no error
            if not self._stopping:
                raise

    def stop(self, timeout: float = 5.0) -> None:
        """Let every thread finish its callback and end (up to ``timeout`` s each), then shut the
        executors down."""
        atexit.unregister(self.stop)
        if self._stopping:
            return
        self._stopping = True
        for thread in self.threads:
            thread.join(timeout)
        for executor in self.executors:
            executor.shutdown()


class Recorder:
    """Writes the fusion outputs, the ground truth and the sensors' clouds and keypoints
    (viz.topics.RECORDED_TOPICS, what `mmhpe-ros render` draws), as received over DDS (CDR bytes), to
    an MCAP bag; log times on the system clock, as `ros2 bag record` writes them. The rig's
    ``calibration`` (its parameters) is stored in the bag's metadata, as `mmhpe-ros convert` stores
    it, so `mmhpe-ros render` draws the sensors' points where they were. :meth:`close` may run while
    the node still spins: a message arriving then is dropped, not half written."""

    def __init__(self, node: Any, path: Path, calibration: dict[str, Any] | None = None) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore

        from rclpy.qos import QoSProfile, ReliabilityPolicy

        from mmhpe_ros.viz.topics import RECORDED_TOPICS

        self.path = Path(path).with_suffix("")  # rosbag2 bags are folders
        if self.path.exists():
            raise FileExistsError(f"{self.path} exists; choose another --record path")
        self._store = get_typestore(Stores.ROS2_KILTED)
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        if calibration:
            import yaml

            from mmhpe_ros.data.bag_format import CALIBRATION_KEY
            from mmhpe_ros.geometry.calibration import calibration_from_parameters

            document = calibration_from_parameters(calibration, "the run's calibration").to_document()
            self._writer.set_custom_data(CALIBRATION_KEY + "rig", yaml.safe_dump(document, sort_keys=False))
        self._writer.open()
        self._lock = threading.Lock()
        self._open = True
        self.count = 0
        for topic in RECORDED_TOPICS:  # sensor streams are best effort: a reliable subscription would not match
            reliability = ReliabilityPolicy.BEST_EFFORT if topic.sensor_data else ReliabilityPolicy.RELIABLE
            connection = self._writer.add_connection("/" + topic.name, topic.msgtype, typestore=self._store)
            node.create_subscription(_message_class(topic.msgtype), topic.name,
                                     lambda data, c=connection: self._write(c, data),
                                     QoSProfile(depth=RECORD_QUEUE_DEPTH, reliability=reliability), raw=True)

    def _write(self, connection: Any, data: bytes) -> None:
        with self._lock:
            if self._open:
                self._writer.write(connection, time.time_ns(), data)
                self.count += 1

    def close(self) -> None:
        with self._lock:
            if self._open:
                self._open = False
                self._writer.close()


def _address(text: str) -> str:
    """--foxglove's argument, checked."""
    from mmhpe_ros.viz.foxglove_channels import parse_address

    try:
        parse_address(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _message_class(msgtype: str) -> type:
    import importlib

    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def init_composed_process() -> None:
    """Prepare a process that composes the graph's nodes: rclpy without its signal handlers, which
    would shut the context down under callbacks still running in the executors' threads; SIGINT
    and SIGTERM raise KeyboardInterrupt in the main thread instead, which stops the threads first."""
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)


@dataclass
class Progress:
    """What the summary line shows: the fusion node's counts and running MPJPE."""

    fused: int = 0
    partial: int = 0
    mpjpe_mm: float | None = None
    mpjpe_frames: int = 0


def run(args: argparse.Namespace) -> int:
    if args.rate is not None and not args.rate > 0:
        print("mmhpe-ros run: error: --rate must be > 0", file=sys.stderr)
        return 2
    if args.record is not None and args.record.with_suffix("").exists():
        print(f"mmhpe-ros run: error: {args.record.with_suffix('')} exists; choose another --record path",
              file=sys.stderr)
        return 2
    try:
        kind = executor_kind(args.executor)  # before any node is made
        return _run_processes(args, kind) if args.processes else _run_composed(args, kind)
    except (FileNotFoundError, ValueError) as error:  # a bad bag, model, parameter file or executor
        print(f"mmhpe-ros run: error: {error}", file=sys.stderr)
        return 2


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """graph_overrides() options from the command line."""
    return {"bag": args.bag, "model_path": args.model, "rate": args.rate,
            "loop": True if args.loop or args.duration is not None else None, "modalities": args.modalities,
            "calibration": graph_calibration(args.calibration, args.bag)}


def _run_composed(args: argparse.Namespace, kind: str) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException

    init_composed_process()
    nodes: list[Any] = []
    recorder: Recorder | None = None
    spinner: GraphSpinner | None = None
    try:
        options = _options(args)
        nodes = build_graph(args.params, **options)
        replayer, fusion = nodes[0], nodes[-1]
        if args.foxglove is not None:  # first: a port in use fails before anything is recorded
            from mmhpe_ros.nodes.foxglove_bridge import bridge_for

            nodes.append(bridge_for(args.foxglove, options["calibration"]))
        if args.record is not None:
            recorder = Recorder(fusion, args.record, options["calibration"])
        spinner = GraphSpinner(nodes, kind)
        bag_s = (replayer.source.end_ns - replayer.source.start_ns) / 1e9 / replayer.player.clock.rate

        def progress() -> Progress:
            return Progress(fusion.fused, fusion.partial, fusion.mpjpe.mean_mm, fusion.mpjpe.count)

        def finished() -> bool:
            return replayer.player.loops >= 1 and not replayer.player.loop and not any(fusion.sync.pending.values())

        _report(args, bag_s, progress, finished, lambda: rclpy.ok() and spinner.alive(), recorder)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        with bounded_cleanup():
            if recorder is not None:
                recorder.close()
            if spinner is not None:
                spinner.stop()
            for node in reversed(nodes):
                node.destroy_node()
            rclpy.try_shutdown()
    return 0


def _run_processes(args: argparse.Namespace, kind: str) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException

    from mmhpe_ros.nodes.processes import GraphProcesses, graph_commands
    from mmhpe_ros.resources import SAMPLE_BAG, default_params_path
    from mmhpe_ros.runtime.bag_source import BagSource
    from mmhpe_ros.runtime.params_file import load_parameter_file, parameters_for

    params_path = args.params or default_params_path()
    params = load_parameter_file(params_path)
    options = _options(args)
    overrides = graph_overrides(params, **options)
    replay = {**parameters_for(params, "replayer"), **overrides["replayer"]}
    with BagSource(replay.get("bag") or SAMPLE_BAG) as source:  # also: a bad bag fails here, before any process
        bag_s = (source.end_ns - source.start_ns) / 1e9 / float(replay.get("rate", 1.0))
    init_composed_process()  # the probe node's process
    probe = rclpy.create_node("mmhpe_run_probe")
    watcher = DiagnosticsWatcher(probe)
    bridge = None
    if args.foxglove is not None:
        from mmhpe_ros.nodes.foxglove_bridge import bridge_for

        bridge = bridge_for(args.foxglove, options["calibration"])
    recorder = Recorder(probe, args.record, options["calibration"]) if args.record is not None else None
    spinner = GraphSpinner([probe, *([bridge] if bridge else [])], kind)
    graph: GraphProcesses | None = None
    code = 0
    try:
        commands = graph_commands(params_path, overrides)
        waiting_for = set(commands) - {"replayer"}
        graph = GraphProcesses(commands, ready=lambda: waiting_for <= watcher.nodes)
        graph.wait_until(lambda: probe.count_publishers(TOPICS.ground_truth) > 0)  # the replayer is up
        _report(args, bag_s + float(replay.get("delay", 1.0)), watcher.progress, lambda: False, graph.alive, recorder)
        if not graph.alive():
            print(f"mmhpe-ros run: node process(es) ended: {graph.exited()}", file=sys.stderr)
            code = 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (RuntimeError, TimeoutError) as error:
        print(f"mmhpe-ros run: error: {error}", file=sys.stderr)
        code = 1
    finally:
        with bounded_cleanup():
            if graph is not None:
                graph.stop()
            if recorder is not None:
                recorder.close()
            spinner.stop()
            if bridge is not None:
                bridge.destroy_node()
            probe.destroy_node()
            rclpy.try_shutdown()
    return code


class DiagnosticsWatcher:
    """Follows /diagnostics from another process: which nodes report, and the fusion's counts."""

    def __init__(self, node: Any) -> None:
        from diagnostic_msgs.msg import DiagnosticArray


        self.nodes: set[str] = set()
        self._progress = Progress()
        node.create_subscription(DiagnosticArray, TOPICS.diagnostics, self._on_diagnostics, 50)

    def _on_diagnostics(self, msg: Any) -> None:
        for status in msg.status:
            node_name, _, what = status.name.partition(": ")
            self.nodes.add(node_name)
            if what == "fusion":
                values = {kv.key: kv.value for kv in status.values}
                mpjpe = values.get("mpjpe_mm", "n/a")
                self._progress = Progress(int(values.get("fused", 0)), int(values.get("partial", 0)),
                                          None if mpjpe == "n/a" else float(mpjpe), int(values.get("mpjpe_frames", 0)))

    def progress(self) -> Progress:
        return self._progress


def _report(args: argparse.Namespace, bag_s: float, progress: Callable[[], Progress], finished: Callable[[], bool],
            alive: Callable[[], bool], recorder: Recorder | None) -> None:
    """Show progress once a second until --duration, the end of the bag (+2 s), ``finished()``,
    ``alive()`` turning false or Ctrl-C; then print the summary line."""
    from mmhpe_ros.progress import progress_bar

    total = args.duration if args.duration is not None else (None if args.loop else bag_s + 2.0)
    start = time.monotonic()
    first: tuple[float, int] | None = None  # (time, count) at the first report with output
    with progress_bar(total=None if total is None else round(total), unit="s", desc="run",
              bar_format="{desc} {n_fmt}/{total_fmt} s |{bar}|{postfix}") as bar:
        next_report = start + 1.0
        try:
            while alive():
                time.sleep(0.1)
                now = time.monotonic()
                if now >= next_report:
                    next_report += 1.0
                    bar.update(1)
                    state = progress()
                    if first is None and state.fused:
                        first = (now, state.fused)
                    bar.set_postfix_str(_summary(state, first, now))
                if (total is not None and now - start >= total) or (now - start > 2.0 and finished()):
                    break
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the summary so far, then the caller stops the graph
            pass
    print(_summary(progress(), first, time.monotonic()))
    if recorder is not None:
        print(f"recorded {recorder.count} messages to {recorder.path}")


def _summary(state: Progress, first: tuple[float, int] | None, now: float) -> str:
    """One line: fused frames, their rate since output began, running MPJPE."""
    mpjpe = "n/a" if state.mpjpe_mm is None else f"{state.mpjpe_mm:.1f} mm over {state.mpjpe_frames} frames"
    rate = 0.0 if first is None or now <= first[0] else (state.fused - first[1]) / (now - first[0])
    return f"fused {state.fused} frames ({rate:.1f}/s, {state.partial} partial), MPJPE {mpjpe}"
