"""Inference latency of one fused frame (batch 1, CPU) of the default model, per modality subset.

The model is the shipped default (mmhpe_ros.resources.default_model_path()) if it exists, else a
fresh PoseModel(ModelConfig()) (same architecture, untrained: latency does not depend on weights).
Inputs are MM-Fi-sized random frames prepared by model.inputs.prepare_inputs. Prints one line per
figure:
  model_parameters                  trainable parameters
  prepare_inputs_p50_ms / _p99_ms   raw frame (all four modalities) -> model inputs
  infer_all_p50_ms / _p99_ms        model(inputs): every encoder runs, as the fusion node calls it
  infer_<subset>_p50_ms / _p99_ms   only the subset's encoders run, then fusion + head
                                    (subset names as in `mmhpe-ros evaluate`, e.g. rgb+lidar)

Usage: .venv/bin/python bench/bench_model.py [--repeats 200] [--threads 1]
"""
from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np
import torch

from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.inputs import MMWAVE_MASK, prepare_inputs
from mmhpe_ros.model.pose_model import PoseModel, count_parameters
from mmhpe_ros.train.evaluate import subset_name, subsets_of


def load() -> tuple[PoseModel, str]:
    """The default model, or a fresh one of the default architecture."""
    from mmhpe_ros.model.checkpoint import load_model
    from mmhpe_ros.resources import default_model_path

    try:
        path = default_model_path()
    except FileNotFoundError:
        return PoseModel(ModelConfig()).eval(), "fresh PoseModel(ModelConfig())"
    return load_model(path)[0], str(path)


def raw_frame(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"rgb": rng.uniform(0, 640, (17, 2)), "lidar": rng.normal(size=(1200, 3)),
            "mmwave": rng.normal(size=(40, 5)), "wifi": rng.uniform(0, 1, (2, 3, 114, 10))}


def timed_ms(call: Callable[[], object], repeats: int, warmup: int = 20) -> tuple[float, float]:
    """(p50, p99) wall time of ``call`` in ms."""
    for _ in range(warmup):
        call()
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        call()
        times[i] = time.perf_counter() - start
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per figure")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, source = load()
    print(f"# model: {source}; batch 1, CPU, {args.threads} thread(s), {args.repeats} calls per figure")
    print(f"model_parameters {count_parameters(model)}")
    raw = raw_frame()
    p50, p99 = timed_ms(lambda: prepare_inputs(raw, model.config), args.repeats)
    print(f"prepare_inputs_p50_ms {p50:.3f}\nprepare_inputs_p99_ms {p99:.3f}")
    inputs = {k: torch.from_numpy(v)[None] for k, v in prepare_inputs(raw, model.config).items()}
    with torch.inference_mode():
        p50, p99 = timed_ms(lambda: model(inputs), args.repeats)
        print(f"infer_all_p50_ms {p50:.3f}\ninfer_all_p99_ms {p99:.3f}")
        for subset in subsets_of(model.modalities):
            keys = set(subset) | ({MMWAVE_MASK} if "mmwave" in subset else set())
            only = {k: v for k, v in inputs.items() if k in keys}
            present = model.presence_mask(subset, 1)
            p50, p99 = timed_ms(lambda: model.fuse(model.encode(only), present), args.repeats)
            name = subset_name(subset)
            print(f"infer_{name}_p50_ms {p50:.3f}\ninfer_{name}_p99_ms {p99:.3f}")


if __name__ == "__main__":
    main()
