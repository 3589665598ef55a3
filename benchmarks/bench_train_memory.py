"""Peak memory of a training against the number of cases: it must not grow with them.

Writes N synthetic cases of 64^3 (blurred, noisy spheres and their truth, NIfTI) into a work
folder, then for each N trains one epoch of a small U-Net with the streaming dataset
(:func:`pvc_core.training.train_model`, full volumes, batch 2, no validation) in a fresh
subprocess, and prints the subprocess's peak resident memory (``getrusage`` ``ru_maxrss``), its
resident memory after the imports, the time of the first use of the cases (normalised into the
cache) and the seconds per training step. Memory that held the cases (as dlpvc did before the
streaming dataset) would grow by 2 x 2 x 1 MiB per case (input and target, plus the augmented
copy of the epoch); the ``in-memory estimate`` column states that.

glibc's malloc raises its mmap threshold after large blocks are freed and then keeps later
large blocks (the network's activations) in the heap, so with its defaults the peak creeps up
by some tens of MiB over the first hundred steps whatever the data: that would make the longer
epoch of more cases look bigger. The subprocesses therefore run with a fixed
``MALLOC_MMAP_THRESHOLD_`` of 1 MiB (large blocks go back to the system when freed);
``--default-malloc`` measures with glibc's defaults instead.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_train_memory.py                 # N = 20, 80
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_train_memory.py --cases 20 80 320 --workers 2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

EDGE = 64
VOXEL_MM = 9.6
CHANNELS = [8, 16, 32]
BATCH = 2


def _rss_mib() -> float:
    """Resident memory of this process now (MiB), from /proc."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2 ** 20


def write_cases(folder: Path, n: int) -> list[tuple[str, str]]:
    """``n`` synthetic (SPECT, truth) pairs of 64^3 (MBq/mL); existing files are kept."""
    from scipy.ndimage import gaussian_filter

    from pvc_core.io import save_image

    z, y, x = np.mgrid[:EDGE, :EDGE, :EDGE]
    pairs = []
    for i in range(n):
        spect_path = folder / f"case_{i:04d}" / "spect.nii.gz"
        truth_path = folder / f"case_{i:04d}" / "truth.nii.gz"
        if not (spect_path.is_file() and truth_path.is_file()):
            rng = np.random.default_rng(i)
            truth = np.zeros((EDGE,) * 3, np.float32)
            for _ in range(6):
                c, r = rng.uniform(12, EDGE - 12, 3), rng.uniform(3, 10)
                truth[(z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 < r * r] = rng.uniform(0.5, 5)
            spect = gaussian_filter(truth, 1.5) * rng.uniform(0.9, 1.1, truth.shape)
            save_image(spect_path, spect.astype(np.float32), VOXEL_MM)
            save_image(truth_path, truth, VOXEL_MM)
        pairs.append((str(spect_path), str(truth_path)))
    return pairs


def child(cases_dir: Path, n: int, out_dir: Path, workers: int) -> dict:
    """One epoch on the first ``n`` cases in this process; returns the measurements."""
    import torch

    torch.set_num_threads(1)
    from pvc_core.training import train_model

    rss_imports = _rss_mib()
    pairs = [(str(cases_dir / f"case_{i:04d}" / "spect.nii.gz"), str(cases_dir / f"case_{i:04d}" / "truth.nii.gz"))
             for i in range(n)]
    lines = []
    t0 = time.perf_counter()
    card = train_model(pairs, [], {"architecture": "unet", "channels": CHANNELS, "epochs": 1, "batch_size": BATCH,
                                   "input": "full"}, out_dir, seed=0, log=lines.append, device="cpu",
                       cache_dir=out_dir / "cache", num_workers=workers)
    total = time.perf_counter() - t0
    with open(out_dir / "history.csv") as fh:
        epoch_s = float(next(csv.DictReader(fh))["seconds"])
    steps = -(-n // BATCH)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    children_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"n_cases": n, "peak_rss_mib": peak_kib / 1024, "peak_rss_workers_mib": children_kib / 1024,
            "rss_after_imports_mib": rss_imports, "epoch_s": epoch_s, "steps": steps,
            "s_per_step": epoch_s / steps, "cache_and_setup_s": total - epoch_s,
            "parameters": card["network"]["parameters"]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, nargs="+", default=[20, 80], help="numbers of cases to train on")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    ap.add_argument("--workdir", type=Path, help="folder for the cases and models (default: a temporary one)")
    ap.add_argument("--default-malloc", action="store_true", help="keep glibc's dynamic mmap threshold")
    ap.add_argument("--child", nargs=3, metavar=("CASES_DIR", "N", "OUT_DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(Path(args.child[0]), int(args.child[1]), Path(args.child[2]), args.workers)))
        return

    with tempfile.TemporaryDirectory(prefix="bench_train_memory_") as tmp:
        work = args.workdir or Path(tmp)
        t0 = time.perf_counter()
        write_cases(work / "cases", max(args.cases))
        env = dict(os.environ)
        if not args.default_malloc:
            env["MALLOC_MMAP_THRESHOLD_"] = str(2 ** 20)
        print(f"{max(args.cases)} synthetic cases of {EDGE}^3 in {work / 'cases'} ({time.perf_counter() - t0:.1f} s); "
              f"U-Net {CHANNELS}, batch {BATCH}, 1 epoch, CPU, 1 thread, {args.workers} workers, "
              f"MALLOC_MMAP_THRESHOLD_={env.get('MALLOC_MMAP_THRESHOLD_', 'glibc default')}")
        print(f"{'cases':>6s} {'peak RSS (MiB)':>15s}" + (f" {'workers (MiB)':>14s}" if args.workers else "")
              + f" {'after imports':>14s} {'in-memory estimate':>19s} {'cache+setup (s)':>16s} {'s/step':>8s}")
        for n in args.cases:
            out = work / f"model_{n}"
            cmd = [sys.executable, __file__, "--workers", str(args.workers), "--child", str(work / "cases"), str(n),
                   str(out)]
            done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
            r = json.loads(done.stdout.splitlines()[-1])
            estimate = r["rss_after_imports_mib"] + 4 * n * EDGE ** 3 * 4 / 2 ** 20
            print(f"{n:6d} {r['peak_rss_mib']:15.1f}" + (f" {r['peak_rss_workers_mib']:14.1f}" if args.workers else "")
                  + f" {r['rss_after_imports_mib']:14.1f} {estimate:19.1f} {r['cache_and_setup_s']:16.1f}"
                  f" {r['s_per_step']:8.3f}", flush=True)


if __name__ == "__main__":
    main()
