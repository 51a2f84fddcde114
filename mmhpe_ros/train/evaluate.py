"""Pose error of a model for every subset of its modalities, overall and per action.

For each non-empty subset S of the model's M modalities (2^M - 1 of them: 15 for four), every
frame is predicted with ``present = (modalities the frame has) & S``. The encoders run once per
batch; only fusion and head re-run per subset (:meth:`PoseModel.fuse` on cached features).

Missing data is counted, never imputed. For a subset S:

- a frame that has none of S's modalities is not evaluated for S (it is not in the row's
  ``frames``);
- a frame that has some but not all of them is evaluated with those it has and counted in the
  row's ``partial`` column; with ``complete_only=True`` it is left out instead.

A frame "has" a modality when :func:`~mmhpe_ros.model.inputs.prepare_inputs` marked it present
(the data exists and holds a finite value). So every row's errors are over exactly the frames it
reports, each predicted from data the frame really had. MPJPE and PA-MPJPE (mm,
:mod:`mmhpe_ros.metrics`) are means over those frames of the per-frame errors.
"""
from __future__ import annotations

import csv
import itertools
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from mmhpe_ros.metrics import frame_pa_mpjpe, joint_errors
from mmhpe_ros.modalities import ACTION_NAMES
from mmhpe_ros.model.body import BodyFrame
from mmhpe_ros.model.inputs import PRESENT
from mmhpe_ros.model.pose_model import PoseModel
from mmhpe_ros.skeleton import NUM_JOINTS
from mmhpe_ros.train.augment import ROOT, YAW
from mmhpe_ros.train.data import TARGET, PoseDataset, TrainingData, source_index, validation_data

if TYPE_CHECKING:
    from mmhpe_ros.model.config import ModelConfig
    from mmhpe_ros.train.config import TrainConfig

ACTION = "action"  # batch key: the MM-Fi action code ("A01".."A27") of each frame
ALL = "all"  # the action of the overall rows
SUBSETS_CSV, SUBSETS_MD, ACTIONS_CSV, ACTIONS_MD = "subsets.csv", "subsets.md", "actions.csv", "actions.md"
CSV_COLUMNS = ("action", "action_name", "subset", "size", "frames", "partial", "mpjpe_mm", "pa_mpjpe_mm")


def subsets_of(modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset of ``modalities``, by size, then in modality order."""
    return [c for k in range(1, len(modalities) + 1) for c in itertools.combinations(modalities, k)]


def subset_name(subset: Sequence[str]) -> str:
    """``("rgb", "lidar")`` -> ``"rgb+lidar"`` (the name used in tables and plots)."""
    return "+".join(subset)


@dataclass(frozen=True)
class FrameErrors:
    """Per-frame errors of every subset: arrays (F, K) for F frames and K = len(subsets).

    Errors are NaN where the frame has none of the subset's modalities.
    """

    modalities: tuple[str, ...]
    subsets: tuple[tuple[str, ...], ...]
    mpjpe_mm: np.ndarray
    pa_mpjpe_mm: np.ndarray
    partial: np.ndarray  # bool: evaluated with only some of the subset's modalities
    actions: np.ndarray  # (F,) str; "" where the batches carried no action
    joint_error_mm: np.ndarray  # (F, K, J): each joint's error, NaN like mpjpe_mm
    predicted: np.ndarray | None = None  # (F, J, 3) metres, base frame: the prediction of the last subset (all modalities)
    target: np.ndarray | None = None  # (F, J, 3) metres, base frame: the ground truth


@dataclass(frozen=True)
class SubsetScore:
    """One row: a subset's errors over the frames of one action (or of all, ``action == "all"``)."""

    subset: tuple[str, ...]
    action: str
    frames: int
    partial: int
    mpjpe_mm: float  # NaN when no frame was evaluated
    pa_mpjpe_mm: float

    @property
    def name(self) -> str:
        return subset_name(self.subset)


@dataclass(frozen=True)
class Evaluation:
    """Scores of every subset, overall and per action (see the module docstring for the counts)."""

    modalities: tuple[str, ...]
    frames: int  # frames given
    complete_only: bool
    scores: tuple[SubsetScore, ...]  # overall rows first, then per action; subsets in subsets_of order
    joint_mpjpe_mm: dict[str, tuple[float, ...]] = field(default_factory=dict)  # subset name -> J errors, overall

    def overall(self) -> list[SubsetScore]:
        return [s for s in self.scores if s.action == ALL]

    def per_action(self) -> list[SubsetScore]:
        return [s for s in self.scores if s.action != ALL]

    def actions(self) -> list[str]:
        return sorted({s.action for s in self.per_action()})

    def score(self, subset: Sequence[str], action: str = ALL) -> SubsetScore:
        wanted = tuple(m for m in self.modalities if m in subset)
        for s in self.scores:
            if s.subset == wanted and s.action == action:
                return s
        raise KeyError(f"no score for subset {subset_name(subset)!r}, action {action!r}")

    def markdown(self) -> str:
        """The subset table (overall) in Markdown."""
        lines = ["| modalities | frames | partial | MPJPE (mm) | PA-MPJPE (mm) |",
                 "|---|---:|---:|---:|---:|"]
        lines += [f"| {s.name} | {s.frames} | {s.partial} | {_number(s.mpjpe_mm)} | {_number(s.pa_mpjpe_mm)} |"
                  for s in self.overall()]
        return "\n".join(lines) + "\n"

    def actions_markdown(self) -> str:
        """Per action: frames, MPJPE of all modalities and of each one alone, PA-MPJPE of all (mm)."""
        every = tuple(self.modalities)
        singles = [(m,) for m in self.modalities] if len(self.modalities) > 1 else []
        header = ["action", "name", "frames", f"MPJPE {subset_name(every)}",
                  *(f"MPJPE {m[0]}" for m in singles), f"PA-MPJPE {subset_name(every)}"]
        lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
        for action in self.actions():
            full = self.score(every, action)
            cells = [action, ACTION_NAMES.get(action, ""), str(full.frames), _number(full.mpjpe_mm),
                     *(_number(self.score(m, action).mpjpe_mm) for m in singles), _number(full.pa_mpjpe_mm)]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def write(self, out_dir: str | Path, title: str | None = None) -> dict[str, Path]:
        """Write subsets.md/.csv and actions.md/.csv into ``out_dir``; returns the paths by name."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {name: out / name for name in (SUBSETS_MD, SUBSETS_CSV, ACTIONS_MD, ACTIONS_CSV)}
        heading = f"# {title}\n\n" if title else ""
        note = ("\nframes: frames evaluated (those with at least one of the subset's modalities); "
                + ("frames missing any of them are left out (complete only).\n" if self.complete_only else
                   "partial: of those, frames missing some of them, evaluated with the ones they have.\n"))
        paths[SUBSETS_MD].write_text(heading + self.markdown() + note, encoding="utf-8")
        paths[ACTIONS_MD].write_text(heading + self.actions_markdown(), encoding="utf-8")
        write_csv(paths[SUBSETS_CSV], self.overall())
        write_csv(paths[ACTIONS_CSV], self.per_action())
        return paths


def _number(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{value:.2f}"


def write_csv(path: str | Path, scores: Iterable[SubsetScore]) -> None:
    """One row per score, columns :data:`CSV_COLUMNS` (errors with 4 decimals, empty when none)."""
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(CSV_COLUMNS)
        for s in scores:
            writer.writerow([s.action, ACTION_NAMES.get(s.action, ""), s.name, len(s.subset), s.frames,
                             s.partial, *("" if np.isnan(v) else f"{v:.4f}" for v in (s.mpjpe_mm, s.pa_mpjpe_mm))])


@torch.no_grad()
def frame_errors(model: PoseModel, batches: Iterable[Mapping[str, object]],
                 device: torch.device | str = "cpu") -> FrameErrors:
    """Per-frame MPJPE / PA-MPJPE of every subset of ``model.modalities`` over ``batches``.

    A batch is a collated :class:`PoseDataset` sample dict (``prepare_inputs`` arrays,
    ``present``, ``joints``), optionally with ``action``: a sequence of action codes.
    """
    device = torch.device(device)
    subsets = subsets_of(model.modalities)
    masks = torch.stack([model.presence_mask(s, 1, device)[0] for s in subsets])  # (K, M)
    parts: dict[str, list[np.ndarray]] = {"mpjpe": [], "pa": [], "partial": [], "action": [], "joint": [],
                                          "predicted": [], "target": []}
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            inputs = {k: v.to(device) for k, v in batch.items() if isinstance(v, Tensor)}
            present = inputs[PRESENT].bool()  # (B, M)
            features = model.encode(inputs)
            effective = present[None] & masks[:, None]  # (K, B, M)
            predicted = torch.stack([model.fuse(features, mask) for mask in effective])  # (K, B, 17, 3)
            target = inputs[TARGET].to(predicted.dtype).expand_as(predicted)
            used = effective.any(dim=2)  # (K, B)
            complete = (present[None] | ~masks[:, None]).all(dim=2)
            p, t = predicted.double().cpu().numpy(), target.double().cpu().numpy()
            unused = ~used.cpu().numpy()
            joint = np.where(unused[..., None], np.nan, joint_errors(p, t))  # (K, B, J)
            parts["joint"].append(joint.transpose(1, 0, 2))
            parts["mpjpe"].append(joint.mean(axis=-1).T)
            parts["pa"].append(np.where(unused, np.nan, frame_pa_mpjpe(p, t)).T)
            parts["partial"].append((used & ~complete).cpu().numpy().T)
            if ROOT in batch:  # skeletons in the base frame: the body-frame joints moved back
                root = np.asarray(batch[ROOT], dtype=np.float64)
                body = BodyFrame(root, np.asarray(batch[YAW], dtype=np.float64), np.ones(len(root), bool))
                parts["predicted"].append(body.to_base(p[-1]))
                parts["target"].append(body.to_base(t[-1]))
            else:
                parts["predicted"].append(p[-1])
                parts["target"].append(t[-1])
            actions = batch.get(ACTION)
            count = present.shape[0]
            parts["action"].append(np.array([""] * count if actions is None else [str(a) for a in actions]))
    finally:
        model.train(was_training)
    k = len(subsets)
    joined = {key: np.concatenate(v) if v else np.zeros((0, k)) for key, v in parts.items()}
    joints = np.concatenate(parts["joint"]) if parts["joint"] else np.zeros((0, k, NUM_JOINTS))
    skeletons = {key: np.concatenate(parts[key]) if parts[key] else np.zeros((0, NUM_JOINTS, 3))
                 for key in ("predicted", "target")}
    return FrameErrors(tuple(model.modalities), tuple(subsets), joined["mpjpe"], joined["pa"],
                       joined["partial"].astype(bool), joined["action"].astype(str).reshape(-1), joints,
                       skeletons["predicted"], skeletons["target"])


def summarise(errors: FrameErrors, complete_only: bool = False) -> Evaluation:
    """Mean errors per subset, overall and per action, from :func:`frame_errors`."""
    mpjpe, pa = errors.mpjpe_mm.copy(), errors.pa_mpjpe_mm.copy()
    if complete_only:
        mpjpe[errors.partial] = np.nan
        pa[errors.partial] = np.nan
    partial = errors.partial & ~np.isnan(mpjpe)
    groups = [(ALL, np.ones(len(errors.actions), dtype=bool))]
    groups += [(a, errors.actions == a) for a in sorted(set(errors.actions.tolist()) - {""})]
    scores = []
    for action, rows in groups:
        for j, subset in enumerate(errors.subsets):
            values = mpjpe[rows, j]
            kept = ~np.isnan(values)
            count = int(kept.sum())
            scores.append(SubsetScore(
                subset, action, count, int(partial[rows, j].sum()),
                float(values[kept].mean()) if count else float("nan"),
                float(pa[rows, j][kept].mean()) if count else float("nan")))
    joint = np.where(np.isnan(mpjpe)[..., None], np.nan, errors.joint_error_mm)  # complete_only applied
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a subset no frame was evaluated for: NaN
        joint_means = np.nanmean(joint, axis=0) if len(joint) else np.full((len(errors.subsets), NUM_JOINTS), np.nan)
    per_joint = {subset_name(s): tuple(float(v) for v in joint_means[j]) for j, s in enumerate(errors.subsets)}
    return Evaluation(errors.modalities, len(errors.actions), complete_only, tuple(scores), per_joint)


def evaluate(model: PoseModel, batches: Iterable[Mapping[str, object]],
             device: torch.device | str = "cpu", complete_only: bool = False) -> Evaluation:
    """MPJPE / PA-MPJPE of every modality subset, overall and per action (module docstring)."""
    return summarise(frame_errors(model, batches, device), complete_only)


def split_dataset(config: "TrainConfig", model_config: "ModelConfig", split: str = "val", missing: str = "skip",
                  progress: bool = False) -> PoseDataset:
    """The frames of ``split`` prepared for ``model_config``: ``val`` / ``train`` / ``all`` (every
    frame of the protocol's actions) with the MM-Fi frame policy ``missing``, or ``holdout`` (the
    held-out training sequences of ``config``'s holdout_fraction / holdout_seed)."""
    import dataclasses

    if split == "holdout":
        return TrainingData(dataclasses.replace(config, missing=missing), model_config, progress=progress).holdout
    return validation_data(config, model_config, missing=missing, progress=progress, split=split)


class ActionColumn:
    """``indices -> {"action": [action code of each sample]}``: the ``extra`` of ``batch_loader``."""

    def __init__(self, dataset: PoseDataset) -> None:
        self.actions = np.array([key.action for key in dataset.sequence_keys()])

    def __call__(self, indices: np.ndarray) -> dict[str, list[str]]:
        return {ACTION: self.actions[indices].tolist()}


class ActionLabelled(Dataset):
    """A :class:`PoseDataset` whose samples also carry ``action``, their sequence's action code."""

    def __init__(self, dataset: PoseDataset) -> None:
        index = source_index(dataset.frames)
        self.dataset = dataset
        self.actions = [index[int(p)][0].action for p in dataset.positions]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, object]:
        return {**self.dataset[index], ACTION: self.actions[index]}


__all__ = ["ACTION", "ALL", "ActionColumn", "ActionLabelled", "split_dataset", "Evaluation", "FrameErrors", "SubsetScore", "evaluate",
           "frame_errors", "subset_name", "subsets_of", "summarise", "write_csv"]
