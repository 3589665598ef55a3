"""Mask-free PVC baselines with PETPVC's definitions: Richardson-Lucy and reblurred Van Cittert.

Both deconvolve the image with the same PSF as iterative Yang (ITK's discrete Gaussian as PETPVC
applies it, :mod:`pvc_core.pvc.itk_gaussian`), in float32 like PETPVC (``--pvc RL`` and
``--pvc VC``, iterations from ``-k``, default 10). Neither needs a mask; both amplify noise as they
iterate, which is why PETPVC stops them early.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from pvc_core.errors import InputError
from pvc_core.pvc._checks import image_3d, iteration_count
from pvc_core.pvc.itk_gaussian import ItkGaussianBlur


def richardson_lucy(image: np.ndarray, fwhm_mm: float | Sequence[float], voxel_size_mm: Sequence[float],
                    iterations: int = 10, device: str | torch.device | None = None) -> np.ndarray:
    """Richardson-Lucy deconvolution as PETPVC's ``--pvc RL`` defines it.

    With P+ = max(P, 0) (negative voxels set to 0) and f_0 = P+:

        f_{n+1} = f_n * P+ / G(f_n)

    PETPVC multiplies by the ratio itself, not by its back-projection G^T(P+ / G(f_n)) as textbook
    Richardson-Lucy does; this follows PETPVC. Where G(f_n) = 0 (f_n = 0 throughout the kernel
    footprint, since every tap is positive) the voxel stays 0, as in PETPVC. There is no stopping
    test (PETPVC prints a log-likelihood but does not use it).

    Parameters
    ----------
    image:
        3-D image (activity, e.g. MBq/mL), finite.
    fwhm_mm:
        PSF FWHM in mm, one number or one per array axis 0, 1, 2.
    voxel_size_mm:
        Voxel edge lengths in mm along array axes 0, 1, 2.
    iterations:
        Number of iterations (PETPVC's default 10).
    device:
        torch device, default CPU.

    Returns
    -------
    The deconvolved image, float32, non-negative, same units. Total activity is not conserved
    exactly (it is near the image's positive total).
    """
    p_np = image_3d(image)
    n_iter = iteration_count(iterations)
    dev = torch.device("cpu" if device is None else device)
    blur = ItkGaussianBlur(fwhm_mm, voxel_size_mm, dev)
    zero = torch.zeros((), dtype=torch.float32, device=dev)
    p_pos = torch.clamp_min(torch.from_numpy(p_np).to(dev), 0.0)
    f = p_pos
    for _ in range(n_iter):
        g = blur(f)
        f = f * torch.where(g != 0, p_pos / g, zero)
    return f.cpu().numpy().copy() if n_iter else p_pos.cpu().numpy().copy()


def van_cittert(image: np.ndarray, fwhm_mm: float | Sequence[float], voxel_size_mm: Sequence[float],
                iterations: int = 10, alpha: float = 1.5, stop: float | None = 0.01,
                device: str | torch.device | None = None) -> np.ndarray:
    """Reblurred Van Cittert deconvolution as PETPVC's ``--pvc VC`` defines it.

    With f_0 = P:

        f_{n+1} = max(0, f_n + alpha * G(P - G(f_n)))

    stopping after ``iterations`` updates or as soon as ||f_{n+1} - f_n|| / ||P|| < ``stop``
    (Euclidean norms over all voxels; the update that meets the test is kept). The reblurring
    (G applied to the residual) makes it a Landweber iteration for the symmetric kernel; the clip
    at 0 after every update is PETPVC's.

    Parameters
    ----------
    image:
        3-D image (activity, e.g. MBq/mL), finite.
    fwhm_mm:
        PSF FWHM in mm, one number or one per array axis 0, 1, 2.
    voxel_size_mm:
        Voxel edge lengths in mm along array axes 0, 1, 2.
    iterations:
        Maximum number of iterations (PETPVC's ``-k``, default 10).
    alpha:
        Step size (PETPVC's ``-a``, default 1.5); 0 < alpha < 2 converges for a normalised kernel.
    stop:
        Relative-change stopping threshold (PETPVC's ``-s``, default 0.01); ``None`` or 0 runs
        all iterations.
    device:
        torch device, default CPU.

    Returns
    -------
    The deconvolved image, float32, non-negative, same units.
    """
    p_np = image_3d(image)
    n_iter = iteration_count(iterations)
    alpha_f = float(alpha)
    if not np.isfinite(alpha_f) or alpha_f <= 0:
        raise InputError(f"alpha must be a finite number > 0, got {alpha!r}")
    stop_f = 0.0 if stop is None else float(stop)
    if not np.isfinite(stop_f) or stop_f < 0:
        raise InputError(f"stop must be a finite number >= 0 or None, got {stop!r}")
    dev = torch.device("cpu" if device is None else device)
    blur = ItkGaussianBlur(fwhm_mm, voxel_size_mm, dev)
    p = torch.from_numpy(p_np).to(dev)
    norm_p = float(torch.linalg.vector_norm(p.to(torch.float64)))
    alpha32 = float(np.float32(alpha_f))
    f = p
    for _ in range(n_iter):
        update = blur(p - blur(f)) * alpha32
        f_new = torch.clamp_min(f + update, 0.0)
        change = float(torch.linalg.vector_norm((f_new - f).to(torch.float64)))
        f = f_new
        if stop_f > 0 and norm_p > 0 and change / norm_p < stop_f:
            break
    return f.cpu().numpy().copy() if n_iter else p_np.copy()
