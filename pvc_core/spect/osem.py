"""OSEM reconstruction with attenuation and TEW scatter correction, without (noRR) and with (RR)
distance-dependent collimator-detector response modelling.

The paper reconstructed noRR with CASToR (OSEM 10 iterations x 2 subsets, AC + SC) and RR with
STIR (OSEM 6 x 6, AC + SC + resolution modelling); iterations and subsets come from
the :class:`~pvc_core.specs.ReconSpec`. Both use PyTomography's ``OSEM`` and
``PoissonLogLikelihood`` (additive term = TEW scatter estimate) on our cached system matrix
(:mod:`pvc_core.spect.system_model`, which explains why it replaces PyTomography's projector).
The initial image is 1 inside the reconstructed field of view (the cylinder inscribed in the
grid) and 0 outside. Images are calibrated with the camera's sensitivity, the same one the
simulator used, and returned in MBq/mL.
"""

from __future__ import annotations

import numpy as np
import torch

from typing import TYPE_CHECKING

from pvc_core.domain import RECONSTRUCTIONS
from pvc_core.errors import InputError
from pvc_core.spect.projections import Projections
from pvc_core.spect.response_fit import FittedResponse, fit_response
from pvc_core.spect.scatter import tew_scatter_estimate
from pvc_core.spect.system_cache import get_system

if TYPE_CHECKING:
    from pvc_core.specs import CameraSpec, ReconSpec


def rr_response(camera: "CameraSpec", pixel_mm: float) -> FittedResponse:
    """The distance-dependent Gaussian response RR models for ``camera`` at detector pixel ``pixel_mm``.

    Fitted once per process to simulated point sources in air
    (:func:`~pvc_core.spect.response_fit.fit_response`, cached); ``.as_dict()`` gives the
    coefficients and the measured FWHMs for image sidecars.
    """
    return fit_response(camera, pixel_mm)


def reconstruct(projections: Projections, mu_recon_per_cm: np.ndarray, recon: "ReconSpec", camera: "CameraSpec",
                device: torch.device | str | None = None, cache_subsets: tuple[int, ...] = ()) -> np.ndarray:
    """Reconstruct the photopeak window: float32 MBq/mL on the reconstruction grid.

    Parameters
    ----------
    projections:
        Counts (noisy or expected) in all three windows with their orbit.
    mu_recon_per_cm:
        Attenuation map (n, n, n) in 1/cm at 208 keV on the reconstruction grid (n = detector
        pixels, voxel = detector pixel size).
    recon:
        The reconstruction: ``noRR`` (no resolution modelling) or ``RR`` (distance-dependent CDR
        modelled), iterations and subsets.
    camera:
        The camera (sensitivity for the calibration, windows and smoothing of the TEW scatter
        estimate; RR's response is :func:`rr_response` of it).
    device:
        torch device (default CPU).
    cache_subsets:
        Subset counts of further reconstructions of the same projections in this process, so
        the cached system serves them too (performance only).
    """
    return reconstruct_together([projections], mu_recon_per_cm, recon, camera, device, cache_subsets)[0]


def reconstruct_together(projections: "list[Projections]", mu_recon_per_cm: np.ndarray, recon: "ReconSpec",
                         camera: "CameraSpec", device: torch.device | str | None = None,
                         cache_subsets: tuple[int, ...] = ()) -> list[np.ndarray]:
    """:func:`reconstruct` of several acquisitions of one case (e.g. its noise levels) in one OSEM run.

    The objects are one batch: every projection reads the cached geometry once for all of
    them. Each image is exactly the one :func:`reconstruct` makes of its projections alone
    (the projector treats batch members independently, in the same order of operations).
    """
    if not projections:
        return []
    first = projections[0]
    for other in projections[1:]:
        if (other.shape != first.shape or other.pixel_mm != first.pixel_mm
                or other.time_per_view_s != first.time_per_view_s
                or not np.array_equal(other.angles_deg, first.angles_deg)
                or not np.array_equal(other.radii_mm, first.radii_mm)):
            raise InputError("projections reconstructed together must share one acquisition geometry "
                             "(views, radii, pixel size, time per view)", "reconstruct")
    projections_in = projections
    projections = first
    if recon.name not in RECONSTRUCTIONS:
        raise InputError(f"unknown reconstruction {recon.name!r}; expected one of {RECONSTRUCTIONS}", "reconstruct")
    mu = np.asarray(mu_recon_per_cm, dtype=np.float32)
    n_views, n_u, n_z = projections.shape
    if mu.shape != (n_u, n_u, n_z):
        raise InputError(f"attenuation map {mu.shape} does not match the detector ({n_u} x {n_z} pixels); "
                         f"expected {(n_u, n_u, n_z)}", "reconstruct")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    windows = camera.windows
    response = rr_response(camera, projections.pixel_mm) if recon.psf else None
    counts_per_mbq = camera.sensitivity_cps_per_mbq * projections.time_per_view_s
    iterations, subsets = recon.iterations, recon.subsets
    subset_counts = (1, subsets, *cache_subsets)
    if recon.scatter_correction not in ("tew", "simulated"):
        raise InputError(f"unknown scatter correction {recon.scatter_correction!r}",
                         f"reconstruction.{recon.name}.scatter_correction")
    if recon.scatter_correction == "simulated" and any(p.simulated_scatter is None for p in projections_in):
        raise InputError("scatter_correction 'simulated' needs projections that carry the simulated scatter "
                         "(simulate them again with this version)", f"reconstruction.{recon.name}.scatter_correction")
    if subsets > n_views:
        raise InputError(f"{subsets} subsets exceed the {n_views} views", f"reconstruction.{recon.name}.subsets")

    from pvc_core.spect._pytomography import pytomography_on
    from pvc_core.spect.system_model import make_pytomography_system_matrix
    from pytomography.algorithms import OSEM
    from pytomography.likelihoods import PoissonLogLikelihood

    with torch.no_grad(), pytomography_on(dev):
        system = get_system(mu, projections.pixel_mm, projections.angles_deg, projections.radii_mm, response,
                            counts_per_mbq, subset_counts, dev)
        as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(dev)  # noqa: E731
        peak = torch.stack([as_t(p.windows["photopeak"]) for p in projections_in])
        if recon.scatter_correction == "simulated":
            scatter = torch.stack([as_t(p.simulated_scatter) for p in projections_in])
        else:
            scatter = torch.stack([tew_scatter_estimate(as_t(p.windows["lower"]), as_t(p.windows["upper"]), windows,
                                                        p.pixel_mm, camera.tew_smoothing_fwhm_mm, p.angles_deg)
                                   for p in projections_in])
        matrix = make_pytomography_system_matrix(system, psf=recon.psf)
        likelihood = PoissonLogLikelihood(matrix, peak, additive_term=scatter)
        start = system.fov_mask()[None].expand(len(projections_in), -1, -1, -1).contiguous()
        osem = OSEM(likelihood, object_initial=start)
        image_mbq = osem(n_iters=iterations, n_subsets=subsets)
    voxel_ml = (projections.pixel_mm / 10.0) ** 3
    return [im.astype(np.float32) for im in (image_mbq / voxel_ml).cpu().numpy()]
