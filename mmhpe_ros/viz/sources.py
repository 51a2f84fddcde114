"""What a picture shows, read from a recorded bag or from an evaluation: :class:`RenderFrame`.

* A bag of ``mmhpe-ros run --record`` holds the predicted joints (``/mmhpe/joints``), the ground
  truth, the LiDAR and radar clouds and the camera keypoints, each stamped with its frame's stamp:
  a frame is a predicted skeleton with the messages of the same stamp. A bag of ``mmhpe-ros
  convert`` (or the bundled sample) has no prediction: its frames are its ground-truth messages.
  Clouds are moved from their sensor frame (``header.frame_id``) into the skeleton's frame with
  a :class:`~mmhpe_ros.viz.frames.FrameTransforms` (identity when none is given).
* ``mmhpe-ros evaluate --out DIR`` writes ``DIR/predictions.npz`` (:func:`write_evaluation_frames`):
  the fused prediction (all the model's modalities) and the ground truth of every evaluated frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mmhpe_ros.data.frames import SequenceKey
from mmhpe_ros.metrics import frame_mpjpe
from mmhpe_ros.runtime import codecs
from mmhpe_ros.runtime.limits import DEFAULT_BAG_LIMITS, BagLimits, check_bag, check_message
from mmhpe_ros.skeleton import NUM_JOINTS
from mmhpe_ros.viz.frames import FrameTransforms
from mmhpe_ros.viz.topics import FUSION_OUTPUTS, SCENE_INPUTS

EVALUATION_FRAMES = "predictions.npz"  # in `mmhpe-ros evaluate --out`
_JOINTS, _TRUTH = "/" + FUSION_OUTPUTS[1].name, "/" + SCENE_INPUTS[0].name
_CLOUDS = {"/" + SCENE_INPUTS[1].name: "lidar", "/" + SCENE_INPUTS[2].name: "radar"}  # topic -> name in a picture
_KEYPOINTS = "/" + SCENE_INPUTS[3].name


@dataclass(frozen=True)
class RenderFrame:
    """One picture's content: skeletons (17, 3) in metres, points (N, 3) already in the skeletons'
    frame, camera keypoints (K, 2) in pixels; None / absent where the source has none."""

    label: str
    predicted: np.ndarray | None = None
    ground_truth: np.ndarray | None = None
    points: Mapping[str, np.ndarray] = field(default_factory=dict)  # "lidar", "radar"
    keypoints: np.ndarray | None = None

    @property
    def mpjpe_mm(self) -> float | None:
        """This frame's MPJPE (mm), when it has a prediction and ground truth."""
        if self.predicted is None or self.ground_truth is None:
            return None
        return float(frame_mpjpe(self.predicted, self.ground_truth))


def evenly_spaced(count: int, wanted: int | None) -> list[int]:
    """Indices of ``wanted`` frames spread evenly over ``count`` (all for None or 0; the middle one for 1)."""
    if not wanted or wanted >= count:
        return list(range(count))
    if wanted == 1:
        return [count // 2]
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, wanted)})


def read_frames(path: str | Path, frames: int | None = None, transforms: FrameTransforms | None = None,
                limits: BagLimits = DEFAULT_BAG_LIMITS) -> list[RenderFrame]:
    """``frames`` evenly spaced frames (all for None) of a bag, an evaluation's ``predictions.npz`` or
    the folder holding it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix == ".npz":
        return read_evaluation_frames(path, frames)
    if path.is_dir() and (path / EVALUATION_FRAMES).is_file():
        return read_evaluation_frames(path / EVALUATION_FRAMES, frames)
    return read_bag_frames(path, frames, transforms, limits)


def read_bag_frames(path: str | Path, frames: int | None = None, transforms: FrameTransforms | None = None,
                    limits: BagLimits = DEFAULT_BAG_LIMITS) -> list[RenderFrame]:
    """Frames of a recorded (or converted) bag, in recording order; see the module docstring."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    from mmhpe_ros.data import bag_format

    path = Path(path)
    transforms = transforms or FrameTransforms()
    check_bag(path, limits)
    reader = AnyReader([path], default_typestore=get_typestore(Stores.ROS2_KILTED))
    try:
        reader.open()
    except Exception as error:  # rosbags raises its own error types per storage
        raise ValueError(f"cannot open bag {path}: {error}") from error
    try:
        topics = {c.topic for c in reader.connections}
        driver = _JOINTS if _JOINTS in topics else _TRUTH
        if driver not in topics:
            raise ValueError(f"{path}: no {_JOINTS} or {_TRUTH} to draw (topics: {sorted(topics)}); record one "
                             "with `mmhpe-ros run --record OUT`")

        def messages(topic: str) -> Any:
            for connection, _, raw in reader.messages(connections=[c for c in reader.connections if c.topic == topic]):
                check_message(path, topic, connection.msgtype, len(raw), limits)
                yield reader.deserialize(raw, connection.msgtype)

        skeletons = [(codecs.header_stamp_ns(m), m.header.frame_id, codecs.read_pose_array(m)) for m in messages(driver)]
        chosen = [skeletons[i] for i in evenly_spaced(len(skeletons), frames)]
        stamps = {stamp for stamp, _, _ in chosen}
        truth = ({} if driver == _TRUTH else
                 {codecs.header_stamp_ns(m): codecs.read_pose_array(m) for m in messages(_TRUTH)
                  if codecs.header_stamp_ns(m) in stamps} if _TRUTH in topics else {})
        clouds: dict[str, dict[int, tuple[str, np.ndarray]]] = {}
        for topic, name in _CLOUDS.items():
            if topic in topics:
                clouds[name] = {codecs.header_stamp_ns(m): (m.header.frame_id, codecs.read_points_array(m, ("x", "y", "z")))
                                for m in messages(topic) if codecs.header_stamp_ns(m) in stamps}
        keypoints = ({codecs.header_stamp_ns(m): bag_format.decode_points("rgb", m) for m in messages(_KEYPOINTS)
                      if codecs.header_stamp_ns(m) in stamps} if _KEYPOINTS in topics else {})
    finally:
        reader.close()
    out = []
    for number, (stamp, frame_id, joints) in zip(evenly_spaced(len(skeletons), frames), chosen):
        points = {name: _moved(transforms, frame_id, *by_stamp[stamp])
                  for name, by_stamp in clouds.items() if stamp in by_stamp}
        out.append(RenderFrame(
            label=f"frame {number + 1}/{len(skeletons)}, stamp {stamp / 1e9:.1f} s",
            predicted=joints if driver == _JOINTS else None,
            ground_truth=joints if driver == _TRUTH else truth.get(stamp),
            points=points, keypoints=keypoints.get(stamp)))
    return out


def _moved(transforms: FrameTransforms, target: str, source: str, points: np.ndarray) -> np.ndarray:
    from mmhpe_ros.viz.frames import transform_points

    return transform_points(transforms.between(target, source), points)


def write_evaluation_frames(path: str | Path, predicted: np.ndarray, ground_truth: np.ndarray,
                            keys: Sequence[tuple[SequenceKey, int]], modalities: Sequence[str]) -> Path:
    """Write an evaluation's per-frame skeletons: ``predicted`` and ``ground_truth`` (F, 17, 3) metres
    (float32), ``sequence`` ("E01/S01/A13") and ``frame`` (0-based index) of each, the ``modalities`` fused."""
    predicted, ground_truth = np.asarray(predicted, np.float32), np.asarray(ground_truth, np.float32)
    if predicted.shape != ground_truth.shape or predicted.shape[1:] != (NUM_JOINTS, 3) or len(keys) != len(predicted):
        raise ValueError(f"expected (F, {NUM_JOINTS}, 3) predictions and ground truth and F keys, got "
                         f"{predicted.shape}, {ground_truth.shape} and {len(keys)} keys")
    path = Path(path)
    np.savez_compressed(path, predicted=predicted, ground_truth=ground_truth,
                        sequence=np.array([str(key) for key, _ in keys], dtype=str),
                        frame=np.array([index for _, index in keys], dtype=np.int32),
                        modalities=np.array(list(modalities), dtype=str))
    return path


def read_evaluation_frames(path: str | Path, frames: int | None = None) -> list[RenderFrame]:
    """Frames of :func:`write_evaluation_frames`' file, labelled with their sequence and frame number."""
    try:
        with np.load(path, allow_pickle=False) as data:
            predicted, truth = data["predicted"], data["ground_truth"]
            sequence, index = data["sequence"], data["frame"]
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"{path}: not an evaluation's {EVALUATION_FRAMES} ({error})") from error
    if predicted.shape != truth.shape or predicted.shape[1:] != (NUM_JOINTS, 3) or not (
            len(sequence) == len(index) == len(predicted)):
        raise ValueError(f"{path}: inconsistent shapes {predicted.shape}, {truth.shape}, {sequence.shape}, {index.shape}")
    return [RenderFrame(f"{sequence[i]} frame {int(index[i]) + 1}", predicted[i].astype(np.float64),
                        truth[i].astype(np.float64))
            for i in evenly_spaced(len(predicted), frames)]
