"""The Gaussian post-filter a clinic's reconstruction may apply after OSEM, activity conserved."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: FWHM of a Gaussian over its standard deviation, 2 sqrt(2 ln 2).
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def post_filter(image: np.ndarray, voxel_mm: float, fwhm_mm: float) -> np.ndarray:
    """``image`` (float, e.g. MBq/mL on voxels of ``voxel_mm`` mm) smoothed by an isotropic
    Gaussian of ``fwhm_mm`` mm FWHM (0: returned unchanged), float32.

    The edges reflect (half-sample symmetric), so what the kernel would carry out of the field of
    view comes back in: the image total is conserved (to float rounding) while the kernel is
    shorter than the grid. A point's FWHM ``a`` becomes ``sqrt(a^2 + fwhm_mm^2)``.
    """
    if fwhm_mm < 0 or not np.isfinite(fwhm_mm):
        raise ValueError(f"post-filter FWHM must be >= 0 mm, got {fwhm_mm}")
    if fwhm_mm == 0:
        return image
    sigma_voxels = fwhm_mm / FWHM_PER_SIGMA / float(voxel_mm)
    out = ndimage.gaussian_filter(np.asarray(image, dtype=np.float64), sigma_voxels, mode="reflect", truncate=4.0)
    return out.astype(np.float32)
