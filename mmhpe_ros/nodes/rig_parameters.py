"""A node's view of the rig: calibration and search-region parameters, and TF where it exists.

Every node of the graph receives the rig's calibration as parameters (the ``/**`` section of a
calibration file, config/calibration.yaml or ``calibration:=FILE``): ``base_frame``,
``ground_height``, ``extrinsics.<frame>.{xyz,rpy}`` and ``intrinsics.<frame>.{width,height,k,d}``
(:mod:`mmhpe_ros.geometry.calibration`). The frame names are the user's, so the extrinsics and
intrinsics parameters are declared from what the node was given. All of them are read-only: a
new calibration means restarting the node. The search region is settable on the LiDAR and radar
nodes (``ros2 param set``), read-only elsewhere.

:class:`SensorTransforms` answers "sensor frame -> base frame" for every message: from TF when
``tf2_ros`` is importable (a ROS install; static transforms are cached by the buffer) and
``use_tf`` is true, else from the calibration; a frame neither knows raises
:class:`~mmhpe_ros.geometry.calibration.MissingTransformError`, which the sensor nodes report as an
ERROR diagnostic naming the frames. Never a silent identity.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from mmhpe_ros.geometry.calibration import BASE_FRAME, Calibration, MissingTransformError, calibration_from_parameters
from mmhpe_ros.geometry.localise import LidarSettings, SearchRegion
from mmhpe_ros.geometry.transforms import RigidTransform

CALIBRATION_GROUPS = ("extrinsics.", "intrinsics.")
REGION_PARAMETERS = {  # parameter -> SearchRegion field
    "search_x": "x", "search_y": "y", "search_height": "height",
}
_REGION_DESCRIPTIONS = {
    "x": "where a person can be: x bounds (m, base frame)",
    "y": "where a person can be: y bounds (m, base frame)",
    "height": "where a person can be: heights above the floor (m)",
}


def read_only(description: str) -> Any:
    """A ParameterDescriptor that refuses ``ros2 param set``."""
    from rcl_interfaces.msg import ParameterDescriptor

    return ParameterDescriptor(description=description, read_only=True)


def declare_calibration(node: Any) -> Calibration:
    """Declare the calibration parameters on ``node`` (read-only) and return the calibration.

    ValueError naming the parameter when a value is malformed."""
    values: dict[str, Any] = {
        "base_frame": node.declare_parameter(
            "base_frame", BASE_FRAME, read_only("frame of the rig: sensor data is moved into it, the skeleton "
                                                "is published in it")).value,
        "ground_height": node.declare_parameter(
            "ground_height", 0.0, read_only("z of the floor in base_frame (m)")).value,
    }
    overrides = getattr(node, "_parameter_overrides", {})  # rclpy keeps what --params-file / overrides gave
    for name in sorted(overrides):
        if name.startswith(CALIBRATION_GROUPS):
            parameter = node.declare_parameter(name, overrides[name].value,
                                               read_only("rig calibration (docs/calibrating.md)"))
            values[name] = parameter.value
    return calibration_from_parameters(values, f"the calibration parameters of {node.get_fully_qualified_name()}")


def declare_search_region(node: Any, settable: bool = False) -> SearchRegion:
    """Declare ``search_x``, ``search_y``, ``search_height`` (read-only unless ``settable``: the
    node then applies them when set; defaults from :class:`SearchRegion`) and return the region."""
    from rcl_interfaces.msg import ParameterDescriptor

    default = SearchRegion()
    values = {name: node.declare_parameter(name, list(getattr(default, attribute)), ParameterDescriptor(
        description=_REGION_DESCRIPTIONS[attribute], read_only=not settable)).value
        for name, attribute in REGION_PARAMETERS.items()}
    return search_region(values)


def search_region(values: dict[str, Any]) -> SearchRegion:
    """The region of the ``search_*`` parameter values; ValueError naming a malformed one."""
    bounds = {}
    for name, attribute in REGION_PARAMETERS.items():
        value = list(values[name])
        if len(value) != 2 or not value[0] < value[1]:
            raise ValueError(f"{name} must be [low, high] with low < high, got {value}")
        bounds[attribute] = (float(value[0]), float(value[1]))
    return SearchRegion(**bounds)


def lidar_settings(region: SearchRegion) -> LidarSettings:
    """The LiDAR localiser's settings with ``region`` (the rest at their defaults)."""
    return replace(LidarSettings(), region=region)


class SensorTransforms:
    """``(frame_id, stamp_ns) -> T_base_frame``: TF first (when available), then the calibration."""

    def __init__(self, node: Any, calibration: Calibration, use_tf: bool = True) -> None:
        self.calibration = calibration
        self.buffer = None
        if use_tf:
            try:
                import tf2_ros
            except ImportError:
                tf2_ros = None
            if tf2_ros is not None:
                self.buffer = tf2_ros.Buffer()
                self._listener = tf2_ros.TransformListener(self.buffer, node)
        self.source = "TF" if self.buffer is not None else "the calibration"

    def __call__(self, frame_id: str, stamp_ns: int) -> RigidTransform:
        base = self.calibration.base_frame
        if frame_id == base:
            return RigidTransform.identity()
        if self.buffer is not None:
            looked_up = self._from_tf(frame_id)
            if looked_up is not None:
                return looked_up
        try:
            return self.calibration.to_base(frame_id)
        except MissingTransformError:
            source = "TF or the calibration" if self.buffer is not None else self.calibration.source
            raise MissingTransformError(frame_id, base, sorted(self.calibration.extrinsics), source) from None

    def _from_tf(self, frame_id: str) -> RigidTransform | None:
        """The newest TF transform (static ones stay), or None if TF does not know the frame."""
        from rclpy.time import Time

        try:
            stamped = self.buffer.lookup_transform(self.calibration.base_frame, frame_id, Time())
        except Exception:  # noqa: BLE001 - tf2's Lookup/Connectivity/Extrapolation errors: fall back
            return None
        t, q = stamped.transform.translation, stamped.transform.rotation
        from scipy.spatial.transform import Rotation

        return RigidTransform(Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix(), np.array([t.x, t.y, t.z]))
