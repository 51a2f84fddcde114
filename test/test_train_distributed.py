"""DistributedDataParallel on CPU: 2 gloo processes train and end with identical weights."""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).parent))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, world: int, port: int, tmp: str, method: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    from test_train import datasets, tiny_config

    from mmhpe_ros.train.trainer import train

    config = tiny_config(Path(tmp), method=method, epochs=2, device="cpu")
    result = train(config, datasets=datasets(config))
    save_file({k: v.contiguous() for k, v in result.model.state_dict().items()}, f"{tmp}/rank{rank}.safetensors")
    with open(f"{tmp}/rank{rank}.txt", "w") as f:
        f.write(repr([(r["holdout_mpjpe_mm"], r["shapley_rgb"]) for r in result.history]))


def test_two_gloo_processes_agree(tmp_path: Path) -> None:
    for method in ("awc", "ogm", "gblend"):
        out = tmp_path / method
        out.mkdir()
        mp.spawn(worker, args=(2, free_port(), str(out), method), nprocs=2, join=True)
        first, second = (load_file(str(out / f"rank{r}.safetensors")) for r in (0, 1))
        assert first.keys() == second.keys()
        for name in first:
            torch.testing.assert_close(first[name], second[name], rtol=0, atol=0, msg=f"{method} {name}")
        assert (out / "rank0.txt").read_text() == (out / "rank1.txt").read_text()  # reduced metrics
        from test_train import TINY

        from mmhpe_ros.model.config import ModelConfig
        from mmhpe_ros.model.pose_model import PoseModel

        torch.manual_seed(0)
        fresh = PoseModel(ModelConfig(**TINY)).state_dict()
        assert not torch.equal(fresh["fusion.net.0.0.weight"], first["fusion.net.0.0.weight"])
        assert (out / "run" / "last.safetensors").exists()  # rank 0 wrote the outputs
