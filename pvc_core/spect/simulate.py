"""Analytic simulation of a Lu-177 SPECT acquisition: primary, scatter and all three windows.

Pipeline of :func:`simulate_projections` (noise-free expected counts):

1. Orbit: equally spaced views, body-contour radii from the phantom's attenuation map.
2. Primary photons (photopeak window): splat, attenuate (``exp(-tau)``), distance-dependent
   collimator-detector response, sum (:class:`~pvc_core.spect.system_model.SPECTSystem`), scaled
   by sensitivity x time per view. With ``camera.project_at: sim`` this is done on the phantom
   grid (detector pixels ``sim_factor`` times finer) and the projections are binned to the
   detector matrix, so partial-volume effects of the fine phantom are kept; with ``recon`` the
   activity is first summed onto the reconstruction grid (faster, slightly optimistic).
   The long-range collimator pedestal (septal penetration, :mod:`pvc_core.spect.collimator`)
   takes ``tail_fraction`` of these counts and spreads them with a broad distance-dependent
   Gaussian (:func:`simulate_collimator_tail`, on the reconstruction grid). RR reconstructs with
   its own Gaussian model fitted to simulated point sources (:mod:`pvc_core.spect.response_fit`),
   never with this formula.
3. Scatter (all windows) on the reconstruction grid, which suffices for kernels of several cm:
   per view, each node's attenuated activity is distributed over water-equivalent depth nodes
   (hat functions of ``tau / mu_water``), each depth class is blurred in the detector plane with
   its scatter kernel (plus the collimator response at the rotation axis) by FFT, and weighted
   by the scatter-to-primary ratio of the window (:mod:`pvc_core.spect.scatter`).
4. Windows: photopeak = primary + scatter; lower/upper = primary resolution tails and weak
   Lu-177 lines (:func:`~pvc_core.spect.scatter.primary_window_fractions`) + their scatter.
"""

from __future__ import annotations

import numpy as np
import torch

from pvc_core.errors import InputError
from pvc_core.geometry.blocks import block_sum
from pvc_core.specs import CameraSpec, EnergyWindowsSpec, GridSpec
from pvc_core.spect.collimator import Collimator
from pvc_core.spect.energy_windows import WINDOW_NAMES, EnergyWindows
from pvc_core.spect.orbit import orbit_radii_mm, view_angles_deg
from pvc_core.spect.projections import SIMULATED_SCATTER, Projections
from pvc_core.spect.scatter import (photopeak_line_share, primary_window_fractions, scatter_tables,
                                    tew_scatter_estimate)
from pvc_core.spect.system_cache import get_system
from pvc_core.spect.system_model import SPECTSystem


def sum_pool(a: np.ndarray, factor: int) -> np.ndarray:
    """Sum ``factor^3`` blocks (activity-conserving downsampling of MBq per voxel), float32."""
    if factor == 1:
        return np.asarray(a, dtype=np.float32)
    return block_sum(a, factor).astype(np.float32)


def _grid_factor(shape: tuple[int, ...], voxel_mm: float, grid: GridSpec) -> int:
    n, v = grid.recon_matrix, grid.recon_voxel_mm
    factor = int(round(v / voxel_mm))
    if factor < 1 or abs(factor * voxel_mm - v) > 1e-3 * v or tuple(shape) != (n * factor,) * 3:
        raise InputError(f"phantom grid {tuple(shape)} at {voxel_mm} mm does not refine the reconstruction grid "
                         f"{n}^3 at {v} mm by an integer factor (expected ({n}*f)^3 voxels of {v}/f mm)",
                         "grid")
    return factor


def _bin_detector(proj: torch.Tensor, factor: int) -> torch.Tensor:
    if factor == 1:
        return proj
    v, nu, nz = proj.shape
    return proj.reshape(v, nu // factor, factor, nz // factor, factor).sum(dim=(2, 4))


def _gaussian_transfer(n_u: int, n_z: int, variance_px2: torch.Tensor) -> torch.Tensor:
    """rFFT-domain transfer of Gaussians with ``variance_px2`` (..., ) on a (2 n_u, 2 n_z) padded grid."""
    fu = torch.fft.fftfreq(2 * n_u, device=variance_px2.device)
    fz = torch.fft.rfftfreq(2 * n_z, device=variance_px2.device)
    f2 = fu[:, None] ** 2 + fz[None, :] ** 2
    return torch.exp(-2.0 * np.pi ** 2 * variance_px2[..., None, None] * f2)


def simulate_scatter(system: SPECTSystem, activity_mbq: torch.Tensor, windows: EnergyWindowsSpec,
                     orders: int = 2, n_samples: int = 200_000) -> dict[str, torch.Tensor]:
    """Scattered counts per window (n_views, n_u, n_z) on ``system``'s grid (:mod:`pvc_core.spect.scatter`).

    A depth class ``c`` of view ``v`` is blurred by ``sum_k spr[w, k, c] G(var[w, k, c] + cdr[v])``;
    since ``G(a + b) = G(a) G(b)`` in the frequency domain, the depth kernels ``sum_k spr G(var)``
    are built once per window and each view's collimator response is one factor after the sum
    over classes.
    """
    tables = scatter_tables(windows, orders, n_samples)
    fr = system.frame
    v_px2 = fr.voxel_mm ** 2
    share = photopeak_line_share(windows)
    depth_kernels = {}
    for w in WINDOW_NAMES:  # (C, 2 n_u, n_z + 1): sum over orders of SPR x Gaussian transfer
        var = torch.as_tensor(tables.variance_mm2[w] / v_px2, dtype=torch.float32, device=system.device)
        spr = torch.as_tensor(tables.spr[w] * share, dtype=torch.float32, device=system.device)
        depth_kernels[w] = (_gaussian_transfer(fr.n_u, fr.n_z, var) * spr[..., None, None]).sum(dim=0)
    out = {w: torch.zeros(system.n_views, fr.n_u, fr.n_z, device=system.device) for w in WINDOW_NAMES}
    for bi in range(system.n_blocks):
        blk = system.block(bi)
        classes = system.depth_classes(activity_mbq, blk, tables.depth_cm, tables.mu_water_per_cm)
        spec = torch.fft.rfft2(classes, s=(2 * fr.n_u, 2 * fr.n_z))  # (nb, C, 2nu, nz+1)
        del classes
        cdr_px2 = torch.as_tensor(system.collimator.variance_mm2(system.radii_mm[blk.views]) / v_px2,
                                  dtype=torch.float32, device=system.device)
        cdr = _gaussian_transfer(fr.n_u, fr.n_z, cdr_px2)  # (nb, 2nu, nz+1)
        rows = torch.as_tensor(blk.views, device=system.device)
        for w in WINDOW_NAMES:
            weighted = torch.view_as_complex((torch.view_as_real(spec) * depth_kernels[w][..., None]).sum(dim=1)) * cdr
            img = torch.fft.irfft2(weighted, s=(2 * fr.n_u, 2 * fr.n_z))[:, :fr.n_u, :fr.n_z]
            out[w][rows] = torch.clamp(img, min=0.0)
    return {w: o.mul_(system.counts_per_mbq) for w, o in out.items()}


def simulate_collimator_tail(system: SPECTSystem, activity_mbq: torch.Tensor, n_nodes: int = 6) -> torch.Tensor:
    """Primary counts (n_views, n_u, n_z) spread by the collimator's long-range pedestal (unit weight).

    Per view, each depth plane's attenuated activity is assigned to distance nodes (hat functions
    of the collimator distance), each node is blurred by FFT with the pedestal Gaussian of its
    distance (:meth:`Collimator.tail_sigma_mm`), and the nodes are summed. Counts leaving the
    detector edge are lost, as for the core. Scale by ``tail_fraction`` before adding.
    """
    fr = system.frame
    col = system.collimator
    v = fr.voxel_mm
    depth = fr.depth_mm()
    all_d = np.maximum(system.radii_mm[:, None] - depth[None, :], 0.0)
    nodes = np.linspace(all_d.min(), max(all_d.max(), all_d.min() + 1.0), n_nodes)
    var_px2 = torch.as_tensor((col.tail_sigma_mm(nodes) / v) ** 2, dtype=torch.float32, device=system.device)
    transfer = _gaussian_transfer(fr.n_u, fr.n_z, var_px2)  # (K, 2nu, nz+1)
    out = torch.zeros(system.n_views, fr.n_u, fr.n_z, device=system.device)
    for bi in range(system.n_blocks):
        blk = system.block(bi)
        k0, ns = blk.planes
        d = np.maximum(system.radii_mm[blk.views][:, None] - depth[None, k0:k0 + ns], 0.0)
        pos = np.clip(np.interp(d, nodes, np.arange(len(nodes))), 0, len(nodes) - 1)
        lo = np.minimum(np.floor(pos).astype(np.int64), len(nodes) - 2)
        frac = pos - lo
        classes = system.project_to_nodes(activity_mbq, blk, lo, 1.0 - frac, frac, len(nodes))
        spec = torch.fft.rfft2(classes, s=(2 * fr.n_u, 2 * fr.n_z))
        img = torch.fft.irfft2((spec * transfer[None]).sum(dim=1), s=(2 * fr.n_u, 2 * fr.n_z))[:, :fr.n_u, :fr.n_z]
        out[torch.as_tensor(blk.views, device=system.device)] = torch.clamp(img, min=0.0)
    return out.mul_(system.counts_per_mbq)


def simulate_projections(activity_mbq_ml: np.ndarray, mu_per_cm: np.ndarray, voxel_mm: float, camera: CameraSpec,
                         grid: GridSpec, device: torch.device | str | None = None,
                         cache_subsets: tuple[int, ...] = (1,)) -> Projections:
    """Noise-free expected counts of a Lu-177 acquisition in the photopeak and both scatter windows.

    Parameters
    ----------
    activity_mbq_ml, mu_per_cm:
        Activity concentration (MBq/mL) and attenuation (1/cm at 208 keV) on the phantom grid:
        the reconstruction grid refined by an integer factor (``grid.sim_factor``).
    voxel_mm:
        Phantom voxel edge in mm.
    camera, grid:
        The camera and acquisition (:class:`~pvc_core.specs.CameraSpec`) and the grids
        (:class:`~pvc_core.specs.GridSpec`).
    device:
        torch device (default CPU).
    cache_subsets:
        Subset counts of the reconstructions that follow in this process: the system built
        here is cached with those subset layouts so that they reuse it. Performance only; the
        projections do not depend on it.

    Returns
    -------
    Projections on the detector grid (``recon_matrix`` pixels of ``recon_voxel_mm``), counts.
    """
    act = np.asarray(activity_mbq_ml, dtype=np.float32)
    mu = np.asarray(mu_per_cm, dtype=np.float32)
    if act.shape != mu.shape:
        raise InputError(f"activity {act.shape} and attenuation {mu.shape} must share one grid", "simulate")
    if not np.isfinite(act).all() or (act < 0).any():
        raise InputError("activity must be finite and non-negative", "simulate")
    factor = _grid_factor(act.shape, voxel_mm, grid)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    windows = EnergyWindows.from_spec(camera.windows)
    collimator = Collimator.from_spec(camera.collimator)
    orbit = camera.orbit
    angles = view_angles_deg(camera.n_views, orbit.start_angle_deg)
    radii = orbit_radii_mm(mu, voxel_mm, angles, orbit.clearance_mm, orbit.body_threshold_per_cm, orbit.min_radius_mm,
                           orbit.shape)
    counts_per_mbq = camera.counts_per_mbq
    v_recon = grid.recon_voxel_mm
    activity_mbq = act * (voxel_mm / 10.0) ** 3  # MBq per voxel
    act_recon = sum_pool(activity_mbq, factor)
    mu_recon = sum_pool(mu, factor) / factor ** 3

    c = (np.arange(act_recon.shape[0]) - (act_recon.shape[0] - 1) / 2.0) * v_recon
    outside = (c[:, None] ** 2 + c[None, :] ** 2) > (act_recon.shape[0] * v_recon / 2.0) ** 2
    with torch.no_grad():
        if (act_recon[outside] > 0).any():  # activity outside the reconstructed FOV: project it too
            support = (act_recon > 0).any(axis=2) | ~outside
            recon_system = SPECTSystem(mu_recon, v_recon, angles, radii, collimator, counts_per_mbq, device=dev,
                                       activity_support=support)
        else:  # the same system the reconstructions of this case will use (cached)
            recon_system = get_system(mu_recon, v_recon, angles, radii, collimator, counts_per_mbq,
                                      (1, *cache_subsets), dev)
        if camera.project_at == "sim" and factor > 1:
            fine = SPECTSystem(mu, voxel_mm, angles, radii, collimator, counts_per_mbq, device=dev, cache=False,
                               activity_support=act > 0)
            primary = _bin_detector(fine.forward(torch.from_numpy(activity_mbq), psf=True), factor)
            del fine
        else:
            primary = recon_system.forward(torch.from_numpy(act_recon), psf=True)
        tail_fraction = collimator.tail_fraction
        if tail_fraction > 0:
            tail = simulate_collimator_tail(recon_system, torch.from_numpy(act_recon))
            primary = primary.mul(1.0 - tail_fraction).add_(tail, alpha=tail_fraction)
            del tail
        if camera.scatter.orders == 0:
            scatter = {w: torch.zeros_like(primary) for w in WINDOW_NAMES}
        else:
            scatter = simulate_scatter(recon_system, torch.from_numpy(act_recon), windows,
                                       orders=camera.scatter.orders, n_samples=camera.scatter.second_order_samples)
        kappa = primary_window_fractions(windows)
        expected = {w: kappa[w] * primary + scatter[w] for w in WINDOW_NAMES}
        tew = tew_scatter_estimate(expected["lower"], expected["upper"], windows, v_recon)
        s_true = float(scatter["photopeak"].sum())
        tew_ratio = float(tew.sum()) / s_true if s_true > 0 else None

    win = {w: expected[w].cpu().numpy().astype(np.float32) for w in WINDOW_NAMES}
    totals = {w: float(win[w].sum(dtype=np.float64)) for w in WINDOW_NAMES}
    win[SIMULATED_SCATTER] = scatter["photopeak"].cpu().numpy().astype(np.float32)
    s_pp = float(scatter["photopeak"].sum())
    total_mbq = float(activity_mbq.sum(dtype=np.float64))
    meta = {
        "noise": "none (expected counts)",
        "units": "counts",
        "sensitivity_cps_per_mbq": camera.sensitivity_cps_per_mbq,
        "time_per_view_s": camera.time_per_view_s,
        "n_views": camera.n_views,
        "total_counts": totals,
        "primary_photopeak_counts": float(primary.sum()),
        "scatter_counts": {w: float(scatter[w].sum()) for w in WINDOW_NAMES},
        "scatter_fraction": s_pp / max(totals["photopeak"], 1e-30),
        "tew_estimate_over_true_scatter": tew_ratio,
        "total_activity_mbq": total_mbq,
        "activity_outside_fov_fraction": float(act_recon[outside].sum() / max(act_recon.sum(), 1e-30)),
        "energy_windows_kev": {w: list(windows.bounds_kev(w)) for w in WINDOW_NAMES},
        "energy_resolution_pct": windows.resolution_pct,
        "primary_window_fractions": kappa,
        "system_fwhm_mm_at_100mm": float(collimator.system_fwhm_mm(100.0)),
        "collimator_geometric_efficiency": collimator.geometric_efficiency(),
        "septal_transmission_min_path": collimator.septal_transmission(),
        "collimator_tail_fraction": collimator.tail_fraction,
        "collimator_tail_sigma_mm_at_100mm": float(collimator.tail_sigma_mm(100.0)),
        "project_at": camera.project_at,
        "sim_factor": factor,
        "orbit": "body contour" if orbit.shape == "contour" else orbit.shape, "orbit_clearance_mm": orbit.clearance_mm,
        "angle_convention": "detector at (sin a, -cos a) in the (axis0, axis1) plane; CCW seen from +axis2",
        "scatter_model": camera.scatter.model,
        "collimator": camera.collimator_name,
    }
    return Projections(windows=win, angles_deg=angles, radii_mm=radii, pixel_mm=v_recon,
                       time_per_view_s=camera.time_per_view_s, meta=meta)
