"""Table 1 baseline: no PVC and iterative Yang (true mask) on simulated body cases, beside the paper.

Usage::

    .venv/bin/python benchmarks/table1_baseline.py                      # 10 cases at the paper's protocol
    .venv/bin/python benchmarks/table1_baseline.py --n 2 --matrix 32    # a quick run (same field of view)
    .venv/bin/python benchmarks/table1_baseline.py --n 50 --first 100 --threads 2 --csv table1.csv

Cases: ``generate_case(case id, config seed, ...)`` for the ids ``--first`` .. ``--first + --n - 1``
(the DAG draws its test cases from the same ids with the same seed, but through its split).
Protocol: the configuration's (default config/paper.yaml: 128^3 x 4.8 mm, 120 views x 30 s, OSEM
RR 6x6). ``--matrix`` changes the grid and, unless ``--voxel-mm`` is given, scales the voxel so
that the field of view stays the configuration's (32 -> 19.2 mm for paper.yaml): a body must fit.
Every case goes through :meth:`pvc_core.spect.acquisition.AcquisitionChain.acquire` with the calibration from
:func:`pvc_core.pipeline.calibration_stage.calibration_for` (computed once, then cached).

Per reconstruction (``--reconstructions``, default RR) and noise level (noise-free and Poisson),
as the DAG does it:

- no PVC: the calibrated reconstruction;
- IY, true mask: :func:`pvc_core.pvc.iterative_yang` with :func:`pvc_core.pvc.truth_labels` of
  the truth and the matched-filter FWHM, the mean over the first ``--fwhm-cases`` cases (default
  the config's ``resolution.calibration_cases``) of ``matched_filter_fwhm(<recon>_nf, truth)``
  (free scale, the config's search bracket); the DAG takes its calibration cases from the
  training split, this benchmark from its own cases (printed). ``--fwhm-mm`` fixes it instead.

Metrics: :func:`pvc_core.metrics.compute_all` against the truth on the reconstruction grid with
its default mask (truth > 0) and the config's VAA tolerance, as ``evaluate`` does; the summary is
:func:`pvc_core.pipeline.dataset_stages.summarise` (mean, SD, paired Wilcoxon against no PVC).
Prints per-case rows, the summary beside the paper's RR_n rows (Leube et al. 2024, Table 1, 500
test cases), the wall time per case and in total, and the machine. No training is involved.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pvc_core.calibration import factors  # noqa: E402
from pvc_core.pipeline.calibration_stage import calibration_for  # noqa: E402
from pvc_core.config import load_config  # noqa: E402
from pvc_core.domain import NO_PVC, NOISE_LEVELS, dataset_name, dataset_parts  # noqa: E402
from pvc_core.metrics import compute_all  # noqa: E402
from pvc_core.phantom import generate_case  # noqa: E402
from pvc_core.pipeline.dataset_stages import METRIC_COLUMNS, summarise  # noqa: E402
from pvc_core.report.paper import PAPER_FWHM_MM, PAPER_TABLE1  # noqa: E402
from pvc_core.pvc import iterative_yang, truth_labels  # noqa: E402
from pvc_core.resolution import matched_filter_fwhm  # noqa: E402
from pvc_core.spect.acquisition import AcquisitionChain, NoiseSeed  # noqa: E402
from pvc_core.specs import Settings  # noqa: E402

IY_TRUTH = "iy_truth"  # the DAG's name of IY with the true-activity mask


def settings_for(config: str, matrix: int | None, voxel_mm: float | None) -> Settings:
    """The configuration's settings with the grid changed as asked (same field of view unless ``voxel_mm``)."""
    cfg = load_config(config)
    grid = dict(cfg["grid"])
    if matrix:
        fov_mm = grid["recon_matrix"] * grid["recon_voxel_mm"]
        grid.update(recon_matrix=matrix, recon_voxel_mm=voxel_mm or fov_mm / matrix)
    elif voxel_mm:
        grid["recon_voxel_mm"] = voxel_mm
    return Settings.from_config(load_config(config, {"grid": grid}))


def machine() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (f"{platform.platform()} ({platform.machine()}, {platform.processor() or 'cpu'}); "
            f"{os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads; "
            f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; Python {platform.python_version()}")


def evaluate_case(case: int, truth: np.ndarray, images: dict[str, np.ndarray], fwhm_mm: dict[str, float],
                  settings: Settings, meta: dict) -> tuple[list[dict], float]:
    """Metric rows of no PVC and IY (true mask) for every image of one case; seconds of IY."""
    vox = (settings.grid.recon_voxel_mm,) * 3
    labels = truth_labels(truth)
    rows, iy_s = [], 0.0
    for dataset, image in images.items():
        recon, _ = dataset_parts(dataset)
        t0 = time.perf_counter()
        corrected = iterative_yang(image, labels, fwhm_mm[recon], vox, iterations=settings.pvc.iy_iterations)
        iy_s += time.perf_counter() - t0
        for method, img, fwhm in ((NO_PVC, image, float("nan")), (IY_TRUTH, corrected, fwhm_mm[recon])):
            rows.append({"case": case, "dataset": dataset, "method": method, "bed_position": meta.get("bed_position"),
                         "fwhm_mm": fwhm, **compute_all(img, truth, alpha=settings.evaluation.alpha)})
    return rows, iy_s


def _fmt(mean: float, sd: float, metric: str) -> str:
    return f"{mean:.3f} ± {sd:.3f}" if metric == "ssim" else f"{mean:.2f} ± {sd:.2f}"


def print_summary(summary: pd.DataFrame, n_cases: int) -> None:
    print(f"\nTable 1 (mean ± SD over {n_cases} cases; paper: RR_n, 500 test cases; p: paired Wilcoxon vs no PVC)")
    head = f"{'dataset':8s} {'method':9s} {'':6s} " + " ".join(f"{m:>17s}" for m in ("SSIM", "NRMSE %", "VAA %", "AD %"))
    print(head)
    for _, r in summary.iterrows():
        cells = " ".join(f"{_fmt(r[f'{m}_mean'], r[f'{m}_sd'], m):>17s}" for m in METRIC_COLUMNS)
        print(f"{r.dataset:8s} {r.method:9s} {'ours':6s} {cells}")
        paper = PAPER_TABLE1.get((r.dataset, r.method))
        if paper:
            print(f"{'':8s} {'':9s} {'paper':6s} " + " ".join(
                f"{(f'{paper[m][0]:.3f}' if m == 'ssim' else f'{paper[m][0]:.2f}'):>17s}" for m in METRIC_COLUMNS))
        if r.method != NO_PVC:
            print(f"{'':8s} {'':9s} {'p':6s} " + " ".join(f"{r[f'{m}_p_vs_none']:>17.3g}" for m in METRIC_COLUMNS))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(REPO / "config/paper.yaml"))
    ap.add_argument("--n", type=int, default=10, help="number of cases (default 10)")
    ap.add_argument("--first", type=int, default=0, help="first case id (default 0)")
    ap.add_argument("--matrix", type=int, default=None, help="reconstruction matrix (default: the config's)")
    ap.add_argument("--voxel-mm", type=float, default=None,
                    help="reconstruction voxel (mm; default: the config's, or its field of view / --matrix)")
    ap.add_argument("--reconstructions", nargs="+", default=["RR"], choices=["RR", "noRR"])
    ap.add_argument("--fwhm-cases", type=int, default=None,
                    help="cases (the first ones) whose noise-free reconstruction give the matched-filter FWHM "
                         "(default: the config's resolution.calibration_cases)")
    ap.add_argument("--fwhm-mm", type=float, default=None, help="use this IY FWHM (mm) instead of measuring it")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--csv", help="write the per-case rows to this CSV file")
    args = ap.parse_args()
    if args.n < 1 or args.first < 0:
        ap.error("--n must be >= 1 and --first >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = settings_for(args.config, args.matrix, args.voxel_mm)
    grid = settings.grid
    recons = [settings.reconstructions[r] for r in args.reconstructions]
    cases = list(range(args.first, args.first + args.n))
    n_fwhm = min(args.fwhm_cases or settings.resolution.calibration_cases, len(cases))
    print(f"machine: {machine()}")
    print(f"config {args.config}: grid {grid.recon_matrix}^3 x {grid.recon_voxel_mm:g} mm (phantom x{grid.sim_factor}), "
          f"{settings.camera.n_views} views x {settings.camera.time_per_view_s:g} s, "
          + ", ".join(f"{r.name} {r.iterations}x{r.subsets}" for r in recons)
          + f"; IY {settings.pvc.iy_iterations} iterations (python); seed {settings.seed}, cases {cases[0]}..{cases[-1]}",
          flush=True)
    t_start = time.perf_counter()
    calibration = factors(calibration_for(settings, log=lambda m: print(m, flush=True)))
    t_calibration = time.perf_counter() - t_start
    print("calibration factors: " + ", ".join(f"{k} {v:.4f}" for k, v in calibration.items())
          + f" ({t_calibration:.1f} s, cached after the first run)", flush=True)

    fwhm_mm: dict[str, float] = {r.name: args.fwhm_mm for r in recons} if args.fwhm_mm else {}
    fwhm_per_case: dict[str, dict[int, float]] = {r.name: {} for r in recons}
    pending: list[tuple[int, np.ndarray, dict, dict, dict]] = []  # cases waiting for the FWHM
    rows: list[dict] = []
    times: list[dict] = []

    def finish(case, truth, images, meta, t):
        t0 = time.perf_counter()
        case_rows, t["iy"] = evaluate_case(case, truth, images, fwhm_mm, settings, meta)
        t["metrics"] = time.perf_counter() - t0 - t["iy"]
        rows.extend(case_rows)
        t["total"] = sum(t.values())
        times.append({"case": case, **t})
        for r in case_rows:
            print(f"  case {r['case']:4d} {r['bed_position'] or '':8s} {r['dataset']:8s} {r['method']:9s} "
                  f"SSIM {r['ssim']:.3f} "
                  f"NRMSE {r['nrmse_pct']:6.2f} % VAA {r['vaa_pct']:6.2f} % AD {r['ad_pct']:6.2f} %", flush=True)
        print(f"  case {case}: " + ", ".join(f"{k} {v:.1f} s" for k, v in t.items()), flush=True)

    for case in cases:
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        pc = generate_case(case, settings.seed, settings.phantom, grid)
        t["phantom"] = time.perf_counter() - t0
        result = AcquisitionChain(settings.camera, grid, tuple(recons)).acquire(
            pc.activity_mbq_ml, pc.mu_per_cm, NoiseSeed(settings.seed, case), calibration=calibration,
            noise_levels=NOISE_LEVELS)
        t["simulate"] = result.seconds["simulate"] + result.seconds.get("noise", 0.0)
        t["reconstruct"] = sum(result.seconds[f"recon {r.name}"] for r in recons)
        truth = pc.activity_recon_mbq_ml
        images = {dataset_name(r.name, n): result.images[dataset_name(r.name, n)] for r in recons for n in NOISE_LEVELS}
        if not args.fwhm_mm and len(fwhm_per_case[recons[0].name]) < n_fwhm:
            t0 = time.perf_counter()
            for r in recons:
                fwhm_per_case[r.name][case] = matched_filter_fwhm(
                    images[dataset_name(r.name, "nf")], truth, (grid.recon_voxel_mm,) * 3,
                    bracket_mm=settings.resolution.fwhm_search_mm)
            absolute = {r.name: matched_filter_fwhm(images[dataset_name(r.name, "nf")], truth, (grid.recon_voxel_mm,) * 3,
                                                    bracket_mm=settings.resolution.fwhm_search_mm, fit_scale=False)
                        for r in recons}  # reported only: the paper's resolution figures, absolute criterion
            t["fwhm"] = time.perf_counter() - t0
            print(f"case {case} ({pc.meta['bed_position']}, mean orbit radius {np.mean(result.projections['nf'].radii_mm):.0f} mm):"
                  " matched-filter FWHM free / absolute scale " + ", ".join(
                      f"{r.name} {fwhm_per_case[r.name][case]:.2f} / {absolute[r.name]:.2f} mm" for r in recons), flush=True)
            pending.append((case, truth, images, pc.meta, t))
            if len(fwhm_per_case[recons[0].name]) == n_fwhm:
                fwhm_mm = {r: float(np.mean(list(v.values()))) for r, v in fwhm_per_case.items()}
                print(f"matched-filter FWHM over cases {sorted(fwhm_per_case[recons[0].name])} (noise-free, free scale): "
                      + ", ".join(f"{r} {v:.2f} mm (paper {PAPER_FWHM_MM[r]})" for r, v in fwhm_mm.items()), flush=True)
                for item in pending:
                    finish(*item)
                pending.clear()
        else:
            finish(case, truth, images, pc.meta, t)
    t_total = time.perf_counter() - t_start

    df = pd.DataFrame(rows)
    summary = summarise(df, settings.evaluation.significance)
    print_summary(summary, len(cases))
    if args.fwhm_mm:
        print(f"IY FWHM fixed by --fwhm-mm: {args.fwhm_mm:.2f} mm")
    else:
        print(f"IY FWHM (matched filter, mean over cases {sorted(fwhm_per_case[recons[0].name])}): "
              + ", ".join(f"{r} {v:.2f} mm" for r, v in fwhm_mm.items())
              + "; paper " + ", ".join(f"{r} {PAPER_FWHM_MM[r]} mm" for r in fwhm_mm))
    tdf = pd.DataFrame(times)
    per_case = tdf.drop(columns="case").mean()
    print("wall time per case (mean): " + ", ".join(f"{k} {v:.1f} s" for k, v in per_case.items())
          + f"; total {t_total:.1f} s for {len(cases)} cases (calibration {t_calibration:.1f} s)")
    print(f"machine: {machine()}")
    if args.csv:
        df.merge(tdf[["case", "total"]].rename(columns={"total": "case_seconds"}), on="case").to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")


if __name__ == "__main__":
    main()
