"""The fit of the model-based scatter estimate (:mod:`pvc_core.spect.scatter_model`) to
calibration acquisitions, as a clinic would make them, and its cache.

The acquisitions go through the one acquisition chain, passed in (``chain``: an
:class:`~pvc_core.spect.acquisition.AcquisitionChain` without reconstructions), so this module
needs nothing above the estimate and the chain's projector: the chain calls the fit for its
``model`` reconstructions, and the fit calls the chain's :meth:`project`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from scipy.optimize import nnls

from pvc_core.geometry.blocks import block_sum
from pvc_core.io.jsonio import write_json
from pvc_core.specs import CameraSpec, GridSpec
from pvc_core.spect.projections import Projections
from pvc_core.spect.response_fit import fit_response
from pvc_core.spect.scatter_model import (FIT_VERSION, FIT_VIEW_STEP, MU_WATER_PER_CM, SIGMA0_GRID_MM, SIGMA1_GRID_MM,
                                          TAU_NODES, ScatterModelParams, optical_depth_classes, gaussian_transfer)
from pvc_core.spect.system_cache import get_system

class AcquisitionChain(Protocol):
    """What the fit needs of :class:`pvc_core.spect.acquisition.AcquisitionChain` (passed in, not
    imported: the chain calls the fit, so an import would close a loop)."""

    camera: CameraSpec
    grid: GridSpec

    def project(self, activity_sim_mbq_ml: np.ndarray, mu_sim_per_cm: np.ndarray) -> Projections: ...

    def mu_recon(self, mu_sim_per_cm: np.ndarray) -> np.ndarray: ...


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


def _measure(chain: AcquisitionChain) -> list[dict]:
    """Per calibration phantom: the known activity (MBq per recon voxel), the system, and the
    measured scatter (photopeak - modelled primary) on the fit's views."""
    camera, grid = chain.camera, chain.grid
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
        kernel = gaussian_transfer(fr.n_u, fr.n_z, sigma_mm / fr.voxel_mm, system.device)
        per_node = torch.zeros(len(tau), len(m["views"]), fr.n_u, fr.n_z)
        for rows, classes in optical_depth_classes(system, m["activity"], m["views"], tau):
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
    # amplitudes that do not fall with depth (more matter in front, at least as much scatter per
    # primary): a_j = sum_{k <= j} d_k with d_k >= 0, so column k of the increments is the sum of
    # the node columns from k on. Free NNLS amplitudes zig-zag between neighbouring nodes (two
    # calibration phantoms cannot separate them), which biases objects of other shapes.
    nodes = np.flatnonzero(used)
    increments = np.cumsum(a_mat[:, nodes][:, ::-1], axis=1)[:, ::-1]
    steps, rnorm = nnls(increments, b, maxiter=50 * len(tau))
    amp = np.zeros(len(tau))
    amp[nodes] = np.cumsum(steps)
    return amp, float(rnorm ** 2), float((b ** 2).sum())


def _fit(chain: AcquisitionChain) -> ScatterModelParams:
    camera, grid = chain.camera, chain.grid
    t0 = time.perf_counter()
    with torch.no_grad():
        measurements = _measure(chain)
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
                  "acquisitions through AcquisitionChain; sigma0/sigma1 grid search, NNLS amplitudes "
                  "non-decreasing with depth",
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


def _cache_key(camera, grid: GridSpec) -> str:
    text = json.dumps({"camera": asdict(camera), "grid": asdict(grid), "tau": TAU_NODES, "s0": SIGMA0_GRID_MM,
                       "s1": SIGMA1_GRID_MM, "step": FIT_VIEW_STEP, "version": FIT_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dlpvc" / "scatter_model"


def fit_scatter_model(chain: AcquisitionChain, cache: bool = True) -> ScatterModelParams:
    """The model's parameters for the camera and detector grid of ``chain`` (its reconstruction
    grid is the detector; its phantom grid the calibration phantoms').

    Fitted once (about a minute at 64^3 on one thread), then read from
    ``$XDG_CACHE_HOME/dlpvc/scatter_model/<key>.json`` (key: the camera, the grid and the fit's
    settings; written atomically) and from the process cache.
    """
    return _fitted(chain, cache)


@functools.lru_cache(maxsize=8)
def _fitted(chain: AcquisitionChain, cache: bool) -> ScatterModelParams:
    path = _cache_dir() / f"{_cache_key(chain.camera, chain.grid)}.json"
    if cache and path.exists():
        return ScatterModelParams.from_dict(json.loads(path.read_text()))
    params = _fit(chain)
    if cache:
        write_json(path, params.as_dict())
    return params
