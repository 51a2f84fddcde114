"""launch/fusion.launch.py and config/mmhpe.rviz name things that exist.

With ``launch`` importable (a ROS 2 install) the launch description is loaded and walked; without
it (PyPI wheels have no launch) the file is read as Python source: every executable of this package
it starts must be a setup.py entry point, every parameter file must exist and hold a section for
each node, every LaunchConfiguration must be declared, and every parameter it sets must be one the
node declares. The RViz file's displays must name real topics and its fixed frame a real frame.
"""
from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from mmhpe_ros.modalities import FRAME_IDS, TOPICS, Topics
from mmhpe_ros.runtime.params_file import load_parameter_file

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILE = ROOT / "launch" / "fusion.launch.py"
PARAMS_FILE = ROOT / "config" / "fusion.yaml"
RVIZ_FILE = ROOT / "config" / "mmhpe.rviz"
PACKAGE = "mmhpe_ros"
NODE_SOURCES = {  # executable -> module declaring its parameters
    "replayer": ["mmhpe_ros/nodes/replayer.py"],
    "camera_node": ["mmhpe_ros/nodes/camera.py", "mmhpe_ros/nodes/sensor_node.py"],
    "lidar_node": ["mmhpe_ros/nodes/lidar.py", "mmhpe_ros/nodes/sensor_node.py"],
    "mmwave_node": ["mmhpe_ros/nodes/lidar.py", "mmhpe_ros/nodes/sensor_node.py"],
    "wifi_node": ["mmhpe_ros/nodes/wifi.py", "mmhpe_ros/nodes/sensor_node.py"],
    "fusion_node": ["mmhpe_ros/nodes/fusion.py"],
}
BUILTIN_PARAMETERS = {"use_sim_time"}


def setup_entry_points() -> dict[str, str]:
    """``NODES`` of setup.py (executable -> module:function), read without running setup()."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "NODES" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no NODES dict")


def declared_parameters(executable: str) -> set[str]:
    names: set[str] = set()
    for source in NODE_SOURCES[executable]:
        text = (ROOT / source).read_text()
        names.update(re.findall(r"""(?:_declare|declare|declare_parameter)\(\s*["']([\w.]+)["']""", text))
    return names


def launch_source() -> ast.Module:
    return ast.parse(LAUNCH_FILE.read_text())


def string_constants(tree: ast.AST) -> dict[str, object]:
    """Module-level NAME = literal assignments of the launch file."""
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return values


def node_calls(tree: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "Node"]


def keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_launch_description_loads_when_launch_is_available():
    pytest.importorskip("launch", reason="launch is not installable from PyPI; runs on a ROS 2 install")
    pytest.importorskip("launch_ros", reason="launch_ros is not installable from PyPI; runs on a ROS 2 install")
    from launch.actions import DeclareLaunchArgument

    spec = importlib.util.spec_from_file_location("fusion_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    declared = {e.name for e in description.entities if isinstance(e, DeclareLaunchArgument)}
    assert {"namespace", "params_file", "use_sim_time", "model_path", "modalities", "replay", "bag"} <= declared


def test_every_executable_of_the_package_is_an_entry_point():
    tree = launch_source()
    constants = string_constants(tree)
    entry_points = setup_entry_points()
    executables = set(constants["SENSOR_EXECUTABLES"].values())
    for call in node_calls(tree):
        package = keyword(call, "package")
        executable = keyword(call, "executable")
        if isinstance(package, ast.Name) and constants.get(package.id) == PACKAGE and isinstance(executable, ast.Constant):
            executables.add(executable.value)
    assert executables == {"replayer", "camera_node", "lidar_node", "mmwave_node", "wifi_node", "fusion_node"}
    assert executables <= set(entry_points)
    for executable in executables:
        module, _, function = entry_points[executable].partition(":")
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin, f"{executable}: module {module} not found"
        assert f"def {function}(" in Path(spec.origin).read_text(), f"{executable}: {module} has no {function}()"


def test_parameter_files_and_sections_exist():
    tree = launch_source()
    paths = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "PathJoinSubstitution"]
    named = [[e.value for e in call.args[0].elts if isinstance(e, ast.Constant)] for call in paths]
    assert ["config", "fusion.yaml"] in named and ["config", "mmhpe.rviz"] in named
    for parts in named:
        assert (ROOT.joinpath(*parts)).is_file(), parts
    sections = load_parameter_file(PARAMS_FILE)
    for executable in NODE_SOURCES:
        assert executable in sections, f"config/fusion.yaml has no section for {executable}"
        unknown = set(sections[executable]) - declared_parameters(executable) - BUILTIN_PARAMETERS
        assert not unknown, f"{executable}: config/fusion.yaml sets undeclared parameters {unknown}"


def test_launch_arguments_are_declared_and_parameters_are_real():
    tree = launch_source()
    declared = {call.args[0].value for call in ast.walk(tree)
                if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "DeclareLaunchArgument"}
    used = {call.args[0].value for call in ast.walk(tree)
            if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "LaunchConfiguration"}
    assert used == declared, f"declared but unused: {declared - used}; used but undeclared: {used - declared}"
    constants = string_constants(tree)
    for call in node_calls(tree):
        package = keyword(call, "package")
        if not (isinstance(package, ast.Name) and constants.get(package.id) == PACKAGE):
            continue
        executable = keyword(call, "executable")
        executables = [executable.value] if isinstance(executable, ast.Constant) else list(constants["SENSOR_EXECUTABLES"].values())
        for parameters in ast.walk(keyword(call, "parameters")):
            if isinstance(parameters, ast.Dict):
                names = {k.value for k in parameters.keys}
                for name in executables:
                    assert names - BUILTIN_PARAMETERS <= declared_parameters(name), (name, names)


def test_the_executor_argument_sets_the_variable_the_nodes_read():
    from mmhpe_ros.nodes.spin import EXECUTOR_ENV

    tree = launch_source()
    assert string_constants(tree)["EXECUTOR_ENV"] == EXECUTOR_ENV
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "SetEnvironmentVariable"]
    assert len(calls) == 1 and calls[0].args[0].id == "EXECUTOR_ENV"
    assert ast.unparse(calls[0].args[1]) == "executor"


def test_static_frames_are_the_packages_frames():
    constants = string_constants(launch_source())
    assert constants["WORLD_FRAME"] == FRAME_IDS["base"]
    assert set(constants["SENSOR_FRAMES"]) == {v for k, v in FRAME_IDS.items() if k != "base"}


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
