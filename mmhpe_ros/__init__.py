"""mmhpe_ros: balanced multi-modal 3D human pose estimation for ROS 2."""

__version__ = "0.1.0"
