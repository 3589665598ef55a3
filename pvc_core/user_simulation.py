"""``dlpvc simulate``: a Lu-177 acquisition of the user's own phantom with the configured camera.

Input: activity (MBq/mL) and mu (1/cm at 208 keV) as NIfTI on the same grid, any voxel size,
orientation and origin.

World frame. Positions are NIfTI world coordinates, RAS+ in mm: x increases toward the patient's
Right, y toward Anterior, z toward Superior (what ``nibabel.orientations.aff2axcodes`` reports as
``('R', 'A', 'S')`` for an identity affine). The input's affine says where each voxel is in that
world; a volume stored LPS (affine like ``diag(-v, -v, v)``) is therefore simulated the right way
round, not mirrored. The camera rotates about world z (superior); views rotate in the x-y plane
(see :mod:`pvc_core.spect.geometry` for the angle convention on the array axes).

Grids. The simulation grid is axis-aligned with the world (array axis 0 = +x, 1 = +y, 2 = +z):
``recon_matrix * sim_factor`` voxels of ``recon_voxel_mm / sim_factor`` mm per axis, centred on the
world centre of the input's field of view (the centre of its voxel-centre bounding box,
:func:`pvc_core.geometry.fov_centre_mm`). The reconstruction grid (``recon_matrix`` voxels of
``recon_voxel_mm``) shares that centre, so each of its voxels is a block of ``sim_factor^3``
simulation voxels. Every output (``truth.nii.gz``, ``mu.nii.gz``, ``spect_*.nii.gz``) is written
with the reconstruction grid's world affine, so it lines up with the input in any viewer.

Resampling. Activity goes onto the simulation grid with
:func:`pvc_core.geometry.resample_activity` (exact overlap integration; activity conserved, no
rescaling to a total), mu with :func:`pvc_core.geometry.resample_mean`. A phantom with more than
:data:`MAX_ACTIVITY_OUTSIDE` of its activity outside the field of view is refused.

Then the phantom goes through the one acquisition chain
(:meth:`pvc_core.spect.acquisition.AcquisitionChain.acquire`: three windows, noise-free and
Poisson, reconstructed four ways, noRR/RR x n/nf) and is written with the truth and a JSON of what was simulated. Every check of the
input runs before any projection. Everything is written into a temporary folder
(:func:`pvc_core.io.atomic.atomic_path`) that is renamed to the output folder only at the end (with
the permissions the user's umask gives a new folder), so a failure never leaves a partial output
folder behind.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from pvc_core.calibration import factors
from pvc_core.domain import RECONSTRUCTIONS, dataset_parts
from pvc_core.errors import InputError
from pvc_core.geometry import (fov_centre_mm, lost_activity_fraction, resample_activity, resample_mean,
                               simulation_frame, total_activity_mbq)
from pvc_core.geometry.blocks import downsample_activity
from pvc_core.io import Image, load_image, save_image, write_json
from pvc_core.io.atomic import atomic_path
from pvc_core.pipeline import paths
from pvc_core.pipeline.calibration_stage import calibration_for
from pvc_core.specs import GridSpec, Settings, spec_dict
from pvc_core.spect.acquisition import AcquisitionChain, NoiseSeed, recon_grid_mu

#: Above this, a "mu map" is almost surely in Hounsfield units or 1/m (water is 0.135 1/cm at 208 keV).
MU_MAX_PER_CM = 1.0
#: A mu map whose maximum is below this (but above 0) is probably in 1/mm (water: 0.0135 1/mm).
MU_MIN_PLAUSIBLE_MAX_PER_CM = 0.05
#: Largest fraction of the input's activity that may fall outside the camera's field of view.
MAX_ACTIVITY_OUTSIDE = 1e-6


@dataclass(frozen=True)
class UserPhantom:
    """The user's phantom on the simulation and reconstruction grids, with their world affines (mm)."""

    activity_sim: np.ndarray  # MBq/mL, float32, simulation grid
    mu_sim: np.ndarray  # 1/cm at 208 keV, float32, simulation grid
    sim_affine: np.ndarray
    truth: np.ndarray  # MBq/mL, float32, reconstruction grid
    mu_recon: np.ndarray  # 1/cm, float32, reconstruction grid
    recon_affine: np.ndarray
    input_activity_mbq: float
    outside_fraction: float

    @property
    def sim_voxel_mm(self) -> float:
        return float(self.sim_affine[0, 0])

    @property
    def recon_voxel_mm(self) -> float:
        return float(self.recon_affine[0, 0])


def check_output_folder(out_dir: str | os.PathLike) -> Path:
    """The output folder as a Path; :class:`InputError` if it is a file or a non-empty folder."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError("--output is a file; give a new or empty folder", out)
    if out.is_dir() and any(out.iterdir()):
        raise InputError("output folder exists and is not empty", out)
    return out


def check_phantom(activity: Image, mu: Image, activity_path: str, mu_path: str,
                  warn: Callable[[str], None] = print) -> None:
    """Raise :class:`InputError` naming the file for every problem a user can make; ``warn`` for doubtful units."""
    if activity.data.shape != mu.data.shape:
        raise InputError(f"mu shape {mu.data.shape} differs from activity shape {activity.data.shape} ({activity_path})", mu_path)
    if not np.allclose(activity.affine, mu.affine, atol=1e-3):
        raise InputError(f"mu affine differs from the activity's ({activity_path}); both must share one grid", mu_path)
    mu_min, mu_max = float(mu.data.min()), float(mu.data.max())
    if mu_min < 0 or mu_max > MU_MAX_PER_CM:
        raise InputError(f"mu ranges from {mu_min:.4g} to {mu_max:.4g} (expected 0 to {MU_MAX_PER_CM} 1/cm): this looks "
                         "like CT numbers (HU) or 1/m; give linear attenuation coefficients at 208 keV in 1/cm", mu_path)
    if 0 < mu_max < MU_MIN_PLAUSIBLE_MAX_PER_CM:
        warn(f"WARNING: {mu_path}: mu reaches only {mu_max:.4g} (water is 0.135 1/cm at 208 keV); this looks like 1/mm. "
             "Simulating it as 1/cm as given")
    if float(activity.data.sum()) <= 0:
        raise InputError("the phantom holds no activity (all voxels are 0)", activity_path)


def prepare_user_phantom(activity_path: str | os.PathLike, mu_path: str | os.PathLike, grid: GridSpec,
                         warn: Callable[[str], None] = print) -> UserPhantom:
    """Load, check and resample the user's phantom onto the simulation and reconstruction grids.

    Raises :class:`InputError` naming the file for unreadable or implausible input and when more
    than :data:`MAX_ACTIVITY_OUTSIDE` of the activity lies outside the field of view.
    """
    activity = load_image(activity_path, allow_negative=False, name="activity")
    mu = load_image(mu_path, allow_negative=True, name="mu map")  # negative values are checked (HU) below
    check_phantom(activity, mu, str(activity_path), str(mu_path), warn)

    factor = grid.sim_factor
    sim_shape = grid.sim.shape
    sim_affine = simulation_frame(activity.data.shape, activity.affine, grid.sim.matrix, grid.sim.voxel_mm)
    recon_affine = simulation_frame(activity.data.shape, activity.affine, grid.recon.matrix, grid.recon.voxel_mm)

    act_sim = resample_activity(activity.data, activity.affine, sim_shape, sim_affine)
    outside = lost_activity_fraction(activity.data, activity.affine, act_sim, sim_affine)
    if outside > MAX_ACTIVITY_OUTSIDE:
        fov_mm = grid.recon.fov_mm
        centre = np.round(fov_centre_mm(activity.data.shape, activity.affine), 1).tolist()
        raise InputError(f"{100 * outside:.3g} % of the activity lies outside the camera's field of view ({fov_mm:g} mm "
                         f"cube centred on the phantom's centre {centre} mm); crop the phantom or enlarge "
                         "grid.recon_matrix x grid.recon_voxel_mm", activity_path)
    mu_sim = resample_mean(mu.data, mu.affine, sim_shape, sim_affine).astype(np.float32)
    act_sim = act_sim.astype(np.float32)
    return UserPhantom(activity_sim=act_sim, mu_sim=mu_sim, sim_affine=sim_affine,
                       truth=downsample_activity(act_sim, factor), mu_recon=recon_grid_mu(mu_sim, grid),
                       recon_affine=recon_affine, input_activity_mbq=total_activity_mbq(activity.data, activity.affine),
                       outside_fraction=max(0.0, outside))


def simulate_user_phantom(activity_path: str, mu_path: str, out_dir: str, settings: Settings, *, seed: int = 0,
                          progress: Callable[[str], None] = print,
                          warn: Callable[[str], None] | None = None, calibration_cache: str | None = None) -> dict:
    """Simulate and reconstruct a user's phantom; returns the JSON summary that is also written.

    The acquisition and reconstructions are the one chain's (:meth:`pvc_core.spect.acquisition.AcquisitionChain.acquire`)
    with the grid, camera and reconstructions of ``settings``. ``progress`` receives status
    lines, ``warn`` warnings (default: ``progress``). Every :class:`InputError` is raised before
    any projection is computed.
    """
    from pvc_core.spect import rr_response, write_projections  # lazy: torch (~1.5 s) only after the inputs are checked

    out = check_output_folder(out_dir)
    grid = settings.grid
    t_start = time.perf_counter()
    progress(f"resampling the phantom onto {grid.sim.matrix}^3 voxels of {grid.sim.voxel_mm:g} mm")
    phantom = prepare_user_phantom(activity_path, mu_path, grid, warn=warn or progress)
    recons = [settings.reconstructions[r] for r in RECONSTRUCTIONS]
    progress("calibrating with the calibration cylinder (computed once per camera and protocol, then cached)")
    calibration = calibration_for(settings, calibration_cache, log=progress)
    chain = AcquisitionChain(settings.camera, grid, tuple(recons))
    case = chain.acquire(phantom.activity_sim, phantom.mu_sim, NoiseSeed(seed, 0), progress=progress,
                         calibration=factors(calibration))
    proj, seconds = case.projections, case.seconds

    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, folder=True) as tmp:  # a new folder, so it follows the umask; an empty `out` is replaced
        save_image(tmp / paths.TRUTH, phantom.truth, phantom.recon_affine, "true activity MBq/mL")
        save_image(tmp / paths.MU, phantom.mu_recon, phantom.recon_affine, "mu 1/cm at 208 keV")
        for noise, p in proj.items():
            write_projections(tmp / paths.projections_name(noise), p)
        for dataset, img in case.images.items():
            recon = settings.reconstructions[dataset_parts(dataset)[0]]
            save_image(tmp / paths.recon_name(dataset), img, phantom.recon_affine, f"SPECT {recon.name} MBq/mL")
            write_json(tmp / paths.recon_sidecar_name(dataset),
                       {"units": "MBq/mL", "dataset": dataset, "reconstruction": spec_dict(recon),
                        "calibration": calibration[recon.name],
                        "response_model": rr_response(settings.camera, grid.recon.voxel_mm).as_dict() if recon.psf
                        else None})
        summary = {
            "activity": str(activity_path), "mu": str(mu_path), "seed": seed,
            "total_activity_mbq": total_activity_mbq(phantom.truth, phantom.recon_affine),
            "input_activity_mbq": phantom.input_activity_mbq, "activity_outside_fov_fraction": phantom.outside_fraction,
            "world_frame": "NIfTI RAS+ mm; rotation axis = world z", "recon_affine": phantom.recon_affine,
            "grid": spec_dict(grid), "camera": spec_dict(settings.camera),
            "reconstruction": {r.name: spec_dict(r) for r in recons}, "calibration": calibration,
            "angles_deg": proj["nf"].angles_deg, "orbit_radii_mm": proj["nf"].radii_mm,
            "counts_per_view": {w: np.asarray(a).sum(axis=(1, 2)) for w, a in proj["n"].windows.items()},
            "noise_free": proj["nf"].meta, "seconds": seconds, "total_seconds": time.perf_counter() - t_start,
        }
        write_json(tmp / paths.SIMULATION_SUMMARY, summary)
    progress(f"done in {summary['total_seconds']:.1f} s -> {out}")
    return summary
