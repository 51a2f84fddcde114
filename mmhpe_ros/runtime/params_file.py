"""Read ROS 2 parameter files (``node: ros__parameters: {...}``) without ROS, as rcl applies them.

The same config/fusion.yaml feeds ``ros2 launch`` (rcl reads it in each node) and ``mmhpe-ros run``
(this module, then rclpy's ``parameter_overrides``); both must give every node the same values.
What rcl does (rcl_yaml_param_parser + rclpy's ``Node.get_parameters``, checked against the rclpy
wheel in test/test_params_file.py):

* A file is a mapping of node keys; nested keys above ``ros__parameters`` are joined with ``/``
  (``robot1: {fusion_node: ...}`` is ``robot1/fusion_node``); nested mappings below it are
  joined with ``.`` into parameter names.
* Sections are kept in the order their key first appears, in the first file that has it; a key
  that comes again (in the same or a later file) adds to its first section, the later value
  winning. Command-line ``-p name:=value`` and launch_ros's parameter dictionaries are ``/**``
  sections after the files: :func:`merge_sections`.
* A key applies to the node whose fully qualified name it matches as a whole, with a ``/`` put
  in front if it has none: ``/*`` stands for one namespace token, ``/**`` for any number (none
  included). So a bare ``fusion_node`` applies only in the root namespace; ``/**/fusion_node``
  in any namespace.
* Every matching section is applied in section order, a later one overriding an earlier one.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import yaml

PARAMETERS_KEY = "ros__parameters"
WILDCARD = "/**"

NodeSections = dict[str, dict[str, Any]]  # node key -> {parameter name: value}, in rcl's section order


def load_parameter_file(path: str | Path) -> NodeSections:
    """``{node key: {parameter name: value}}`` of a parameter file, keys as rcl stores them
    (nested namespaces joined with ``/``), in rcl's order, repeated keys merged."""
    path = Path(path)
    try:
        document = yaml.load(path.read_text(), Loader=_MergingLoader)  # noqa: S506 - a SafeLoader subclass
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"cannot read parameter file {path}: {error}") from error
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a mapping of node names, got {type(document).__name__}")
    sections: NodeSections = {}
    _collect(document, "", sections, path)
    if not sections:
        raise ValueError(f"{path}: no '{PARAMETERS_KEY}' section")
    return sections


def merge_sections(*sources: NodeSections) -> NodeSections:
    """Several files' sections (and command-line overrides, as ``{"/**": {...}}``) as rcl holds
    them after reading them in this order."""
    merged: NodeSections = {}
    for source in sources:
        for key, values in source.items():
            merged.setdefault(key, {}).update(values)
    return merged


def with_overrides(sections: NodeSections, overrides: Mapping[str, Any]) -> NodeSections:
    """``sections`` followed by ``-p name:=value`` overrides (a ``/**`` section, as rcl stores them)."""
    return merge_sections(sections, {WILDCARD: dict(overrides)}) if overrides else sections


def fully_qualified_name(node_name: str, namespace: str = "/") -> str:
    """``/namespace/node_name`` (``/node_name`` in the root namespace)."""
    namespace = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{namespace}/{node_name}"


def key_matches(key: str, node_fqn: str) -> bool:
    """Whether the section ``key`` applies to the node ``node_fqn``: ``/*`` is one namespace token,
    ``/**`` any number of them, the whole name must match (rclpy's translation to a regular
    expression)."""
    if not key.startswith("/"):
        key = "/" + key
    try:
        return re.fullmatch(key.replace("/*", r"(/\w+)"), node_fqn, flags=re.ASCII) is not None
    except re.error as error:
        raise ValueError(f"parameter file: node key {key!r} is not a valid pattern: {error}") from None


def parameters_for(sections: NodeSections, node_name: str, namespace: str = "/") -> dict[str, Any]:
    """The parameters that ``sections`` give node ``node_name`` in ``namespace``."""
    fqn = fully_qualified_name(node_name, namespace)
    merged: dict[str, Any] = {}
    for key, values in sections.items():
        if key_matches(key, fqn):
            merged.update(values)
    return merged


def _collect(mapping: dict, prefix: str, sections: NodeSections, path: Path) -> None:
    """Walk the node levels of the document, down to each ``ros__parameters``."""
    for key, value in mapping.items():
        if key == PARAMETERS_KEY:
            if not prefix:
                raise ValueError(f"{path}: '{PARAMETERS_KEY}' needs a node name above it")
            if not isinstance(value, dict):
                raise ValueError(f"{path}: node {prefix!r}: '{PARAMETERS_KEY}' must be a mapping")
            sections.setdefault(prefix, {}).update(_flatten(value))
        elif isinstance(value, dict):
            _collect(value, f"{prefix}/{key}" if prefix else str(key), sections, path)
        else:
            raise ValueError(f"{path}: node {f'{prefix}/{key}' if prefix else key!r} needs a "
                             f"'{PARAMETERS_KEY}' mapping")


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in values.items():
        full = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{full}."))
        else:
            flat[full] = value
    return flat


class _MergingLoader(yaml.SafeLoader):
    """SafeLoader whose mappings merge a repeated key's mappings, as rcl's parser does (PyYAML's
    own would keep only the last)."""


def _construct_merging_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
    loader.flatten_mapping(node)
    out: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        value = loader.construct_object(value_node, deep=True)
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = _merge_dicts(out[key], value)
        else:
            out[key] = value
    return out


def _merge_dicts(first: dict, second: dict) -> dict:
    merged = dict(first)
    for key, value in second.items():
        merged[key] = _merge_dicts(merged[key], value) if isinstance(merged.get(key), dict) and isinstance(value, dict) \
            else value
    return merged


_MergingLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_merging_mapping)

