"""The case pipeline, written once: simulate -> noise -> the reconstructions asked for.

The DAG runs its steps as separate stages (``simulate_projections``, ``add_noise``,
``reconstruct_osem``, each step one function here); ``dlpvc simulate`` and the realism benchmark
run them in one go with :func:`run_case`. So a case simulated by the pipeline, by a user's
``dlpvc simulate`` and by the benchmark goes through the same code with the same specs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from pvc_core.domain import NOISE_LEVELS, dataset_name
from pvc_core.geometry.blocks import downsample_mean
from pvc_core.seeding import rng_for
from pvc_core.specs import CameraSpec, GridSpec, ReconSpec
from pvc_core.spect import Projections, add_poisson_noise


def recon_grid_mu(mu_sim_per_cm: np.ndarray, grid: GridSpec) -> np.ndarray:
    """Attenuation (1/cm) on the reconstruction grid: block mean of the phantom grid's."""
    return downsample_mean(mu_sim_per_cm, grid.sim_factor)


def simulate_noise_free(activity_sim_mbq_ml: np.ndarray, mu_sim_per_cm: np.ndarray, camera: CameraSpec,
                        grid: GridSpec, recons: Sequence[ReconSpec] = ()) -> Projections:
    """Step 1: noise-free expected counts in the three windows from the phantom grid.

    ``recons`` (optional) are the reconstructions that follow in this process: the cached
    system is built for their subsets (speed only; the counts do not depend on it).
    """
    # lazy: torch (~1.5 s) for the phantom stage and `dlpvc simulate`'s checks; tests patch pvc_core.spect.simulate_projections
    from pvc_core.spect import simulate_projections

    return simulate_projections(activity_sim_mbq_ml, mu_sim_per_cm, grid.sim.voxel_mm, camera, grid,
                                cache_subsets=tuple(r.subsets for r in recons))


def add_noise(noise_free: Projections, seed: int, case_id: int) -> Projections:
    """Step 2: the Poisson realisation of every window, from the stream of (seed, case id)."""
    return add_poisson_noise(noise_free, rng_for(seed, case_id, "noise"))


def reconstruct_one(projections: Projections, mu_recon_per_cm: np.ndarray, recon: ReconSpec, camera: CameraSpec,
                    others: Sequence[ReconSpec] = (), calibration_factor: float = 1.0) -> np.ndarray:
    """Step 3: one OSEM reconstruction (MBq/mL on the reconstruction grid), divided by the
    reconstruction's calibration factor (:mod:`pvc_core.calibration`; 1 = nominal sensitivity)."""
    return reconstruct_levels({"": projections}, mu_recon_per_cm, recon, camera, others, calibration_factor)[""]


def reconstruct_levels(projections: Mapping[str, Projections], mu_recon_per_cm: np.ndarray, recon: ReconSpec,
                       camera: CameraSpec, others: Sequence[ReconSpec] = (),
                       calibration_factor: float = 1.0) -> dict[str, np.ndarray]:
    """Step 3 for every noise level of a case at once (one batched OSEM run): {level: MBq/mL image}.

    Each image equals :func:`reconstruct_one` of its projections alone; the batch only shares
    the projector's passes over the cached geometry.
    """
    from pvc_core.spect import reconstruct_together  # lazy: torch (~1.5 s)

    if not calibration_factor > 0 or not np.isfinite(calibration_factor):
        raise ValueError(f"calibration factor of {recon.name} must be positive and finite, got {calibration_factor}")
    levels = list(projections)
    images = reconstruct_together([projections[k] for k in levels], mu_recon_per_cm, recon, camera,
                                  cache_subsets=tuple(r.subsets for r in others))
    if calibration_factor != 1.0:
        images = [(im / np.float32(calibration_factor)).astype(np.float32) for im in images]
    return dict(zip(levels, images))


@dataclass
class CaseResult:
    """What :func:`run_case` made: projections per noise level, images per dataset, seconds per step."""

    projections: dict[str, Projections]
    images: dict[str, np.ndarray]
    mu_recon_per_cm: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)


def run_case(activity_sim_mbq_ml: np.ndarray, mu_sim_per_cm: np.ndarray, camera: CameraSpec, grid: GridSpec,
             recons: Sequence[ReconSpec], seed: int, case_id: int = 0, *, calibration: Mapping[str, float],
             noise_levels: Sequence[str] = NOISE_LEVELS,
             progress: Callable[[str], None] | None = None) -> CaseResult:
    """Simulate, add noise and reconstruct one case with every reconstruction in ``recons`` and
    every noise level in ``noise_levels`` (``n``: Poisson, ``nf``: noise-free).

    Activity (MBq/mL) and mu (1/cm at 208 keV) are on the phantom grid of ``grid``.
    ``calibration``: the calibration factor of every reconstruction in ``recons``
    (:func:`pvc_core.calibration.calibrate`); required, so that no caller forgets it.
    """
    missing = [r.name for r in recons if r.name not in calibration]
    if missing:
        raise ValueError(f"no calibration factor for {missing}")
    say = progress or (lambda _msg: None)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    say(f"projecting {camera.n_views} views (photopeak and two scatter windows)")
    nf = simulate_noise_free(activity_sim_mbq_ml, mu_sim_per_cm, camera, grid, recons)
    seconds["simulate"] = time.perf_counter() - t0
    projections = {"nf": nf}
    if "n" in noise_levels:
        t0 = time.perf_counter()
        projections["n"] = add_noise(nf, seed, case_id)
        seconds["noise"] = time.perf_counter() - t0
    mu_recon = recon_grid_mu(mu_sim_per_cm, grid)
    images = {}
    for recon in recons:
        say(f"reconstructing {recon.name} ({', '.join(noise_levels)})")
        t0 = time.perf_counter()
        levels = reconstruct_levels({n: projections[n] for n in noise_levels}, mu_recon, recon, camera, recons,
                                    calibration[recon.name])
        seconds[f"recon {recon.name}"] = time.perf_counter() - t0
        images.update({dataset_name(recon.name, n): im for n, im in levels.items()})
    return CaseResult({k: projections[k] for k in noise_levels}, images, mu_recon, seconds)
