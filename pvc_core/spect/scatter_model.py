"""A model-based photopeak scatter estimate for OSEM, fitted to calibration acquisitions.

Why: TEW (:func:`~pvc_core.spect.scatter.tew_scatter_estimate`) takes the photopeak scatter's
*shape* from the lower window, whose scatter is about twice as wide; in sparse objects it then
over-subtracts in the cold regions and OSEM's positivity keeps the excess (+6 % total activity in
bodies, docs/physics.md). Model-based corrections (ESSE, Frey & Tsui 1993; Monte Carlo in the
reconstruction) take the shape from the current image instead.

The model (its own form, fitted like a clinic would; nothing of :mod:`pvc_core.spect.scatter`'s
tables or kernels is used):

    s_v(u, z) = c_v  sum_j  a_j  [G(sigma_j) * P_{v,j}](u, z)

* ``P_{v,j}``: the attenuated primary projection (no collimator response) of view ``v`` of the
  current image, split over optical-depth nodes ``tau_j`` (hat functions of the optical depth
  ``tau`` from each voxel to the detector at 208 keV; beyond the last node, the last node);
* ``G(sigma_j)``: a 2-D Gaussian in the detector plane with ``sigma_j = sigma0 + sigma1 tau_j`` (mm);
* ``a_j >= 0``: scatter counts per attenuated primary count at depth ``tau_j``, with ``a = 0`` at
  ``tau = 0`` (no matter in front, no scatter: a source in air has none), non-decreasing with depth;
* ``c_v``: 1 (``scaling='fit'``: amount and shape from the fit) or, with ``scaling='tew'``, the
  per-view factor that makes the view's total equal to its triple-energy-window total (the amount
  from the measurement, only the shape from the model).

**Fit** (:func:`pvc_core.spect.scatter_model_fit.fit_scatter_model`, once per camera and detector
pixel, cached in the process and
on disk as JSON with its provenance): two calibration acquisitions are made through
:class:`~pvc_core.spect.acquisition.AcquisitionChain` (noise-free: a long acquisition) as a clinic
would make them: the MIRD-26 uniform water cylinder (216 x 186 mm) and three 10 mm rods (line
sources) in a larger water cylinder. The clinic knows each phantom (activity, CT) and its camera's
primary response (sensitivity in air, the fitted RR response of
:mod:`~pvc_core.spect.response_fit`), so the photopeak minus the modelled primary is the scatter
it measured (with whatever else the model lacks: the collimator pedestal, partial volume at the
edges). ``sigma0`` and ``sigma1`` are searched on a grid, the amplitudes fitted by non-negative
least squares for each (as non-negative increments from node to node, so they cannot fall with
depth: free amplitudes zig-zagged between neighbouring nodes, which two calibration phantoms
cannot separate, and biased another simulator's bodies by +1.7 %), over every 4th view of both
acquisitions.

It inherits the camera's simplifications (a slab-like depth dependence with no lateral escape is
what the simulator has too), so its success here is an upper bound for a real camera.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from pvc_core.spect.system_model import SPECTSystem

#: Optical-depth nodes (208 keV, dimensionless) of the model's depth classes; 3.0 is about the
#: centre of a 45 cm wide body. Beyond the last node a voxel counts as at the last node.
TAU_NODES: tuple[float, ...] = (0.0, 0.25, 0.5, 0.8, 1.2, 1.7, 2.3, 3.0)
#: Grid searched for sigma0 (mm) and sigma1 (mm per unit optical depth).
SIGMA0_GRID_MM: tuple[float, ...] = (4.0, 8.0, 12.0, 16.0, 20.0, 25.0, 30.0)
SIGMA1_GRID_MM: tuple[float, ...] = (0.0, 4.0, 8.0, 12.0, 16.0, 24.0, 32.0)
#: Every n-th view of the calibration acquisitions enters the fit.
FIT_VIEW_STEP = 4
#: Scalings of the estimate: ``tew`` (each view's total = its TEW total) or ``fit`` (absolute).
SCALINGS = ("tew", "fit")
#: Water at 208 keV (1/cm; NIST XCOM), for the calibration phantoms' CT.
MU_WATER_PER_CM = 0.1350
#: Version of the fit procedure (part of the cache key). 2: amplitudes non-decreasing with depth.
FIT_VERSION = 2


@dataclass(frozen=True)
class ScatterModelParams:
    """Fitted parameters of the scatter model (see the module docstring).

    ``amplitude[j]``: scatter counts per attenuated primary count at optical depth ``tau_nodes[j]``;
    ``sigma0_mm + sigma1_mm * tau``: the Gaussian's sigma (mm, per detector axis);
    ``provenance``: how the fit was made (phantoms, camera, residual, date).
    """

    tau_nodes: tuple[float, ...]
    amplitude: tuple[float, ...]
    sigma0_mm: float
    sigma1_mm: float
    provenance: dict = field(default_factory=dict, compare=False, hash=False)

    def sigma_mm(self) -> np.ndarray:
        """Gaussian sigma (mm) at each node."""
        return self.sigma0_mm + self.sigma1_mm * np.asarray(self.tau_nodes, dtype=float)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ScatterModelParams:
        return cls(tuple(float(x) for x in d["tau_nodes"]), tuple(float(x) for x in d["amplitude"]),
                   float(d["sigma0_mm"]), float(d["sigma1_mm"]), dict(d.get("provenance", {})))


# ------------------------------------------------------------------------------ the estimate

def gaussian_transfer(n_u: int, n_z: int, sigma_px: np.ndarray, device: torch.device) -> torch.Tensor:
    """rFFT transfer (C, 2 n_u, n_z + 1) of unit-sum Gaussians of ``sigma_px`` (C,) on the zero-padded grid."""
    fu = torch.fft.fftfreq(2 * n_u, device=device)
    fz = torch.fft.rfftfreq(2 * n_z, device=device)
    f2 = fu[:, None] ** 2 + fz[None, :] ** 2
    s2 = torch.as_tensor(np.asarray(sigma_px, dtype=np.float32) ** 2, device=device)
    return torch.exp(-2.0 * np.pi ** 2 * s2[:, None, None] * f2)


def optical_depth_classes(system: SPECTSystem, activity_mbq: torch.Tensor, views: np.ndarray, tau_nodes: np.ndarray):
    """Yield (rows in ``views``, depth classes (nv, C, n_u, n_z)) per block of ``system`` inside ``views``."""
    for bi in range(system.n_blocks):
        blk = system.block(bi)
        inside = np.isin(blk.views, views)
        if not inside.any():
            continue
        if not inside.all():
            raise ValueError("the model's views must be a union of the system's view blocks (build it with the subsets)")
        rows = np.searchsorted(views, blk.views)
        # mu_water = 1: the class "depth" is the optical depth tau itself
        yield rows, system.depth_classes(activity_mbq, blk, tau_nodes, 1.0)


def model_scatter(system: SPECTSystem, activity_mbq: torch.Tensor, params: ScatterModelParams,
                  views: np.ndarray | None = None) -> torch.Tensor:
    """The model's photopeak scatter (counts) of ``activity_mbq`` (MBq per voxel, (n, n, n_z) or a
    batch (B, n, n, n_z)) in ``views`` (default all; a union of the system's blocks, e.g. an OSEM
    subset): (len(views), n_u, n_z), or (B, len(views), n_u, n_z) for a batch; ``c_v = 1``."""
    batched = activity_mbq.ndim == 4
    acts = activity_mbq if batched else activity_mbq[None]
    views = np.arange(system.n_views) if views is None else np.asarray(views)
    fr = system.frame
    tau = np.asarray(params.tau_nodes, dtype=np.float64)
    kernel = gaussian_transfer(fr.n_u, fr.n_z, params.sigma_mm() / fr.voxel_mm, system.device)
    kernel = kernel * torch.as_tensor(params.amplitude, dtype=torch.float32, device=system.device)[:, None, None]
    out = torch.zeros(acts.shape[0], len(views), fr.n_u, fr.n_z, device=system.device)
    for b, act in enumerate(acts):
        for rows, classes in optical_depth_classes(system, act, views, tau):
            spec = torch.fft.rfft2(classes, s=(2 * fr.n_u, 2 * fr.n_z))
            img = torch.fft.irfft2((spec * kernel[None]).sum(dim=1), s=(2 * fr.n_u, 2 * fr.n_z))
            out[b, torch.as_tensor(rows, device=system.device)] = torch.clamp(img[:, :fr.n_u, :fr.n_z], min=0.0)
    out.mul_(system.counts_per_mbq)
    return out if batched else out[0]


def scale_per_view(estimate: torch.Tensor, target_per_view: torch.Tensor) -> torch.Tensor:
    """``estimate`` (..., V, n_u, n_z) with each view scaled so that its total is ``target_per_view`` (..., V).

    A view whose estimate is empty stays empty (its target cannot be given a shape)."""
    total = estimate.sum(dim=(-2, -1))
    factor = torch.where(total > 0, target_per_view / total.clamp(min=1e-30), torch.zeros_like(total))
    return estimate * factor[..., None, None]
