"""In-memory training data: (SPECT, truth) pairs loaded once, normalised, augmented per epoch.

The demo's 24 training cases at 64^3 take 50 MB as float32, so every case is read once with
:func:`pvc_core.io.load_image` and kept in memory. Each case is stored normalised (see
:mod:`pvc_core.training.normalisation`): input / max(input) and truth / max(input).

Augmentation uses the symmetries of a SPECT acquisition with a 360-degree body-contour orbit:
flipping the patient left-right (array axis 0) or head-feet (axis 2) or turning it by a multiple
of 90 degrees in the axial plane (axes 0 and 1) turns the reconstruction and the truth alike, so
each augmented pair is again a physically valid pair. The 16 combinations multiply the variety of
a small training set without a single new simulation.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pvc_core.errors import InputError
from pvc_core.io import load_image
from pvc_core.training.normalisation import input_scale
from pvc_core.training.patches import PATCH_SIZE, pad_to_multiple, random_patch_slices

#: Axes of the axial (transverse) plane in array order; axis 2 runs head-feet (NIfTI RAS).
AXIAL_PLANE = (0, 1)

Pair = tuple[str | os.PathLike, str | os.PathLike] | tuple[str, str | os.PathLike, str | os.PathLike]

__all__ = ["AXIAL_PLANE", "CaseSet", "case_id_of", "load_cases", "augment", "epoch_samples", "batches"]


def case_id_of(path: str | os.PathLike) -> str:
    """A readable case identifier from a file path.

    From the file upwards, the first path component that matches ``case[_-]?<digits>`` gives it
    (``.../case_0007/spect.nii.gz`` -> ``case_0007``); failing that, the first all-digit
    component (the pipeline's ``cases/00017/spect_RR_n.nii.gz`` -> ``00017``); failing that, the
    file name without ``.nii``/``.nii.gz``.
    """
    p = Path(path)
    stem = re.sub(r"\.nii(\.gz)?$", "", p.name)
    parts = (stem, *(q.name for q in p.parents))
    for part in parts:
        m = re.search(r"case[_-]?\d+", part, re.IGNORECASE)
        if m:
            return m.group(0)
    for part in parts:
        if part.isdigit():
            return part
    return stem


@dataclass
class CaseSet:
    """Normalised cases in memory.

    ``inputs[k]`` = SPECT / scale[k], ``targets[k]`` = truth / scale[k] (float32, padded with
    zeros as requested at loading); ``shapes[k]`` is the shape before padding.
    """

    ids: list[str] = field(default_factory=list)
    inputs: list[np.ndarray] = field(default_factory=list)
    targets: list[np.ndarray] = field(default_factory=list)
    scales: list[float] = field(default_factory=list)
    shapes: list[tuple[int, int, int]] = field(default_factory=list)
    files: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


def load_cases(pairs: Sequence[Pair], multiple: int = 1, minimum: int = 0) -> CaseSet:
    """Read ``(input, truth)`` or ``(case_id, input, truth)`` NIfTI pairs into a :class:`CaseSet`.

    Each volume is zero-padded at the end of every axis to a multiple of ``multiple`` and at
    least ``minimum`` voxels. Raises :class:`InputError` naming the file when shapes differ or an
    input holds no positive value (it cannot be normalised).
    """
    cases = CaseSet()
    for pair in pairs:
        if len(pair) == 3:
            cid, in_path, truth_path = pair
        elif len(pair) == 2:
            in_path, truth_path = pair
            cid = case_id_of(in_path)
        else:
            raise InputError(f"a training pair must be (input, truth) or (case_id, input, truth), got {pair!r}")
        spect = load_image(in_path, name="SPECT input").data
        truth = load_image(truth_path, name="true activity").data
        if spect.shape != truth.shape:
            raise InputError(f"shape {truth.shape} differs from its input {in_path} {spect.shape}", truth_path)
        scale = input_scale(spect)
        if scale <= 0:
            raise InputError("input holds no positive value; it cannot be normalised by its maximum", in_path)
        cases.ids.append(str(cid))
        cases.files.append((str(in_path), str(truth_path)))
        cases.shapes.append(tuple(spect.shape))
        cases.scales.append(scale)
        cases.inputs.append(pad_to_multiple((spect / scale).astype(np.float32), multiple, minimum))
        cases.targets.append(pad_to_multiple((truth / scale).astype(np.float32), multiple, minimum))
    return cases


def augment(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply one random symmetry (flips of axes 0 and 2, quarter turns in the axial plane) to both."""
    k = int(rng.integers(4)) if x.shape[AXIAL_PLANE[0]] == x.shape[AXIAL_PLANE[1]] else 2 * int(rng.integers(2))
    flips = tuple(a for a in (0, 2) if rng.random() < 0.5)
    if k:
        x, y = np.rot90(x, k, AXIAL_PLANE), np.rot90(y, k, AXIAL_PLANE)
    if flips:
        x, y = np.flip(x, flips), np.flip(y, flips)
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def epoch_samples(cases: CaseSet, rng: np.random.Generator, input_mode: str, augmentation: bool = True,
                  patch: int = PATCH_SIZE) -> list[tuple[np.ndarray, np.ndarray]]:
    """One epoch of (input, target) samples in random order.

    ``'full'``: every case once. ``'patch32'``: from every case as many random 32^3 patches as
    the volume holds disjoint ones (so an epoch sees about as many voxels as with ``'full'``),
    half of them centred on voxels with activity in the input.
    """
    samples = []
    for k in rng.permutation(len(cases)):
        x, y = cases.inputs[k], cases.targets[k]
        if input_mode == "full":
            crops = [(x, y)]
        elif input_mode == "patch32":
            n = max(1, int(np.prod([s // patch for s in x.shape])))
            fg = x > 0.05
            crops = [(x[s], y[s]) for s in random_patch_slices(rng, x.shape, n, patch, fg)]
        else:
            raise InputError(f"model input must be 'full' or 'patch32', got {input_mode!r}")
        for cx, cy in crops:
            samples.append(augment(rng, cx, cy) if augmentation else (cx, cy))
    if input_mode == "patch32":
        samples = [samples[i] for i in rng.permutation(len(samples))]
    return samples


def batches(samples: list[tuple[np.ndarray, np.ndarray]], batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stack consecutive samples into ``(B, 1, D, H, W)`` float32 input and target arrays.

    Samples of different shapes (full volumes of different sizes) go into separate batches.
    """
    i = 0
    while i < len(samples):
        shape = samples[i][0].shape
        j = i
        while j < len(samples) and j - i < batch_size and samples[j][0].shape == shape:
            j += 1
        chunk = samples[i:j]
        yield (np.stack([s[0] for s in chunk])[:, None].astype(np.float32, copy=False),
               np.stack([s[1] for s in chunk])[:, None].astype(np.float32, copy=False))
        i = j
