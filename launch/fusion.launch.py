"""Bring up the mmhpe_ros graph: bag replay (optional), the four sensor nodes and the fusion node.

    ros2 launch mmhpe_ros fusion.launch.py                  # replays the bundled sample bag
    ros2 launch mmhpe_ros fusion.launch.py rviz:=true       # ... and shows it in RViz
    ros2 launch mmhpe_ros fusion.launch.py replay:=false use_sim_time:=false modalities:='[rgb, lidar]'

Parameters come from config/fusion.yaml; the arguments below override the few that differ per run.
The same graph runs without launch as `mmhpe-ros run` (mmhpe_ros/nodes/run_command.py).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = "mmhpe_ros"
SENSOR_EXECUTABLES = {"rgb": "camera_node", "lidar": "lidar_node", "mmwave": "mmwave_node", "wifi": "wifi_node"}
WORLD_FRAME = "base_link"  # modalities.FRAME_IDS["base"]; the sensors' frames hang off it (identity until calibrated)
SENSOR_FRAMES = ("camera_optical", "lidar", "radar", "wifi")  # modalities.FRAME_IDS of the sensors
EXECUTOR_ENV = "MMHPE_ROS_EXECUTOR"  # nodes/spin.EXECUTOR_ENV: the nodes' rclpy executor


def generate_launch_description() -> LaunchDescription:
    namespace = LaunchConfiguration("namespace")
    params_file = LaunchConfiguration("params_file")
    use_sim_time = LaunchConfiguration("use_sim_time")
    model_path = LaunchConfiguration("model_path")
    modalities = LaunchConfiguration("modalities")
    replay = LaunchConfiguration("replay")
    bag = LaunchConfiguration("bag")
    rate = LaunchConfiguration("rate")
    loop = LaunchConfiguration("loop")
    rviz = LaunchConfiguration("rviz")
    executor = LaunchConfiguration("executor")

    arguments = [
        DeclareLaunchArgument("namespace", default_value="", description="namespace of every node and topic"),
        DeclareLaunchArgument(
            "params_file", default_value=PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "fusion.yaml"]),
            description="ROS 2 parameter file for all nodes"),
        DeclareLaunchArgument(
            "use_sim_time", default_value="true",
            description="follow /clock (true while replaying a bag; false with live sensors)"),
        DeclareLaunchArgument(
            "model_path", default_value="",
            description="model weights (.safetensors, card beside it); empty: the package's default model"),
        DeclareLaunchArgument(
            "modalities", default_value="[rgb, lidar, mmwave, wifi]",
            description="modalities to run and fuse, a YAML list of rgb, lidar, mmwave, wifi"),
        DeclareLaunchArgument("replay", default_value="true", description="play a bag with the replayer node"),
        DeclareLaunchArgument(
            "bag", default_value="", description="bag (directory or .mcap) to replay; empty: the bundled sample bag"),
        DeclareLaunchArgument("rate", default_value="1.0", description="replay speed factor"),
        DeclareLaunchArgument("loop", default_value="true", description="replay the bag in a loop"),
        DeclareLaunchArgument(
            "rviz", default_value="false", description="start RViz with config/mmhpe.rviz (markers, clouds, ground truth)"),
        DeclareLaunchArgument(
            "executor", default_value="",
            description="rclpy executor of the package's nodes: events or single; empty: events where rclpy has it "
                        "(Kilted and later), else single"),
    ]

    def sensor_node(modality: str) -> Node:
        executable = SENSOR_EXECUTABLES[modality]
        return Node(
            package=PACKAGE, executable=executable, name=executable, output="screen",
            parameters=[params_file, {
                "use_sim_time": use_sim_time,
                "model_path": ParameterValue(model_path, value_type=str),
            }],
            condition=IfCondition(PythonExpression(["'", modality, "' in '", modalities, "'"])),
        )

    nodes = [
        Node(
            package=PACKAGE, executable="replayer", name="replayer", output="screen",
            parameters=[params_file, {
                "bag": ParameterValue(bag, value_type=str),
                "rate": ParameterValue(rate, value_type=float),
                "loop": ParameterValue(loop, value_type=bool),
            }],
            condition=IfCondition(replay),
        ),
        *(sensor_node(modality) for modality in SENSOR_EXECUTABLES),
        Node(
            package=PACKAGE, executable="fusion_node", name="fusion_node", output="screen",
            parameters=[params_file, {
                "use_sim_time": use_sim_time,
                "model_path": ParameterValue(model_path, value_type=str),
                "modalities": modalities,  # a YAML list, parsed by launch_ros
            }],
        ),
        *(Node(
            package="tf2_ros", executable="static_transform_publisher", name=f"{frame}_frame", output="log",
            arguments=["--frame-id", WORLD_FRAME, "--child-frame-id", frame],
            parameters=[{"use_sim_time": use_sim_time}],
        ) for frame in SENSOR_FRAMES),
        Node(
            package="rviz2", executable="rviz2", name="rviz2", output="log",
            arguments=["-d", PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "mmhpe.rviz"])],
            parameters=[{"use_sim_time": use_sim_time}],
            condition=IfCondition(rviz),
        ),
    ]
    return LaunchDescription([*arguments, GroupAction([
        PushRosNamespace(namespace), SetEnvironmentVariable(EXECUTOR_ENV, executor), *nodes])])
