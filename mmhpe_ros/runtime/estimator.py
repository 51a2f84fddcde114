"""A loaded pose model applied to one synchronised set of features: the fusion node's model step.

No ROS here. :class:`PoseEstimator` takes, per modality present, the arrays
:func:`mmhpe_ros.runtime.features.read_features` returned (those of ``prepare_modality``), fills
absent modalities with :func:`mmhpe_ros.model.inputs.absent_modality` and the ``present`` mask
as training did, and runs :class:`~mmhpe_ros.model.pose_model.PoseModel` on a batch of one.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mmhpe_ros.model.inputs import PRESENT, absent_modality


class PoseEstimator:
    """``predict({modality: arrays}) -> (17, 3)`` joints in metres (or ``predict_batch``), with the
    last forward time."""

    def __init__(self, model_path: str | Path, modalities: Sequence[str] | None = None, device: str = "cpu") -> None:
        from mmhpe_ros.model.checkpoint import load_model

        self.model, self.card = load_model(model_path, device=device, modalities=modalities)
        self.config = self.model.config
        self.device = device
        self.modalities: tuple[str, ...] = tuple(modalities) if modalities is not None else self.config.modalities
        self.last_forward_ms = 0.0

    def inputs(self, features: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """One sample of model inputs: ``features`` of the present modalities, zeros for the rest."""
        unknown = [m for m in features if m not in self.config.modalities]
        if unknown:
            raise ValueError(f"features of {unknown}: the model fuses only {list(self.config.modalities)}")
        sample: dict[str, np.ndarray] = {}
        present = np.zeros(self.config.num_modalities, dtype=bool)
        for i, modality in enumerate(self.config.modalities):
            if modality in features:
                sample.update(features[modality])
                present[i] = True
            else:
                sample.update(absent_modality(modality, self.config))
        if not present.any():
            raise ValueError("a fused set needs at least one modality present")
        sample[PRESENT] = present
        return sample

    def predict(self, features: Mapping[str, Mapping[str, np.ndarray]]) -> np.ndarray:
        """(17, 3) float64 joints in metres; :attr:`last_forward_ms` is the model's own time."""
        return self.predict_batch([features])[0]

    def predict_batch(self, sets: Sequence[Mapping[str, Mapping[str, np.ndarray]]]) -> np.ndarray:
        """(B, 17, 3) joints for B sets in one forward pass (each set may have other modalities)."""
        import torch

        samples = [self.inputs(features) for features in sets]
        batch: dict[str, Any] = {
            key: torch.from_numpy(np.stack([sample[key] for sample in samples])).to(self.device)
            for key in samples[0]
        }
        start = time.perf_counter()
        with torch.inference_mode():
            joints = self.model(batch)
        self.last_forward_ms = (time.perf_counter() - start) * 1e3
        return joints.double().cpu().numpy()
