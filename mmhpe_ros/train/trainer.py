"""The training loop of every method: naive joint training, AWC, OGM-GE, unimodal.

One epoch (``config.method`` picks the regulariser):

1. re-seed the RNGs from (seed, epoch, rank); AWC: fresh alphas from the latest assessment's
   strong set, Fisher + anchor (:class:`AdaptiveWeightConstraint`);
2. mini-batches (global ``batch_size`` split over processes) with modality dropout; loss MPJPE
   (+ AWC penalty); OGM-GE scales encoder gradients after backward; Adam, StepLR per epoch;
3. validation MPJPE / PA-MPJPE with every modality, and per modality alone (the others masked);
4. Shapley assessment on the first ``shapley_batches`` validation batches (cached encoder
   features), logged for every method, its strong set feeds the next epoch's AWC;
5. log row (CSV, TensorBoard if installed), checkpoint (atomic), best/last model files.

Under ``torchrun`` the model is wrapped in DistributedDataParallel; metrics, Fisher estimates
and OGM scores are reduced across processes, so every process holds the same weights.
"""
from __future__ import annotations

import csv
import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler

from mmhpe_ros.metrics import mpjpe, pa_mpjpe
from mmhpe_ros.model.awc import AdaptiveWeightConstraint
from mmhpe_ros.model.card import CheckpointError, atomic_write
from mmhpe_ros.model.checkpoint import save_model
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.fusion import modality_dropout
from mmhpe_ros.model.inputs import PRESENT
from mmhpe_ros.model.losses import mpjpe_loss
from mmhpe_ros.model.ogm import GradientModulation
from mmhpe_ros.model.pose_model import PoseModel, count_parameters
from mmhpe_ros.model.shapley import Assessment, assess
from mmhpe_ros.runtime.paths import resolve_inside
from mmhpe_ros.skeleton import NUM_JOINTS
from mmhpe_ros.train.config import TrainConfig
from mmhpe_ros.train.data import TARGET, PoseDataset, split_sources
from mmhpe_ros.train.distributed import Context, setup, teardown
from mmhpe_ros.train.state import (
    TrainState,
    check_compatible,
    complete_checkpoints,
    load_checkpoint,
    pause_point,
    remove_partial,
    save_checkpoint,
)

log = logging.getLogger(__name__)
LOG_FILE = "log.csv"
BEST, LAST = "best.safetensors", "last.safetensors"


def log_columns(modalities: Iterable[str]) -> list[str]:
    """Columns of the per-epoch CSV log (``mmhpe-ros plot`` reads them)."""
    modalities = list(modalities)
    return (["epoch", "loss", "val_mpjpe_mm", "val_pa_mpjpe_mm"]
            + [f"shapley_{m}" for m in modalities]
            + [f"val_mpjpe_{m}_only_mm" for m in modalities]
            + ["penalty", "lr", "time"])


@dataclass
class TrainResult:
    model: PoseModel
    history: list[dict[str, Any]]
    output_dir: Path


def seed_epoch(seed: int, epoch: int, rank: int) -> torch.Generator:
    """Re-seed torch/numpy for one epoch of one process; returns the modality-dropout generator."""
    torch.manual_seed(seed * 100_003 + epoch * 1009 + rank)
    np.random.seed((seed * 100_003 + epoch * 1009 + rank) % 2**32)
    return torch.Generator().manual_seed(seed * 7919 + epoch * 101 + rank + 1)


def _to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items() if isinstance(v, Tensor)}


class Trainer:
    """One training run of ``config`` in this process (see module docstring)."""

    def __init__(self, config: TrainConfig, context: Context | None = None,
                 datasets: tuple[PoseDataset, PoseDataset] | None = None) -> None:
        self.config, self.ctx = config, context or Context()
        self.output_dir = Path(config.output_dir)
        self.model_config = ModelConfig.from_dict(
            {**dict(config.model), "modalities": list(config.model_modalities)})
        if datasets is None:
            train_frames, val_frames = split_sources(config)
            progress = config.progress and self.ctx.is_main
            datasets = (PoseDataset(train_frames, self.model_config, progress=progress),
                        PoseDataset(val_frames, self.model_config, progress=progress))
        self.train_set, self.val_set = datasets
        if len(self.train_set) == 0 or len(self.val_set) == 0:
            raise ValueError(f"empty split: {len(self.train_set)} training, {len(self.val_set)} validation frames")
        torch.manual_seed(config.seed)  # identical initial weights in every process
        self.model = PoseModel(self.model_config).to(self.ctx.device)
        self.model.init_output_bias(self.train_set.mean_joints())
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, config.lr_step_epochs, config.lr_gamma)
        self.awc = (AdaptiveWeightConstraint(self.model, config.awc_alpha_strong, config.awc_alpha_weak,
                                             config.awc_epochs, config.awc_anchor)
                    if config.method == "awc" else None)
        self.ogm = (GradientModulation(self.model, config.ogm_alpha, config.ogm_epochs, config.ogm_noise)
                    if config.method == "ogm" else None)
        self.state = TrainState(config=config.to_dict())
        self.network: torch.nn.Module = self.model
        if self.ctx.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
            self.network = DistributedDataParallel(self.model, device_ids=ids)
        per_process = max(1, config.batch_size // self.ctx.world_size)
        self.sampler = DistributedSampler(self.train_set, num_replicas=self.ctx.world_size,
                                          rank=self.ctx.rank, shuffle=True, seed=config.seed)
        pin = self.ctx.device.type == "cuda"
        self.train_loader = DataLoader(self.train_set, per_process, sampler=self.sampler,
                                       num_workers=config.num_workers, pin_memory=pin)
        # Validation: this process's share (no padding), fixed order.
        val_share = list(range(self.ctx.rank, len(self.val_set), self.ctx.world_size))
        self.val_loader = DataLoader(torch.utils.data.Subset(self.val_set, val_share), per_process,
                                     num_workers=config.num_workers, pin_memory=pin)
        # Assessment: the same first validation batches in every process.
        self.shapley_loader = DataLoader(torch.utils.data.Subset(
            self.val_set, range(min(len(self.val_set), config.shapley_batches * per_process))), per_process)
        # Fisher: a fixed, evenly spread slice of this process's training frames.
        fisher_frames = np.linspace(0, len(self.train_set) - 1, config.fisher_batches * per_process).astype(int)
        fisher_share = sorted(set(fisher_frames[self.ctx.rank::self.ctx.world_size].tolist()))
        self.fisher_loader = DataLoader(torch.utils.data.Subset(self.train_set, fisher_share), per_process)
        self.writer = self._tensorboard()

    # -- resume --------------------------------------------------------------------------------

    def resume(self) -> bool:
        """Continue from the newest complete checkpoint (False: none, start afresh)."""
        if self.ctx.is_main:
            for path in remove_partial(self.output_dir):
                log.warning("removed interrupted checkpoint write %s", path)
        self.ctx.barrier()
        checkpoints = complete_checkpoints(self.output_dir)
        if not checkpoints:
            return False
        path = checkpoints[-1]
        model, state = load_checkpoint(path, self.ctx.device)
        if model.modalities != self.model.modalities:
            raise CheckpointError(
                f"{path}: checkpoint model fuses {list(model.modalities)}, the config trains "
                f"{list(self.model.modalities)}")
        check_compatible(state.config, self.config.to_dict(), path)
        self.model.load_state_dict(model.state_dict())
        self.optimizer.load_state_dict(state.optimizer)
        self.scheduler.load_state_dict(state.scheduler)
        if self.awc is not None and state.awc is not None:
            self.awc.load_state_dict({**state.awc,
                                      "fisher": {m: [t.to(self.ctx.device) for t in v] for m, v in state.awc["fisher"].items()},
                                      "anchor": {m: [t.to(self.ctx.device) for t in v] for m, v in state.awc["anchor"].items()}})
        state.config = self.config.to_dict()
        self.state = state
        if self.ctx.is_main:
            log.info("resumed from %s (epoch %d done)", path, state.epoch)
        return True

    # -- training ------------------------------------------------------------------------------

    def fit(self) -> TrainResult:
        config = self.config
        if self.ctx.is_main:
            log.info("training %s on %d frames, validating on %d; %d parameters; %d process(es) on %s",
                     config.method, len(self.train_set), len(self.val_set), count_parameters(self.model),
                     self.ctx.world_size, self.ctx.device)
        for epoch in range(self.state.epoch, config.epochs):
            start = time.perf_counter()
            loss, penalty = self.train_epoch(epoch)
            metrics = self.validate()
            assessment = self.assess()
            row = self._row(epoch, loss, penalty, metrics, assessment, time.perf_counter() - start)
            self.state.history.append(row)
            self.state.epoch = epoch + 1
            if assessment is not None:
                self.state.strong = list(assessment.strong)
            if self.ctx.is_main:
                self._save(row)
            self.ctx.barrier()
        if self.writer is not None:
            self.writer.close()
        return TrainResult(self.model, self.state.history, self.output_dir)

    def train_epoch(self, epoch: int) -> tuple[float, float]:
        """One pass over this process's share of the training frames: (mean loss, mean penalty)."""
        generator = seed_epoch(self.config.seed, epoch, self.ctx.rank)
        noise = torch.Generator().manual_seed(self.config.seed * 31 + epoch)  # same in every process
        self.sampler.set_epoch(epoch)
        use_awc = self.awc is not None and self.awc.active(epoch)
        use_ogm = self.ogm is not None and self.ogm.active(epoch)
        if use_awc:
            self.awc.update(self.fisher_loader, self.state.strong, self.ctx.device, self.ctx.all_mean_)
        self.network.train()
        totals = torch.zeros(3, dtype=torch.float64, device=self.ctx.device)  # loss sum, penalty sum, batches
        batches = self.train_loader
        if self.config.progress and self.ctx.is_main:
            from mmhpe_ros.progress import progress_bar

            batches = progress_bar(batches, desc=f"epoch {epoch + 1}/{self.config.epochs}", unit="batch", leave=False)
        for number, batch in enumerate(batches):
            if number == 1:
                pause_point(f"batch:{epoch}")
            inputs = _to_device(batch, self.ctx.device)
            present = modality_dropout(inputs[PRESENT], self.model_config.modality_dropout, generator)
            loss = mpjpe_loss(self.network(inputs, present), inputs[TARGET])
            penalty = self.awc.penalty() if use_awc else loss.new_zeros(())
            self.optimizer.zero_grad(set_to_none=True)
            (loss + penalty).backward()
            if use_ogm:
                errors, counts = self.ogm.unimodal_errors(inputs, inputs[TARGET])
                self.ctx.all_sum(errors)
                self.ctx.all_sum(counts)
                self.ogm.modulate(self.ogm.coefficients(errors, counts), noise)
            self.optimizer.step()
            totals += torch.stack([loss.detach().double(), penalty.detach().double(), totals.new_ones(())])
        self.scheduler.step()
        self.ctx.all_sum(totals)
        count = max(float(totals[2]), 1.0)
        return float(totals[0]) / count, float(totals[1]) / count

    @torch.no_grad()
    def predict(self, loader: DataLoader) -> dict[str, np.ndarray]:
        """Predictions of this process: ``"all"`` (every present modality), each modality alone,
        and the targets, as (F, 17, 3) arrays; frames lacking a modality are NaN in its array."""
        self.model.eval()
        out: dict[str, list[np.ndarray]] = {k: [] for k in ("all", TARGET, *self.model.modalities)}
        for batch in loader:
            inputs = _to_device(batch, self.ctx.device)
            features = self.model.encode(inputs)
            present = inputs[PRESENT].bool()
            out["all"].append(self.model.fuse(features, present).cpu().numpy())
            out[TARGET].append(inputs[TARGET].cpu().numpy())
            for i, m in enumerate(self.model.modalities):
                only = torch.zeros_like(present)
                only[:, i] = present[:, i]
                predicted = self.model.fuse(features, only).cpu().numpy()
                predicted[~present[:, i].cpu().numpy()] = np.nan
                out[m].append(predicted)
        return {k: np.concatenate(v) if v else np.zeros((0, NUM_JOINTS, 3)) for k, v in out.items()}

    def validate(self) -> dict[str, float]:
        """Validation MPJPE / PA-MPJPE (mm) over every process's frames, fused and per modality."""
        predicted = self.predict(self.val_loader)
        target = predicted[TARGET]
        names = ["all", "pa", *self.model.modalities]
        sums = torch.zeros(2 * len(names), dtype=torch.float64)
        for i, name in enumerate(names):
            if name == "pa":
                value, count = (pa_mpjpe(predicted["all"], target) if len(target) else 0.0), len(target)
            else:
                keep = ~np.isnan(predicted[name][:, 0, 0])
                count = int(keep.sum())
                value = mpjpe(predicted[name][keep], target[keep]) if count else 0.0
            sums[2 * i], sums[2 * i + 1] = value * count, count
        sums = self.ctx.all_sum(sums.to(self.ctx.device)).cpu()
        return {name: float(sums[2 * i] / sums[2 * i + 1]) if sums[2 * i + 1] > 0 else float("nan")
                for i, name in enumerate(names)}

    def assess(self) -> Assessment | None:
        if self.config.shapley_batches <= 0 or len(self.model.modalities) < 2:
            return None
        return assess(self.model, self.shapley_loader, self.ctx.device)

    # -- outputs -------------------------------------------------------------------------------

    def _row(self, epoch: int, loss: float, penalty: float, metrics: dict[str, float],
             assessment: Assessment | None, seconds: float) -> dict[str, Any]:
        shapley = assessment.by_modality() if assessment is not None else {}
        row: dict[str, Any] = {"epoch": epoch + 1, "loss": loss, "val_mpjpe_mm": metrics["all"],
                               "val_pa_mpjpe_mm": metrics["pa"]}
        row.update({f"shapley_{m}": shapley.get(m, float("nan")) for m in self.model.modalities})
        row.update({f"val_mpjpe_{m}_only_mm": metrics[m] for m in self.model.modalities})
        row.update({"penalty": penalty, "lr": self.optimizer.param_groups[0]["lr"], "time": seconds,
                    "shapley_seconds": assessment.seconds if assessment is not None else 0.0})
        return row

    def _card(self, row: Mapping[str, Any]) -> dict[str, Any]:
        c = self.config
        return {
            "training_data": {"source": c.data_root or list(c.bags), "protocol": c.protocol,
                              "setting": c.setting, "split_seed": c.split_seed,
                              "train_frames": len(self.train_set), "val_frames": len(self.val_set)},
            "method": {"name": c.method, "epochs": self.state.epoch, "seed": c.seed,
                       **({"awc_alpha_strong": c.awc_alpha_strong, "awc_alpha_weak": c.awc_alpha_weak,
                           "awc_epochs": c.awc_epochs, "awc_anchor": c.awc_anchor} if c.method == "awc" else {}),
                       **({"ogm_alpha": c.ogm_alpha, "ogm_epochs": c.ogm_epochs} if c.method == "ogm" else {})},
            "metrics": {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()},
            "training_config": c.to_dict(),
        }

    def _save(self, row: dict[str, Any]) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.state.optimizer = self.optimizer.state_dict()
        self.state.scheduler = self.scheduler.state_dict()
        self.state.awc = self.awc.state_dict() if self.awc is not None and self.awc.fisher else None
        card = self._card(row)
        improved = self.state.best_mpjpe_mm is None or row["val_mpjpe_mm"] < self.state.best_mpjpe_mm
        if improved:
            self.state.best_mpjpe_mm = row["val_mpjpe_mm"]
        # The checkpoint first: the other files never run ahead of what --resume restores.
        save_checkpoint(self.output_dir, self.model, self.state, card)
        if improved:
            save_model(self.output_file(BEST), self.model, card)
        save_model(self.output_file(LAST), self.model, card)
        write_log(self.output_file(LOG_FILE), self.state.history, log_columns(self.model.modalities))
        if self.writer is not None:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, row["epoch"])
            self.writer.flush()
        if self.config.progress:
            summary = ", ".join(f"{k} {row[k]:.4g}" for k in ("loss", "val_mpjpe_mm", "val_pa_mpjpe_mm"))
            shapley = " ".join(f"{m}={row[f'shapley_{m}']:.3g}" for m in self.model.modalities)
            print(f"epoch {row['epoch']}/{self.config.epochs}: {summary}; shapley {shapley}; {row['time']:.1f} s",
                  flush=True)

    def _tensorboard(self) -> Any:
        if not (self.config.tensorboard and self.ctx.is_main):
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard not installed: the CSV log is enough
            return None
        return SummaryWriter(str(self.output_file("tensorboard")))

    def output_file(self, name: str) -> Path:
        """``output_dir/name``; a link there that leads out of ``output_dir`` is refused."""
        return resolve_inside(self.output_dir, name, "training output")


def write_log(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """The whole per-epoch log as CSV, replaced atomically (a resumed run rewrites it)."""
    extra = [k for row in rows for k in row if k not in columns]
    header = columns + sorted(set(extra), key=extra.index)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda tmp: tmp.write_text(text.getvalue(), encoding="utf-8"))


def train(config: TrainConfig, resume: bool = False,
          datasets: tuple[PoseDataset, PoseDataset] | None = None) -> TrainResult:
    """Train per ``config`` (joining ``torchrun``'s process group if any); ``resume`` continues
    from the newest complete checkpoint of ``config.output_dir``."""
    context = setup(config.device)
    try:
        trainer = Trainer(config, context, datasets)
        if resume:
            trainer.resume()
        elif complete_checkpoints(config.output_dir):
            raise FileExistsError(
                f"{config.output_dir}: holds checkpoints of an earlier run; pass --resume to continue "
                f"it, or choose another output_dir")
        return trainer.fit()
    finally:
        teardown()


__all__ = ["BEST", "LAST", "LOG_FILE", "TrainResult", "Trainer", "log_columns", "seed_epoch", "train", "write_log"]
