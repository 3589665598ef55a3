"""The torch ``DataLoader`` of a training: workers, pinned memory, seeded generator.

The order and content of every batch are fixed by :mod:`pvc_core.training.dataset` (seeded per
epoch and per sample), so the number of workers changes how fast batches come, never which.
The loader's own generator only seeds the workers' global random streams (torch, numpy, python),
which no sample uses; it is seeded from the training seed and saved in the checkpoint all the
same, so that nothing random escapes a resumed training.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader

from pvc_core.errors import InputError
from pvc_core.training.dataset import EpochBatchSampler, StreamingCaseDataset

#: Batches each worker prepares ahead (DataLoader's default).
PREFETCH_FACTOR = 2

__all__ = ["default_num_workers", "make_loader", "seed_worker", "batches_of"]


def default_num_workers(device: torch.device, threads: int) -> int:
    """Worker processes for a training on ``device`` with ``threads`` CPU threads granted.

    0 on the CPU (the training's own threads do the arithmetic; workers would compete with
    them); on a GPU ``threads - 1`` (one thread drives the GPU, the others read and augment
    cases), at most 8.
    """
    if device.type == "cpu":
        return 0
    return int(max(0, min(8, int(threads) - 1)))


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed numpy's and python's global streams from the worker's torch seed."""
    seed = torch.initial_seed() % 2 ** 32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset: StreamingCaseDataset, sampler: EpochBatchSampler, generator: torch.Generator,
                num_workers: int = 0, device: torch.device | None = None) -> DataLoader:
    """A DataLoader over ``sampler``'s batches; pinned memory when training on CUDA.

    Workers are started per epoch (not persistent): the sampler's epoch is read when an
    iteration starts, and an idle training holds no worker processes.
    """
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    return DataLoader(dataset, batch_sampler=sampler, num_workers=int(num_workers),
                      pin_memory=device is not None and device.type == "cuda",
                      worker_init_fn=seed_worker if num_workers else None, generator=generator,
                      prefetch_factor=PREFETCH_FACTOR if num_workers else None, persistent_workers=False)


def batches_of(loader: Iterable) -> Iterator:
    """Iterate ``loader``; an :class:`InputError` raised in a worker keeps its one-line message.

    torch re-raises a worker's exception in the training process as the same type with a
    message of several lines (``Caught InputError in DataLoader worker process 0``, then the
    worker's traceback); the user should read the one line that names the file, as without
    workers.
    """
    try:
        yield from loader
    except InputError as err:
        lines = str(err).splitlines()
        if len(lines) > 1 and lines[0].startswith("Caught InputError in DataLoader worker"):
            original = [line for line in lines if line.startswith(f"{InputError.__module__}.InputError: ")]
            if original:
                raise InputError(original[-1].split(": ", 1)[1]) from None
        raise
