"""Multi-process data-parallel training (PyTorch DDP) when launched by ``torchrun``.

``torchrun --nproc_per_node N`` starts N copies of the training with ``WORLD_SIZE``, ``RANK``
and ``LOCAL_RANK`` set; :func:`distributed_context` then joins the process group (``nccl`` on
CUDA, each rank on GPU ``LOCAL_RANK``; ``gloo`` on the CPU). Without ``WORLD_SIZE`` > 1 it is a
no-op and the training runs as one process.

**Batches.** The global batch stays the configured ``batch_size``: the sampler's batches of the
epoch (:class:`~pvc_core.training.dataset.EpochBatchSampler`, same seeded order as on one
process) are split across ranks, rank r taking samples r, r + N, ... of every batch
(:func:`rank_share`). A rank whose share of a short batch is empty takes the batch's first
sample with weight 0, so every rank makes the same number of steps (DDP all-reduces every
step). Each rank's loss is the weighted sum of its per-sample losses times N over the global
batch size; DDP averages the gradients over ranks, so the step equals that of the whole batch on
one process (to float rounding). The number of GPUs therefore does not change what is learnt,
only how fast.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from pvc_core.io.atomic import atomic_path
from pvc_core.training.dataset import EpochBatchSampler, SampleKey

__all__ = ["DistContext", "RankBatchSampler", "distributed_context", "launch_torchrun", "rank_share", "state_digest"]

#: How long a rank waits at a collective (rank 0 validates and writes alone meanwhile).
TIMEOUT = datetime.timedelta(hours=4)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size`` (1: no process group)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def broadcast(self, obj: object) -> object:
        """``obj`` of rank 0, on every rank."""
        if not self.active:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: object) -> list:
        """``obj`` of every rank, in rank order, on every rank."""
        if not self.active:
            return [obj]
        out: list = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def sum(self, *values: float) -> list[float]:
        """Element-wise sums of ``values`` over the ranks."""
        if not self.active:
            return [float(v) for v in values]
        return [float(sum(col)) for col in zip(*self.gather([float(v) for v in values]))]


@contextmanager
def distributed_context(device: torch.device) -> Iterator[tuple[DistContext, torch.device]]:
    """The process group of a ``torchrun`` launch (``WORLD_SIZE`` > 1) and this rank's device.

    Joins the group unless one exists already (then it is left open on exit), and leaves it on
    exit. On CUDA each rank uses GPU ``LOCAL_RANK``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield DistContext(), device
        return
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    owner = not dist.is_initialized()
    if owner:
        dist.init_process_group(backend, timeout=TIMEOUT)
    try:
        yield DistContext(dist.get_rank(), dist.get_world_size(), local, dist.get_backend()), device
    finally:
        if owner:
            dist.destroy_process_group()


def rank_share(batch: Sequence[SampleKey], rank: int, world_size: int) -> tuple[list[SampleKey], int]:
    """Rank ``rank``'s share of one global ``batch`` and how many of its keys count.

    Samples ``rank, rank + world_size, ...``; the shares of all ranks are disjoint and cover the
    batch. An empty share becomes the batch's first key with 0 counting (weight 0).
    """
    share = list(batch[rank::world_size])
    if share:
        return share, len(share)
    return [batch[0]], 0


class RankBatchSampler(Sampler[list[SampleKey]]):
    """This rank's share (:func:`rank_share`) of every batch of ``sampler``."""

    def __init__(self, sampler: EpochBatchSampler, rank: int, world_size: int) -> None:
        self.sampler, self.rank, self.world_size = sampler, int(rank), int(world_size)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def shares(self) -> Iterator[tuple[list[SampleKey], int, int]]:
        """``(keys, counted, global batch size)`` of every batch of the epoch."""
        for batch in self.sampler:
            keys, counted = rank_share(batch, self.rank, self.world_size)
            yield keys, counted, len(batch)

    def __iter__(self) -> Iterator[list[SampleKey]]:
        for keys, _, _ in self.shares():
            yield keys

    def __len__(self) -> int:
        return len(self.sampler)


def state_digest(state_dict: dict) -> str:
    """SHA-256 (16 hex digits) of a state dict's tensors, in key order: equal weights, equal digest."""
    h = hashlib.sha256()
    for k in sorted(state_dict):
        h.update(k.encode())
        h.update(state_dict[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def launch_torchrun(job: dict, nproc: int, job_file: str | os.PathLike, log=print) -> None:
    """Run ``python -m pvc_core.training job_file`` as ``nproc`` ranks of ``torchrun`` on this node.

    ``job`` (``{"train_model": {...}}`` or ``{"train_network": {...}}``, see
    :mod:`pvc_core.training.__main__`) is written to ``job_file``; the ranks' output goes to
    ``log`` line by line. A failed launch is a :class:`RuntimeError` with the exit status (the
    log holds the ranks' tracebacks).
    """
    with atomic_path(job_file, replace=True) as tmp, open(tmp, "w") as fh:
        json.dump(job, fh)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(int(nproc)),
           "-m", "pvc_core.training", str(job_file)]
    log(f"launching {int(nproc)} DDP ranks: {' '.join(cmd)}")
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            log(line.rstrip("\n"))
    if proc.returncode:
        raise RuntimeError(f"torchrun with {int(nproc)} ranks exited with status {proc.returncode} (see the log)")
