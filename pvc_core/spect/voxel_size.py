"""Reconstruction at a voxel other than the model grid's, as clinics do (``randomise``'s
``voxel_mm`` axis, :attr:`pvc_core.specs.ReconSpec.voxel_mm`).

A clinic's reconstruction voxel equals its projections' pixel (3.9-5.3 mm: a 128 matrix at
zoom 1-1.23 on a large-field camera), and ``dlpvc apply`` resamples its image to the model grid.
The chain does the same with its projections: the counts are rebinned to the drawn pixel
(:func:`rebin_projections`, overlap-weighted, counts conserved; angles and radii unchanged), the
attenuation map is resampled to a grid of that voxel covering the same field of view
(:func:`voxel_grid`, :func:`resample_mu`), OSEM runs there, and the image is resampled back to the
model grid with its activity conserved (:func:`resample_to_grid`), as ``apply`` resamples.

The resampling is :mod:`pvc_core.geometry.resample`'s exact overlap integration for aligned grids,
written once for the images and reused here for the detector (a projection is a stack of 2-D
images, one per view, with a unit-thick first axis).
"""

from __future__ import annotations

import math

import numpy as np

from pvc_core.geometry.resample import resample_activity, resample_mean
from pvc_core.io.nifti import affine_from_voxel_size
from pvc_core.spect.projections import Projections


def voxel_grid(matrix: int, voxel_mm: float, new_voxel_mm: float) -> int:
    """Matrix of a grid of ``new_voxel_mm`` that covers the field of view of ``matrix`` x ``voxel_mm``
    (rounded up, so nothing of the model grid falls outside it)."""
    return math.ceil(matrix * voxel_mm / new_voxel_mm - 1e-9)


def rebin_projections(proj: Projections, pixel_mm: float, n_pixels: int) -> Projections:
    """``proj`` on a detector of ``n_pixels`` x ``n_pixels`` pixels of ``pixel_mm``, centred on the
    same axis: each window's counts redistributed by pixel overlap (every count kept that falls
    on the new detector; with :func:`voxel_grid`'s matrix, all of them)."""
    n_views, n_u, n_z = proj.shape
    src = affine_from_voxel_size((1.0, proj.pixel_mm, proj.pixel_mm), (n_views, n_u, n_z))
    dst = affine_from_voxel_size((1.0, pixel_mm, pixel_mm), (n_views, n_pixels, n_pixels))
    area_ratio = (proj.pixel_mm / pixel_mm) ** 2  # counts: density x area
    windows = {w: (resample_activity(a, src, (n_views, n_pixels, n_pixels), dst) / area_ratio).astype(np.float32)
               for w, a in proj.windows.items()}
    meta = {**proj.meta, "rebinned_from_pixel_mm": float(proj.pixel_mm)}
    return Projections(windows, proj.angles_deg, proj.radii_mm, float(pixel_mm), proj.time_per_view_s, meta)


def resample_mu(mu_per_cm: np.ndarray, voxel_mm: float, new_voxel_mm: float, matrix: int) -> np.ndarray:
    """Attenuation (1/cm, intensive) on the centred grid of ``matrix`` voxels of ``new_voxel_mm``
    (overlap-weighted mean; 0, air, beyond the source grid)."""
    shape = (matrix, matrix, matrix)
    return resample_mean(mu_per_cm, affine_from_voxel_size(voxel_mm, mu_per_cm.shape), shape,
                         affine_from_voxel_size(new_voxel_mm, shape)).astype(np.float32)


def resample_to_grid(image_mbq_ml: np.ndarray, voxel_mm: float, grid_voxel_mm: float, grid_matrix: int) -> np.ndarray:
    """An image (MBq/mL) on the centred grid of ``voxel_mm`` back on the model grid
    (``grid_matrix`` x ``grid_voxel_mm``, centred), activity conserved (apply's resampling)."""
    shape = (grid_matrix,) * 3
    return resample_activity(image_mbq_ml, affine_from_voxel_size(voxel_mm, image_mbq_ml.shape), shape,
                             affine_from_voxel_size(grid_voxel_mm, shape)).astype(np.float32)
