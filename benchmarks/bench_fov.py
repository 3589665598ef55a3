"""Field-of-view dependence of DL-PVC with the shipped model, before and after pvc_core.apply.fov.

Usage::

    .venv/bin/python benchmarks/bench_fov.py                     # (a) and (b), 8 paper-protocol cases
    .venv/bin/python benchmarks/bench_fov.py --n 2 --skip-padding
    .venv/bin/python benchmarks/bench_fov.py --cache /tmp/fov    # keep / reuse the simulated cases

(a) **Zero padding.** A blurred body (the true activity of case ``--body-case`` of
config/shipped.yaml on its 80^3 x 4.8 mm grid, Gaussian of ``--fwhm-mm``) stored in 80^3, 128^3
and 160^3 (zero-padded, centred) and corrected three ways: today's whole-image ``predict_image``;
the same with every instance norm's statistics frozen at those of the 80^3 run (which factor:
if that removes the difference, the statistics over the empty space are the cause; the image's
max and total, the input normalisation's only inputs, are the same in all three); and
``predict_fov_invariant`` (window = the card's ``trained_for.matrix``). Prints the largest
relative difference of region means (26-connected components of the truth; all, and those of
>= 20 voxels) from the 80^3 result, and the image's max / total.

(b) **Paper-protocol cases.** ``--n`` cases (ids ``--first``..) of config/paper.yaml: 128^3 x
4.8 mm, 120 views x 30 s, OSEM RR 6x6 with the oracle ('simulated') scatter correction, Poisson
noise (RR_n: the shipped model's own chain), simulated with ``generate_case`` +
the acquisition chain as benchmarks/table1_baseline.py does. VAA (``pvc_core.metrics.compute_all``, mask
truth > 0, the config's alpha) of no PVC, today's whole-image correction and the fov-invariant
one, each over the whole image and over the central 80^3 block (there also: the block corrected
on its own); the ratio of the mean VAA to no PVC's; the seconds per 128^3 image of both.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pvc_core.apply.fov import predict_fov_invariant, window_alignment, window_layout  # noqa: E402
from pvc_core.apply.model import SHIPPED_MODEL_DIR  # noqa: E402
from pvc_core.config import load_config  # noqa: E402
from pvc_core.metrics import compute_all  # noqa: E402
from pvc_core.phantom import generate_case  # noqa: E402
from pvc_core.pvc import truth_labels  # noqa: E402
from pvc_core.specs import Settings  # noqa: E402
from pvc_core.training.predict import load_model, predict_image  # noqa: E402

MODEL_DIR = SHIPPED_MODEL_DIR
BLOCK = 80
MIN_REGION_VOXELS = 20


@contextlib.contextmanager
def frozen_instance_norm(module: nn.Module):
    """Yields ``mode``: set ``mode['m']`` to 'record' to keep every InstanceNorm3d's per-channel
    mean and variance of the next forward pass, to 'replay' to normalise with them instead of the
    current input's, 'off' for the normal behaviour."""
    norms = [m for m in module.modules() if isinstance(m, nn.InstanceNorm3d)]
    mode, stats = {"m": "off"}, {}

    def make(i, norm):
        def forward(x):
            if mode["m"] == "record":
                stats[i] = (x.mean(dim=(2, 3, 4), keepdim=True), x.var(dim=(2, 3, 4), unbiased=False, keepdim=True))
            if mode["m"] == "replay":
                mu, var = stats[i]
                return (x - mu) / torch.sqrt(var + norm.eps)
            return F.instance_norm(x, eps=norm.eps)
        return forward

    for i, norm in enumerate(norms):
        assert not norm.affine and not norm.track_running_stats
        norm.forward = make(i, norm)
    try:
        yield mode
    finally:
        for norm in norms:
            del norm.forward


def centred(a: np.ndarray, n: int) -> tuple[np.ndarray, tuple[slice, ...]]:
    out = np.zeros((n,) * 3, np.float32)
    sl = tuple(slice((n - s) // 2, (n - s) // 2 + s) for s in a.shape)
    out[sl] = a
    return out, sl


def padding_test(module, cfg, window, fwhm_mm: float, body_case: int) -> dict:
    s = Settings.from_config(load_config(REPO / "config" / "shipped.yaml"))
    pc = generate_case(body_case, s.seed, s.phantom, s.grid)
    truth = pc.activity_recon_mbq_ml
    body = ndimage.gaussian_filter(truth.astype(np.float64), fwhm_mm / s.grid.recon_voxel_mm / 2.3548).astype(np.float32)
    body[body < 1e-6 * body.max()] = 0
    lab = truth_labels(truth, split="component")
    sizes = np.bincount(lab.ravel())[1:]
    ids_all = np.arange(1, lab.max() + 1)
    ids_big = ids_all[sizes >= MIN_REGION_VOXELS]
    print(f"\n(a) zero padding: true activity of config/shipped.yaml case {body_case} ({pc.meta['bed_position']}), "
          f"{truth.shape[0]}^3 x {s.grid.recon_voxel_mm} mm, Gaussian FWHM {fwhm_mm} mm; {len(ids_all)} regions, "
          f"{len(ids_big)} of >= {MIN_REGION_VOXELS} voxels; window {window}", flush=True)
    methods = {
        "predict_image (today)": lambda x: predict_image(module, cfg, x, "cpu"),
        "predict_image, IN stats frozen at the 80^3 run": None,
        "predict_fov_invariant": lambda x: predict_fov_invariant(module, cfg, x, window, "cpu"),
    }
    fovs = (truth.shape[0], 128, 160)
    out = {}
    with frozen_instance_norm(module) as mode:
        mode["m"] = "record"
        predict_image(module, cfg, body, "cpu")
        mode["m"] = "off"

        def frozen(x):
            mode["m"] = "replay"
            try:
                return predict_image(module, cfg, x, "cpu")
            finally:
                mode["m"] = "off"

        methods["predict_image, IN stats frozen at the 80^3 run"] = frozen
        for name, fn in methods.items():
            means, secs = {}, {}
            for n in fovs:
                x, sl = centred(body, n)
                t0 = time.perf_counter()
                y = fn(x)
                secs[n] = time.perf_counter() - t0
                if n == fovs[0]:
                    info = f"max {x.max():.4g}, total {x.sum(dtype=np.float64):.6g}"
                means[n] = ndimage.mean(y[sl], lab, ids_all)
                assert np.isclose(y.sum(dtype=np.float64), x.sum(dtype=np.float64), rtol=1e-5)
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = {n: np.abs(means[n] / means[fovs[0]] - 1) for n in fovs[1:]}
            big = ids_big - 1
            worst_all = max(float(np.nanmax(np.where(means[fovs[0]] > 0, r, np.nan))) for r in rel.values())
            worst_big = max(float(np.nanmax(r[big])) for r in rel.values())
            per = ", ".join(f"{n}^3 {100 * np.nanmax(rel[n][big]):.2f} %" for n in fovs[1:])
            print(f"  {name:48s}: regions >= {MIN_REGION_VOXELS} vox: worst {100 * worst_big:6.2f} % ({per}); "
                  f"all regions {100 * worst_all:6.2f} %; s " + "/".join(f"{secs[n]:.1f}" for n in fovs), flush=True)
            out[name] = {"worst_big_pct": 100 * worst_big, "worst_all_pct": 100 * worst_all,
                         "seconds": {str(n): secs[n] for n in fovs}}
    print(f"  the image in every field of view: {info} (padding changes neither: the input normalisation is not the cause)")
    return out


def paper_case(case: int, settings: Settings, calibration, cache: Path | None) -> tuple[np.ndarray, np.ndarray, str]:
    from pvc_core.spect.acquisition import AcquisitionChain, NoiseSeed

    path = cache / f"paper_{case}.npz" if cache else None
    if path and path.is_file():
        d = np.load(path)
        return d["img"], d["truth"], str(d["bed"]) if "bed" in d else "?"
    pc = generate_case(case, settings.seed, settings.phantom, settings.grid)
    chain = AcquisitionChain(settings.camera, settings.grid, (settings.reconstructions["RR"],))
    r = chain.acquire(pc.activity_mbq_ml, pc.mu_per_cm, NoiseSeed(settings.seed, case), calibration=calibration,
                      noise_levels=("n",))
    img, truth = r.images["RR_n"], pc.activity_recon_mbq_ml
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, img=img, truth=truth, mu=pc.mu_recon_per_cm, bed=pc.meta["bed_position"])
    return img, truth, pc.meta["bed_position"]


def paper_cases(module, cfg, window, n: int, first: int, cache: Path | None) -> list[dict]:
    from pvc_core.calibration import factors
    from pvc_core.pipeline.calibration_stage import calibration_for

    settings = Settings.from_config(load_config(REPO / "config" / "paper.yaml"))
    g = settings.grid
    rr = settings.reconstructions["RR"]
    print(f"\n(b) paper protocol: config/paper.yaml cases {first}..{first + n - 1}, {g.recon_matrix}^3 x {g.recon_voxel_mm} mm, "
          f"{settings.camera.n_views} views x {settings.camera.time_per_view_s:g} s, RR {rr.iterations}x{rr.subsets} "
          f"scatter '{rr.scatter_correction}', Poisson noise; VAA alpha {settings.evaluation.alpha}", flush=True)
    calibration = factors(calibration_for(settings, log=lambda m: print("  " + m, flush=True)))
    alpha = settings.evaluation.alpha
    rows = []
    for case in range(first, first + n):
        t0 = time.perf_counter()
        img, truth, bed = paper_case(case, settings, calibration, cache)
        t_sim = time.perf_counter() - t0
        vaa = lambda y, tr=truth: compute_all(y, tr, alpha=alpha)["vaa_pct"]  # noqa: E731
        t0 = time.perf_counter()
        y_whole = predict_image(module, cfg, img, "cpu")
        t_whole = time.perf_counter() - t0
        t0 = time.perf_counter()
        y_fov = predict_fov_invariant(module, cfg, img, window, "cpu")
        t_fov = time.perf_counter() - t0
        c = (img.shape[0] - BLOCK) // 2
        b = (slice(c, c + BLOCK),) * 3
        y_block = predict_image(module, cfg, img[b], "cpu")
        y_block_fov = predict_fov_invariant(module, cfg, img[b], window, "cpu")
        row = {"case": case, "bed": bed, "windows": len(window_layout(img, window, align=window_alignment(cfg))),
               "block_activity_frac": float(img[b].sum() / img.sum()),
               "vaa_none": vaa(img), "vaa_whole": vaa(y_whole), "vaa_fov": vaa(y_fov),
               "blk_none": vaa(img[b], truth[b]), "blk_alone": vaa(y_block, truth[b]),
               "blk_whole": vaa(y_whole[b], truth[b]), "blk_fov": vaa(y_fov[b], truth[b]),
               "blk_alone_fov": vaa(y_block_fov, truth[b]),
               "ad_fov_pct": compute_all(y_fov, truth, alpha=alpha)["ad_pct"],
               "ad_none_pct": compute_all(img, truth, alpha=alpha)["ad_pct"],
               "s_sim": t_sim, "s_whole": t_whole, "s_fov": t_fov}
        rows.append(row)
        print(f"  case {case:3d} {bed:8s} windows {row['windows']} block holds {100 * row['block_activity_frac']:.1f} %: "
              f"VAA image none {row['vaa_none']:5.1f} whole {row['vaa_whole']:5.1f} fov {row['vaa_fov']:5.1f} | "
              f"central 80^3 none {row['blk_none']:5.1f} alone {row['blk_alone']:5.1f} whole {row['blk_whole']:5.1f} "
              f"fov {row['blk_fov']:5.1f} (block alone, fov {row['blk_alone_fov']:5.1f}) | s sim {t_sim:.0f} "
              f"whole {t_whole:.1f} fov {t_fov:.1f}", flush=True)
    return rows


def summary(rows: list[dict]) -> dict:
    m = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k not in ("case", "bed")}
    print(f"\nmean over {len(rows)} cases (ratio = mean VAA / mean no-PVC VAA; mean of per-case ratios in brackets):")
    for label, key, none in (("whole image", "vaa", "vaa_none"), ("central 80^3", "blk", "blk_none")):
        methods = ("whole", "fov") if key == "vaa" else ("alone", "whole", "fov", "alone_fov")
        parts = [f"none {m[none]:.1f} %"]
        for meth in methods:
            k = f"{key}_{meth}"
            per_case = np.mean([r[k] / r[none] for r in rows if r[none] > 0])
            parts.append(f"{meth} {m[k]:.1f} % = {m[k] / m[none]:.2f}x ({per_case:.2f}x)")
        print(f"  {label:13s}: " + "; ".join(parts))
    print(f"  AD: none {m['ad_none_pct']:.2f} %, fov {m['ad_fov_pct']:.2f} % (total conserved)")
    print(f"  seconds per 128^3 image: whole-image predict_image {m['s_whole']:.2f}, predict_fov_invariant {m['s_fov']:.2f} "
          f"({m['s_fov'] / m['s_whole']:.2f}x)")
    return m


def worst_case_timing(module, cfg, window, n: int = 128) -> None:
    """A 128^3 image with activity everywhere: the most windows (2 per axis) against one whole pass."""
    rng = np.random.default_rng(0)
    x = ndimage.gaussian_filter(rng.random((n,) * 3), 2).astype(np.float32)
    t0 = time.perf_counter()
    predict_image(module, cfg, x, "cpu")
    t1 = time.perf_counter() - t0
    t0 = time.perf_counter()
    predict_fov_invariant(module, cfg, x, window, "cpu")
    t2 = time.perf_counter() - t0
    print(f"\nworst case, activity filling {n}^3 ({len(window_layout(x, window, align=window_alignment(cfg)))} windows): "
          f"predict_image {t1:.2f} s, predict_fov_invariant {t2:.2f} s ({t2 / t1:.2f}x)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--fwhm-mm", type=float, default=9.0, help="blur of the zero-padding body (mm)")
    ap.add_argument("--body-case", type=int, default=3, help="config/shipped.yaml case of the zero-padding body")
    ap.add_argument("--cache", type=Path, default=None, help="folder keeping the simulated paper cases (npz)")
    ap.add_argument("--skip-padding", action="store_true")
    ap.add_argument("--skip-cases", action="store_true")
    ap.add_argument("--json", type=Path, help="write every number to this JSON file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    module, cfg = load_model(MODEL_DIR / "model.pt", "cpu")
    card = json.loads((MODEL_DIR / "model_card.json").read_text())
    window = tuple(card["trained_for"]["matrix"])
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__} x {torch.get_num_threads()} "
          f"threads; model {MODEL_DIR.name}: {cfg['architecture']} {cfg['channels']}, trained_for.matrix {list(window)}")
    result: dict = {}
    if not args.skip_padding:
        result["padding"] = padding_test(module, cfg, window, args.fwhm_mm, args.body_case)
        worst_case_timing(module, cfg, window)
    if not args.skip_cases:
        rows = paper_cases(module, cfg, window, args.n, args.first, args.cache)
        result["cases"] = rows
        result["mean"] = summary(rows)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
