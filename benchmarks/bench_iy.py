"""Benchmark: iterative Yang (10 iterations) on a 128^3 image with 20 regions, CPU and CUDA.

Prints one line per device and FWHM: median wall time of ``pvc_core.pvc.iterative_yang`` over a
few repeats (first call excluded as warm-up). The phantom is 19 random spheres and a body region in
a background, on the paper's 4.8 mm grid, blurred with the PSF and given Poisson-like noise; FWHMs
are the paper's matched-filter values (8.75 mm for RR, 21.35 mm for noRR). Target: <= 2 s on CPU.

Usage: python benchmarks/bench_iy.py [--size 128] [--regions 20] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from pvc_core.pvc import iterative_yang, itk_gaussian_blur
from pvc_core.pvc.itk_gaussian import petpvc_kernels

VOXEL_MM = (4.8, 4.8, 4.8)


def make_case(size: int, regions: int, fwhm_mm: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(blurred noisy image, labels 0..regions-1): background 0, body 1, spheres 2.."""
    rng = np.random.default_rng(seed)
    grid = np.indices((size,) * 3, dtype=np.float32)
    centre = (size - 1) / 2
    labels = np.zeros((size,) * 3, dtype=np.int32)
    body = ((grid - centre) ** 2 / np.array([0.45, 0.35, 0.45])[:, None, None, None] ** 2).sum(0) <= size**2
    labels[body] = 1
    for k in range(2, regions):
        c = rng.uniform(0.25 * size, 0.75 * size, 3)
        r = rng.uniform(2, 8)
        labels[((grid - c[:, None, None, None]) ** 2).sum(0) <= r * r] = k
    activity = np.concatenate([[0.0, 0.2], rng.uniform(0.5, 5.0, regions - 2)])
    truth = activity[labels].astype(np.float32)
    blurred = itk_gaussian_blur(truth, fwhm_mm, VOXEL_MM)
    noisy = rng.poisson(np.clip(blurred, 0, None) * 50).astype(np.float32) / 50
    return noisy, labels


def time_it(image, labels, fwhm_mm, device, repeats) -> float:
    iterative_yang(image, labels, fwhm_mm, VOXEL_MM, iterations=10, device=device)  # warm-up
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        iterative_yang(image, labels, fwhm_mm, VOXEL_MM, iterations=10, device=device)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--regions", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"iterative Yang, 10 iterations, {args.size}^3, {args.regions} regions, voxel {VOXEL_MM[0]} mm; "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {os.cpu_count()} CPUs visible")
    for fwhm in (8.75, 21.35):
        image, labels = make_case(args.size, args.regions, fwhm)
        radius = len(petpvc_kernels(fwhm, VOXEL_MM)[0]) // 2
        for device in devices:
            t = time_it(image, labels, fwhm, device, args.repeats)
            print(f"  FWHM {fwhm:5.2f} mm (kernel radius {radius}): {device:4s} {t:6.3f} s")
    if "cuda" not in devices:
        print("  cuda: not available on this machine")


if __name__ == "__main__":
    main()
