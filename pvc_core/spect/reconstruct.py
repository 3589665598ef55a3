"""OSEM reconstruction with attenuation and TEW scatter correction, without (noRR) and with (RR)
distance-dependent collimator-detector response modelling.

The paper reconstructed noRR with CASToR (OSEM 10 iterations x 2 subsets, AC + SC) and RR with
STIR (OSEM 6 x 6, AC + SC + resolution modelling); iterations and subsets come from
``config['reconstruction'][method]``. Both use PyTomography's ``OSEM`` and
``PoissonLogLikelihood`` (additive term = TEW scatter estimate) on our cached system matrix
(:mod:`pvc_core.spect.system_model`, which explains why it replaces PyTomography's projector).
The initial image is 1 inside the reconstructed field of view (the cylinder inscribed in the
grid) and 0 outside. Images are calibrated with the configured sensitivity, the same one the
simulator used, and returned in MBq/mL.
"""

from __future__ import annotations

import numpy as np
import torch

from pvc_core.errors import InputError
from pvc_core.spect.collimator import Collimator
from pvc_core.spect.energy_windows import EnergyWindows
from pvc_core.spect.projections import Projections
from pvc_core.spect.scatter import tew_scatter_estimate
from pvc_core.spect.system_cache import get_system

METHODS = ("noRR", "RR")


def reconstruct(projections: Projections, mu_recon_per_cm: np.ndarray, method: str, config: dict,
                device: torch.device | str | None = None) -> np.ndarray:
    """Reconstruct the photopeak window: float32 MBq/mL on the reconstruction grid.

    Parameters
    ----------
    projections:
        Counts (noisy or expected) in all three windows with their orbit.
    mu_recon_per_cm:
        Attenuation map (n, n, n) in 1/cm at 208 keV on the reconstruction grid (n = detector
        pixels, voxel = detector pixel size).
    method:
        ``'noRR'`` (no resolution modelling) or ``'RR'`` (distance-dependent CDR modelled).
    config:
        Validated configuration: ``reconstruction`` (iterations, subsets) and ``camera``
        (sensitivity, collimator, windows, TEW smoothing).
    device:
        torch device (default CPU).
    """
    if method not in METHODS:
        raise InputError(f"unknown reconstruction method {method!r}; expected one of {METHODS}", "reconstruct")
    mu = np.asarray(mu_recon_per_cm, dtype=np.float32)
    n_views, n_u, n_z = projections.shape
    if mu.shape != (n_u, n_u, n_z):
        raise InputError(f"attenuation map {mu.shape} does not match the detector ({n_u} x {n_z} pixels); "
                         f"expected {(n_u, n_u, n_z)}", "reconstruct")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    cam = config["camera"]
    rec = config["reconstruction"]
    windows = EnergyWindows.from_config(config)
    collimator = Collimator.from_config(config)
    counts_per_mbq = cam["sensitivity_cps_per_mbq"] * projections.time_per_view_s
    subset_counts = (1, int(rec["noRR"]["subsets"]), int(rec["RR"]["subsets"]))
    iterations, subsets = int(rec[method]["iterations"]), int(rec[method]["subsets"])
    if subsets > n_views:
        raise InputError(f"{subsets} subsets exceed the {n_views} views", f"reconstruction.{method}.subsets")

    from pvc_core.spect._pytomography import pytomography_on
    from pvc_core.spect.system_model import make_pytomography_system_matrix
    from pytomography.algorithms import OSEM
    from pytomography.likelihoods import PoissonLogLikelihood

    with torch.no_grad(), pytomography_on(dev):
        system = get_system(mu, projections.pixel_mm, projections.angles_deg, projections.radii_mm, collimator,
                            counts_per_mbq, subset_counts, dev)
        as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(dev)  # noqa: E731
        peak = as_t(projections.windows["photopeak"])
        scatter = tew_scatter_estimate(as_t(projections.windows["lower"]), as_t(projections.windows["upper"]),
                                       windows, projections.pixel_mm, cam["tew_smoothing_fwhm_mm"],
                                       projections.angles_deg)
        matrix = make_pytomography_system_matrix(system, psf=(method == "RR"))
        likelihood = PoissonLogLikelihood(matrix, peak, additive_term=scatter)
        osem = OSEM(likelihood, object_initial=system.fov_mask())
        image_mbq = osem(n_iters=iterations, n_subsets=subsets)
    voxel_ml = (projections.pixel_mm / 10.0) ** 3
    return (image_mbq / voxel_ml).cpu().numpy().astype(np.float32)
