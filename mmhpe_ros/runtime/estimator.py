"""A loaded pose model applied to synchronised sets of observations: the fusion node's model step.

No ROS here. Each set maps the modalities that sent a message to their observation arrays
(:func:`mmhpe_ros.runtime.features.read_features`; an empty message reads back as
:func:`~mmhpe_ros.model.observe.empty_observation` and counts as "observed nothing").
:class:`PoseEstimator` rebuilds what training cached for a frame (``observed``, each modality's
root estimate, :func:`~mmhpe_ros.model.observe.observation_roots`), runs stage 2
(:func:`~mmhpe_ros.model.body.model_inputs`: one root, everything in the person's body frame) and
the model, and puts the joints back into the base frame. Where no modality found a person there is
no skeleton: ``person`` is False and the joints are NaN.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from mmhpe_ros.geometry.localise import SearchRegion
from mmhpe_ros.model.observe import OBSERVED, empty_observation, observation_roots, root_arrays
from mmhpe_ros.skeleton import NUM_JOINTS

Observations = Mapping[str, Mapping[str, np.ndarray]]  # modality -> its observation arrays


@dataclass(frozen=True)
class Estimate:
    """The model's answer for B sets: ``joints`` (B, 17, 3) in the base frame (metres, NaN where
    nobody was found), ``person`` (B,) whether somebody was, ``root`` (B, 3) the fused root,
    ``present`` (B, M) the modalities (``config.modalities`` order) that fed the model."""

    joints: np.ndarray
    person: np.ndarray
    root: np.ndarray
    present: np.ndarray


class PoseEstimator:
    """``predict(observations) -> Estimate`` (or ``predict_batch``) with the last forward time.

    ``ground_height`` and ``region`` are the rig's (the sensor nodes use the same), so the root
    estimates here are the ones training computed."""

    def __init__(self, model_path: str | Path, modalities: Sequence[str] | None = None, device: str = "cpu",
                 ground_height: float = 0.0, region: SearchRegion = SearchRegion()) -> None:
        from mmhpe_ros.model.checkpoint import load_model

        self.model, self.card = load_model(model_path, device=device, modalities=modalities)
        self.model.eval()
        self.config = self.model.config
        self.device = device
        self.modalities: tuple[str, ...] = tuple(modalities) if modalities is not None else self.config.modalities
        self.ground_height, self.region = float(ground_height), region
        self.last_forward_ms = 0.0

    def observation(self, observations: Observations) -> dict[str, np.ndarray]:
        """One frame's observation arrays (as :func:`mmhpe_ros.model.observe.observe` returns them)
        from the modalities' messages; modalities without a message observed nothing."""
        unknown = [m for m in observations if m not in self.config.modalities]
        if unknown:
            raise ValueError(f"observations of {unknown}: the model fuses only {list(self.config.modalities)}")
        frame: dict[str, np.ndarray] = {}
        observed = np.zeros(self.config.num_modalities, dtype=bool)
        for i, modality in enumerate(self.config.modalities):
            arrays = observations.get(modality)
            if arrays is None:
                frame.update(empty_observation(modality, self.config))
                continue
            frame.update(arrays)
            observed[i] = _observed(modality, arrays)
        frame[OBSERVED] = observed
        roots = observation_roots(frame, self.config.modalities, self.ground_height, self.region)
        frame.update(root_arrays(roots, self.config))
        return frame

    def predict(self, observations: Observations) -> Estimate:
        """The estimate of one set (arrays with a leading axis of 1)."""
        return self.predict_batch([observations])

    def predict_batch(self, sets: Sequence[Observations]) -> Estimate:
        """B sets in one forward pass (each set may have other modalities)."""
        import torch

        from mmhpe_ros.model.body import model_inputs

        frames = [self.observation(observations) for observations in sets]
        batch = {key: np.stack([frame[key] for frame in frames]) for key in frames[0]}
        inputs, body = model_inputs(batch, self.config)
        joints = np.full((len(frames), NUM_JOINTS, 3), np.nan)
        if body.person.any():
            tensors = {key: torch.from_numpy(np.ascontiguousarray(value)).to(self.device)
                       for key, value in inputs.items()}
            start = time.perf_counter()
            with torch.inference_mode():
                predicted = self.model(tensors).double().cpu().numpy()
            self.last_forward_ms = (time.perf_counter() - start) * 1e3
            placed = body.to_base(predicted)
            joints[body.person] = placed[body.person]
        return Estimate(joints, body.person.copy(), body.root.copy(), np.array(inputs["present"], dtype=bool))


def _observed(modality: str, arrays: Mapping[str, np.ndarray]) -> bool:
    """Whether one modality's arrays hold anything (an empty message reads back as all zeros)."""
    if modality == "rgb":
        return bool(np.any(arrays["rgb_score"] > 0))
    if modality == "mmwave":
        return bool(np.any(arrays["mmwave_valid"]))
    if modality == "wifi":
        return bool(np.any(arrays["wifi_mask"]))
    return bool(np.any(arrays["lidar_points"]))
