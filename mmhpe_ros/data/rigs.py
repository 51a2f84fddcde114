"""Which rig recorded a sequence: its calibration (and LiDAR background model) per environment.

An MM-Fi tree keeps them beside the dataset's own folders: ``ROOT/calibration/E0x.yaml``
(written by `mmhpe-ros synth`, or estimated by `mmhpe-ros calibrate` for real MM-Fi) and,
optionally, ``ROOT/background/E0x.npz`` (`mmhpe-ros synth`, or `mmhpe-ros background`). A bag
carries its calibration in its metadata. Training and evaluation turn every frame's raw arrays
into observations with the rig of its environment (:mod:`mmhpe_ros.model.observe`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from mmhpe_ros.data.frames import SequenceKey
from mmhpe_ros.data.mmfi import CALIBRATION_FOLDER, background_path, calibration_path
from mmhpe_ros.geometry.background import BackgroundModel
from mmhpe_ros.geometry.calibration import Calibration, load_calibration
from mmhpe_ros.model.observe import Rig


class RigCatalogue:
    """The :class:`Rig` of each environment (or one rig for everything, e.g. a bag's)."""

    def __init__(self, rigs: Mapping[str, Rig] | None = None, default: Rig | None = None, where: str = "") -> None:
        self.rigs, self.default, self.where = dict(rigs or {}), default, where

    @classmethod
    def from_tree(cls, root: str | Path, environments: list[str] | None = None) -> "RigCatalogue":
        """Rigs of an MM-Fi tree's environments that have a calibration file (others: an error on use)."""
        from mmhpe_ros.modalities import ENVIRONMENTS

        rigs = {}
        for environment in environments or ENVIRONMENTS:
            path = calibration_path(root, environment)
            if path.exists():
                background = background_path(root, environment)
                rigs[environment] = Rig(load_calibration(path),
                                        BackgroundModel.load(background) if background.exists() else None)
        return cls(rigs, where=str(Path(root) / CALIBRATION_FOLDER))

    @classmethod
    def single(cls, calibration: Calibration, background: BackgroundModel | None = None) -> "RigCatalogue":
        return cls(default=Rig(calibration, background))

    def fingerprint(self) -> str:
        """A hash of every calibration and background model (a prepared-inputs cache depends on them)."""
        import hashlib
        import json

        digest = hashlib.sha256()
        for name, rig in sorted(self.rigs.items()) + ([("*", self.default)] if self.default else []):
            digest.update(name.encode())
            digest.update(json.dumps(rig.calibration.to_document(), sort_keys=True).encode())
            if rig.background is not None:
                digest.update(np.packbits(rig.background.occupied).tobytes())
                digest.update(np.asarray([rig.background.voxel, *rig.background.origin]).tobytes())
        return digest.hexdigest()

    def check(self, keys) -> None:
        """ValueError naming every environment of ``keys`` (SequenceKeys) without a rig, before any
        work starts (the commands print it as one line)."""
        missing = sorted({key.environment for key in keys if self.rigs.get(key.environment, self.default) is None})
        if missing:
            raise ValueError(f"no calibration for {', '.join(missing)} in {self.where or 'this data'}: the sensors' "
                             "poses are needed to use their data (generated trees have them; for real MM-Fi run "
                             "`mmhpe-ros calibrate ROOT`)")

    def rig(self, key: SequenceKey) -> Rig:
        """The rig of ``key``'s environment; LookupError saying how to make one when there is none."""
        rig = self.rigs.get(key.environment, self.default)
        if rig is None:
            raise LookupError(
                f"no calibration for {key.environment} in {self.where or 'this data'}: the sensors' poses are "
                f"needed to use their data (generated trees have them; for real MM-Fi run "
                f"`mmhpe-ros calibrate ROOT`)")
        return rig
