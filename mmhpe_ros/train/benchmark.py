"""The benchmark grid: train every (method x seed) run, evaluate each once on validation, tabulate.

:func:`grid` lists the runs (:class:`RunSpec`) of the paper's tables (Qi et al., Tables 1, 3, 4):

- Table 1: each joint method (naive, dropout, OGM-GE, G-Blending, AWC) on all modalities;
- Table 3: each modality trained alone (method ``unimodal``) and chosen subsets fused (naive,
  e.g. RGB + LiDAR);
- Table 4: AWC's alpha sweep (alpha_S, alpha_I); (0, 0) is naive training, the config's own
  alphas are the Table 1 AWC run;

each for every seed. :func:`run_grid` trains what is not finished (``train(..., resume=True)``:
a run killed mid-way continues from its last checkpoint), evaluates each finished model once on
the validation split (MM-Fi toolbox frame policy by default) and stores ``result.json`` in its
folder; a run with a ``result.json`` is never redone, so a killed grid continues where it
stopped. :func:`tables` turns the results into Markdown: mean +- sample standard deviation over
seeds, the paired difference of each method to naive with a 95 % confidence interval (t
distribution over seeds, scipy), each modality's error alone inside the fused model, timing.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from mmhpe_ros.model.card import atomic_write
from mmhpe_ros.modalities import MODALITIES
from mmhpe_ros.train.config import TrainConfig
from mmhpe_ros.train.trainer import BEST, LAST, train

log = logging.getLogger(__name__)
RESULT_FILE = "result.json"
JOINT_METHODS = ("naive", "dropout", "ogm", "gblend", "awc")
TABLE_NAMES = {"methods": "Table 1", "alone": "Table 3", "alpha": "Table 4"}
METHOD_NAMES = {"naive": "naive joint training", "dropout": "modality dropout", "ogm": "OGM-GE",
                "gblend": "G-Blending", "awc": "AWC"}


@dataclass(frozen=True)
class RunSpec:
    """One run of the grid: its folder name, table, seed and the config changes it makes."""

    name: str
    table: str  # "methods" | "alone" | "alpha"
    label: str  # the row it belongs to
    seed: int
    overrides: tuple[tuple[str, Any], ...]

    def config(self, base: TrainConfig, out: Path) -> TrainConfig:
        values = dict(self.overrides)
        return dataclasses.replace(base, **values, seed=self.seed, output_dir=str(out / "runs" / self.name),
                                  progress=False, tensorboard=False)


def parse_alphas(text: str) -> list[tuple[float, float]]:
    """``"0:10000,20000:10000"`` -> [(0, 10000), (20000, 10000)] (alpha_S:alpha_I pairs)."""
    pairs = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        strong, sep, weak = item.partition(":")
        if not sep:
            raise ValueError(f"alpha pair {item!r}: expected alpha_S:alpha_I, e.g. 20000:10000")
        pairs.append((float(strong), float(weak)))
    return pairs


def _number(value: float) -> str:
    return f"{value:g}" if value < 1000 or value % 1000 else f"{value / 1000:g}k"


def grid(base: TrainConfig, methods: Sequence[str], seeds: Sequence[int], alone: Sequence[str] = (),
         subsets: Sequence[Sequence[str]] = (), alphas: Sequence[tuple[float, float]] = ()) -> list[RunSpec]:
    """Every run of the requested tables (see the module docstring), seeds innermost."""
    unknown = [m for m in methods if m not in JOINT_METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; the benchmark's joint methods are {list(JOINT_METHODS)}")
    bad = [m for m in alone if m not in base.modalities] + [m for s in subsets for m in s if m not in base.modalities]
    if bad:
        raise ValueError(f"modalities {bad} are not among the config's {list(base.modalities)}")
    specs: list[RunSpec] = []
    rows: list[tuple[str, str, str, tuple[tuple[str, Any], ...]]] = []
    for method in methods:
        rows.append((method, "methods", METHOD_NAMES[method], (("method", method),)))
    for modality in alone:
        rows.append((f"alone-{modality}", "alone", f"{modality} alone",
                     (("method", "unimodal"), ("modality", modality))))
    for subset in subsets:
        ordered = tuple(m for m in MODALITIES if m in subset)
        name = "+".join(ordered)
        rows.append((f"naive-{name}", "alone", f"{name} (naive)", (("method", "naive"), ("modalities", ordered))))
    for strong, weak in alphas:
        label = f"alpha_S {_number(strong)}, alpha_I {_number(weak)}"
        if strong == 0 and weak == 0:
            rows.append(("naive", "alpha", label, (("method", "naive"),)))
        elif (strong, weak) == (base.awc_alpha_strong, base.awc_alpha_weak):
            rows.append(("awc", "alpha", label, (("method", "awc"),)))
        else:
            rows.append((f"awc-a{_number(strong)}-{_number(weak)}", "alpha", label,
                         (("method", "awc"), ("awc_alpha_strong", strong), ("awc_alpha_weak", weak))))
    for stem, table, label, overrides in rows:
        for seed in seeds:
            specs.append(RunSpec(f"{stem}-s{seed}", table, label, int(seed), overrides))
    return specs


def _digest(config: TrainConfig) -> str:
    values = {k: v for k, v in config.to_dict().items() if k not in ("output_dir", "progress", "tensorboard",
                                                                   "num_workers", "prepare_workers", "device", "cache_dir",
                                                                   "cache_bytes")}
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_result(folder: Path) -> dict[str, Any] | None:
    path = folder / RESULT_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def run_one(spec: RunSpec, base: TrainConfig, out: Path, missing: str = "skip", checkpoint: str = "best",
            batch_size: int = 256) -> dict[str, Any]:
    """Train (or resume) one run, evaluate it once on validation, store and return its result."""
    import torch

    from mmhpe_ros.model.checkpoint import load_model
    from mmhpe_ros.train.data import batch_loader
    from mmhpe_ros.train.distributed import resolve_device
    from mmhpe_ros.train.evaluate import ActionColumn, evaluate, split_dataset

    config = spec.config(base, out)
    folder = Path(config.output_dir)
    done = read_result(folder)
    digest = _digest(config)
    if done is not None:
        if done.get("config_digest") != digest:
            raise ValueError(f"{folder}: finished with another config; use another --out for a changed grid")
        return done
    start = time.perf_counter()
    result = train(config, resume=True)
    trained = time.perf_counter() - start
    start = time.perf_counter()
    device = resolve_device(config.device)
    model, card = load_model(folder / (BEST if checkpoint == "best" else LAST), device)
    dataset = split_dataset(config, model.config, "val", missing)
    with torch.inference_mode():
        evaluation = evaluate(model, batch_loader(dataset, batch_size, extra=ActionColumn(dataset)), device)
    evaluated = time.perf_counter() - start
    record = {
        "name": spec.name, "table": spec.table, "label": spec.label, "seed": spec.seed,
        "method": config.method, "modalities": list(config.model_modalities),
        "awc_alpha_strong": config.awc_alpha_strong, "awc_alpha_weak": config.awc_alpha_weak,
        "config_digest": digest, "epochs": len(result.history), "checkpoint": checkpoint,
        "checkpoint_epoch": card.get("metrics", {}).get("epoch"), "missing": missing,
        "train_seconds": round(trained, 2), "evaluate_seconds": round(evaluated, 2),
        "epoch_seconds": round(float(np.mean([r["time"] for r in result.history])), 3) if result.history else None,
        "train_frames": card.get("training_data", {}).get("train_frames"),
        "holdout_frames": card.get("training_data", {}).get("holdout_frames"),
        "val_frames": evaluation.frames,
        "subsets": {s.name: {"frames": s.frames, "partial": s.partial, "mpjpe_mm": s.mpjpe_mm,
                             "pa_mpjpe_mm": s.pa_mpjpe_mm} for s in evaluation.overall()},
    }
    text = json.dumps(record, indent=1) + "\n"
    atomic_write(folder / RESULT_FILE, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return record


def _run_one_job(args: tuple[RunSpec, dict[str, Any], str, str, str, int]) -> dict[str, Any]:
    """Process-pool entry: one thread per process (several runs share the cores)."""
    import torch

    spec, base, out, missing, checkpoint, batch_size = args
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    return run_one(spec, TrainConfig.from_dict(base), Path(out), missing, checkpoint, batch_size)


def run_grid(specs: Sequence[RunSpec], base: TrainConfig, out: str | Path, jobs: int = 1, missing: str = "skip",
             checkpoint: str = "best", batch_size: int = 256,
             on_done: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Train and evaluate every run not yet finished; returns every run's result, in ``specs`` order."""
    out = Path(out)
    unique = list({spec.name: spec for spec in specs}.values())
    results: dict[str, dict[str, Any]] = {}
    pending = []
    for spec in unique:
        done = read_result(Path(spec.config(base, out).output_dir))
        if done is not None and done.get("config_digest") == _digest(spec.config(base, out)):
            results[spec.name] = done
        else:
            pending.append(spec)
    log.info("benchmark: %d runs, %d finished, %d to do", len(unique), len(results), len(pending))
    if jobs > 1 and len(pending) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        _prepare_once(pending, base, out)
        work = [(spec, base.to_dict(), str(out), missing, checkpoint, batch_size) for spec in pending]
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_run_one_job, item): item[0] for item in work}
            for future in as_completed(futures):
                record = future.result()
                results[record["name"]] = record
                if on_done is not None:
                    on_done(record)
    else:
        for spec in pending:
            record = run_one(spec, base, out, missing, checkpoint, batch_size)
            results[spec.name] = record
            if on_done is not None:
                on_done(record)
    return [{**results[spec.name], "table": spec.table, "label": spec.label} for spec in specs]


def _prepare_once(specs: Iterable[RunSpec], base: TrainConfig, out: Path) -> None:
    """Fill the disk cache of prepared inputs before parallel runs start (each distinct input set once)."""
    from mmhpe_ros.model.config import ModelConfig
    from mmhpe_ros.train.data import TrainingData

    if base.resolved_cache_dir() is None:
        return
    seen = set()
    for spec in specs:
        config = spec.config(base, out)
        model_config = ModelConfig.from_dict({**dict(config.model), "modalities": list(config.model_modalities)})
        key = json.dumps(model_config.input_fields(), sort_keys=True)
        if key not in seen:
            seen.add(key)
            TrainingData(config, model_config, progress=base.progress)


# -- tables -------------------------------------------------------------------------------------


def _stats(values: Sequence[float]) -> tuple[float, float, int]:
    array = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if not len(array):
        return math.nan, math.nan, 0
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else math.nan, len(array)


def mean_sd(values: Sequence[float]) -> str:
    """``"53.87 +- 1.20"`` over seeds (sample sd), ``"53.87"`` for one value, ``"-"`` for none."""
    mean, sd, n = _stats(values)
    if n == 0:
        return "-"
    return f"{mean:.2f}" if n == 1 else f"{mean:.2f} +- {sd:.2f}"


def paired_interval(differences: Sequence[float], level: float = 0.95) -> tuple[float, float, float, int]:
    """(mean, low, high, n) of paired differences: the t-distribution confidence interval."""
    from scipy import stats

    mean, sd, n = _stats(differences)
    if n < 2:
        return mean, math.nan, math.nan, n
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return mean, mean - half, mean + half, n


def _metric(record: Mapping[str, Any], subset: str, key: str = "mpjpe_mm") -> float:
    entry = record["subsets"].get(subset)
    value = entry.get(key) if entry else None
    return float(value) if value is not None else math.nan


def _full(record: Mapping[str, Any]) -> str:
    return "+".join(record["modalities"])


def tables(results: Sequence[Mapping[str, Any]], title: str = "") -> str:
    """Markdown: Table 1 (methods), paired differences to naive, Table 3 (alone / subsets),
    Table 4 (alpha sweep), timing (see the module docstring)."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for record in results:
        groups.setdefault((record["table"], record["label"]), []).append(record)
    lines = [f"# {title}", ""] if title else []
    modalities = [m for m in MODALITIES if any(m in r["modalities"] for r in results)]
    methods = [(label, runs) for (table, label), runs in groups.items() if table == "methods"]
    if methods:
        lines += ["Table 1: methods (all modalities fused), validation MPJPE / PA-MPJPE in mm, mean +- sd over "
                  "seeds; \"X alone\": the same fused model with only X present.", "",
                  "| method | seeds | MPJPE | PA-MPJPE | " + " | ".join(f"{m} alone" for m in modalities) + " |",
                  "|---|---:|---:|---:|" + "---:|" * len(modalities)]
        for label, runs in methods:
            full = _full(runs[0])
            cells = [label, str(len(runs)), mean_sd([_metric(r, full) for r in runs]),
                     mean_sd([_metric(r, full, "pa_mpjpe_mm") for r in runs])]
            cells += [mean_sd([_metric(r, m) for r in runs]) for m in modalities]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        lines += _differences(methods, modalities)
    alone = [(label, runs) for (table, label), runs in groups.items() if table == "alone"]
    if alone:
        lines += ["Table 3: each modality trained alone, and subsets fused by naive joint training (validation, "
                  "mm, mean +- sd over seeds).", "", "| modalities | seeds | MPJPE | PA-MPJPE |", "|---|---:|---:|---:|"]
        for label, runs in alone:
            full = _full(runs[0])
            lines.append(f"| {label} | {len(runs)} | {mean_sd([_metric(r, full) for r in runs])} | "
                         f"{mean_sd([_metric(r, full, 'pa_mpjpe_mm') for r in runs])} |")
        reference = groups.get(("methods", METHOD_NAMES["naive"]))
        if reference:
            full = _full(reference[0])
            lines.append(f"| {full} (naive, Table 1) | {len(reference)} | {mean_sd([_metric(r, full) for r in reference])} "
                         f"| {mean_sd([_metric(r, full, 'pa_mpjpe_mm') for r in reference])} |")
        lines.append("")
    alphas = [(label, runs) for (table, label), runs in groups.items() if table == "alpha"]
    if alphas:
        lines += ["Table 4: AWC's alpha sweep (alpha_S strong, alpha_I weak; 0, 0 is naive training), validation "
                  "mm, mean +- sd over seeds.", "", "| alphas | seeds | MPJPE | PA-MPJPE |", "|---|---:|---:|---:|"]
        for label, runs in alphas:
            full = _full(runs[0])
            lines.append(f"| {label} | {len(runs)} | {mean_sd([_metric(r, full) for r in runs])} | "
                         f"{mean_sd([_metric(r, full, 'pa_mpjpe_mm') for r in runs])} |")
        lines.append("")
    lines += _timing(groups)
    return "\n".join(lines).rstrip() + "\n"


def _differences(methods: list[tuple[str, list[Mapping[str, Any]]]], modalities: list[str]) -> list[str]:
    naive = dict(methods).get(METHOD_NAMES["naive"])
    others = [(label, runs) for label, runs in methods if label != METHOD_NAMES["naive"]]
    if not naive or not others:
        return []
    by_seed = {r["seed"]: r for r in naive}
    full = _full(naive[0])
    lines = ["Paired differences to naive joint training, same seeds (method - naive, mm; negative: the method "
             "is better): mean [95 % confidence interval, t distribution over seeds].", "",
             "| method - naive | pairs | MPJPE | PA-MPJPE | " + " | ".join(f"{m} alone" for m in modalities) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(modalities)]
    for label, runs in others:
        pairs = [(r, by_seed[r["seed"]]) for r in runs if r["seed"] in by_seed]
        cells = [label, str(len(pairs))]
        for subset, key in [(full, "mpjpe_mm"), (full, "pa_mpjpe_mm")] + [(m, "mpjpe_mm") for m in modalities]:
            cells.append(_interval([_metric(a, subset, key) - _metric(b, subset, key) for a, b in pairs]))
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def _interval(differences: Sequence[float]) -> str:
    mean, low, high, n = paired_interval(differences)
    if n == 0:
        return "-"
    return f"{mean:+.2f}" if n < 2 else f"{mean:+.2f} [{low:+.2f}, {high:+.2f}]"


def _timing(groups: Mapping[tuple[str, str], list[Mapping[str, Any]]]) -> list[str]:
    lines = ["Cost per run (this machine): training and evaluation wall time, mean over seeds.", "",
             "| run | seeds | epochs | s / epoch | train s | evaluate s | train / held-out / val frames |",
             "|---|---:|---:|---:|---:|---:|---|"]
    seen: set[str] = set()
    for (table, label), runs in groups.items():
        names = frozenset(r["name"] for r in runs)
        if names <= seen:  # the same runs in another table (naive and AWC rows of Table 4)
            continue
        seen |= names
        first = runs[0]
        lines.append(f"| {label} ({TABLE_NAMES[table]}) | {len(runs)} | {first['epochs']} | "
                     f"{np.mean([r['epoch_seconds'] or math.nan for r in runs]):.1f} | "
                     f"{np.mean([r['train_seconds'] for r in runs]):.0f} | {np.mean([r['evaluate_seconds'] for r in runs]):.1f} | "
                     f"{first['train_frames']} / {first['holdout_frames']} / {first['val_frames']} |")
    return lines + [""]


def write_outputs(results: Sequence[Mapping[str, Any]], out: str | Path, title: str = "") -> dict[str, Path]:
    """``results.md`` (the tables) and ``runs.csv`` (one row per run) in ``out``."""
    import csv
    import io

    out = Path(out)
    markdown = tables(results, title)
    atomic_write(out / "results.md", lambda tmp: tmp.write_text(markdown, encoding="utf-8"))
    subsets = sorted({s for r in results for s in r["subsets"]}, key=lambda s: (s.count("+"), s))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["name", "table", "label", "seed", "method", "epochs", "train_seconds", "evaluate_seconds",
                     *[f"{s} {k}" for s in subsets for k in ("mpjpe_mm", "pa_mpjpe_mm")]])
    for r in results:
        writer.writerow([r["name"], r["table"], r["label"], r["seed"], r["method"], r["epochs"], r["train_seconds"],
                         r["evaluate_seconds"], *[f"{_metric(r, s, k):.4f}" if s in r["subsets"] else ""
                                                  for s in subsets for k in ("mpjpe_mm", "pa_mpjpe_mm")]])
    atomic_write(out / "runs.csv", lambda tmp: tmp.write_text(text.getvalue(), encoding="utf-8"))
    return {"results.md": out / "results.md", "runs.csv": out / "runs.csv"}


__all__ = ["JOINT_METHODS", "RunSpec", "grid", "mean_sd", "paired_interval", "parse_alphas", "run_grid",
           "run_one", "tables", "write_outputs"]
