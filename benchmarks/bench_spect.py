"""Time one case (simulate, noise, four reconstructions) beside one PyTomography forward projection.

Usage::

    .venv/bin/python benchmarks/bench_spect.py                  # 64^3 and 128^3, 120 views, CPU (+ CUDA)
    .venv/bin/python benchmarks/bench_spect.py --sizes 128 --profile 12
    .venv/bin/python benchmarks/bench_spect.py --sizes 64 --views 60 --threads 1 --devices cpu

Per grid size, in one run on the same machine:

1. **The case**: a synthetic torso (elliptical body, lungs, spine, four hot spheres) on the phantom
   grid (``sim_factor`` 2 finer), through :meth:`pvc_core.spect.acquisition.AcquisitionChain.acquire`, the code the
   DAG and ``dlpvc simulate`` run: noise-free simulation of the three windows (``project_at:
   sim``), Poisson noise, and noRR (10 x 2) and RR (6 x 6) OSEM with TEW scatter correction, each
   reconstruction for both noise levels in one batch. The system cache is cleared first, so the
   case pays for building its projector.
2. **PyTomography**: one forward projection of the same object (activity and mu on the
   reconstruction grid, same views and radii) with ``SPECTAttenuationTransform`` and
   ``SPECTPSFTransform`` (linear sigma(d) fitted to the collimator), the library's own projector.
   Timed ``--repeats`` times (its time varies by up to 2x from call to call on a 2-core VM);
   ``ratio`` = case total / the median; the target of issue [2.3] is 1.2 or less.
3. **Old vs new projector**: forward (without and with the response) and back projection of the
   test object by the CPU kernels and by the torch path (the projector before them), maximum
   difference relative to the maximum (back projections compared inside the activity support).

``--profile K`` also prints the K most expensive operators of the largest case (torch.profiler;
the numba kernels appear under the Python functions that call them in ``--pyprofile``).
Reconstruction grid 64^3 uses 9.6 mm voxels (the demo), 128^3 uses 4.8 mm (the paper). The
numbers depend on the machine's load: they are printed with ``os.getloadavg()``.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import os
import pstats
import time
from pathlib import Path

import numpy as np
import torch

from pvc_core.spect.acquisition import AcquisitionChain, NoiseSeed
from pvc_core.config import load_config
from pvc_core.spect.collimator import Collimator
from pvc_core.spect.orbit import orbit_radii_mm, view_angles_deg
from pvc_core.spect.simulate import sum_pool
from pvc_core.spect.system_cache import clear_system_cache
from pvc_core.spect.system_model import SPECTSystem
from pvc_core.specs import CameraSpec, GridSpec, recon_spec
import pytomography.algorithms  # noqa: F401,E402  (imported here so the first reconstruction is not charged for it)

REPO = Path(__file__).resolve().parents[1]


def synthetic_case(n_recon: int, voxel_recon_mm: float, factor: int = 2) -> tuple[np.ndarray, np.ndarray, float]:
    """(activity MBq/mL, mu 1/cm, voxel mm) of a torso-like phantom on the simulation grid."""
    n = n_recon * factor
    v = voxel_recon_mm / factor
    c = (np.arange(n) - (n - 1) / 2.0) * v
    x, y, z = np.meshgrid(c, c, c, indexing="ij", sparse=True)
    body = (x / 170.0) ** 2 + (y / 110.0) ** 2 <= 1.0
    body = np.broadcast_to(body, (n, n, n))
    mu = np.where(body, 0.1405, 0.0).astype(np.float32)
    lungs = (((np.abs(x) - 80.0) / 55.0) ** 2 + ((y + 10.0) / 70.0) ** 2 + (z / 120.0) ** 2) <= 1.0
    mu[np.broadcast_to(lungs, mu.shape)] = 0.0348
    spine = ((x / 18.0) ** 2 + ((y - 75.0) / 18.0) ** 2) <= 1.0
    mu[np.broadcast_to(spine, mu.shape)] = 0.2472
    act = np.where(body, 0.02, 0.0).astype(np.float32)
    for (cx, cy, cz, r, a) in [(40, 10, 0, 30, 1.0), (-60, -30, 40, 15, 2.0), (20, 60, -60, 22, 0.6), (0, 0, 90, 10, 3.0)]:
        act[np.broadcast_to((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 <= r ** 2, act.shape)] = a
    return act, mu, v


def bench_config(n_recon: int, n_views: int) -> dict:
    """config.yaml at ``n_recon``^3 (field of view 614 mm), 120 x 30 s worth of counts, TEW."""
    cfg = copy.deepcopy(load_config(REPO / "config.yaml"))
    cfg["grid"].update(recon_matrix=n_recon, recon_voxel_mm=9.6 * 64 / n_recon, sim_factor=2)
    cfg["camera"].update(n_views=n_views, time_per_view_s=30.0 * 120 / n_views, project_at="sim")
    cfg["reconstruction"]["noRR"].update(iterations=10, subsets=2, scatter_correction="tew")
    cfg["reconstruction"]["RR"].update(iterations=6, subsets=6, scatter_correction="tew")
    return cfg


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_case(cfg: dict, device: torch.device) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """Seconds per stage of one case; also the activity (MBq/voxel) and mu on the reconstruction grid."""
    camera, grid = CameraSpec.from_config(cfg), GridSpec.from_config(cfg)
    act, mu, v = synthetic_case(grid.recon_matrix, grid.recon_voxel_mm)
    clear_system_cache()
    recons = [recon_spec(cfg, "noRR"), recon_spec(cfg, "RR")]
    _sync(device)
    t0 = time.perf_counter()
    result = AcquisitionChain(camera, grid, tuple(recons)).acquire(act, mu, NoiseSeed(1, 0),
                                                                   calibration={"noRR": 1.0, "RR": 1.0})
    _sync(device)
    total = time.perf_counter() - t0
    times = {"simulate (3 windows)": result.seconds["simulate"], "noise": result.seconds["noise"],
             "recon noRR n+nf": result.seconds["recon noRR"], "recon RR n+nf": result.seconds["recon RR"],
             "case total": total}
    act_recon = sum_pool(act * (v / 10.0) ** 3, 2)
    return times, act_recon, result.mu_recon_per_cm


def pytomography_forward_seconds(act_mbq: np.ndarray, mu: np.ndarray, cfg: dict, device: torch.device,
                                 repeats: int = 3) -> list[float]:
    """Seconds of each of ``repeats`` PyTomography forward projections (attenuation + PSF) of ``act_mbq``."""
    from pvc_core.spect._pytomography import pytomography_on
    from pytomography.metadata.SPECT import SPECTObjectMeta, SPECTProjMeta, SPECTPSFMeta
    from pytomography.projectors.SPECT import SPECTSystemMatrix
    from pytomography.transforms.SPECT import SPECTAttenuationTransform, SPECTPSFTransform

    camera, grid = CameraSpec.from_config(cfg), GridSpec.from_config(cfg)
    n, v = grid.recon_matrix, grid.recon_voxel_mm
    angles = view_angles_deg(camera.n_views, camera.orbit.start_angle_deg)
    radii = orbit_radii_mm(mu, v, angles, camera.orbit.clearance_mm, camera.orbit.body_threshold_per_cm,
                           camera.orbit.min_radius_mm)
    d_mm = np.linspace(0.0, radii.max() + n * v / 2.0, 50)
    slope, intercept = np.polyfit(d_mm / 10.0, Collimator.from_spec(camera.collimator).sigma_mm(d_mm) / 10.0, 1)
    with torch.no_grad(), pytomography_on(device):
        cm = v / 10.0
        object_meta = SPECTObjectMeta([cm, cm, cm], (n, n, n))
        proj_meta = SPECTProjMeta((n, n), [cm, cm], angles, radii / 10.0)
        att = SPECTAttenuationTransform(torch.from_numpy(mu).to(device))
        psf = SPECTPSFTransform(SPECTPSFMeta((float(slope), float(intercept))))
        matrix = SPECTSystemMatrix([att, psf], [], object_meta, proj_meta)
        obj = torch.from_numpy(act_mbq).to(device)
        seconds = []
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            matrix.forward(obj)
            _sync(device)
            seconds.append(time.perf_counter() - t0)
        return seconds


def projector_difference(act_mbq: np.ndarray, mu: np.ndarray, cfg: dict) -> dict[str, float]:
    """Max |new - old| / max |old| of the CPU kernels against the torch projector (CPU)."""
    camera, grid = CameraSpec.from_config(cfg), GridSpec.from_config(cfg)
    v = grid.recon_voxel_mm
    angles = view_angles_deg(camera.n_views, camera.orbit.start_angle_deg)
    radii = orbit_radii_mm(mu, v, angles, camera.orbit.clearance_mm, camera.orbit.body_threshold_per_cm,
                           camera.orbit.min_radius_mm)
    collimator = Collimator.from_spec(camera.collimator)
    systems = {be: SPECTSystem(mu, v, angles, radii, collimator, camera.counts_per_mbq, backend=be)
               for be in ("torch", "numba")}
    f = torch.from_numpy(act_mbq)
    support = torch.from_numpy(systems["numba"]._support.astype(np.float32))[:, :, None]
    out = {}
    for psf in (False, True):
        label = "RR" if psf else "noRR"
        fwd = {be: s.forward(f, psf=psf) for be, s in systems.items()}
        out[f"forward {label}"] = float((fwd["numba"] - fwd["torch"]).abs().max() / fwd["torch"].abs().max())
        g = fwd["torch"] + 1.0
        bwd = {be: s.backward(g, psf=psf) * support for be, s in systems.items()}
        out[f"back {label}"] = float((bwd["numba"] - bwd["torch"]).abs().max() / bwd["torch"].abs().max())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--views", type=int, default=120)
    ap.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--profile", type=int, default=0, metavar="K", help="print the K top operators (torch.profiler)")
    ap.add_argument("--pyprofile", type=int, default=0, metavar="K", help="print the K top Python functions (cProfile)")
    ap.add_argument("--repeats", type=int, default=3, help="PyTomography forward projections timed (median used)")
    ap.add_argument("--no-compare", action="store_true", help="skip the old-vs-new projector comparison")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    print(f"# torch {torch.__version__}, CPU threads {torch.get_num_threads()}, os.cpu_count {os.cpu_count()}, "
          f"load average {os.getloadavg()}")
    print(f"# views {args.views}; seconds per stage of one case, and one PyTomography forward projection")
    time_case(bench_config(16, 8), torch.device("cpu"))  # compiles the numba kernels (cached on disk)
    rows = []
    for dev in devices:
        device = torch.device(dev)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        for size in args.sizes:
            cfg = bench_config(size, args.views)
            last = size == max(args.sizes) and dev == devices[-1]
            if last and args.profile:
                from torch.profiler import ProfilerActivity, profile

                with profile(activities=[ProfilerActivity.CPU]) as prof:
                    t, act, mu = time_case(cfg, device)
                print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.profile))
            elif last and args.pyprofile:
                prof = cProfile.Profile()
                prof.enable()
                t, act, mu = time_case(cfg, device)
                prof.disable()
                pstats.Stats(prof).sort_stats("tottime").print_stats(args.pyprofile)
            else:
                t, act, mu = time_case(cfg, device)
            pyt = pytomography_forward_seconds(act, mu, cfg, device, args.repeats)
            t["PyTomography forward (att + PSF), median"] = float(np.median(pyt))
            t["PyTomography forward, min"] = min(pyt)
            t["PyTomography forward, max"] = max(pyt)
            t["ratio case / PyTomography forward (median)"] = t["case total"] / float(np.median(pyt))
            if device.type == "cpu" and not args.no_compare:
                t.update({f"max rel diff {k}": v for k, v in projector_difference(act, mu, cfg).items()})
            rows.append((f"{size}^3 {name}", t))
            print(f"{size}^3 on {name}: " + ", ".join(f"{k} {v:.4g}" for k, v in t.items()), flush=True)
    keys = list(dict.fromkeys(k for _, t in rows for k in t))
    width = max(len(k) for k in keys)
    print("\n| stage".ljust(width + 3) + "".join(f"| {label:>14} " for label, _ in rows) + "|")
    print("|" + "-" * (width + 1) + "".join("|" + "-" * 16 for _ in rows) + "|")
    for k in keys:
        print(f"| {k:<{width}}" + "".join(f"| {t[k]:>14.4g} " if k in t else f"| {'':>14} " for _, t in rows) + "|")
    print(f"# load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
