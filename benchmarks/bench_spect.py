"""Time the SPECT stages of one case: simulate, noise, and the four reconstructions.

Usage::

    .venv/bin/python benchmarks/bench_spect.py                 # 64^3 and 128^3, 120 views, CPU (+ CUDA)
    .venv/bin/python benchmarks/bench_spect.py --sizes 64 --views 60 --threads 1
    .venv/bin/python benchmarks/bench_spect.py --project-at recon --devices cpu

The phantom is synthetic (elliptical torso with lungs, spine and a few hot spheres) on the
simulation grid (``sim_factor`` = 2 finer than the reconstruction grid); reconstruction grid
64^3 uses 9.6 mm voxels (the demo), 128^3 uses 4.8 mm (the paper). Times are wall-clock seconds
of one call each, after the imports; the system cache is cleared before each case, so the first
reconstruction of a case pays for building the projector (``recon noRR nf`` includes it).
The numbers depend on the machine's load: report them together with ``uptime``.
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from pathlib import Path

import numpy as np
import torch

from pvc_core.config import load_config
from pvc_core.spect import add_poisson_noise, reconstruct, simulate_projections
from pvc_core.spect.simulate import sum_pool
from pvc_core.spect.system_cache import clear_system_cache
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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_case(n_recon: int, n_views: int, device: torch.device, project_at: str) -> dict[str, float]:
    cfg = copy.deepcopy(load_config(REPO / "config.yaml"))
    voxel = 9.6 * 64 / n_recon
    cfg["grid"].update(recon_matrix=n_recon, recon_voxel_mm=voxel, sim_factor=2)
    cfg["camera"].update(n_views=n_views, time_per_view_s=30.0 * 120 / n_views, project_at=project_at)
    for recon in ("noRR", "RR"):  # the camera's own scatter correction (the demo config uses the simulated one)
        cfg["reconstruction"][recon]["scatter_correction"] = "tew"
    act, mu, v = synthetic_case(n_recon, voxel)
    mu_recon = sum_pool(mu, 2) / 8.0
    clear_system_cache()
    times: dict[str, float] = {}
    t_case = time.perf_counter()

    def timed(name, fn):
        _sync(device)
        t = time.perf_counter()
        out = fn()
        _sync(device)
        times[name] = time.perf_counter() - t
        return out

    nf = timed("simulate", lambda: simulate_projections(act, mu, v, CameraSpec.from_config(cfg), GridSpec.from_config(cfg), device=device))
    n = timed("noise", lambda: add_poisson_noise(nf, np.random.default_rng(1)))
    for method in ("noRR", "RR"):
        for label, proj in (("nf", nf), ("n", n)):
            timed(f"recon {method} {label}", lambda: reconstruct(proj, mu_recon, recon_spec(cfg, method), CameraSpec.from_config(cfg), device=device))
    times["total"] = time.perf_counter() - t_case
    times["counts (photopeak, nf)"] = nf.total_counts()["photopeak"]
    times["scatter fraction"] = nf.meta["scatter_fraction"]
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--views", type=int, default=120)
    ap.add_argument("--project-at", choices=["sim", "recon"], default="sim")
    ap.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    print(f"# torch {torch.__version__}, CPU threads {torch.get_num_threads()}, os.cpu_count {os.cpu_count()}, "
          f"load average {os.getloadavg()}")
    print(f"# views {args.views}, project_at {args.project_at}; seconds per stage (one case)")
    rows = []
    for dev in devices:
        device = torch.device(dev)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        for size in args.sizes:
            t = time_case(size, args.views, device, args.project_at)
            rows.append((f"{size}^3 {name}", t))
            print(f"{size}^3 on {name}: " + ", ".join(f"{k} {v:.3g}" for k, v in t.items()), flush=True)
    keys = list(rows[0][1])
    width = max(len(k) for k in keys)
    print("\n| stage".ljust(width + 3) + "".join(f"| {label:>20} " for label, _ in rows) + "|")
    print("|" + "-" * (width + 1) + "".join("|" + "-" * 22 for _ in rows) + "|")
    for k in keys:
        print(f"| {k:<{width}}" + "".join(f"| {t[k]:>20.4g} " for _, t in rows) + "|")


if __name__ == "__main__":
    main()
