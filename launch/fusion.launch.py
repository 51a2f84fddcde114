"""Bring up the mmhpe_ros graph: bag replay (optional), the enabled sensor nodes and the fusion node.

    ros2 launch mmhpe_ros fusion.launch.py                                # replays the bundled sample bag
    ros2 launch mmhpe_ros fusion.launch.py namespace:=robot1 modalities:="['lidar', 'mmwave']"
    ros2 launch mmhpe_ros fusion.launch.py replay:=false use_wifi:=false  # live sensors, wall time
    ros2 launch mmhpe_ros fusion.launch.py calibration:=rig.yaml rviz:=true

Parameters come from config/fusion.yaml (``/**/node_name`` keys: they apply in any namespace);
the arguments override the few that differ per run. The nodes and their values are those of
mmhpe_ros/nodes/graph.py, which `mmhpe-ros run` starts too: each node gets the file's values for it
(read as rcl reads them) with the arguments' on top, as one set. Every node is required: when one
ends (a bad model path, a bag that cannot be read) the launch shuts the rest down.
"""
from pathlib import Path

from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = "mmhpe_ros"
TRUE = ("true", "1", "yes", "on")
ARGUMENTS = {  # name -> (default, description)
    "namespace": ("", "namespace of every node and topic"),
    "params_file": (PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "fusion.yaml"]),
                    "ROS 2 parameter file for all nodes"),
    "modalities": ("[rgb, lidar, mmwave, wifi]", "modalities to run and fuse: a YAML list of rgb, lidar, mmwave, wifi"),
    "use_rgb": ("true", "run the camera node (and fuse rgb) if modalities lists it"),
    "use_lidar": ("true", "run the LiDAR node (and fuse lidar) if modalities lists it"),
    "use_mmwave": ("true", "run the radar node (and fuse mmwave) if modalities lists it"),
    "use_wifi": ("true", "run the WiFi CSI node (and fuse wifi) if modalities lists it"),
    "replay": ("true", "play a bag with the replayer node (false: live sensors)"),
    "use_sim_time": ("", "follow /clock; empty: true while replaying, false with live sensors"),
    "model_path": ("", "model weights (.safetensors, card beside it); empty: the package's default model"),
    "bag": ("", "bag (directory or .mcap) to replay; empty: the bundled sample bag"),
    "rate": ("1.0", "replay speed factor"),
    "loop": ("true", "replay the bag in a loop"),
    "calibration": ("", "the rig's calibration file (docs/calibrating.md); empty: the one the bag stores, else "
                        "config/calibration.yaml. Given to the nodes; published on /tf_static where tf2_ros is"),
    "rviz": ("false", "start RViz with config/mmhpe.rviz (markers, clouds, ground truth)"),
}


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=default, description=description)
          for name, (default, description) in ARGUMENTS.items()),
        OpaqueFunction(function=_graph),
    ])


def _graph(context: LaunchContext) -> list:
    """The launch actions of the graph, from the arguments' values (parsed here, not in strings)."""
    from mmhpe_ros.modalities import MODALITIES
    from mmhpe_ros.geometry.calibration import calibration_parameters
    from mmhpe_ros.nodes.graph import graph_overrides, graph_rig_calibration, node_parameters, parse_modalities
    from mmhpe_ros.runtime.params_file import load_parameter_file

    value = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    flag = {name: value[name].strip().lower() in TRUE for name in ("replay", "loop", "rviz")}
    listed = parse_modalities(value["modalities"])
    enabled = [m for m in listed if value[f"use_{m}"].strip().lower() in TRUE]
    if not enabled:
        switches = ", ".join(f"use_{m}:=" + value["use_" + m] for m in MODALITIES if m in listed)
        raise ValueError(f"no modality left to fuse: modalities {list(listed)} with {switches}")
    sim_time = flag["replay"] if not value["use_sim_time"].strip() else value["use_sim_time"].strip().lower() in TRUE
    namespace = value["namespace"].strip("/")
    params = load_parameter_file(value["params_file"])
    rig = graph_rig_calibration(value["calibration"] or None, value["bag"] or None)
    overrides = graph_overrides(
        params, bag=value["bag"] or None, model_path=value["model_path"] or None,
        rate=float(value["rate"]), loop=flag["loop"], modalities=enabled, replay=flag["replay"],
        use_sim_time=sim_time, namespace="/" + namespace, calibration=calibration_parameters(rig))
    actions: list = [
        Node(package=PACKAGE, executable=name, name=name, namespace=namespace or None, output="screen",
             parameters=[node_parameters(params, name, values, "/" + namespace)],
             on_exit=Shutdown(reason=f"{name} ended: the graph needs every node"))
        for name, values in overrides.items()
    ]
    actions += _static_transforms(rig, sim_time)
    if flag["rviz"]:
        actions.append(Node(
            package="rviz2", executable="rviz2", name="rviz2", namespace=namespace or None, output="log",
            arguments=["-d", str(Path(_share()) / "config" / "mmhpe.rviz")],
            parameters=[{"use_sim_time": sim_time}]))
    return actions


def _share() -> str:
    from ament_index_python.packages import get_package_share_directory

    return get_package_share_directory(PACKAGE)


def _static_transforms(rig, use_sim_time: bool) -> list:
    """A static_transform_publisher per sensor frame of the rig's calibration where tf2_ros is
    installed; else one INFO line (the nodes take the extrinsics from their parameters)."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        get_package_prefix("tf2_ros")
    except PackageNotFoundError:
        return [LogInfo(msg=f"tf2_ros is not installed: the extrinsics of {rig.source} are not published on "
                            "/tf_static (the nodes take them from their calibration parameters)")]
    actions = []
    for frame, transform in sorted(rig.extrinsics.items()):
        pose = [f"{v:.9g}" for v in (*transform.xyz, *transform.rpy)]
        flags = ("--x", "--y", "--z", "--roll", "--pitch", "--yaw")
        actions.append(Node(
            package="tf2_ros", executable="static_transform_publisher", name=f"{frame}_frame", output="log",
            arguments=[*(a for flag, v in zip(flags, pose) for a in (flag, v)),
                       "--frame-id", rig.base_frame, "--child-frame-id", frame],
            parameters=[{"use_sim_time": use_sim_time}]))
    return actions
