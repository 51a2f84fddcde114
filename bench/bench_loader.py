"""Training data path speed: the first pass that fills the disk cache, then batches from it.

On a generated MM-Fi tree at P1 S2 proportions (all 40 subjects x the 14 P1 actions; --frames per
sequence), with the default model inputs (1024 LiDAR points: about 40 KB per frame):

  first_pass_frames_per_s   frames read from the tree and prepared into the disk cache, per s
                            (DataLoader workers --workers; scipy's .mat reader included)
  loader_frames_per_s       training frames per s served from the disk cache as whole batches
                            (shuffled batch sampler, fancy indexing into the memory maps,
                            tensors ready for the model) in the training process, as
                            `num_workers: 0` (the default) trains; mean of --epochs epochs
  loader_frames_per_s_workers  the same through --workers DataLoader worker processes
  prepared_bytes_per_frame, frames, cache_memory_mapped (1: the memory-mapped path was measured)

--cache-bytes (default 0) is the size up to which a prepared set is loaded into memory; 0 forces
the memory-mapped disk path that a real MM-Fi P1 S2 set (~133k frames, ~5 GB) takes with the
default 4 GiB. The OS page cache holds the generated set, as it would on a machine with RAM to
spare; a cold disk is slower.

Usage: .venv/bin/python bench/bench_loader.py [--root TREE] [--frames 8] [--workers 2] [--batch 192]
(without --root a tree is generated into a temporary folder with `mmhpe-ros synth`).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def generate(root: Path, frames: int, workers: int) -> None:
    subprocess.run([sys.executable, "-m", "mmhpe_ros", "synth", str(root), "--subjects", "all", "--actions", "P1",
                    "--frames", str(frames), "--workers", str(workers)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=None, help="an MM-Fi tree (default: generate one)")
    parser.add_argument("--frames", type=int, default=8, help="frames per sequence of the generated tree")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=192)
    parser.add_argument("--cache-bytes", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    from mmhpe_ros.model.config import ModelConfig
    from mmhpe_ros.train.config import TrainConfig
    from mmhpe_ros.train.data import TrainingData, batch_loader

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="bench_loader_") as tmp:
        root = Path(args.root) if args.root else Path(tmp) / "mmfi"
        if args.root is None:
            generate(root, args.frames, args.workers)
        config = TrainConfig(data_root=str(root), setting="S2", cache_dir=str(Path(tmp) / "cache"),
                             cache_bytes=args.cache_bytes, prepare_workers=args.workers, progress=False)
        model_config = ModelConfig()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            data = TrainingData(config, model_config)
            first_pass = time.perf_counter() - start
        prepared = data.fit.prepared
        frames = len(prepared)
        for workers in (0, args.workers):
            loader = batch_loader(data.fit, args.batch, shuffle=True, seed=0, workers=workers)
            start, served = time.perf_counter(), 0
            for epoch in range(args.epochs):
                loader.sampler.sampler.set_epoch(epoch)
                for batch in loader:
                    served += int(batch["joints"].shape[0])
            rate = served / (time.perf_counter() - start)
            print(f"loader_frames_per_s{'_workers' if workers else ''} {rate:.0f}")
        print(f"first_pass_frames_per_s {frames / first_pass:.0f}")
        print(f"prepared_bytes_per_frame {prepared.nbytes() // max(frames, 1)}")
        print(f"frames {frames}")
        print(f"cache_memory_mapped {int(prepared.mapped)}")
        del data, prepared, loader
        assert np.isfinite(rate)


if __name__ == "__main__":
    main()
