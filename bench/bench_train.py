"""Training and inference speed of the default model on CPU (or the device given).

Prints one line per figure:
  train_samples_per_s        training throughput of --method (forward, MPJPE loss, backward, Adam)
  infer_fused_frame_p50_ms   latency of one fused frame (batch 1, all four modalities)
  infer_fused_frame_p99_ms
  shapley_seconds_per_frame  exact Shapley assessment (15 coalitions, cached features)
  shapley_fraction_of_epoch  assessment time / epoch time, for this run's frame counts
  shapley_fraction_of_epoch_mmfi_p1_s2  the same for MM-Fi P1 S2 (shapley_batches x batch_size
                             assessed frames vs 32 subjects x 14 actions x 297 training frames)
  epoch_seconds_mmfi_p1_s2   one training epoch of MM-Fi P1 S2 (133,056 frames) at this speed
  fisher_seconds_per_sample  AWC's per-sample Fisher (torch.func vmap), per training frame
  awc_fisher_seconds_per_epoch  that for the default fisher_samples (768), once per AWC epoch

--architecture light (default: the real-time encoders, MLP fusion) or paper (temporal RGB over
27 frames, Point Transformer for LiDAR and mmWave, MetaFi++-style WiFi, concat fusion);
--method naive (default) or awc; --model key=value,... further ModelConfig overrides.

Usage: .venv/bin/python bench/bench_train.py [--frames 256] [--batch 32] [--threads 2] [--architecture paper]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from mmhpe_ros.data.frames import Frame
from mmhpe_ros.data.rigs import RigCatalogue
from mmhpe_ros.model.awc import diagonal_fisher
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.inputs import prepare_inputs
from mmhpe_ros.train.augment import BodyFrameBatches
from mmhpe_ros.train.config import TrainConfig
from mmhpe_ros.train.data import PoseDataset
from mmhpe_ros.train.trainer import Trainer

MMFI_P1_S2_TRAIN_FRAMES = 32 * 14 * 297
ARCHITECTURES = {
    "light": {},
    "paper": {"rgb_encoder": "temporal", "rgb_window": 27, "lidar_encoder": "point_transformer",
              "mmwave_encoder": "point_transformer", "wifi_encoder": "metafi", "fusion": "concat"},
}


def frames(count: int, seed: int) -> tuple[list[Frame], RigCatalogue]:
    """``count`` generated MM-Fi frames (one sequence of `mmhpe-ros synth`'s simulator: a person in
    a room, every modality in its sensor's frame) and the rig that recorded them."""
    from mmhpe_ros.data.synth.sequence import simulate_sequence
    from mmhpe_ros.data.synth.writer import empty_room_background

    data = simulate_sequence("S01", "A02", count, seed)
    out = [Frame(data.key, i, data.joints[i], {
        "rgb": data.rgb[i], "lidar": data.lidar[i], "mmwave": data.mmwave[i],
        "wifi": np.stack([data.csi_amplitude[i], data.csi_phase[i]])}) for i in range(count)]
    return out, RigCatalogue.single(data.calibration, empty_room_background(data.key.environment, seed))


def dataset(count: int, seed: int, model_config: ModelConfig, augment: bool) -> PoseDataset:
    source, rigs = frames(count, seed)
    return PoseDataset(source, model_config, rigs=rigs, transform=BodyFrameBatches(model_config, augment=augment))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=256, help="training frames per epoch")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--shapley-batches", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--architecture", choices=tuple(ARCHITECTURES), default="light")
    parser.add_argument("--method", default="naive", help="naive: plain training steps; awc adds the penalty")
    parser.add_argument("--model", default="", help="ModelConfig overrides, e.g. lidar_points=256,feature_dim=64")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {k: yaml.safe_load(v) for k, _, v in (item.partition("=") for item in args.model.split(",") if item)}
    model_config = ModelConfig(**{**ARCHITECTURES[args.architecture], **overrides})
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(method=args.method, epochs=1, batch_size=args.batch, shapley_batches=args.shapley_batches,
                             device=args.device, output_dir=str(Path(tmp) / "run"), progress=False,
                             tensorboard=False, model={k: v for k, v in model_config.to_dict().items()
                                                       if k not in ("modalities", "modality_dropout")})
        data = (dataset(args.frames, 0, model_config, augment=True),
                dataset(args.shapley_batches * args.batch, 1, model_config, augment=False))
        trainer = Trainer(config, datasets=data)
        trainer.train_epoch(0)  # warm-up (allocations, first AWC update)
        start = time.perf_counter()
        trainer.train_epoch(1)
        epoch_seconds = time.perf_counter() - start
        trainer.assess()  # warm-up
        assessment = trainer.assess()
        fisher_batches = [b for b, _ in zip(trainer.train_loader, range(2))]
        diagonal_fisher(trainer.model, fisher_batches[:1])  # warm-up (vmap)
        start = time.perf_counter()
        diagonal_fisher(trainer.model, fisher_batches)
        fisher_per_sample = (time.perf_counter() - start) / sum(len(b["joints"]) for b in fisher_batches)

    model = trainer.model.eval()
    source, rigs = frames(1, 2)
    sample, _ = prepare_inputs(source[0].data, rigs.rig(source[0].key), model_config)
    inputs = {k: torch.from_numpy(v)[None].to(args.device) for k, v in sample.items()}
    latencies = []
    with torch.no_grad():
        for i in range(220):
            start = time.perf_counter()
            model(inputs)
            if i >= 20:
                latencies.append((time.perf_counter() - start) * 1000)
    per_frame_train = epoch_seconds / args.frames
    per_frame_shapley = assessment.seconds / assessment.frames
    print(f"train_samples_per_s {args.frames / epoch_seconds:.1f}")
    print(f"infer_fused_frame_p50_ms {np.percentile(latencies, 50):.2f}")
    print(f"infer_fused_frame_p99_ms {np.percentile(latencies, 99):.2f}")
    print(f"shapley_seconds_per_frame {per_frame_shapley:.6f}")
    print(f"shapley_fraction_of_epoch {assessment.seconds / epoch_seconds:.4f}")
    print(f"epoch_seconds_mmfi_p1_s2 {per_frame_train * MMFI_P1_S2_TRAIN_FRAMES:.0f}")
    print(f"fisher_seconds_per_sample {fisher_per_sample:.5f}")
    print(f"awc_fisher_seconds_per_epoch {fisher_per_sample * 768:.1f}")
    print(f"shapley_fraction_of_epoch_mmfi_p1_s2 "
          f"{per_frame_shapley * args.shapley_batches * 192 / (per_frame_train * MMFI_P1_S2_TRAIN_FRAMES):.4f}")


if __name__ == "__main__":
    main()
