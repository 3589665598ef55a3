"""How close the simulator is to the measured camera: the paper's validation phantoms, simulated.

Each phantom is simulated at the configured protocol (``simulate_projections`` on the phantom
grid, Poisson noise, both OSEM reconstructions), then evaluated the way the paper evaluated its
measurements (Table 2): the reconstruction is interpolated trilinearly to a fine grid
(``eval_factor`` x finer than the reconstruction grid; the paper used the CT grid of 0.98 mm)
and compared with truth = fabrication mask x nominal concentration.

Besides the paper's metrics, each row carries what says *why* ours differ:

- ``total_recovery_<dataset>`` (RR_n, noRR_n, RR_nf, noRR_nf): reconstructed over true activity
  of the whole volume (calibrated images; 1 = the cylinder's calibration carries over to the
  phantom; n against nf separates a noise bias, e.g. OSEM's positivity in the cold water, from
  one of the physics or the corrections);
- ``rc_ratio_paper_to_ours``: the measured RC over ours (below 1: our simulator recovers more);
- NRMSE under two definitions, ``nrmse_mask_pct`` over the mask (:func:`pvc_core.metrics.nrmse`,
  the pipeline's) and ``nrmse_bbox_pct`` over the mask's bounding box
  (:func:`pvc_core.metrics.nrmse_bounding_box`), with the least NRMSE either definition allows
  at the paper's RC (``nrmse_*_floor_at_paper_rc_pct``, see :func:`nrmse_floor_at_rc`);
- the matched-filter FWHM of RR and noRR with both criteria, free scale (``fit_scale=True``,
  the DAG's) and absolute scale (``fit_scale=False``).
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
from scipy.ndimage import map_coordinates

from pvc_core.calibration import factors
from pvc_core.metrics import bounding_box, nrmse, nrmse_bounding_box, recovery_coefficient, ssim, vaa
from pvc_core.pipeline.calibration_stage import calibration_for
from pvc_core.geometry.blocks import downsample_activity
from pvc_core.resolution import matched_filter_fwhm
from pvc_core.specs import Settings
from pvc_core.spect.acquisition import AcquisitionChain, NoiseSeed
from pvc_core.validation.phantoms import PAPER_TABLE2, REGIONS, build_validation_phantom


def upsample_trilinear(image: np.ndarray, factor: int) -> np.ndarray:
    """Trilinear interpolation of a voxel image onto a grid ``factor`` x finer (same field of view).

    Fine voxel centres are mapped to coarse voxel coordinates; values beyond the outermost coarse
    centres are taken from the edge voxels (``mode='nearest'``).
    """
    fine = [(np.arange(n * factor) + 0.5) / factor - 0.5 for n in image.shape]
    grid = np.meshgrid(*fine, indexing="ij")
    return map_coordinates(image.astype(np.float64), grid, order=1, mode="nearest").astype(np.float32)


def nrmse_floor_at_rc(rc: float, truth: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Least NRMSE (%) over the mask and over its bounding box of any image with recovery ``rc``.

    With ``e = image - truth`` and RC = mean over M of image / mean over M of truth,
    ``mean over M of e = (RC - 1) * mean over M of truth``, and the root mean square is at least
    the absolute mean, so over M: ``NRMSE_M >= 100 |1 - RC| mean_M(truth) / range(truth)``; over
    the box B the voxels outside M add non-negative terms: ``NRMSE_B >= NRMSE_M floor *
    sqrt(#M / #B)``. (Assumes RC and NRMSE were computed on the same mask, as here.)
    """
    m = np.asarray(mask, bool)
    rng = float(truth.max() - truth.min())
    floor_mask = 100.0 * abs(1.0 - rc) * float(truth[m].mean()) / rng
    return floor_mask, floor_mask * float(np.sqrt(m.sum() / bounding_box(m).sum()))


def nrmse_definition_verdict(rows: list[dict]) -> str:
    """One line: which NRMSE definition, over the mask or over its bounding box, comes closer
    to the paper's sphere NRMSE (Table 2), from the rows of :func:`simulate_phantom`."""
    sphere = [r for r in rows if r["region"] == "sphere" and "nrmse_mask_pct" in r]
    if not sphere:
        return "NRMSE definition: not compared (the sphere phantom was not simulated)"
    r = sphere[0]
    paper = PAPER_TABLE2["sphere"]["nrmse_pct"]
    d_mask, d_box = abs(r["nrmse_mask_pct"] - paper), abs(r["nrmse_bbox_pct"] - paper)
    closer = "bounding box" if d_box < d_mask else "mask"
    return (f"NRMSE definition: sphere, paper {paper:.2f} %; ours over the mask {r['nrmse_mask_pct']:.2f} % "
            f"(off by {d_mask:.2f}), over the bounding box {r['nrmse_bbox_pct']:.2f} % (off by {d_box:.2f}): "
            f"the {closer} definition is closer. At the paper's RC {r['paper_rc']:.3f} no image can have an "
            f"NRMSE below {r['nrmse_mask_floor_at_paper_rc_pct']:.2f} % over the mask or "
            f"{r['nrmse_bbox_floor_at_paper_rc_pct']:.2f} % over the bounding box (same mask for RC and NRMSE)"
            + ("; both exceed the paper's NRMSE, so with its RC the paper's NRMSE averaged over more voxels than the "
               "mask's bounding box, or over another mask than its RC" if min(r["nrmse_mask_floor_at_paper_rc_pct"],
                                                                          r["nrmse_bbox_floor_at_paper_rc_pct"]) > paper
               else ""))


def simulate_phantom(name: str, settings: Settings, seed: int = 0, eval_factor: int = 4,
                     log: Callable[[str], None] = print) -> list[dict]:
    """Simulate one validation phantom through the acquisition chain; one row per reported region."""
    grid = settings.grid
    n, vox, sf = grid.recon_matrix, grid.recon_voxel_mm, grid.sim_factor
    sim = build_validation_phantom(name, grid.sim.shape, grid.sim.voxel_mm)
    fine = build_validation_phantom(name, (n * eval_factor,) * 3, vox / eval_factor)
    t0 = time.perf_counter()
    chain = AcquisitionChain(settings.camera, grid, tuple(settings.reconstructions[r] for r in ("RR", "noRR")))
    case = chain.acquire(sim.activity_mbq_ml, sim.mu_per_cm, NoiseSeed(seed, 0),
                         calibration=factors(calibration_for(settings, log=log)))
    images, noisy, nf = case.images, case.projections["n"], case.projections["nf"]
    seconds = time.perf_counter() - t0
    true_total_mbq = float(sim.activity_mbq_ml.sum(dtype=np.float64)) * grid.sim.voxel_ml
    total_recovery = {d: float(images[d].sum(dtype=np.float64)) * grid.recon.voxel_ml / true_total_mbq
                      for d in ("RR_n", "noRR_n", "RR_nf", "noRR_nf")}
    truth_recon = downsample_activity(sim.activity_mbq_ml, sf)
    fwhm = {(m, scale): matched_filter_fwhm(images[f"{m}_nf"], truth_recon, (vox,) * 3,
                                            bracket_mm=settings.resolution.fwhm_search_mm, fit_scale=scale == "free")
            for m in ("RR", "noRR") for scale in ("free", "abs")}
    rr_fine = upsample_trilinear(images["RR_n"], eval_factor)
    rows = []
    for region, (comps, key) in REGIONS.items():
        if comps[0] not in fine.compartments:
            continue
        mask = np.zeros(fine.activity_mbq_ml.shape, bool)
        truth = np.zeros(fine.activity_mbq_ml.shape, np.float32)
        for c in comps:
            m = fine.compartments[c] >= 0.5
            mask |= m
            truth[m] = fine.nominal_mbq_ml[c]
        paper = PAPER_TABLE2.get(key, {})
        rc = recovery_coefficient(rr_fine, truth, mask)
        row = {"phantom": name, "region": region, "rc": rc,
               "rc_ratio_paper_to_ours": paper["rc"] / rc if "rc" in paper else float("nan"),
               **{f"total_recovery_{d}": v for d, v in total_recovery.items()},
               **{f"fwhm_{m}_{scale}_scale_mm": v for (m, scale), v in fwhm.items()},
               "seconds": seconds, "photopeak_counts": float(noisy.windows["photopeak"].sum()),
               "scatter_fraction": nf.meta.get("scatter_fraction")}
        if region in ("sphere", "ellipsoid", "kidney_cortex"):
            row.update(ssim=ssim(rr_fine, truth, mask), nrmse_mask_pct=nrmse(rr_fine, truth, mask),
                       nrmse_bbox_pct=nrmse_bounding_box(rr_fine, truth, mask), vaa_pct=vaa(rr_fine, truth, mask))
            if "rc" in paper:
                row["nrmse_mask_floor_at_paper_rc_pct"], row["nrmse_bbox_floor_at_paper_rc_pct"] = \
                    nrmse_floor_at_rc(paper["rc"], truth, mask)
        row.update({f"paper_{k}": v for k, v in paper.items()})
        rows.append(row)
        log(f"{name}/{region}: RC {rc:.3f} (paper {paper.get('rc', float('nan'))}); total activity RR_n "
            f"{total_recovery['RR_n']:.3f}, noRR_n {total_recovery['noRR_n']:.3f} (nf {total_recovery['RR_nf']:.3f}, "
            f"{total_recovery['noRR_nf']:.3f}) of the truth; FWHM RR "
            f"{fwhm['RR', 'free']:.2f} / {fwhm['RR', 'abs']:.2f} mm, noRR {fwhm['noRR', 'free']:.2f} / "
            f"{fwhm['noRR', 'abs']:.2f} mm (free / absolute scale); {seconds:.1f} s")
    return rows
