"""Training samples streamed from the case cache: a torch ``Dataset`` and its epoch batch sampler.

Nothing of a case stays in memory between samples: :class:`StreamingCaseDataset` opens a case's
cached arrays (:mod:`pvc_core.training.case_cache`) memory-mapped for each sample, copies out the
window it needs (the zero-padded volume for ``input: full``, one 32^3 patch for ``patch32``),
applies one random symmetry (:mod:`pvc_core.training.augmentation`) and returns it. So memory
does not grow with the number of cases, only with the batch and the DataLoader's prefetching.

**Reproducible for any number of DataLoader workers.** A sample is named by a key
``(epoch, case, patch)``; everything random about it (patch position, symmetry) comes from a
numpy generator seeded by ``(seed, 'sample', epoch, case, patch)``, and the order of an epoch
from one seeded by ``(seed, 'order', epoch)`` (:class:`EpochBatchSampler`). No sample depends on
which worker made it or on what was drawn before it, so 0, 1 or 8 workers give the same batches,
and a resumed training (which starts at a later epoch) gets exactly the samples the uninterrupted
one would have had.

An epoch of ``'full'`` holds every case once; one of ``'patch32'`` holds, per case, as many
random 32^3 patches as the padded volume holds disjoint ones (so an epoch sees about as many
voxels as with ``'full'``), half of them centred on foreground voxels, all shuffled together.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from pvc_core.errors import InputError
from pvc_core.seeding import stage_key
from pvc_core.training.augmentation import augment
from pvc_core.training.case_cache import CachedCase
from pvc_core.training.patches import PATCH_SIZE, padded_shape, random_patch_corner, read_window

#: Model input modes (schema ``$defs/input``).
INPUT_MODES = ("full", "patch32")

SampleKey = tuple[int, int, int]  # (epoch, case index, patch index)

__all__ = ["INPUT_MODES", "SampleKey", "EpochBatchSampler", "StreamingCaseDataset", "sample_rng"]


def sample_rng(seed: int, epoch: int, case: int, patch: int = 0) -> np.random.Generator:
    """The generator of one sample: a pure function of ``(seed, epoch, case, patch)``."""
    return np.random.default_rng([int(seed), stage_key("sample"), int(epoch), int(case), int(patch)])


def _order_rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), stage_key("order"), int(epoch)])


class StreamingCaseDataset(Dataset):
    """Samples of cached cases, read from disk per item (map-style, keys ``(epoch, case, patch)``).

    Parameters
    ----------
    cases:
        Cache entries (:func:`~pvc_core.training.case_cache.prepare_cases`).
    input_mode:
        ``'full'`` (whole volume, zero-padded to ``multiple``) or ``'patch32'``.
    multiple:
        Edges are padded to a multiple of this (the network's
        :func:`~pvc_core.networks.size_divisor`); ``patch32`` also pads to at least 32.
    seed:
        Seed of every sample's generator (:func:`sample_rng`).
    augmentation:
        Apply one random symmetry per sample.

    An item is ``(input, target)``, float32 tensors of shape ``(C, D, H, W)`` and ``(1, D, H, W)``;
    C is 1, or 2 when the cases carry the attenuation channel (the same symmetry applied to it).
    """

    def __init__(self, cases: Sequence[CachedCase], input_mode: str, multiple: int, seed: int,
                 augmentation: bool = True, patch: int = PATCH_SIZE) -> None:
        if input_mode not in INPUT_MODES:
            raise InputError(f"model input must be one of {INPUT_MODES}, got {input_mode!r}")
        self.cases = list(cases)
        self.input_mode = input_mode
        self.patch = int(patch)
        self.seed = int(seed)
        self.augmentation = bool(augmentation)
        minimum = self.patch if input_mode == "patch32" else 0
        self.padded_shapes = [padded_shape(c.shape, multiple, minimum) for c in self.cases]

    def __len__(self) -> int:
        """Number of cases (an epoch's number of samples is the sampler's business)."""
        return len(self.cases)

    def patches_per_case(self, index: int) -> int:
        """Samples of case ``index`` per epoch: 1 for ``'full'``, disjoint patches for ``'patch32'``."""
        if self.input_mode == "full":
            return 1
        return max(1, int(np.prod([s // self.patch for s in self.padded_shapes[index]])))

    def sample_shape(self, index: int) -> tuple[int, int, int]:
        """Spatial shape of the samples of case ``index``."""
        return self.padded_shapes[index] if self.input_mode == "full" else (self.patch,) * 3

    def __getitem__(self, key: SampleKey) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index, patch_index = (int(k) for k in key)
        case = self.cases[index]
        rng = sample_rng(self.seed, epoch, index, patch_index)
        x_all, y_all = case.load(mmap=True)
        if self.input_mode == "full":
            corner, size = (0, 0, 0), self.padded_shapes[index]
        else:
            size = (self.patch,) * 3
            corner = random_patch_corner(rng, self.padded_shapes[index], self.patch, case.foreground())
        volumes = [read_window(x_all, corner, size), read_window(y_all, corner, size)]
        del x_all, y_all  # unmap
        mu_all = case.load_mu(mmap=True)
        if mu_all is not None:
            volumes.append(read_window(mu_all, corner, size))
            del mu_all
        if self.augmentation:
            volumes = list(augment(rng, *volumes))
        x = np.stack([volumes[0], *volumes[2:]])
        return torch.from_numpy(x), torch.from_numpy(volumes[1])[None]


class EpochBatchSampler(Sampler[list[SampleKey]]):
    """Batches of sample keys of one epoch, in a seeded order; :meth:`set_epoch` before iterating.

    The cases are permuted (``'patch32'``: every patch key of every case is, too) by a generator
    of ``(seed, epoch)``, then consecutive keys whose samples have the same shape are grouped into
    batches of at most ``batch_size`` (full volumes of different sizes go into separate batches).
    """

    def __init__(self, dataset: StreamingCaseDataset, batch_size: int, seed: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.epoch = 1

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch (1-based) whose batches the next iteration yields."""
        self.epoch = int(epoch)

    def keys(self) -> list[SampleKey]:
        """The epoch's sample keys in order."""
        ds, rng = self.dataset, _order_rng(self.seed, self.epoch)
        keys = [(self.epoch, int(k), j) for k in rng.permutation(len(ds)) for j in range(ds.patches_per_case(int(k)))]
        if ds.input_mode == "patch32":
            keys = [keys[i] for i in rng.permutation(len(keys))]
        return keys

    def __iter__(self) -> Iterator[list[SampleKey]]:
        batch: list[SampleKey] = []
        shape = None
        for key in self.keys():
            s = self.dataset.sample_shape(key[1])
            if batch and (len(batch) == self.batch_size or s != shape):
                yield batch
                batch = []
            batch.append(key)
            shape = s
        if batch:
            yield batch

    def __len__(self) -> int:
        return sum(1 for _ in self)
