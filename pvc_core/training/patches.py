"""Padding, windows, 32^3 patch sampling and overlapping-patch reassembly (``input: patch32``).

Prediction on patches tiles the volume with patches that overlap by half their edge (stride 16
for 32^3) and blends the overlapping predictions with a separable tent window, so that voxels near
a patch border (where the network sees least context) count least. Blending is done in float64:
for an identity "network" the reassembled volume equals the input bit for bit (tested).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

#: Patch edge of the paper's patch-wise DL-PVC (voxels).
PATCH_SIZE = 32

__all__ = ["PATCH_SIZE", "padded_shape", "pad_to_multiple", "crop_to", "patch_starts", "patch_grid",
           "apply_patchwise", "random_patch_corner", "read_window", "tent_window"]

Slices = tuple[slice, slice, slice]


def padded_shape(shape: Sequence[int], multiple: int, minimum: int = 0) -> tuple[int, ...]:
    """Each edge rounded up to a multiple of ``multiple`` and to at least ``minimum`` voxels."""
    return tuple(max(int(minimum), -(-int(n) // int(multiple)) * int(multiple)) for n in shape)


def pad_to_multiple(volume: np.ndarray, multiple: int, minimum: int = 0) -> np.ndarray:
    """Zero-pad the end of each axis to a multiple of ``multiple`` and at least ``minimum``.

    Returns the volume itself when no padding is needed. Zero is the background activity.
    """
    target = padded_shape(volume.shape, multiple, minimum)
    pad = [(0, t - n) for n, t in zip(volume.shape, target)]
    if not any(p for _, p in pad):
        return volume
    return np.pad(volume, pad)


def crop_to(volume: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """The leading ``shape`` block of ``volume`` (undoes :func:`pad_to_multiple`)."""
    return volume[tuple(slice(0, n) for n in shape)]


def patch_starts(size: int, patch: int, stride: int) -> list[int]:
    """Start indices of patches of edge ``patch`` that cover ``[0, size)`` with step ``stride``.

    The last patch is shifted back to end at ``size`` (``size >= patch`` required).
    """
    if size < patch:
        raise ValueError(f"axis of {size} voxels is shorter than the patch edge {patch}")
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def patch_grid(shape: Sequence[int], patch: int = PATCH_SIZE, stride: int | None = None) -> list[Slices]:
    """Slices of the overlapping patches that tile ``shape`` (default stride: half a patch)."""
    stride = stride or max(patch // 2, 1)
    s0, s1, s2 = (patch_starts(n, patch, stride) for n in shape)
    return [(slice(a, a + patch), slice(b, b + patch), slice(c, c + patch)) for a in s0 for b in s1 for c in s2]


def tent_window(patch: int = PATCH_SIZE) -> np.ndarray:
    """Separable blending weights of a patch: ``w(k) = min(k + 1, patch - k)`` per axis (all > 0)."""
    k = np.arange(patch)
    w1 = np.minimum(k + 1, patch - k).astype(np.float64)
    return w1[:, None, None] * w1[None, :, None] * w1[None, None, :]


def apply_patchwise(volume: np.ndarray, predict: Callable[[np.ndarray], np.ndarray], patch: int = PATCH_SIZE,
                    stride: int | None = None, batch_size: int = 8) -> np.ndarray:
    """Apply ``predict`` to overlapping patches of ``volume`` and blend the results (float32).

    ``volume`` is ``(D, H, W)`` or channel-first ``(C, D, H, W)``; ``predict`` maps a batch
    ``(B, patch, patch, patch)`` (``(B, C, patch, patch, patch)``) to ``(B, patch, patch, patch)``.
    Every spatial axis must be at least ``patch`` long (see :func:`pad_to_multiple`).
    """
    spatial = volume.shape[-3:]
    grid = patch_grid(spatial, patch, stride)
    weight = tent_window(patch)
    acc = np.zeros(spatial, np.float64)
    norm = np.zeros(spatial, np.float64)
    for first in range(0, len(grid), batch_size):
        chunk = grid[first:first + batch_size]
        out = np.asarray(predict(np.stack([volume[(..., *s)] for s in chunk])), dtype=np.float64)
        if out.shape != (len(chunk), patch, patch, patch):
            raise ValueError(f"patch prediction has shape {out.shape}, expected {(len(chunk), patch, patch, patch)}")
        for s, o in zip(chunk, out):
            acc[s] += weight * o
            norm[s] += weight
    return (acc / norm).astype(np.float32)


def random_patch_corner(rng: np.random.Generator, shape: Sequence[int], patch: int = PATCH_SIZE,
                        foreground: np.ndarray | None = None, p_foreground: float = 0.5) -> tuple[int, int, int]:
    """Corner (first voxel) of one random patch of edge ``patch`` inside a volume of ``shape``.

    With probability ``p_foreground`` the patch is centred (as far as the volume allows) on a voxel
    drawn uniformly from ``foreground``, an ``(N, 3)`` array of voxel indices (e.g. where the input
    holds activity); otherwise its corner is uniform. Biasing towards activity keeps training from
    spending most steps on empty background. Draws from ``rng`` in a fixed order, so the same
    generator state gives the same patch.
    """
    hi = np.array(shape) - patch
    if np.any(hi < 0):
        raise ValueError(f"volume {tuple(shape)} is smaller than the patch edge {patch}")
    n_fg = 0 if foreground is None else len(foreground)
    if n_fg and rng.random() < p_foreground:
        centre = np.asarray(foreground[int(rng.integers(n_fg))], dtype=np.int64)
        corner = np.clip(centre - patch // 2, 0, hi)
    else:
        corner = np.array([rng.integers(h + 1) for h in hi])
    return tuple(int(c) for c in corner)


def read_window(volume: np.ndarray, corner: Sequence[int], size: Sequence[int]) -> np.ndarray:
    """A float32 copy of ``volume[corner : corner + size]``, zero where it reaches past the end.

    Reads only the window from ``volume`` (which may be a memory-mapped ``.npy``), so that a patch
    of a large case costs the patch, not the case. With ``corner = 0`` and ``size`` the padded
    shape it equals :func:`pad_to_multiple` of the volume.
    """
    out = np.zeros(tuple(int(n) for n in size), np.float32)
    src = tuple(slice(int(c), min(int(c) + int(n), m)) for c, n, m in zip(corner, size, volume.shape))
    dst = tuple(slice(0, max(s.stop - s.start, 0)) for s in src)
    if all(d.stop > 0 for d in dst):
        out[dst] = volume[src]
    return out
