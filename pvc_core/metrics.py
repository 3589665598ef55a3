"""Image-quality metrics of the paper (SSIM, NRMSE, VAA, activity deviation, recovery coefficient).

Every metric takes a corrected (or uncorrected) image and the true activity distribution on the
same grid (numpy arrays, MBq/mL) and returns a float. Unless a mask is given, the voxel-wise
metrics are restricted to the true-activity region ``M = truth > 0`` (Leube et al., J Nucl Med
2024: "calculation was restricted to a masked region ... in which ground-truth activity was
present"). The definitions are fixed in DESIGN.md; each lives in exactly one function below, with
its formula in the docstring.

Bad input (shapes that differ, NaN or infinity, an empty mask, a truth without range) raises
:class:`~pvc_core.errors.InputError` with a one-line message.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from pvc_core.errors import InputError

__all__ = ["ssim", "ssim_map", "nrmse", "nrmse_bounding_box", "bounding_box", "vaa", "vaa_map", "activity_deviation",
           "recovery_coefficient", "compute_all"]


def _check_pair(image: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as float64, same shape, all values finite."""
    image = np.asarray(image, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if image.shape != truth.shape:
        raise InputError(f"image shape {image.shape} differs from truth shape {truth.shape}")
    for name, arr in (("image", image), ("truth", truth)):
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{name} holds {int((~np.isfinite(arr)).sum())} NaN or infinite values")
    return image, truth


def _mask_of(truth: np.ndarray, mask: np.ndarray | None, what: str = "mask") -> np.ndarray:
    """Boolean mask: ``truth > 0`` unless given; must match the shape and hold at least one voxel."""
    if mask is None:
        m = truth > 0
        if not m.any():
            raise InputError("truth has no voxel with activity > 0, so the metric mask is empty")
        return m
    m = np.asarray(mask)
    if m.shape != truth.shape:
        raise InputError(f"{what} shape {m.shape} differs from image shape {truth.shape}")
    if m.dtype != bool:
        if not np.all(np.isfinite(m)):
            raise InputError(f"{what} holds NaN or infinite values")
        m = m != 0
    if not m.any():
        raise InputError(f"{what} is empty (no voxel selected)")
    return m


def _truth_range(truth: np.ndarray) -> float:
    rng = float(truth.max() - truth.min())
    if rng <= 0:
        raise InputError("truth is constant (max - min = 0), so SSIM and NRMSE are undefined")
    return rng


def ssim_map(image: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Voxel-wise SSIM map of ``image`` against ``truth`` (float64, same shape).

    scikit-image's ``structural_similarity`` on the whole volume (7-voxel uniform window, its
    default constants K1 = 0.01, K2 = 0.03) with ``data_range = max(truth) - min(truth)`` over
    the whole volume, ``full=True``.
    """
    image, truth = _check_pair(image, truth)
    if min(truth.shape) < 7:
        raise InputError(f"SSIM needs at least 7 voxels along every axis, got shape {truth.shape}")
    _, smap = structural_similarity(image, truth, data_range=_truth_range(truth), full=True)
    return smap


def ssim(image: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Structural similarity averaged over the mask (dimensionless, at most 1).

    ``SSIM = mean over M of S(x)``, where ``S`` is scikit-image's SSIM map of the whole volume
    (:func:`ssim_map`, ``data_range = max(truth) - min(truth)``) and ``M`` the mask
    (default ``truth > 0``).
    """
    image, truth = _check_pair(image, truth)
    m = _mask_of(truth, mask)
    return float(ssim_map(image, truth)[m].mean())


def nrmse(image: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Normalised root-mean-square error in percent.

    ``NRMSE = 100 * sqrt(mean over M of (image - truth)^2) / (max(truth) - min(truth))``

    The mean runs over the mask ``M`` (default ``truth > 0``). The range in the denominator is
    that of the whole truth volume, the same ``data_range`` as :func:`ssim`: a range over ``M``
    alone would be zero for a uniform object (the paper's 100 mL sphere phantom, for which it
    reports a finite NRMSE).
    """
    image, truth = _check_pair(image, truth)
    m = _mask_of(truth, mask)
    rmse = np.sqrt(np.mean((image[m] - truth[m]) ** 2))
    return float(100.0 * rmse / _truth_range(truth))


def bounding_box(mask: np.ndarray) -> np.ndarray:
    """Boolean volume of the smallest axis-aligned box holding every voxel of ``mask``.

    ``B = [i0_min, i0_max] x [i1_min, i1_max] x ...`` over the voxels with ``mask != 0``
    (inclusive bounds, in voxels); same shape as ``mask``.
    """
    m = np.asarray(mask)
    if m.dtype != bool:
        if not np.all(np.isfinite(m)):
            raise InputError("mask holds NaN or infinite values")
        m = m != 0
    if not m.any():
        raise InputError("mask is empty (no voxel selected)")
    box = np.zeros(m.shape, dtype=bool)
    box[tuple(slice(int(idx.min()), int(idx.max()) + 1) for idx in np.nonzero(m))] = True
    return box


def nrmse_bounding_box(image: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """NRMSE in percent over the bounding box of the mask, background voxels of the box included.

    ``NRMSE_B = 100 * sqrt(mean over B of (image - truth)^2) / (max(truth) - min(truth))``

    with ``B = bounding_box(M)`` (:func:`bounding_box`), ``M`` the mask (default ``truth > 0``),
    and the same whole-volume range as :func:`nrmse`. Unlike :func:`nrmse`, the spill-out into
    the inactive voxels around the object counts, and the mean is diluted by them: for a sphere
    about 48 % of its box (``1 - pi/6``) lies outside it.
    """
    image, truth = _check_pair(image, truth)
    return nrmse(image, truth, bounding_box(_mask_of(truth, mask)))


def vaa_map(image: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None,
            alpha: float = 0.05) -> np.ndarray:
    """Boolean map of accurate voxels: ``M and |image - truth| < alpha * truth``.

    A voxel is accurate when its relative deviation ``|image - truth| / truth`` is below
    ``alpha``; written without the division, so that a voxel of a given mask with
    ``truth <= 0`` is never accurate. Voxels outside the mask ``M`` (default ``truth > 0``)
    are ``False``.
    """
    image, truth = _check_pair(image, truth)
    if not 0 < alpha < 1:
        raise InputError(f"alpha must lie in (0, 1), got {alpha}")
    m = _mask_of(truth, mask)
    return m & (np.abs(image - truth) < alpha * truth)


def vaa(image: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None, alpha: float = 0.05) -> float:
    """Volume (voxel) activity accuracy in percent.

    ``VAA = 100 * #{v in M : |image(v) - truth(v)| / truth(v) < alpha} / #M``

    with ``M`` the mask (default ``truth > 0``) and ``alpha`` the relative tolerance (paper 5%).
    """
    _, truth_checked = _check_pair(image, truth)
    m = _mask_of(truth_checked, mask)
    return float(100.0 * vaa_map(image, truth, m, alpha).sum() / m.sum())


def activity_deviation(image: np.ndarray, truth: np.ndarray) -> float:
    """Deviation of the total activity in percent (whole volume, no mask).

    ``AD = 100 * (sum(image) - sum(truth)) / sum(truth)``
    """
    image, truth = _check_pair(image, truth)
    total = truth.sum()
    if total <= 0:
        raise InputError(f"truth has total {total:.4g} <= 0, so the activity deviation is undefined")
    return float(100.0 * (image.sum() - total) / total)


def recovery_coefficient(image: np.ndarray, truth: np.ndarray, region: np.ndarray) -> float:
    """Recovery coefficient of a region (dimensionless; 1 = full recovery).

    ``RC = mean over R of image / mean over R of truth``, ``R`` the boolean ``region``.
    """
    image, truth = _check_pair(image, truth)
    r = _mask_of(truth, region, what="region")
    mean_truth = truth[r].mean()
    if mean_truth <= 0:
        raise InputError("truth has no activity in the region (mean <= 0), so the recovery coefficient is undefined")
    return float(image[r].mean() / mean_truth)


def compute_all(image: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None,
                alpha: float = 0.05) -> dict[str, float]:
    """All case metrics: ``{"ssim", "nrmse_pct", "vaa_pct", "ad_pct"}`` (the CLI's JSON keys)."""
    image, truth = _check_pair(image, truth)
    m = _mask_of(truth, mask)
    return {
        "ssim": ssim(image, truth, m),
        "nrmse_pct": nrmse(image, truth, m),
        "vaa_pct": vaa(image, truth, m, alpha),
        "ad_pct": activity_deviation(image, truth),
    }
