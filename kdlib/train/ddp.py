"""Multi-GPU training with torch's own DistributedDataParallel, launched by ``torchrun``.

One process per GPU; every process runs the same script. From a shell::

    torchrun --standalone --nproc_per_node=4 -m kdlib.experiment --config runs/gpu/<hash>/config.json

``kdlib.experiment.run_experiment`` does this by itself when it is called in a single process
(a notebook cell, a papermill cell of ``kdlib.reproduce``) and several GPUs are visible: it writes
the config, launches ``torchrun`` as above and reads the result the rank-0 process wrote. Inside
the processes ``setup_distributed`` reads torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK),
initialises the process group (NCCL on GPU, gloo on CPU), and the trainer wraps the student and
the method together in one DDP module, shards the training set with ``DistributedSampler``; rank 0
validates, logs and writes checkpoints. The batch size in a profile is per process.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    """True inside a process started by torchrun (its environment variables are set)."""
    return "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def setup_distributed(backend: str | None = None) -> DistInfo:
    """Initialise the default process group from torchrun's env (no-op when not launched by it)."""
    if dist.is_available() and dist.is_initialized():
        return current()
    if not launched_by_torchrun():
        return DistInfo()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    return current()


def current() -> DistInfo:
    """Rank information of the initialised process group (single process when none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    local_rank = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_mean(values: torch.Tensor) -> torch.Tensor:
    """Average a tensor over processes (identity in a single process)."""
    if dist.is_available() and dist.is_initialized():
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        values /= dist.get_world_size()
    return values


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
