"""ROS 2 parameter files read without ROS, checked against rcl itself (the rclpy wheel): which
sections apply to which node (wildcards, namespaces, bare names), in which order, with overrides."""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from ros_domain import lease_domain
from mmhpe_ros.runtime.params_file import (
    key_matches, load_parameter_file, parameters_for, with_overrides,
)

ROOT = Path(__file__).resolve().parents[1]
ROS_DOMAIN_ID = lease_domain()
NODE_NAMES = ("fusion_node", "lidar_node", "replayer")
NAMESPACES = ("/", "/robot1", "/robot1/x", "/a/x", "/a/b/c", "/x")
KEYS = ("/**", "/**/fusion_node", "/*/fusion_node", "fusion_node", "/fusion_node", "/robot1/fusion_node",
        "/robot1/*", "/robot1/**", "/*", "/**/x/fusion_node", "/**/lidar_node", "lidar_node", "/*/*",
        "/a/**/fusion_node", "/**/replayer")

# Runs in a subprocess: rclpy.init with the files (and -p overrides) on the command line, one node
# per (name, namespace) declaring every override it was given; prints what each got.
RCL_ORACLE = r"""
import json, sys
import rclpy
from rclpy.node import Node

args, nodes = json.loads(sys.argv[1]), json.loads(sys.argv[2])
rclpy.init(args=["--ros-args", *args])
out = []
for name, namespace in nodes:
    node = Node(name, namespace=namespace, automatically_declare_parameters_from_overrides=True,
                start_parameter_services=False)
    out.append({p: node.get_parameter(p).value for p in node._parameters if p not in BUILTIN})
    node.destroy_node()
rclpy.shutdown()
print(json.dumps(out))
""".replace("BUILTIN", repr({"use_sim_time", "start_type_description_service"}))


def rcl_parameters(args: list[str], nodes: list[tuple[str, str]]) -> list[dict]:
    """What rcl gives each (name, namespace) node for these ``--ros-args`` arguments."""
    pytest.importorskip("rclpy", reason="rclpy not installed")
    import os

    result = subprocess.run([sys.executable, "-c", RCL_ORACLE, json.dumps(args), json.dumps(nodes)],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "ROS_DOMAIN_ID": ROS_DOMAIN_ID})
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_sections_wildcard_and_nesting(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "/**:\n  ros__parameters:\n    use_sim_time: true\n    rate: 1.0\n"
        "fusion_node:\n  ros__parameters:\n    slop: 0.05\n    rate: 2.0\n    roi: {lower: [0.0, 1.0, 2.0]}\n"
        "/robot/lidar_node:\n  ros__parameters:\n    voxel: 0.1\n"
        "robot:\n  fusion_node:\n    ros__parameters:\n      slop: 0.07\n"
    )
    nodes = load_parameter_file(path)
    assert list(nodes) == ["/**", "fusion_node", "/robot/lidar_node", "robot/fusion_node"]
    assert nodes["fusion_node"]["roi.lower"] == [0.0, 1.0, 2.0]
    fusion = parameters_for(nodes, "fusion_node")
    assert fusion == {"use_sim_time": True, "rate": 2.0, "slop": 0.05, "roi.lower": [0.0, 1.0, 2.0]}
    assert parameters_for(nodes, "lidar_node", "/robot") == {"use_sim_time": True, "rate": 1.0, "voxel": 0.1}
    assert "voxel" not in parameters_for(nodes, "lidar_node", "/other")
    # a bare node name is the root namespace's node only
    assert parameters_for(nodes, "fusion_node", "/robot") == {"use_sim_time": True, "rate": 1.0, "slop": 0.07}


def test_wildcards_match_whole_names():
    assert key_matches("/**/fusion_node", "/fusion_node") and key_matches("/**/fusion_node", "/a/b/fusion_node")
    assert not key_matches("/**/fusion_node", "/a/fusion_node2")
    assert key_matches("/*/fusion_node", "/a/fusion_node") and not key_matches("/*/fusion_node", "/fusion_node")
    assert key_matches("fusion_node", "/fusion_node") and not key_matches("fusion_node", "/a/fusion_node")
    assert key_matches("/**", "/a/b/c") and not key_matches("/a/*", "/a/b/c")


def test_repeated_keys_merge_into_their_first_section(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("/**/fusion_node:\n  ros__parameters:\n    a: 1\n    z: 1\n"
                    "/**:\n  ros__parameters:\n    a: 2\n"
                    "/**/fusion_node:\n  ros__parameters:\n    a: 4\n")
    nodes = load_parameter_file(path)
    assert list(nodes) == ["/**/fusion_node", "/**"]
    assert parameters_for(nodes, "fusion_node", "/r") == {"a": 2, "z": 1}  # the /** section comes later


@pytest.mark.parametrize("text", ["- a\n- b\n", "node:\n  params: 3\n", "node:\n  ros__parameters: 3\n", "a: [\n",
                                  "ros__parameters: {a: 1}\n"])
def test_malformed_files_name_the_file(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match="bad.yaml"):
        load_parameter_file(path)


def random_file(rng: random.Random, path: Path) -> None:
    """A parameter file of random sections (keys of KEYS, some twice, some nested) setting a few of
    the same parameters to distinct values."""
    lines = []
    for i in range(rng.randint(2, 7)):
        key = rng.choice(KEYS)
        values = {f"p{rng.randint(0, 4)}": 100 * i + j for j in range(rng.randint(1, 3))}
        body = "".join(f"    {name}: {value}\n" for name, value in values.items())
        if key.count("/") == 2 and key.startswith("/") and "*" not in key and rng.random() < 0.5:
            namespace, name = key[1:].split("/")  # the nested spelling of /namespace/name
            lines.append(f"{namespace}:\n  {name}:\n    ros__parameters:\n" + body.replace("    ", "      "))
        else:
            lines.append(f"{key}:\n  ros__parameters:\n{body}")
    path.write_text("".join(lines))


def test_the_shipped_file_and_random_files_apply_as_rcl_applies_them(tmp_path):
    """Every node name x namespace, for the shipped config and random files with -p overrides after
    them: the same values as rcl gives the node."""
    rng = random.Random(13)
    cases = [([ROOT / "config" / "fusion.yaml"], {"slop": 0.03})]
    for case in range(12):
        files = []
        for index in range(rng.choice((1, 1, 2))):
            files.append(tmp_path / f"case{case}_{index}.yaml")
            random_file(rng, files[-1])
        cases.append((files, {f"p{rng.randint(0, 4)}": -1} if rng.random() < 0.5 else {}))
    nodes = [(name, namespace) for name in NODE_NAMES for namespace in NAMESPACES]
    for files, overrides in cases:
        args = [a for f in files for a in ("--params-file", str(f))]
        args += [a for name, value in overrides.items() for a in ("-p", f"{name}:={value}")]
        expected = rcl_parameters(args, nodes)
        sections = with_overrides(load_parameter_file(files[0]), overrides) if len(files) == 1 else None
        if sections is None:
            from mmhpe_ros.runtime.params_file import merge_sections

            sections = with_overrides(merge_sections(*(load_parameter_file(f) for f in files)), overrides)
        for (name, namespace), rcl in zip(nodes, expected):
            ours = parameters_for(sections, name, namespace)
            assert ours == rcl, (files, [f.read_text() for f in files], overrides, name, namespace)


def test_the_shipped_file_keeps_its_values_in_a_namespace():
    sections = load_parameter_file(ROOT / "config" / "fusion.yaml")
    for name in NODE_NAMES:
        root = parameters_for(sections, name)
        assert root, f"config/fusion.yaml has nothing for {name}"
        assert parameters_for(sections, name, "/robot1") == root
