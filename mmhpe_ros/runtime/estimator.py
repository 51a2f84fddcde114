"""A loaded pose model applied to one synchronised set of features: the fusion node's model step.

No ROS here. :class:`PoseEstimator` takes, per modality present, the arrays
:func:`mmhpe_ros.runtime.features.read_features` returned (those of ``prepare_modality``), fills
absent modalities with :func:`mmhpe_ros.model.inputs.absent_modality` and the ``present`` mask
as training did, and runs :class:`~mmhpe_ros.model.pose_model.PoseModel` on a batch.

By default the model is traced once (``torch.jit.trace``) and the trace is what runs: its forward
is one call that holds Python's GIL once, where the eager model takes and releases it at every
operator. In a process whose other threads keep the GIL busy (the composed node graph), that
was measured to be 270 ms against 4 ms a forward (p50, 3 busy threads; docs/nodes.md). The
trace computes exactly what the eager model computes (test/test_estimator.py); every input it
gets has all the model's modalities (absent ones as zeros, masked by ``present``), the case it
was traced on.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mmhpe_ros.model.inputs import PRESENT, absent_modality


class PoseEstimator:
    """``predict({modality: arrays}) -> (17, 3)`` joints in metres (or ``predict_batch``), with the
    last forward time."""

    def __init__(self, model_path: str | Path, modalities: Sequence[str] | None = None, device: str = "cpu",
                 trace: bool = True) -> None:
        from mmhpe_ros.model.checkpoint import load_model

        self.model, self.card = load_model(model_path, device=device, modalities=modalities)
        self.config = self.model.config
        self.device = device
        self.modalities: tuple[str, ...] = tuple(modalities) if modalities is not None else self.config.modalities
        self.last_forward_ms = 0.0
        self.forward = self._trace() if trace else self.model

    def _trace(self) -> Any:
        """The model traced on one sample with every modality present; the eager model if tracing
        is unavailable (TorchScript is deprecated in torch 2.13, with no GIL-free successor yet)."""
        import torch

        example = self.inputs({m: absent_modality(m, self.config) for m in self.config.modalities})
        batch = {key: torch.from_numpy(value[None]).to(self.device) for key, value in example.items()}
        try:
            with warnings.catch_warnings(), torch.inference_mode():
                # PoseModel.fuse makes a constant of which modalities are in the input: always all here.
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                traced = torch.jit.trace(self.model.eval(), (batch,), strict=False, check_trace=False)
                for _ in range(2):  # TorchScript's profiling runs (~40 and ~10 ms): before the first frame
                    traced(batch)
                return traced
        except Exception as error:  # noqa: BLE001 - the eager model computes the same, only slower under load
            warnings.warn(f"could not trace the pose model ({error}); running it eagerly", RuntimeWarning)
            return self.model

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
            joints = self.forward(batch)
        self.last_forward_ms = (time.perf_counter() - start) * 1e3
        return joints.double().cpu().numpy()
