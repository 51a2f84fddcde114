"""Model-ready features as standard messages: the contract between sensor nodes and the fusion node.

A sensor node turns its raw input into exactly the arrays :func:`model.inputs.prepare_modality`
returns and publishes them on ``TOPICS.feature(modality)`` (:func:`feature_topic`), stamped with
the source message's stamp. The fusion node gets the same arrays back with :func:`read_features`
(same keys, shapes, dtypes, values), so the model sees what it would see offline.

Carriers (standard messages, so ``ros2 topic echo`` and bags work without custom interfaces):

- ``rgb``: ``sensor_msgs/PointCloud2`` of the 17 keypoints, float32 fields ``u``, ``v`` (the
  model's normalised [-1, 1] image units) and ``score`` (the detector's confidence; 1 when the
  source has none, 0 where a keypoint was not finite).
- ``lidar``: PointCloud2, float32 ``x``, ``y``, ``z``: the ``config.lidar_points`` model points.
- ``mmwave``: PointCloud2, float32 ``x``, ``y``, ``z``, ``velocity``, ``intensity``: only the
  real points (at most ``config.mmwave_points``); the zero padding and ``mmwave_mask`` are
  rebuilt on reading.
- ``wifi``: ``sensor_msgs/Image`` ``32FC1`` of 685 rows x 10 cols (packets): rows 0..683 the
  (2, 3, 114, 10) block in C order (channel [amplitude, phase], then antenna, then subcarrier),
  row 684 ``wifi_mask`` as 1.0 (measured) / 0.0 (filled from its neighbours).

A message with no points (or an empty image) stands for "nothing usable": it reads back as
:func:`model.inputs.absent_modality`; :func:`features_present` tells the two apart. (The sensor
nodes publish nothing in that case and count it as ``empty`` in their diagnostics, so the fusion
node's deadline policy treats the modality as missing.)
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from mmhpe_ros.modalities import KEYPOINT_FIELDS, LIDAR_FIELDS, MMWAVE_FIELDS, TOPICS
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.inputs import CSI_SHAPE, MMWAVE_MASK, WIFI_MASK, absent_modality, input_shapes
from mmhpe_ros.runtime import codecs
from mmhpe_ros.runtime.codecs import CodecError
from mmhpe_ros.skeleton import NUM_KEYPOINTS_2D

# PointCloud2 fields of the point-carried modalities, in the columns' order.
FEATURE_FIELDS: dict[str, tuple[str, ...]] = {
    "rgb": KEYPOINT_FIELDS,
    "lidar": LIDAR_FIELDS,
    "mmwave": MMWAVE_FIELDS,
}
SCORE_KEY = "rgb_score"  # optional (17,) keypoint confidences next to the "rgb" array
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
    """The message carrying ``arrays`` (one modality's output of ``prepare_modality``).

    ``header`` is used as given (the source stamp, the modality's frame id). For ``rgb`` an
    optional ``arrays[SCORE_KEY]`` (17,) gives the keypoint scores (default 1). Pass an empty
    mapping for "nothing usable" (an empty message). Raises :class:`CodecError` for missing
    arrays or wrong shapes.
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
        keypoints = _array(arrays, "rgb", (NUM_KEYPOINTS_2D, 2))
        score = arrays.get(SCORE_KEY)
        score = np.ones(NUM_KEYPOINTS_2D, np.float32) if score is None else np.asarray(score, np.float32)
        if score.shape != (NUM_KEYPOINTS_2D,):
            raise CodecError(f"rgb features: {SCORE_KEY} must be ({NUM_KEYPOINTS_2D},), got {score.shape}")
        points = np.column_stack([keypoints, score])
    elif modality == "lidar":
        points = _array(arrays, "lidar", (None, len(LIDAR_FIELDS)))
    else:
        padded = _array(arrays, "mmwave", (None, len(MMWAVE_FIELDS)))
        mask = np.asarray(arrays.get(MMWAVE_MASK, np.ones(len(padded), bool)), dtype=bool)
        if mask.shape != (len(padded),):
            raise CodecError(f"mmwave features: {MMWAVE_MASK} must be ({len(padded)},), got {mask.shape}")
        points = padded[mask]
    return codecs.create_points(types, header, points, FEATURE_FIELDS[modality])


def features_present(msg: Any) -> bool:
    """False for the empty message that stands for "nothing usable" from the sensor."""
    return int(msg.height) * int(msg.width) > 0


def read_features(modality: str, msg: Any, config: ModelConfig) -> dict[str, np.ndarray]:
    """Inverse of :func:`features_message`: the arrays ``prepare_modality`` gave, for ``config``.

    Raises :class:`CodecError` when the message does not fit the model (e.g. a LiDAR cloud of
    another point count than ``config.lidar_points``, more radar points than
    ``config.mmwave_points``, a wifi image that is not 685 x 10) or holds non-finite values
    (``prepare_modality`` never produces them).
    """
    _check_modality(modality)
    if modality not in config.modalities:
        raise CodecError(f"{modality} features: the model fuses only {list(config.modalities)}")
    if not features_present(msg):
        return absent_modality(modality, config)
    arrays = _decode(modality, msg, config)
    if not np.isfinite(arrays[modality]).all():
        raise CodecError(f"{modality} features: non-finite values (as float32)")
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
    columns = FEATURE_FIELDS[modality][:2] if modality == "rgb" else FEATURE_FIELDS[modality]
    points = codecs.read_point_columns(msg, columns, dtype=np.float32)
    shapes = input_shapes(config)
    if modality == "mmwave":
        wanted = config.mmwave_points
        if len(points) > wanted:
            raise CodecError(f"mmwave features: {len(points)} points, the model takes at most {wanted}")
        padded = np.zeros(shapes["mmwave"][0], dtype=np.float32)
        padded[:len(points)] = points
        mask = np.zeros(wanted, dtype=bool)
        mask[:len(points)] = True
        return {"mmwave": padded, MMWAVE_MASK: mask}
    expected = shapes[modality][0]
    if points.shape != expected:
        raise CodecError(f"{modality} features: {len(points)} points, the model takes {expected[0]}")
    return {modality: np.array(points, dtype=np.float32)}  # a writable copy, not a buffer view


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
