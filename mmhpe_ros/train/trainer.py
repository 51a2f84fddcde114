"""The training loop of every method: naive, modality dropout, AWC, OGM-GE, G-Blending, unimodal.

Leak-free: the run opens only the training split (:class:`~mmhpe_ros.train.data.TrainingData`);
whole training sequences are held out and every training decision is made on them - the
Shapley assessment (hence AWC's strong/weak split), the choice of ``best.safetensors``,
G-Blending's weights, the card's expected per-joint errors. The validation split is read by
``mmhpe-ros evaluate``; ``val_curves: true`` also logs validation errors per epoch, for plots
only (``val_*`` columns; no decision reads them).

One epoch (``config.method`` picks the regulariser):

1. re-seed the RNGs from (seed, epoch, rank); AWC: fresh alphas from the latest assessment's
   strong set, per-sample Fisher + anchor (:class:`AdaptiveWeightConstraint`);
2. mini-batches (global ``batch_size`` split over processes), modality dropout at the run's rate
   (0 unless method ``dropout`` or ``modality_dropout`` set); loss MPJPE (+ AWC penalty;
   G-Blending: weighted MPJPE of the fused and each single-modality output); OGM-GE scales
   encoder gradients after backward; Adam, StepLR per epoch;
3. held-out MPJPE / PA-MPJPE with every modality, and per modality alone (the others masked);
4. Shapley assessment on ``shapley_batches`` batches evenly spread over the held-out frames
   (cached encoder features), logged for every method; its strong set feeds the next epoch's AWC;
5. log row (CSV, TensorBoard if installed), checkpoint (atomic), best (lowest held-out MPJPE)
   and last model files; at the end, the cards get each joint's held-out error per modality subset.

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
from torch.utils.data import DataLoader

from mmhpe_ros.data.frames import FrameSource
from mmhpe_ros.metrics import mpjpe, pa_mpjpe
from mmhpe_ros.model.awc import AdaptiveWeightConstraint
from mmhpe_ros.model.card import EXPECTED_ERRORS_KEY, CheckpointError, atomic_write, update_card
from mmhpe_ros.model.checkpoint import save_model
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.fusion import modality_dropout
from mmhpe_ros.model.gblend import GradientBlending
from mmhpe_ros.model.inputs import PRESENT
from mmhpe_ros.model.losses import mpjpe_loss
from mmhpe_ros.model.ogm import GradientModulation
from mmhpe_ros.model.pose_model import PoseModel, count_parameters
from mmhpe_ros.model.shapley import Assessment, assess
from mmhpe_ros.runtime.paths import resolve_inside
from mmhpe_ros.skeleton import NUM_JOINTS
from mmhpe_ros.train.config import TrainConfig
from mmhpe_ros.train.data import TARGET, PoseDataset, Transform, TrainingData, batch_loader, strided, validation_data
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
SELECTION = "lowest held-out MPJPE (held-out training sequences; the validation split is not read)"


def log_columns(modalities: Iterable[str], val_curves: bool = False) -> list[str]:
    """Columns of the per-epoch CSV log (``mmhpe-ros plot`` reads them). ``holdout_*``: the
    held-out training sequences (what decisions use); ``val_*`` (only with ``val_curves``):
    the validation split, for plots only."""
    modalities = list(modalities)
    columns = (["epoch", "loss", "holdout_mpjpe_mm", "holdout_pa_mpjpe_mm"]
               + [f"shapley_{m}" for m in modalities]
               + [f"holdout_mpjpe_{m}_only_mm" for m in modalities]
               + ["penalty", "lr", "time", "shapley_seconds"])
    if val_curves:
        columns += ["val_mpjpe_mm", "val_pa_mpjpe_mm"] + [f"val_mpjpe_{m}_only_mm" for m in modalities]
    return columns


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
    """One training run of ``config`` in this process (see module docstring).

    ``datasets``: ``(fit, holdout)`` or ``(fit, holdout, val)`` datasets instead of opening
    ``config``'s data (tests, benches); ``source``: a frame source to take the training split
    from instead of ``config.data_root`` / ``bags``; ``transform(batch) -> batch``: applied to
    every training batch (numpy arrays; e.g. random rigid augmentation); ``eval_transform``: to
    every held-out and validation batch (what inference does too, e.g. centring).
    """

    def __init__(self, config: TrainConfig, context: Context | None = None,
                 datasets: tuple[PoseDataset, ...] | None = None, source: FrameSource | None = None,
                 transform: Transform | None = None, eval_transform: Transform | None = None) -> None:
        self.config, self.ctx = config, context or Context()
        self.output_dir = Path(config.output_dir)
        self.model_config = ModelConfig.from_dict({**dict(config.model), "modalities": list(config.model_modalities),
                                                   "modality_dropout": config.effective_modality_dropout})
        progress = config.progress and self.ctx.is_main
        self.data_info: dict[str, Any] = {}
        if datasets is None:
            if not self.ctx.is_main:  # the main process fills the disk cache, the others then read it
                self.ctx.barrier()
            data = TrainingData(config, self.model_config, source, progress, transform, eval_transform)
            self.fit_set, self.holdout_set, self.data_info = data.fit, data.holdout, data.info
            self.val_set = (validation_data(config, self.model_config, progress=progress, transform=eval_transform)
                            if config.val_curves else None)
            if self.ctx.is_main:
                self.ctx.barrier()
        else:
            self.fit_set, self.holdout_set = datasets[0], datasets[1]
            self.val_set = datasets[2] if len(datasets) > 2 else None
            self.data_info = {"train_frames": len(self.fit_set), "holdout_frames": len(self.holdout_set)}
        if len(self.fit_set) == 0 or len(self.holdout_set) == 0:
            raise ValueError(f"empty split: {len(self.fit_set)} training, {len(self.holdout_set)} held-out frames")
        if config.val_curves and self.val_set is None:
            raise ValueError("val_curves needs a validation dataset")
        torch.manual_seed(config.seed)  # identical initial weights in every process
        self.model = PoseModel(self.model_config).to(self.ctx.device)
        np.random.seed(config.seed % 2**32)  # mean_joints reads augmented batches: the same draw in every run
        self.model.init_output_bias(self.fit_set.mean_joints())
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, config.lr_step_epochs, config.lr_gamma)
        self.awc = (AdaptiveWeightConstraint(self.model, config.awc_alpha_strong, config.awc_alpha_weak,
                                             config.awc_epochs, config.awc_anchor)
                    if config.method == "awc" else None)
        self.ogm = (GradientModulation(self.model, config.ogm_alpha, config.ogm_epochs, config.ogm_noise,
                                       config.ogm_coefficient)
                    if config.method == "ogm" else None)
        self.gblend = GradientBlending(self.model.modalities) if config.method == "gblend" else None
        self.state = TrainState(config=config.to_dict())
        self.network: torch.nn.Module = self.model
        if self.ctx.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
            self.network = DistributedDataParallel(self.model, device_ids=ids)
        per_process = max(1, config.batch_size // self.ctx.world_size)
        self.per_process = per_process
        pin = self.ctx.device.type == "cuda"
        common = dict(workers=config.num_workers, pin_memory=pin)
        self.train_loader = batch_loader(self.fit_set, per_process, shuffle=True, seed=config.seed,
                                         rank=self.ctx.rank, world_size=self.ctx.world_size, **common)
        self.sampler = self.train_loader.sampler.sampler  # the DistributedSampler inside the BatchSampler
        # Held-out metrics: this process's share (no padding), fixed order.
        self.holdout_loader = batch_loader(self.holdout_set, per_process, rank=self.ctx.rank,
                                           world_size=self.ctx.world_size, **common)
        # Assessment: the same held-out frames, evenly spread, in every process.
        assessed = strided(len(self.holdout_set), config.shapley_batches * per_process)
        self.shapley_loader = batch_loader(self.holdout_set, per_process, positions=assessed)
        # Fisher: a fixed, evenly spread set of fitted frames, split over the processes.
        fisher = strided(len(self.fit_set), config.fisher_samples)
        self.fisher_loader = batch_loader(self.fit_set, per_process, positions=fisher[self.ctx.rank::self.ctx.world_size])
        # G-Blending: a fixed, evenly spread set of fitted frames for the overfitting gap.
        blend = strided(len(self.fit_set), config.gblend_frames)
        self.gblend_loader = batch_loader(self.fit_set, per_process, positions=blend[self.ctx.rank::self.ctx.world_size])
        self.val_loader = (batch_loader(self.val_set, per_process, rank=self.ctx.rank, world_size=self.ctx.world_size,
                                        **common) if self.val_set is not None else None)
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
        if self.gblend is not None and state.method_state.get("gblend"):
            self.gblend.load_state_dict(state.method_state["gblend"])
        state.config = self.config.to_dict()
        self.state = state
        if self.ctx.is_main:
            log.info("resumed from %s (epoch %d done)", path, state.epoch)
        return True

    # -- training ------------------------------------------------------------------------------

    def fit(self) -> TrainResult:
        config = self.config
        if self.ctx.is_main:
            log.info("training %s on %d frames, deciding on %d held-out frames; %d parameters; %d process(es) on %s",
                     config.method, len(self.fit_set), len(self.holdout_set), count_parameters(self.model),
                     self.ctx.world_size, self.ctx.device)
        for epoch in range(self.state.epoch, config.epochs):
            start = time.perf_counter()
            loss, penalty = self.train_epoch(epoch)
            metrics = self.evaluate_loader(self.holdout_loader)
            assessment = self.assess()
            if self.gblend is not None:
                self.gblend.update(metrics, self.evaluate_loader(self.gblend_loader, pa=False))
            curves = self.evaluate_loader(self.val_loader) if self.val_loader is not None else None
            row = self._row(epoch, loss, penalty, metrics, assessment, curves, time.perf_counter() - start)
            self.state.history.append(row)
            self.state.epoch = epoch + 1
            if assessment is not None:
                self.state.strong = list(assessment.strong)
            if self.ctx.is_main:
                self._save(row)
            self.ctx.barrier()
        if self.ctx.is_main and self.state.history:
            self._expected_errors()
        if self.writer is not None:
            self.writer.close()
        return TrainResult(self.model, self.state.history, self.output_dir)

    def train_epoch(self, epoch: int) -> tuple[float, float]:
        """One pass over this process's share of the training frames: (mean loss, mean penalty)."""
        generator = seed_epoch(self.config.seed, epoch, self.ctx.rank)
        noise = torch.Generator().manual_seed(self.config.seed * 31 + epoch)  # same in every process
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
        use_awc = self.awc is not None and self.awc.active(epoch)
        use_ogm = self.ogm is not None and self.ogm.active(epoch)
        if use_awc:
            self.awc.update(self.fisher_loader, self.state.strong, self.ctx.device, self.ctx.all_mean_)
        self.network.train()
        totals = torch.zeros(3, dtype=torch.float64, device=self.ctx.device)  # loss sum, penalty sum, batches
        batches: Iterable[Mapping[str, Any]] = self.train_loader
        if self.config.progress and self.ctx.is_main:
            from mmhpe_ros.progress import progress_bar

            batches = progress_bar(batches, desc=f"epoch {epoch + 1}/{self.config.epochs}", unit="batch", leave=False)
        rate = self.model_config.modality_dropout
        for number, batch in enumerate(batches):
            if number == 1:
                pause_point(f"batch:{epoch}")
            inputs = _to_device(batch, self.ctx.device)
            present = modality_dropout(inputs[PRESENT], rate, generator) if rate > 0 else inputs[PRESENT]
            if self.gblend is not None:
                loss = self.gblend.loss(self.network(inputs, present, alone=True), inputs[TARGET], present.bool())
            else:
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
            present = inputs[PRESENT].bool()
            stacked = self.model(inputs, present, alone=True).cpu().numpy()
            out["all"].append(stacked[0])
            out[TARGET].append(inputs[TARGET].cpu().numpy())
            for i, m in enumerate(self.model.modalities):
                predicted = stacked[i + 1]
                predicted[~present[:, i].cpu().numpy()] = np.nan
                out[m].append(predicted)
        return {k: np.concatenate(v) if v else np.zeros((0, NUM_JOINTS, 3)) for k, v in out.items()}

    def evaluate_loader(self, loader: DataLoader, pa: bool = True) -> dict[str, float]:
        """MPJPE / PA-MPJPE (mm) over every process's share of ``loader``, fused and per modality alone."""
        predicted = self.predict(loader)
        target = predicted[TARGET]
        names = ["all", "pa", *self.model.modalities]
        sums = torch.zeros(2 * len(names), dtype=torch.float64)
        for i, name in enumerate(names):
            if name == "pa":
                value, count = (pa_mpjpe(predicted["all"], target) if len(target) and pa else 0.0), len(target)
            else:
                keep = ~np.isnan(predicted[name][:, 0, 0])
                count = int(keep.sum())
                value = mpjpe(predicted[name][keep], target[keep]) if count else 0.0
            sums[2 * i], sums[2 * i + 1] = value * count, count
        sums = self.ctx.all_sum(sums.to(self.ctx.device)).cpu()
        return {name: float(sums[2 * i] / sums[2 * i + 1]) if sums[2 * i + 1] > 0 else float("nan")
                for i, name in enumerate(names)}

    def validate(self) -> dict[str, float]:
        """Held-out MPJPE / PA-MPJPE (mm), fused and per modality alone (the metrics decisions use)."""
        return self.evaluate_loader(self.holdout_loader)

    def assess(self) -> Assessment | None:
        if self.config.shapley_batches <= 0 or len(self.model.modalities) < 2:
            return None
        return assess(self.model, self.shapley_loader, self.ctx.device)

    # -- outputs -------------------------------------------------------------------------------

    def _row(self, epoch: int, loss: float, penalty: float, metrics: dict[str, float], assessment: Assessment | None,
             curves: dict[str, float] | None, seconds: float) -> dict[str, Any]:
        shapley = assessment.by_modality() if assessment is not None else {}
        row: dict[str, Any] = {"epoch": epoch + 1, "loss": loss, "holdout_mpjpe_mm": metrics["all"],
                               "holdout_pa_mpjpe_mm": metrics["pa"]}
        row.update({f"shapley_{m}": shapley.get(m, float("nan")) for m in self.model.modalities})
        row.update({f"holdout_mpjpe_{m}_only_mm": metrics[m] for m in self.model.modalities})
        row.update({"penalty": penalty, "lr": self.optimizer.param_groups[0]["lr"], "time": seconds,
                    "shapley_seconds": assessment.seconds if assessment is not None else 0.0})
        if curves is not None:
            row.update({"val_mpjpe_mm": curves["all"], "val_pa_mpjpe_mm": curves["pa"]})
            row.update({f"val_mpjpe_{m}_only_mm": curves[m] for m in self.model.modalities})
        if self.awc is not None and self.awc.fisher:
            row.update({f"fisher_{m}": v for m, v in self.awc.fisher_trace().items()})
        if self.gblend is not None:
            row.update({f"gblend_weight_{k}": float(w) for k, w in zip(self.gblend.names, self.gblend.weights)})
        return row

    def _card(self, row: Mapping[str, Any]) -> dict[str, Any]:
        c = self.config
        method: dict[str, Any] = {"name": c.method, "epochs": self.state.epoch, "seed": c.seed,
                                  "modality_dropout": c.effective_modality_dropout}
        if c.method == "awc":
            method.update(awc_alpha_strong=c.awc_alpha_strong, awc_alpha_weak=c.awc_alpha_weak,
                          awc_epochs=c.awc_epochs, awc_anchor=c.awc_anchor, fisher="per-sample diagonal",
                          fisher_samples=c.fisher_samples)
        if c.method == "ogm":
            method.update(ogm_alpha=c.ogm_alpha, ogm_epochs=c.ogm_epochs, ogm_coefficient=c.ogm_coefficient,
                          ogm_noise=c.ogm_noise)
        if c.method == "gblend":
            method.update(gblend_frames=c.gblend_frames)
        if c.method == "unimodal":
            method.update(modality=c.modality)
        return {
            "training_data": {"source": c.data_root or list(c.bags), "protocol": c.protocol,
                              "setting": c.setting, "split_seed": c.split_seed, "missing": c.missing,
                              **self.data_info},
            "method": method,
            "architecture": self.model_config.describe(),
            "selection": SELECTION,
            "metrics": {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()},
            "training_config": c.to_dict(),
        }

    def _save(self, row: dict[str, Any]) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.state.optimizer = self.optimizer.state_dict()
        self.state.scheduler = self.scheduler.state_dict()
        self.state.awc = self.awc.state_dict() if self.awc is not None and self.awc.fisher else None
        self.state.method_state = {"gblend": self.gblend.state_dict()} if self.gblend is not None else {}
        card = self._card(row)
        improved = self.state.best_mpjpe_mm is None or row["holdout_mpjpe_mm"] < self.state.best_mpjpe_mm
        if improved:
            self.state.best_mpjpe_mm = row["holdout_mpjpe_mm"]
        # The checkpoint first: the other files never run ahead of what --resume restores.
        save_checkpoint(self.output_dir, self.model, self.state, card)
        if improved:
            save_model(self.output_file(BEST), self.model, card)
        save_model(self.output_file(LAST), self.model, card)
        write_log(self.output_file(LOG_FILE), self.state.history,
                  log_columns(self.model.modalities, self.val_loader is not None))
        if self.writer is not None:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, row["epoch"])
            self.writer.flush()
        if self.config.progress:
            summary = ", ".join(f"{k} {row[k]:.4g}" for k in ("loss", "holdout_mpjpe_mm", "holdout_pa_mpjpe_mm"))
            shapley = " ".join(f"{m}={row[f'shapley_{m}']:.3g}" for m in self.model.modalities)
            print(f"epoch {row['epoch']}/{self.config.epochs}: {summary}; shapley {shapley}; {row['time']:.1f} s",
                  flush=True)

    def _expected_errors(self) -> None:
        """Write each joint's mean held-out error per modality subset into the best and last cards
        (``expected_joint_error_mm``, what the fusion node colours joints by)."""
        from mmhpe_ros.model.checkpoint import load_model
        from mmhpe_ros.train.evaluate import evaluate

        loader = batch_loader(self.holdout_set, self.per_process)
        for name in (BEST, LAST):
            path = self.output_file(name)
            if not path.exists():
                continue
            model, _ = load_model(path, self.ctx.device)
            with torch.inference_mode():
                result = evaluate(model, loader, self.ctx.device)
            subsets = {k: [round(v, 2) for v in errors] for k, errors in result.joint_mpjpe_mm.items()
                       if all(v == v for v in errors)}
            note = (f"mean error of each joint (in the card's joint order), mm, per fused modality subset, on the "
                    f"{len(self.holdout_set)} held-out training frames (not the validation split)")
            update_card(path, {EXPECTED_ERRORS_KEY: {"note": note, "subsets": subsets}})

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


def train(config: TrainConfig, resume: bool = False, datasets: tuple[PoseDataset, ...] | None = None,
          source: FrameSource | None = None, transform: Transform | None = None,
          eval_transform: Transform | None = None) -> TrainResult:
    """Train per ``config`` (joining ``torchrun``'s process group if any); ``resume`` continues
    from the newest complete checkpoint of ``config.output_dir``. ``datasets`` / ``source`` /
    ``transform`` / ``eval_transform``: see :class:`Trainer`."""
    context = setup(config.device)
    try:
        trainer = Trainer(config, context, datasets, source, transform, eval_transform)
        if resume:
            trainer.resume()
        elif complete_checkpoints(config.output_dir):
            raise FileExistsError(
                f"{config.output_dir}: holds checkpoints of an earlier run; pass --resume to continue "
                f"it, or choose another output_dir")
        return trainer.fit()
    finally:
        teardown()


__all__ = ["BEST", "LAST", "LOG_FILE", "SELECTION", "TrainResult", "Trainer", "log_columns", "seed_epoch", "train",
           "write_log"]
