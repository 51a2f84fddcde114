"""The node graph, defined once: which nodes run, with which parameter values, in which order.

Used by ``ros2 launch mmhpe_ros fusion.launch.py`` (launch/fusion.launch.py) and by
`mmhpe-ros run` (composed, or one process per node with ``--processes``), so both start the same
nodes with the same values. Each node is given its complete set of values
(:func:`node_parameters`): what the parameter file gives it, matched as rcl matches it, with the
run's overrides on top. Not the file plus overrides for rcl to combine: rcl stores ``-p`` (and
launch_ros its dictionaries) in the file's first ``/**`` section, which a later section of the
file then overrides, so a file with a ``/**`` section before ``/**/fusion_node`` would silently
beat ``modalities:=...``. No rclpy here: the launch file imports it. The values themselves
(defaults, topics) live in the nodes and config/fusion.yaml.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from mmhpe_ros.modalities import MODALITIES, SENSOR_TOPICS, TOPICS
from mmhpe_ros.runtime.params_file import NodeSections, parameters_for


@dataclass(frozen=True)
class GraphNode:
    """One node: its name (also its executable, a setup.py entry point) and Python class."""

    name: str
    module: str
    class_name: str
    modality: str | None = None


SENSOR_NODES: dict[str, GraphNode] = {
    "rgb": GraphNode("camera_node", "mmhpe_ros.nodes.camera", "CameraNode", "rgb"),
    "lidar": GraphNode("lidar_node", "mmhpe_ros.nodes.lidar", "LidarNode", "lidar"),
    "mmwave": GraphNode("mmwave_node", "mmhpe_ros.nodes.mmwave", "MmwaveNode", "mmwave"),
    "wifi": GraphNode("wifi_node", "mmhpe_ros.nodes.wifi", "WifiNode", "wifi"),
}
FUSION_NODE = GraphNode("fusion_node", "mmhpe_ros.nodes.fusion", "FusionNode")
REPLAYER = GraphNode("replayer", "mmhpe_ros.nodes.replayer", "Replayer")
NODES: dict[str, GraphNode] = {n.name: n for n in (*SENSOR_NODES.values(), FUSION_NODE, REPLAYER)}


def parse_modalities(value: str | Sequence[str]) -> tuple[str, ...]:
    """Modalities from a YAML list (``[rgb, lidar]``, ``"['lidar', 'mmwave']"``), one name, or a
    sequence; in MODALITIES order. ValueError for an empty list or an unknown name."""
    items: Any = value
    if isinstance(value, str):
        try:
            items = yaml.safe_load(value) if value.strip() else []
        except yaml.YAMLError as error:
            raise ValueError(f"modalities: not a YAML list: {value!r} ({error})") from None
        if isinstance(items, str):
            items = [items]
    if not isinstance(items, (list, tuple)) or not all(isinstance(m, str) for m in items):
        raise ValueError(f"modalities: expected a list of {', '.join(MODALITIES)}, got {value!r}")
    unknown = [m for m in items if m not in MODALITIES]
    if unknown or not items:
        raise ValueError(f"modalities: expected a non-empty list of {', '.join(MODALITIES)}, got {value!r}"
                         + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
    return tuple(m for m in MODALITIES if m in items)


def graph_overrides(
    params: NodeSections,
    *,
    bag: str | Path | None = None,
    model_path: str | Path | None = None,
    rate: float | None = None,
    loop: bool | None = None,
    modalities: Sequence[str] | None = None,
    replay: bool = True,
    use_sim_time: bool | None = None,
    calibration: dict[str, Any] | None = None,
    namespace: str = "/",
    extra: dict[str, dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """node name -> parameters that override the parameter file, for the graph's nodes in start
    order: the enabled sensor nodes, the fusion node, then (with ``replay``) the replayer.

    Arguments that are not None override the file. ``calibration`` (flattened calibration
    parameters; default: :func:`graph_calibration`'s for ``bag``) goes to the sensor and fusion
    nodes. ``modalities`` (default: the fusion node's in
    the file) chooses the sensor nodes. ``use_sim_time`` defaults to ``replay``: while a bag is
    replayed every node follows its ``/clock``; with live sensors, wall time. The replayer waits
    for subscribers on the enabled sensor topics and the ground truth (nodes in other processes
    may take seconds to start). ``extra`` maps node name -> further overrides.
    """
    extra = extra or {}
    if calibration is None:
        calibration = graph_calibration(None, bag)
    common: dict[str, Any] = {**calibration,
                              "use_sim_time": replay if use_sim_time is None else bool(use_sim_time)}
    if model_path is not None and str(model_path):
        common["model_path"] = str(model_path)
    fusion = dict(common)
    if modalities is not None:
        fusion["modalities"] = list(parse_modalities(modalities))
    fusion.update(extra.get(FUSION_NODE.name, {}))
    filed = node_parameters(params, FUSION_NODE.name, fusion, namespace)
    enabled = parse_modalities(filed.get("modalities", list(MODALITIES)))
    out = {node.name: {**common, **extra.get(node.name, {})}
           for modality, node in SENSOR_NODES.items() if modality in enabled}
    out[FUSION_NODE.name] = fusion
    if replay:
        chosen = (("bag", None if bag is None else str(bag)), ("rate", rate), ("loop", loop))
        awaited = [SENSOR_TOPICS[m] for m in enabled] + [TOPICS.ground_truth]
        out[REPLAYER.name] = {"use_sim_time": False, **{key: value for key, value in chosen if value is not None},
                              "wait_for_subscribers": awaited, **extra.get(REPLAYER.name, {})}
    return out


def node_parameters(params: NodeSections, name: str, overrides: dict[str, Any], namespace: str = "/") -> dict[str, Any]:
    """Every value node ``name`` in ``namespace`` is given: the parameter file's for it (matched as
    rcl matches them, :mod:`mmhpe_ros.runtime.params_file`), ``overrides`` on top."""
    return {**parameters_for(params, name, namespace), **overrides}


def graph_calibration(path: str | Path | None, bag: str | Path | None) -> dict[str, Any]:
    """The calibration parameters of the graph's nodes: from ``path``, else the one the replayed bag
    stores, else the installed config/calibration.yaml."""
    from mmhpe_ros.geometry.calibration import calibration_parameters

    return calibration_parameters(graph_rig_calibration(path, bag))


def graph_rig_calibration(path: str | Path | None, bag: str | Path | None) -> Any:
    """The :class:`~mmhpe_ros.geometry.calibration.Calibration` :func:`graph_calibration` gives."""
    from mmhpe_ros.data.bags import bag_calibration
    from mmhpe_ros.geometry.calibration import load_calibration
    from mmhpe_ros.resources import SAMPLE_BAG, default_calibration_path

    if path is not None and str(path):
        return load_calibration(path)
    return bag_calibration(bag or SAMPLE_BAG) or load_calibration(default_calibration_path())
