"""How ``fit`` cuts a dataset into batches on the device: the batch size, the epoch's batches, and the feed
that indexes in-memory data in place or reads streamed data through a DataLoader with workers.

Imports from fusion_kit: data.
"""
from __future__ import annotations

import os

import torch
from torch import Tensor

from .data.streaming import StreamingDataset

__all__ = ["MIN_STEPS_PER_EPOCH", "default_batch_size", "default_workers", "epoch_batches", "Chunks", "Feed"]

MIN_STEPS_PER_EPOCH = 8


def default_batch_size(n_train: int) -> int:
    """64, or smaller for a small training set, so that an epoch takes at least 8 optimizer steps.

    A quick-mode cohort of a few hundred subjects would otherwise get four steps an epoch, too few
    for a short budget to train reliably.
    """
    return max(2, min(64, n_train // MIN_STEPS_PER_EPOCH))


def epoch_batches(n: int, batch_size: int, perm: Tensor) -> list[Tensor]:
    chunks = list(perm.split(batch_size))
    if len(chunks) > 1 and len(chunks[-1]) == 1:  # batch norm cannot train on one sample
        chunks[-2] = torch.cat(chunks[-2:])
        chunks.pop()
    return chunks


def default_workers() -> int:
    """DataLoader workers for streamed data: none on a machine of two cores or fewer (a worker process there
    competes with training for the cores: a cached 2D epoch took 1.7x as long with one worker as without),
    else half the cores, at most 4."""
    cores = os.cpu_count() or 1
    return 0 if cores <= 2 else min(4, cores // 2)


BAR_FROM_BATCHES = 50


class Chunks:
    """A batch sampler whose batches are set before each pass (the DataLoader, and its workers, stay alive)."""

    def __init__(self) -> None:
        self.chunks: list[list[int]] = []

    def __iter__(self):
        return iter(self.chunks)

    def __len__(self) -> int:
        return len(self.chunks)


class Feed:
    """One dataset's batches on the device, for given lists of subject indices: indexed in place when the
    dataset is in memory (moved to the device once), read by a DataLoader with workers when it is streamed."""

    def __init__(self, data, dev: torch.device, workers: int | None, seed: int = 0) -> None:
        self.streamed = isinstance(data, StreamingDataset)
        self.data = data if self.streamed else data.to(dev)
        self.dev = dev
        self.loader = self._loader(default_workers() if workers is None else workers, seed) if self.streamed else None

    def _loader(self, workers: int, seed: int):
        from monai.data import DataLoader  # reseeds each worker's random transforms

        self.sampler = Chunks()
        return DataLoader(self.data, batch_sampler=self.sampler, num_workers=workers, persistent_workers=workers > 0,
                          pin_memory=self.dev.type == "cuda", generator=torch.Generator().manual_seed(seed))

    def __len__(self) -> int:
        return len(self.data)

    def batches(self, chunks: list[Tensor], show: bool = False, what: str = "batches"):
        if not self.streamed:
            for idx in chunks:
                yield self.data.batch(idx.to(self.dev, non_blocking=True))
            return
        from tqdm.auto import tqdm

        self.sampler.chunks = [c.tolist() for c in chunks]
        long = len(chunks) >= BAR_FROM_BATCHES  # a bar within the epoch's bar only where an epoch takes a while
        for batch in tqdm(self.loader, desc=what, unit="batch", disable=not (show and long), leave=False):
            yield {k: v.to(self.dev, non_blocking=True) for k, v in batch.items()}
