"""The grid a model sees: its training voxel size and orientation, covering the input image.

Training images are axis-aligned with the world (RAS+: array axis 0 = +x Right, 1 = +y Anterior,
2 = +z Superior; :func:`pvc_core.geometry.frames.simulation_frame`) with cubic voxels of the
model's ``trained_for.voxel_mm``. An input is resampled (activity-conserving) onto a grid of that
orientation and voxel size whose box starts at the lower corner of the input's world bounding box
(of its voxel boxes, any rotation), with as many voxels as cover it. An input stored in another
axis order or with flipped axes has the same bounding box, hence the same model grid and the same
network input; an axis-aligned input with the model's voxel size maps onto it voxel for voxel
(no interpolation).
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["world_bounding_box", "model_grid"]

#: A bounding box extent within this fraction of a whole number of voxels is that number.
_WHOLE_TOL = 1e-4


def world_bounding_box(shape: tuple[int, int, int], affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) world corners (mm) of the box around every voxel of a grid (voxel boxes, not centres)."""
    corners = np.array([[i - 0.5 for i in c] for c in itertools.product(*[(0, n) for n in shape])], float)
    world = (np.asarray(affine, float)[:3, :3] @ corners.T).T + np.asarray(affine, float)[:3, 3]
    return world.min(axis=0), world.max(axis=0)


def model_grid(shape: tuple[int, int, int], affine: np.ndarray,
               voxel_mm: tuple[float, float, float]) -> tuple[tuple[int, int, int], np.ndarray]:
    """``(shape, affine)`` of the RAS+ axis-aligned grid of ``voxel_mm`` voxels covering the input grid."""
    lower, upper = world_bounding_box(shape, affine)
    v = np.asarray(voxel_mm, float)
    extent = (upper - lower) / v
    n = np.where(np.abs(extent - np.round(extent)) < _WHOLE_TOL, np.round(extent), np.ceil(extent)).astype(int)
    n = np.maximum(n, 1)
    out = np.eye(4)
    out[:3, :3] = np.diag(v)
    out[:3, 3] = lower + v / 2
    return tuple(int(k) for k in n), out
