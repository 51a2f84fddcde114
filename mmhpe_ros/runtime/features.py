"""What each sensor observed, as standard messages: the contract between the sensor nodes and
the fusion node.

A sensor node runs stage 1 of the model inputs (:mod:`mmhpe_ros.model.observe`: its data in the
base frame, the person found) and publishes the observation arrays on ``TOPICS.feature(modality)``
(:func:`feature_topic`), stamped with the source message's stamp, in the base frame. The fusion
node gets the same arrays back with :func:`read_features` (same keys, shapes, dtypes, values),
recomputes each modality's root estimate from them and runs stage 2 (:mod:`mmhpe_ros.model.body`),
so the model sees what it would see offline.

Carriers (standard messages, so ``ros2 topic echo``, RViz and bags work without custom interfaces):

- ``rgb``: ``sensor_msgs/PointCloud2`` of the 17 keypoint rays, float32 fields ``ox``, ``oy``,
  ``oz`` (the camera centre), ``dx``, ``dy``, ``dz`` (the unit ray) and ``score`` (0: no ray).
- ``lidar``: PointCloud2, float32 ``x``, ``y``, ``z``: the person's ``config.lidar_points`` points.
- ``mmwave``: PointCloud2, float32 ``x``, ``y``, ``z``, ``velocity``, ``intensity``: the radar's
  points in the search region (at most ``observe.RADAR_POINTS``); padding and ``mmwave_valid``
  are rebuilt on reading.
- ``wifi``: ``sensor_msgs/Image`` ``32FC1`` of 685 rows x 10 cols (packets): rows 0..683 the
  (2, 3, 114, 10) block in C order (channel [amplitude, phase], then antenna, then subcarrier),
  row 684 ``wifi_mask`` as 1.0 (measured) / 0.0 (filled from its neighbours).

A message with no points (or an empty image) stands for "observed nothing" (no person-shaped
cluster, no keypoint): it reads back as :func:`model.observe.empty_observation`;
:func:`features_present` tells the two apart. The sensor nodes publish it, so the fusion node
knows the frame was seen and can say "nobody there" without waiting for a deadline.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from mmhpe_ros.modalities import LIDAR_FIELDS, MMWAVE_FIELDS, TOPICS
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.inputs import CSI_SHAPE, WIFI_MASK
from mmhpe_ros.model.observe import RADAR_POINTS, empty_observation, observation_shapes
from mmhpe_ros.runtime import codecs
from mmhpe_ros.runtime.codecs import CodecError
from mmhpe_ros.skeleton import NUM_KEYPOINTS_2D

RAY_FIELDS = ("ox", "oy", "oz", "dx", "dy", "dz", "score")
# PointCloud2 fields of the point-carried modalities, in the columns' order.
FEATURE_FIELDS: dict[str, tuple[str, ...]] = {
    "rgb": RAY_FIELDS,
    "lidar": LIDAR_FIELDS,
    "mmwave": MMWAVE_FIELDS,
}
WIFI_BLOCK_ROWS = int(np.prod(CSI_SHAPE[:-1]))  # 684 rows of CSI, then one row of wifi_mask
WIFI_IMAGE_SHAPE = (WIFI_BLOCK_ROWS + 1, CSI_SHAPE[-1])  # (685, 10)
FEATURE_MESSAGE_TYPES: dict[str, str] = {
    "rgb": "sensor_msgs/msg/PointCloud2",
    "lidar": "sensor_msgs/msg/PointCloud2",
    "mmwave": "sensor_msgs/msg/PointCloud2",
    "wifi": "sensor_msgs/msg/Image",
}


def feature_topic(modality: str) -> str:
    """Relative topic of one modality's features (``mmhpe/features/<modality>``)."""
    _check_modality(modality)
    return TOPICS.feature(modality)


def features_message(
    types: codecs.MessageTypes, header: Any, modality: str, arrays: Mapping[str, np.ndarray]
) -> Any:
    """The message carrying ``arrays`` (one modality's observation arrays, model/observe.py).

    ``header`` is used as given (the source stamp, the base frame). Pass an empty mapping for
    "observed nothing" (an empty message). Raises :class:`CodecError` for missing arrays or wrong
    shapes.
    """
    _check_modality(modality)
    if not arrays:
        if modality == "wifi":
            return codecs.create_float_image(types, header, np.empty((0, CSI_SHAPE[-1]), np.float32))
        empty = np.empty((0, len(FEATURE_FIELDS[modality])), dtype=np.float32)
        return codecs.create_points(types, header, empty, FEATURE_FIELDS[modality])
    if modality == "wifi":
        block = _array(arrays, "wifi", CSI_SHAPE)
        mask = np.asarray(arrays.get(WIFI_MASK, np.ones(CSI_SHAPE[-1], bool)), dtype=bool)
        if mask.shape != (CSI_SHAPE[-1],):
            raise CodecError(f"wifi features: {WIFI_MASK} must be ({CSI_SHAPE[-1]},), got {mask.shape}")
        image = np.vstack([block.reshape(WIFI_BLOCK_ROWS, -1), mask[None].astype(np.float32)])
        return codecs.create_float_image(types, header, image)
    if modality == "rgb":
        rays = _array(arrays, "rgb_rays", (NUM_KEYPOINTS_2D, 3))
        origin = _array(arrays, "rgb_origin", (3,))
        score = _array(arrays, "rgb_score", (NUM_KEYPOINTS_2D,))
        points = np.column_stack([np.broadcast_to(origin, (NUM_KEYPOINTS_2D, 3)), rays, score])
    elif modality == "lidar":
        points = _array(arrays, "lidar_points", (None, len(LIDAR_FIELDS)))
    else:
        padded = _array(arrays, "mmwave_points", (None, len(MMWAVE_FIELDS)))
        valid = np.asarray(arrays.get("mmwave_valid", np.ones(len(padded), bool)), dtype=bool)
        if valid.shape != (len(padded),):
            raise CodecError(f"mmwave features: mmwave_valid must be ({len(padded)},), got {valid.shape}")
        points = padded[valid]
    return codecs.create_points(types, header, points, FEATURE_FIELDS[modality])


def features_present(msg: Any) -> bool:
    """False for the empty message that stands for "nothing usable" from the sensor."""
    return int(msg.height) * int(msg.width) > 0


def read_features(modality: str, msg: Any, config: ModelConfig) -> dict[str, np.ndarray]:
    """Inverse of :func:`features_message`: the observation arrays of ``modality`` for ``config``.

    Raises :class:`CodecError` when the message does not fit the model (a LiDAR cloud of another
    point count than ``config.lidar_points``, more than ``RADAR_POINTS`` radar points, a wifi
    image that is not 685 x 10, not 17 keypoint rays) or holds non-finite values.
    """
    _check_modality(modality)
    if modality not in config.modalities:
        raise CodecError(f"{modality} features: the model fuses only {list(config.modalities)}")
    if not features_present(msg):
        return empty_observation(modality, config)
    arrays = _decode(modality, msg, config)
    bad = [key for key, array in arrays.items() if array.dtype.kind == "f" and not np.isfinite(array).all()]
    if bad:
        raise CodecError(f"{modality} features: non-finite values in {bad} (as float32)")
    return arrays


def _decode(modality: str, msg: Any, config: ModelConfig) -> dict[str, np.ndarray]:
    if modality == "wifi":
        image = codecs.read_float_image(msg)
        if image.shape != WIFI_IMAGE_SHAPE:
            raise CodecError(f"wifi features: image is {image.shape}, expected {WIFI_IMAGE_SHAPE} "
                             "(CSI rows + mask row x packets)")
        mask_row = image[WIFI_BLOCK_ROWS]
        if not np.isin(mask_row, (0.0, 1.0)).all():
            raise CodecError(f"wifi features: the {WIFI_MASK} row must hold only 0 and 1")
        with np.errstate(over="ignore", invalid="ignore"):  # inf / NaN from absurd values: refused by the caller
            block = image[:WIFI_BLOCK_ROWS].astype(np.float32).reshape(CSI_SHAPE)
        return {"wifi": block, WIFI_MASK: mask_row == 1.0}
    with np.errstate(over="ignore", invalid="ignore"):
        points = codecs.read_point_columns(msg, FEATURE_FIELDS[modality], dtype=np.float32)
    if modality == "rgb":
        if points.shape != (NUM_KEYPOINTS_2D, len(RAY_FIELDS)):
            raise CodecError(f"rgb features: {len(points)} keypoint rays, expected {NUM_KEYPOINTS_2D}")
        return {"rgb_rays": np.array(points[:, 3:6]), "rgb_origin": np.array(points[0, :3]),
                "rgb_score": np.array(points[:, 6])}
    if modality == "mmwave":
        if len(points) > RADAR_POINTS:
            raise CodecError(f"mmwave features: {len(points)} points, at most {RADAR_POINTS} are observed")
        padded = np.zeros(observation_shapes(config)["mmwave_points"][0], dtype=np.float32)
        padded[:len(points)] = points
        valid = np.zeros(RADAR_POINTS, dtype=bool)
        valid[:len(points)] = True
        return {"mmwave_points": padded, "mmwave_valid": valid}
    expected = observation_shapes(config)["lidar_points"][0]
    if points.shape != expected:
        raise CodecError(f"lidar features: {len(points)} points, the model takes {expected[0]}")
    return {"lidar_points": np.array(points, dtype=np.float32)}  # a writable copy, not a buffer view


def _check_modality(modality: str) -> None:
    if modality not in FEATURE_MESSAGE_TYPES:
        raise CodecError(f"unknown modality {modality!r}; expected one of {list(FEATURE_MESSAGE_TYPES)}")


def _array(arrays: Mapping[str, np.ndarray], key: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """``arrays[key]`` as float32 of ``shape`` (None: any length), or a CodecError naming it."""
    if key not in arrays:
        raise CodecError(f"{key} features: arrays have keys {sorted(arrays)}, missing {key!r}")
    array = np.asarray(arrays[key])
    if array.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, array.shape)):
        expected = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise CodecError(f"{key} features: expected shape {expected}, got {array.shape}")
    return array.astype(np.float32, copy=False)
