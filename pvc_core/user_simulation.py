"""``dlpvc simulate``: a Lu-177 acquisition of the user's own phantom with the configured camera.

Input: activity (MBq/mL) and mu (1/cm at 208 keV) as NIfTI on the same grid, any voxel size.
Both are resampled onto the configured phantom grid (centred; activity conserved exactly), then
projected (three windows, noise-free and Poisson), reconstructed four ways (noRR/RR x n/nf) and
written with the truth on the reconstruction grid and a JSON of what was simulated. Everything
is written into a temporary folder that is renamed to the output folder only at the end, so a
failure never leaves a partial output folder behind.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
from scipy.ndimage import affine_transform

from pvc_core.errors import InputError
from pvc_core.io import Image, load_image, save_image, write_json
from pvc_core.pipeline import paths
from pvc_core.seeding import rng_for

#: Above this, a "mu map" is almost surely in Hounsfield units or 1/m (water is 0.135 1/cm at 208 keV).
MU_MAX_PER_CM = 1.0


def check_phantom(activity: Image, mu: Image, activity_path: str, mu_path: str) -> None:
    """Raise :class:`InputError` naming the file for every problem a user can make."""
    if activity.data.shape != mu.data.shape:
        raise InputError(f"mu shape {mu.data.shape} differs from activity shape {activity.data.shape} ({activity_path})", mu_path)
    if not np.allclose(activity.affine, mu.affine, atol=1e-3):
        raise InputError(f"mu affine differs from the activity's ({activity_path}); both must share one grid", mu_path)
    if float(mu.data.max()) > MU_MAX_PER_CM:
        raise InputError(f"mu reaches {float(mu.data.max()):.4g} 1/cm (above {MU_MAX_PER_CM} 1/cm): this looks like CT numbers "
                         "(HU) or 1/m; give linear attenuation coefficients at 208 keV in 1/cm", mu_path)
    if float(activity.data.sum()) <= 0:
        raise InputError("the phantom holds no activity (all voxels are 0)", activity_path)


def resample_to_grid(image: Image, shape: tuple[int, int, int], voxel_mm: float, conserve_total: bool) -> np.ndarray:
    """Trilinear resampling of ``image`` onto a grid centred like the input (same centre of the field of view).

    With ``conserve_total`` the result is rescaled so that sum(value x voxel volume) is unchanged
    (activity in MBq); values outside the input are 0.
    """
    src_vox = np.asarray(image.voxel_size_mm)
    src_shape = np.asarray(image.data.shape)
    dst_shape = np.asarray(shape)
    extent_src = src_vox * src_shape
    extent_dst = voxel_mm * dst_shape
    if conserve_total and np.any(extent_src > extent_dst + 1e-6):
        nz = np.argwhere(image.data > 0)
        span = (nz.max(0) - nz.min(0) + 1) * src_vox
        if np.any(span > extent_dst):
            raise InputError(f"the activity spans {np.round(span, 1).tolist()} mm, more than the camera's field of view "
                             f"{np.round(extent_dst, 1).tolist()} mm")
    scale = voxel_mm / src_vox
    offset = (src_shape - 1) / 2.0 - scale * (dst_shape - 1) / 2.0
    out = affine_transform(image.data.astype(np.float64), scale, offset=offset, output_shape=tuple(shape), order=1,
                           mode="constant", cval=0.0)
    if conserve_total:
        total_src = float(image.data.sum(dtype=np.float64)) * float(np.prod(src_vox))
        total_dst = float(out.sum()) * voxel_mm**3
        if total_dst <= 0:
            raise InputError("no activity falls inside the camera's field of view after resampling")
        out *= total_src / total_dst
    return out.astype(np.float32)


def simulate_user_phantom(activity_path: str, mu_path: str, out_dir: str, config: dict, seed: int = 0,
                          progress: Callable[[str], None] = print) -> dict:
    """Simulate and reconstruct a user's phantom; returns the JSON summary that is also written."""
    from pvc_core.phantom import downsample_activity, downsample_mean
    from pvc_core.spect import add_poisson_noise, reconstruct, simulate_projections, write_projections

    activity = load_image(activity_path, allow_negative=False, name="activity")
    mu = load_image(mu_path, allow_negative=False, name="mu map")
    check_phantom(activity, mu, activity_path, mu_path)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise InputError("output folder exists and is not empty", out)

    g = config["grid"]
    factor = g["sim_factor"]
    sim_shape = (g["recon_matrix"] * factor,) * 3
    sim_vox = g["recon_voxel_mm"] / factor
    t_start = time.perf_counter()
    progress(f"resampling the phantom onto {sim_shape[0]}^3 voxels of {sim_vox:g} mm")
    act_sim = resample_to_grid(activity, sim_shape, sim_vox, conserve_total=True)
    mu_sim = resample_to_grid(mu, sim_shape, sim_vox, conserve_total=False)
    truth = downsample_activity(act_sim, factor)
    mu_recon = downsample_mean(mu_sim, factor)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".dlpvc-simulate-", dir=out.parent))
    try:
        save_image(tmp / "truth.nii.gz", truth, g["recon_voxel_mm"], "true activity MBq/mL")
        save_image(tmp / "mu.nii.gz", mu_recon, g["recon_voxel_mm"], "mu 1/cm at 208 keV")
        progress(f"projecting {config['camera']['n_views']} views (photopeak and two scatter windows)")
        t0 = time.perf_counter()
        proj = {"nf": simulate_projections(act_sim, mu_sim, sim_vox, config)}
        proj["n"] = add_poisson_noise(proj["nf"], rng_for(seed, 0, "noise"))
        seconds = {"simulate": time.perf_counter() - t0}
        for noise, p in proj.items():
            write_projections(tmp / f"proj_{noise}", p)
        for method in paths.METHODS:
            for noise in paths.NOISE_LEVELS:
                progress(f"reconstructing {method}_{noise}")
                t0 = time.perf_counter()
                img = reconstruct(proj[noise], mu_recon, method, config)
                seconds[f"{method}_{noise}"] = time.perf_counter() - t0
                save_image(tmp / paths.recon_name(f"{method}_{noise}"), img, g["recon_voxel_mm"], f"SPECT {method} MBq/mL")
        summary = {
            "activity": str(activity_path), "mu": str(mu_path), "seed": seed,
            "total_activity_mbq": float(truth.sum(dtype=np.float64)) * g["recon_voxel_mm"] ** 3 / 1000.0,
            "grid": g, "camera": config["camera"], "reconstruction": config["reconstruction"],
            "angles_deg": proj["nf"].angles_deg, "orbit_radii_mm": proj["nf"].radii_mm,
            "counts_per_view": {w: np.asarray(a).sum(axis=(1, 2)) for w, a in proj["n"].windows.items()},
            "noise_free": proj["nf"].meta, "seconds": seconds, "total_seconds": time.perf_counter() - t_start,
        }
        write_json(tmp / "simulation.json", summary)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    progress(f"done in {summary['total_seconds']:.1f} s -> {out}")
    return summary
