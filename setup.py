"""ament_python package mmhpe_ros: multi-modal 3D human pose estimation for ROS 2."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "mmhpe_ros"

NODES = {
    "replayer": "mmhpe_ros.nodes.replayer:main",
    "camera_node": "mmhpe_ros.nodes.camera:main",
    "lidar_node": "mmhpe_ros.nodes.lidar:main",
    "mmwave_node": "mmhpe_ros.nodes.mmwave:main",
    "wifi_node": "mmhpe_ros.nodes.wifi:main",
    "fusion_node": "mmhpe_ros.nodes.fusion:main",
    "csi_bridge": "mmhpe_ros.nodes.csi_bridge:main",
}

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={PACKAGE: ["sample/*.mcap", "sample/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*")),
        (f"share/{PACKAGE}/models", glob("models/*")),
    ],
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24",
        "scipy",
        "torch",
        "rosbags>=0.11",
        "safetensors",
        "tqdm",
        "PyYAML",
    ],
    extras_require={
        "plot": ["matplotlib"],  # mmhpe-ros plot and render (Pillow comes with it)
        "foxglove": ["foxglove-sdk>=0.30"],  # mmhpe-ros run --foxglove
        "camera": ["mediapipe==0.10.14", "pillow>=9"],  # BlazePose; CompressedImage decoding
        "wifi": ["csiread==1.4.1"],  # csi-bridge: Atheros / Intel 5300 / ESP32 CSI tools' logs
        "test": ["pytest", "pytest-timeout", "hypothesis", "websockets"],
    },
    zip_safe=True,
    maintainer="mmhpe_ros developers",
    maintainer_email="mmhpe-ros@example.org",
    description="Balanced multi-modal 3D human pose estimation (camera, LiDAR, mmWave, WiFi) for ROS 2",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [f"{name}={target}" for name, target in NODES.items()]
        + ["mmhpe-ros=mmhpe_ros.cli:main"],
    },
)
