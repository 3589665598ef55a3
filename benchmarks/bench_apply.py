"""``dlpvc apply`` end to end on a 128^3 image of 4.8 mm voxels (the paper's grid).

Prints, for the shipped model (``pvc_core/models/dlpvc_shipped/model.pt``; ``--model`` for another):

* the in-process time of :func:`pvc_core.apply.correct.apply_one` (read the NIfTI, check,
  resample onto the model grid, correct, resample back, write the NIfTI and its sidecar), median
  of ``--repeats`` runs after one warm-up, with the share of each step from one profiled run;
* the wall time of the whole command (``python -m pvc_core apply``: interpreter start, torch
  import and model loading included), once;
* the time of a refused call (a missing input: planned and refused before any model loads),
  in-process and as a whole command, median of 5;
* the same in-process time on the GPU when torch sees one.

    .venv/bin/python benchmarks/bench_apply.py
    .venv/bin/python benchmarks/bench_apply.py --threads 2 --repeats 5

The input is a smooth synthetic body-sized activity image (its values do not change the time).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

ROOT = Path(__file__).resolve().parents[1]


def _input(path: Path, n: int, voxel_mm: float) -> Path:
    from pvc_core.io import save_image

    rng = np.random.default_rng(0)
    z, y, x = np.mgrid[:n, :n, :n].astype(np.float32)
    c = (n - 1) / 2
    body = ((x - c) / (0.35 * n)) ** 2 + ((y - c) / (0.25 * n)) ** 2 < 1
    act = np.where(body, 0.05, 0.0).astype(np.float32)
    for _ in range(12):
        p = rng.uniform(0.3 * n, 0.7 * n, 3)
        r = rng.uniform(2, 8)
        act[(z - p[0]) ** 2 + (y - p[1]) ** 2 + (x - p[2]) ** 2 < r * r] += rng.uniform(0.2, 2.0)
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = -voxel_mm * (n - 1) / 2
    return save_image(path, gaussian_filter(act, 2.0).astype(np.float32), affine, "activity MBq/mL")


def _time_apply(model, src: Path, out_dir: Path, repeats: int) -> list[float]:
    from pvc_core.apply.correct import apply_one

    times = []
    for i in range(repeats + 1):
        out = out_dir / f"out_{i}.nii.gz"
        t0 = time.perf_counter()
        apply_one(model, src, out, say=lambda s: None, reconstruction="RR")
        times.append(time.perf_counter() - t0)
    return times[1:]  # the first run warms up torch's kernels


def _steps(model, src: Path) -> dict[str, float]:
    """Seconds of each step of one run (read, resample in, network, resample back, write)."""
    from pvc_core.apply.correct import read_spect
    from pvc_core.apply.model_grid import model_grid
    from pvc_core.geometry.resample import resample_activity
    from pvc_core.io import save_image
    from pvc_core.apply.fov import predict_fov_invariant

    t = {}
    t0 = time.perf_counter()
    spect = read_spect(src, lambda s: None)
    t["read + check"] = time.perf_counter() - t0
    img = spect.image
    t0 = time.perf_counter()
    shape, aff = model_grid(img.data.shape, img.affine, tuple(model.trained_for.get("voxel_mm") or img.voxel_size_mm))
    x = resample_activity(img.data, img.affine, shape, aff).astype(np.float32)
    t["resample to model grid"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    y = predict_fov_invariant(model.module, model.cfg, x, model.trained_for["matrix"], device=model.device)
    t["network (windows)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    back = resample_activity(y, aff, img.data.shape, img.affine)
    t["resample back"] = time.perf_counter() - t0
    from pvc_core.apply.hollow import hollow_regions

    t0 = time.perf_counter()
    hollow_regions(img.data, back.astype(np.float32), img.affine)
    t["hollow guard"] = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        save_image(Path(tmp) / "o.nii.gz", back.astype(np.float32), img.affine)
        t["write NIfTI"] = time.perf_counter() - t0
    return t


def _refused_times(tmp: Path, repeats: int = 5) -> None:
    """A refused call (a missing input): our own time in-process, and the whole command's time."""
    from pvc_core.cli import main as cli

    argv = ["apply", "--input", str(tmp / "missing.nii.gz"), "--output", str(tmp / "r.nii.gz")]
    inproc, whole = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
            code = cli(argv)
        inproc.append(time.perf_counter() - t0)
        assert code == 2
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pvc_core", *argv], capture_output=True)
        whole.append(time.perf_counter() - t0)
    print(f"refused call (missing input): in-process median {1000 * statistics.median(inproc):.0f} ms, "
          f"whole command median {statistics.median(whole):.2f} s (min {min(whole):.2f}, max {max(whole):.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model.pt (default: the shipped model)")
    ap.add_argument("--matrix", type=int, default=128)
    ap.add_argument("--voxel-mm", type=float, default=4.8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from pvc_core.apply.model import load_apply_model

    model = load_apply_model(args.model, "cpu")
    print(f"model {model.path} ({model.cfg['architecture']}, channels {model.cfg['channels']}), "
          f"input {args.matrix}^3 at {args.voxel_mm} mm, {args.threads} CPU threads, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = _input(tmp / "spect.nii.gz", args.matrix, args.voxel_mm)
        cpu = _time_apply(model, src, tmp, args.repeats)
        print(f"apply in-process, CPU: median {statistics.median(cpu):.2f} s "
              f"(runs {', '.join(f'{t:.2f}' for t in cpu)})")
        for step, sec in _steps(model, src).items():
            print(f"  {step:24s} {sec:6.2f} s")
        cmd = [sys.executable, "-m", "pvc_core", "apply", "--input", str(src), "--output", str(tmp / "cli.nii.gz"),
               "--device", "cpu"] + (["--model", args.model] if args.model else [])
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stderr)
        print(f"whole command (interpreter, imports, model load, apply): {wall:.2f} s")
        _refused_times(tmp)
        if torch.cuda.is_available():
            gpu_model = load_apply_model(args.model, "cuda")
            gpu = _time_apply(gpu_model, src, tmp, args.repeats)
            print(f"apply in-process, {torch.cuda.get_device_name(0)}: median {statistics.median(gpu):.2f} s")
        else:
            print("GPU: none visible to torch (no GPU figures)")


if __name__ == "__main__":
    main()
