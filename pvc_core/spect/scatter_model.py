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
  ``tau = 0`` (no matter in front, no scatter: a source in air has none);
* ``c_v``: 1 (``scaling='fit'``: amount and shape from the fit) or, with ``scaling='tew'``, the
  per-view factor that makes the view's total equal to its triple-energy-window total (the amount
  from the measurement, only the shape from the model).

**Fit** (:func:`fit_scatter_model`, once per camera and detector pixel, cached in the process and
on disk as JSON with its provenance): two calibration acquisitions are made through
:class:`~pvc_core.spect.acquisition.AcquisitionChain` (noise-free: a long acquisition) as a clinic
would make them: the MIRD-26 uniform water cylinder (216 x 186 mm) and three 10 mm rods (line
sources) in a larger water cylinder. The clinic knows each phantom (activity, CT) and its camera's
primary response (sensitivity in air, the fitted RR response of
:mod:`~pvc_core.spect.response_fit`), so the photopeak minus the modelled primary is the scatter
it measured (with whatever else the model lacks: the collimator pedestal, partial volume at the
edges). ``sigma0`` and ``sigma1`` are searched on a grid, the amplitudes fitted by non-negative
least squares for each, over every 4th view of both acquisitions.

It inherits the camera's simplifications (a slab-like depth dependence with no lateral escape is
what the simulator has too), so its success here is an upper bound for a real camera.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import nnls

from pvc_core.geometry.blocks import block_sum
from pvc_core.specs import CameraSpec, GridSpec
from pvc_core.spect.acquisition import AcquisitionChain
from pvc_core.spect.response_fit import fit_response
from pvc_core.spect.system_cache import get_system
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
#: Version of the fit procedure (part of the cache key).
FIT_VERSION = 1


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

def _gaussian_transfer(n_u: int, n_z: int, sigma_px: np.ndarray, device: torch.device) -> torch.Tensor:
    """rFFT transfer (C, 2 n_u, n_z + 1) of unit-sum Gaussians of ``sigma_px`` (C,) on the zero-padded grid."""
    fu = torch.fft.fftfreq(2 * n_u, device=device)
    fz = torch.fft.rfftfreq(2 * n_z, device=device)
    f2 = fu[:, None] ** 2 + fz[None, :] ** 2
    s2 = torch.as_tensor(np.asarray(sigma_px, dtype=np.float32) ** 2, device=device)
    return torch.exp(-2.0 * np.pi ** 2 * s2[:, None, None] * f2)


def _classes(system: SPECTSystem, activity_mbq: torch.Tensor, views: np.ndarray, tau_nodes: np.ndarray):
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
    kernel = _gaussian_transfer(fr.n_u, fr.n_z, params.sigma_mm() / fr.voxel_mm, system.device)
    kernel = kernel * torch.as_tensor(params.amplitude, dtype=torch.float32, device=system.device)[:, None, None]
    out = torch.zeros(acts.shape[0], len(views), fr.n_u, fr.n_z, device=system.device)
    for b, act in enumerate(acts):
        for rows, classes in _classes(system, act, views, tau):
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


# ------------------------------------------------------------------------------ the fit

def _cylinder_fraction(n: int, voxel_mm: float, diameter_mm: float, length_mm: float,
                       centre_mm: tuple[float, float] = (0.0, 0.0), supersample: int = 3) -> np.ndarray:
    """Fraction of each voxel of a centred n^3 grid inside a cylinder along axis 2."""
    s = supersample
    c = ((np.arange(n * s) + 0.5) / s - n / 2.0) * voxel_mm
    disc = (np.hypot(c[:, None] - centre_mm[0], c[None, :] - centre_mm[1]) <= diameter_mm / 2.0)
    disc = disc.reshape(n, s, n, s).mean(axis=(1, 3))
    axial = (np.abs(c) <= length_mm / 2.0).reshape(n, s).mean(axis=1)
    return (disc[:, :, None] * axial[None, None, :]).astype(np.float32)


def calibration_phantoms(grid: GridSpec) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The fit's phantoms on ``grid``'s phantom grid: name -> (activity MBq/mL, mu 1/cm).

    ``cylinder``: the MIRD-26 uniform cylinder (216 x 186 mm, 400 MBq); ``rods``: three 10 mm rods
    (line sources, 50 MBq each) at 0, 60 and 100 mm from the axis in a water cylinder of 260 mm
    (or 90 % of the field of view) x 186 mm. Diameters shrink to fit a small field of view.
    """
    g = grid.sim
    fov_mm = g.matrix * g.voxel_mm
    out = {}
    d_cal = min(216.0, 0.85 * fov_mm)
    frac = _cylinder_fraction(g.matrix, g.voxel_mm, d_cal, 186.0)
    out["cylinder"] = (frac * np.float32(400.0 / (frac.sum() * g.voxel_ml)), frac * np.float32(MU_WATER_PER_CM))
    d_water = min(260.0, 0.9 * fov_mm)
    water = _cylinder_fraction(g.matrix, g.voxel_mm, d_water, 186.0)
    act = np.zeros_like(water)
    for r_mm in (0.0, 0.23 * d_water, 0.385 * d_water):
        rod = _cylinder_fraction(g.matrix, g.voxel_mm, 10.0, 160.0, (r_mm, 0.0))
        act += rod * np.float32(50.0 / max(rod.sum() * g.voxel_ml, 1e-9))
    out["rods"] = (act, water * np.float32(MU_WATER_PER_CM))
    return out


def _measure(camera: CameraSpec, grid: GridSpec) -> list[dict]:
    """Per calibration phantom: the known activity (MBq per recon voxel), the system, and the
    measured scatter (photopeak - modelled primary) on the fit's views."""
    chain = AcquisitionChain(camera, grid)
    response = fit_response(camera, grid.recon_voxel_mm)  # the RR response, as osem.rr_response
    out = []
    for name, (act, mu) in calibration_phantoms(grid).items():
        proj = chain.project(act, mu)
        act_recon = block_sum(act * np.float32(grid.sim.voxel_ml), grid.sim_factor).astype(np.float32)
        mu_recon = chain.mu_recon(mu)
        system = get_system(mu_recon, proj.pixel_mm, proj.angles_deg, proj.radii_mm, response,
                            camera.sensitivity_cps_per_mbq * proj.time_per_view_s, (1, FIT_VIEW_STEP))
        views = system.subset_views(FIT_VIEW_STEP, 0)
        x = torch.from_numpy(act_recon)
        with torch.no_grad():
            primary = system.forward(x, FIT_VIEW_STEP, 0, psf=True)
        measured = torch.from_numpy(proj.windows["photopeak"][views]) - primary
        out.append({"name": name, "system": system, "activity": x, "views": views, "measured": measured,
                    "primary_counts": float(primary.sum()), "photopeak_counts": float(proj.windows["photopeak"][views].sum())})
    return out


def _fit_amplitudes(measurements: list[dict], tau: np.ndarray, sigma_mm: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Non-negative amplitudes for node widths ``sigma_mm``: (amplitudes, residual sum of squares, sum of squares)."""
    cols, rhs = [], []
    for m in measurements:
        system, fr = m["system"], m["system"].frame
        kernel = _gaussian_transfer(fr.n_u, fr.n_z, sigma_mm / fr.voxel_mm, system.device)
        per_node = torch.zeros(len(tau), len(m["views"]), fr.n_u, fr.n_z)
        for rows, classes in _classes(system, m["activity"], m["views"], tau):
            spec = torch.fft.rfft2(classes, s=(2 * fr.n_u, 2 * fr.n_z))
            img = torch.fft.irfft2(spec * kernel[None], s=(2 * fr.n_u, 2 * fr.n_z))[..., :fr.n_u, :fr.n_z]
            per_node[:, torch.as_tensor(rows)] = img.transpose(0, 1)
        cols.append(per_node.reshape(len(tau), -1).numpy().astype(np.float64) * system.counts_per_mbq)
        rhs.append(m["measured"].reshape(-1).numpy().astype(np.float64))
    a_mat = np.concatenate(cols, axis=1).T
    b = np.concatenate(rhs)
    # keep only columns that carry counts (nodes deeper than every phantom get amplitude 0 -> set later)
    used = a_mat.sum(axis=0) > 1e-9 * a_mat.sum()
    used[tau <= 0.0] = False  # no matter in front of the source, no scatter: a(0) = 0 by the model's form
    amp = np.zeros(len(tau))
    amp[used], rnorm = nnls(a_mat[:, used], b, maxiter=50 * len(tau))
    return amp, float(rnorm ** 2), float((b ** 2).sum())


def _fit(camera: CameraSpec, grid: GridSpec) -> ScatterModelParams:
    t0 = time.perf_counter()
    with torch.no_grad():
        measurements = _measure(camera, grid)
        tau = np.asarray(TAU_NODES, dtype=np.float64)
        best = None
        for s0 in SIGMA0_GRID_MM:
            for s1 in SIGMA1_GRID_MM:
                amp, rss, tss = _fit_amplitudes(measurements, tau, s0 + s1 * tau)
                if best is None or rss < best[2]:
                    best = (s0, s1, rss, tss, amp)
    s0, s1, rss, tss, amp = best
    # nodes deeper than the phantoms: hold the deepest fitted amplitude (no extrapolation)
    fitted = np.flatnonzero(amp > 0)
    if len(fitted):
        amp[fitted[-1] + 1:] = amp[fitted[-1]]
    scatter_counts = sum(float(m["measured"].sum()) for m in measurements)
    provenance = {
        "method": "photopeak minus modelled primary (sensitivity x fitted RR response) of noise-free calibration "
                  "acquisitions through AcquisitionChain; sigma0/sigma1 grid search, NNLS amplitudes",
        "phantoms": {m["name"]: {"photopeak_counts": m["photopeak_counts"], "primary_model_counts": m["primary_counts"],
                                 "measured_scatter_fraction": 1.0 - m["primary_counts"] / m["photopeak_counts"]}
                     for m in measurements},
        "measured_scatter_counts": scatter_counts,
        "residual_rms_fraction": float(np.sqrt(rss / max(tss, 1e-30))),
        "views": f"every {FIT_VIEW_STEP}th of {camera.n_views}",
        "grid": asdict(grid), "collimator": camera.collimator_name, "windows": asdict(camera.windows),
        "fit_version": FIT_VERSION, "seconds": time.perf_counter() - t0,
        "date": time.strftime("%Y-%m-%d"),
    }
    return ScatterModelParams(tuple(float(t) for t in tau), tuple(float(a) for a in amp), float(s0), float(s1),
                              provenance)


def _cache_key(camera: CameraSpec, grid: GridSpec) -> str:
    text = json.dumps({"camera": asdict(camera), "grid": asdict(grid), "tau": TAU_NODES, "s0": SIGMA0_GRID_MM,
                       "s1": SIGMA1_GRID_MM, "step": FIT_VIEW_STEP, "version": FIT_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dlpvc" / "scatter_model"


@functools.lru_cache(maxsize=8)
def fit_scatter_model(camera: CameraSpec, pixel_mm: float, matrix: int, cache: bool = True) -> ScatterModelParams:
    """The model's parameters for ``camera`` with ``matrix`` detector pixels of ``pixel_mm``.

    Fitted once (the calibration phantoms on a grid ``matrix`` x ``pixel_mm`` with a phantom grid
    twice as fine; about a minute at 64^3 on one thread), then read from
    ``$XDG_CACHE_HOME/dlpvc/scatter_model/<key>.json`` (key: the camera, the grid and the fit's
    settings) and from the process cache.
    """
    grid = GridSpec(int(matrix), float(pixel_mm), 2)
    path = _cache_dir() / f"{_cache_key(camera, grid)}.json"
    if cache and path.exists():
        return ScatterModelParams.from_dict(json.loads(path.read_text()))
    params = _fit(camera, grid)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(params.as_dict(), indent=1))
        tmp.replace(path)
    return params
