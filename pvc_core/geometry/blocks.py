"""Integer-factor block resampling (phantom grid -> reconstruction grid) and label sampling.

``downsample_activity`` conserves activity exactly: the activity (MBq) of each block of
``factor^3`` fine voxels is summed (in float64) and divided by the coarse voxel's volume, so
``sum(coarse) * V_coarse == sum(fine) * V_fine`` up to float32 rounding of the stored values.

These are the special cases of :mod:`pvc_core.geometry.resample` that the phantom stage, the
simulator and the case pipeline need many times per case, written for speed: an integer block
factor between two grids that share their centre and axes (for which :func:`resample_activity`
gives the same block means), and label maps sampled on an axis-aligned grid.
"""

from __future__ import annotations

import numpy as np


def block_sum(image: np.ndarray, factor: int) -> np.ndarray:
    """Sum (float64) over blocks of ``factor^3`` voxels; the axis with the largest stride first (fastest)."""
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    a = np.asarray(image)
    if a.ndim != 3 or any(n % factor for n in a.shape):
        raise ValueError(f"shape {a.shape} is not 3-D or not divisible by the factor {factor}")
    nx, ny, nz = (n // factor for n in a.shape)
    s = a.reshape(nx, factor, ny * factor, nz * factor).sum(axis=1, dtype=np.float64)
    s = s.reshape(nx, ny, factor, nz * factor).sum(axis=2)
    return s.reshape(nx, ny, nz, factor).sum(axis=3)


def downsample_activity(activity_mbq_ml: np.ndarray, factor: int) -> np.ndarray:
    """Activity concentration (MBq/mL) on a grid ``factor`` times coarser per axis, activity conserved.

    Each coarse voxel holds the summed activity of its ``factor^3`` fine voxels divided by its
    volume (``factor^3`` fine voxels), i.e. their mean concentration. Returns float32.
    """
    if factor == 1:
        return np.asarray(activity_mbq_ml, dtype=np.float32).copy()
    return (block_sum(activity_mbq_ml, factor) / factor**3).astype(np.float32)


def downsample_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Block mean over ``factor^3`` voxels (e.g. mu in 1/cm on the reconstruction grid), float32."""
    if factor == 1:
        return np.asarray(image, dtype=np.float32).copy()
    return (block_sum(image, factor) / factor**3).astype(np.float32)


def sample_nearest(labels: np.ndarray, voxel_mm, origin_mm, x_mm: np.ndarray, y_mm: np.ndarray,
                   z_mm: np.ndarray, fill: int = 0) -> np.ndarray:
    """Nearest-neighbour sampling of a label map at the grid points ``x_mm, y_mm, z_mm`` (1-D each).

    ``labels[i, j, k]`` has its centre at ``origin_mm + (i, j, k) * voxel_mm``. Points outside
    the map get ``fill``. Returns an array of shape ``(len(x_mm), len(y_mm), len(z_mm))``.
    """
    out_idx = []
    valid = []
    for axis, pts in enumerate((x_mm, y_mm, z_mm)):
        idx = np.rint((np.asarray(pts, float) - origin_mm[axis]) / voxel_mm[axis]).astype(np.int64)
        ok = (idx >= 0) & (idx < labels.shape[axis])
        out_idx.append(np.clip(idx, 0, labels.shape[axis] - 1))
        valid.append(ok)
    out = labels[np.ix_(*out_idx)]
    mask = valid[0][:, None, None] & valid[1][None, :, None] & valid[2][None, None, :]
    if not mask.all():
        out = np.where(mask, out, np.asarray(fill, dtype=out.dtype))
    return out
