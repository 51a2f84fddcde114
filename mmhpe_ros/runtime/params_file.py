"""Read a ROS 2 parameter file (``node: ros__parameters: {...}``) without ROS.

The same config/fusion.yaml feeds ``ros2 launch`` (through launch_ros) and ``mmhpe-ros run``
(through this module and rclpy's ``parameter_overrides``). Supported as in rcl: node keys with or
without a namespace (``/ns/node``, ``node``), the ``/**`` wildcard for every node, and nested
dictionaries flattened to dotted names.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PARAMETERS_KEY = "ros__parameters"
WILDCARD = "/**"


def load_parameter_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """``{node key: {parameter name: value}}`` as the file states them (keys as written)."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"cannot read parameter file {path}: {error}") from error
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a mapping of node names, got {type(document).__name__}")
    nodes: dict[str, dict[str, Any]] = {}
    for key, section in document.items():
        if not isinstance(section, dict) or not isinstance(section.get(PARAMETERS_KEY), dict):
            raise ValueError(f"{path}: node {key!r} needs a '{PARAMETERS_KEY}' mapping")
        nodes[str(key)] = _flatten(section[PARAMETERS_KEY])
    return nodes


def parameters_for(nodes: dict[str, dict[str, Any]], node_name: str, namespace: str = "/") -> dict[str, Any]:
    """Parameters that apply to one node: the wildcard first, then its own entries (which win)."""
    own_keys = {node_name, f"/{node_name}", f"{namespace.rstrip('/')}/{node_name}"}
    merged: dict[str, Any] = dict(nodes.get(WILDCARD, {}))
    for key, values in nodes.items():
        if key in own_keys:
            merged.update(values)
    return merged


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in values.items():
        full = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{full}."))
        else:
            flat[full] = value
    return flat
