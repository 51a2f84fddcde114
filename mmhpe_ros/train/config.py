"""`TrainConfig`: every knob of a training run, read from YAML (config/train.yaml) plus overrides."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import yaml

from mmhpe_ros.modalities import MODALITIES

# naive: plain joint training (no modality dropout; the paper's baseline); dropout: joint training
# with modality dropout; awc: the paper's; ogm: OGM-GE; gblend: Gradient-Blending; unimodal: one encoder.
METHODS: tuple[str, ...] = ("naive", "dropout", "awc", "ogm", "gblend", "unimodal")
DEFAULT_MODALITY_DROPOUT = 0.5  # the rate of method "dropout" unless modality_dropout says otherwise
MISSING_POLICIES: tuple[str, ...] = ("absent", "skip")
PROTOCOLS: tuple[str, ...] = ("P1", "P2", "P3")
SETTINGS: tuple[str, ...] = ("S1", "S2", "S3")


@dataclass(frozen=True)
class TrainConfig:
    """A training run; config/train.yaml documents each key."""

    # Data: an MM-Fi tree (real or generated) or rosbag2 bags, and the split.
    data_root: str | None = None
    bags: tuple[str, ...] = ()
    protocol: str = "P1"
    setting: str = "S1"
    split_seed: int = 0
    max_train_frames: int | None = None  # evenly strided subset, for quick runs
    max_val_frames: int | None = None
    max_holdout_frames: int | None = None
    missing: str = "absent"  # training frames with an empty modality: kept with it "absent", or "skip"ped
    strict_data: bool = False  # an anomalous MM-Fi file aborts (True) or is skipped and counted (False)
    augment: bool = True  # turn each training scene about the vertical axis and shift it (train/augment.py)
    # Held-out training sequences: every training decision (assessment, checkpoint choice, the card's
    # expected errors) is made on them, never on the validation split.
    holdout_fraction: float = 0.1
    holdout_seed: int = 0
    val_curves: bool = False  # also log validation errors per epoch, for plots only (read by no decision)
    # Method.
    method: str = "awc"
    modality: str | None = None  # the modality of method "unimodal"
    modalities: tuple[str, ...] = MODALITIES  # fused modalities of the joint methods
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig overrides
    modality_dropout: float | None = None  # None: 0.5 for method "dropout", 0 for the others
    # Optimisation (the paper: Adam 1e-3, x0.1 at epoch 30, batch 192, 50 epochs).
    epochs: int = 50
    batch_size: int = 192  # global: split across distributed processes
    lr: float = 1e-3
    lr_step_epochs: int = 30
    lr_gamma: float = 0.1
    weight_decay: float = 0.0
    # Contribution assessment (every method logs Shapley values).
    shapley_batches: int = 8  # batches of held-out frames per assessment (evenly spread); 0: none
    # AWC.
    awc_alpha_strong: float = 20_000.0
    awc_alpha_weak: float = 10_000.0
    awc_epochs: int = 20
    awc_anchor: str = "epoch"
    fisher_samples: int = 768  # training frames of the per-sample Fisher estimate
    # OGM-GE.
    ogm_alpha: float = 0.5
    ogm_epochs: int = 20
    ogm_noise: bool = True
    ogm_coefficient: str = "reference"  # reference: 1 - tanh(alpha * rho); mild: 1 - tanh(alpha * (rho - 1))
    # Gradient-Blending.
    gblend_frames: int = 1024  # training frames whose loss measures each modality's overfitting
    # Run.
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    num_workers: int = 0  # DataLoader workers serving training batches (0: the training process)
    prepare_workers: int = 2  # DataLoader workers of the first pass that reads and prepares every frame
    cache_dir: str | None = "auto"  # prepared inputs on disk; auto: ~/.cache/mmhpe_ros/prepared; null: memory
    cache_bytes: int = 4 << 30  # prepared inputs up to this size are held in memory, larger ones memory-mapped
    output_dir: str = "runs/train"
    progress: bool = True
    tensorboard: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "bags", tuple(str(b) for b in self.bags or ()))
        object.__setattr__(self, "modalities", tuple(self.modalities))
        problems = []
        if self.method not in METHODS:
            problems.append(f"method must be one of {METHODS}, got {self.method!r}")
        if self.method == "unimodal" and self.modality not in MODALITIES:
            problems.append(f"method 'unimodal' needs modality in {MODALITIES}, got {self.modality!r}")
        if self.protocol not in PROTOCOLS:
            problems.append(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.setting not in SETTINGS:
            problems.append(f"setting must be one of {SETTINGS}, got {self.setting!r}")
        bad = [m for m in self.modalities if m not in MODALITIES]
        if bad or not self.modalities:
            problems.append(f"modalities must be a non-empty subset of {MODALITIES}, got {list(self.modalities)}")
        if self.awc_anchor not in ("epoch", "initial"):
            problems.append(f"awc_anchor must be 'epoch' or 'initial', got {self.awc_anchor!r}")
        if self.ogm_coefficient not in ("reference", "mild"):
            problems.append(f"ogm_coefficient must be 'reference' or 'mild', got {self.ogm_coefficient!r}")
        if self.missing not in MISSING_POLICIES:
            problems.append(f"missing must be one of {MISSING_POLICIES}, got {self.missing!r}")
        if not 0.0 <= self.holdout_fraction < 1.0:
            problems.append(f"holdout_fraction must be in [0, 1), got {self.holdout_fraction}")
        if self.modality_dropout is not None and not 0.0 <= self.modality_dropout <= 1.0:
            problems.append(f"modality_dropout must be in [0, 1], got {self.modality_dropout}")
        if "modality_dropout" in (self.model or {}):
            problems.append("set the training key modality_dropout, not model.modality_dropout (the model's "
                            "config records the rate the trainer used)")
        for name in ("epochs", "batch_size", "lr_step_epochs", "fisher_samples", "gblend_frames"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if problems:
            raise ValueError("invalid training config: " + "; ".join(problems))

    @property
    def model_modalities(self) -> tuple[str, ...]:
        """Modalities of the trained model: one for unimodal training, else ``modalities``."""
        if self.method == "unimodal":
            return (self.modality,)  # type: ignore[return-value]
        return tuple(m for m in MODALITIES if m in self.modalities)

    @property
    def effective_modality_dropout(self) -> float:
        """The modality dropout rate of this run: ``modality_dropout``, or the method's default."""
        if self.modality_dropout is not None:
            return float(self.modality_dropout)
        return DEFAULT_MODALITY_DROPOUT if self.method == "dropout" else 0.0

    def resolved_cache_dir(self) -> str | None:
        """The disk cache of prepared inputs (``auto``: $XDG_CACHE_HOME or ~/.cache, /mmhpe_ros/prepared)."""
        if self.cache_dir != "auto":
            return self.cache_dir
        import os

        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return os.path.join(base, "mmhpe_ros", "prepared")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{source}: unknown training config keys {unknown}; known: {sorted(known)}")
        return cls(**values)

    def with_overrides(self, overrides: Sequence[str]) -> "TrainConfig":
        """Apply ``key=value`` overrides (values parsed as YAML; ``model.key=value`` for the model)."""
        values = self.to_dict()
        for item in overrides:
            key, sep, text = item.partition("=")
            if not sep or not key:
                raise ValueError(f"override {item!r}: expected key=value")
            value = yaml.safe_load(text) if text else None
            if key.startswith("model."):
                values["model"] = {**values["model"], key[len("model."):]: value}
            else:
                values[key] = value
        return TrainConfig.from_dict(values, "overrides")


def load_train_config(path: str | Path | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML training config (None: defaults) and apply ``key=value`` overrides."""
    config = TrainConfig()
    if path is not None:
        path = Path(path)
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: training config not found") from None
        except yaml.YAMLError as error:
            raise ValueError(f"{path}: not valid YAML ({error})") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping of training config keys")
        config = TrainConfig.from_dict(values, str(path))
    return config.with_overrides(overrides) if overrides else config


__all__ = ["DEFAULT_MODALITY_DROPOUT", "METHODS", "MISSING_POLICIES", "PROTOCOLS", "SETTINGS", "TrainConfig",
           "load_train_config"]
