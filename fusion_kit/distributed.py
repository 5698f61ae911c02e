"""Several processes through PyTorch's own engine: what ``fit`` needs to run under ``torchrun``.

Launched by ``torchrun --nproc_per_node=N`` (or its multi-node rendezvous), every process runs the same
script; ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` tell each which one it is. ``fit`` then joins the process
group (NCCL on CUDA, Gloo on CPU), trains a DistributedDataParallel copy on its share of every epoch's
subjects, and gathers predictions from all ranks, so metrics, early stopping and the kept weights are the
same everywhere; only rank 0 writes files and shows progress. In one process all of this is a no-op.

Imports from fusion_kit: core only.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["World", "world", "launched", "main_process", "finish"]


def launched() -> bool:
    """True in a process started by torchrun with more than one process in all."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def main_process() -> bool:
    """True where files are written and progress shown: rank 0, or the only process."""
    return int(os.environ.get("RANK", "0")) == 0


@dataclass(frozen=True)
class World:
    """This process's place among all of them: its rank, how many there are, and its device."""

    rank: int = 0
    size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, indices: torch.Tensor) -> torch.Tensor:
        """This rank's part of ``indices``: padded by repeating its start to a multiple of the world size
        (so every rank takes the same number of steps), then every size-th element from the rank's offset."""
        if self.size == 1:
            return indices
        pad = (-len(indices)) % self.size
        padded = torch.cat([indices, indices[:pad]]) if pad else indices
        return padded[self.rank :: self.size]

    def gather(self, value: torch.Tensor, n: int) -> torch.Tensor:
        """Undo ``shard`` for per-subject results: every rank's rows, back in subject order, the padding dropped."""
        if self.size == 1:
            return value
        parts = [torch.empty_like(value) for _ in range(self.size)]
        dist.all_gather(parts, value.contiguous())
        return torch.stack(parts, 1).reshape(-1, *value.shape[1:])[:n]

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a scalar over the ranks."""
        if self.size == 1:
            return value
        value = value.clone()
        dist.all_reduce(value)
        return value / self.size


def world(device: torch.device) -> World:
    """This process's World; under torchrun, joins the process group first (once) and picks its GPU."""
    if not launched():
        return World(device=device)
    rank, size, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise RuntimeError(f"torchrun started process {local} on this machine, which has {torch.cuda.device_count()} "
                               "GPU(s): start one process per GPU (--nproc_per_node), or train on the CPU (--device cpu)")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return World(rank, size, device)


def finish() -> None:
    """Leave the process group (under torchrun, after the last collective call); nothing in one process."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
