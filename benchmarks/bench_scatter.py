"""No-PVC activity deviation of scatter corrections ([3.3] item 1): option x chain x object set.

AD = reconstructed total / true total - 1 over the whole image (Poisson projections, the usual
cylinder calibration of each option), mean and SD over the objects of a set:

* ``bodies``: procedural bodies (``pvc_core.phantom.generate_case``, config/paper.yaml's phantom
  settings and seed on this grid, case ids 0..N-1);
* ``phantoms``: the validation phantoms (``pvc_core.validation.phantoms``: sphere, ICRP110 kidney
  with spleen, kidney-cortex shell) in their water cylinder.

Chains:

* ``ours``: :class:`pvc_core.spect.acquisition.AcquisitionChain` with config/paper.yaml's camera
  and reconstructions (RR 6x6, noRR 10x2) on ``--matrix`` x 4.8 mm; the calibration is
  :mod:`pvc_core.calibration`'s cylinder (its phantom, VOI and noise stream), reconstructed with
  each option. Options: ``tew<W>`` (TEW smoothed W mm FWHM), ``tew<W>_upper`` (the primaries
  of both scatter windows removed before TEW: each window minus its in-air ratio to the photopeak,
  measured with a point source in air through the chain, times the photopeak counts), ``model``
  (:mod:`pvc_core.spect.scatter_model`, each view scaled to its TEW total), ``model_fit`` (the
  same with the fitted amounts) and ``simulated`` (the oracle).
* ``independent``: ``benchmarks/independent_chain.py`` (PyTomography's projector and OSEM, its
  own scatter and TEW) with its own cylinder calibration. Options: ``tew<W>`` (its own OSEM and
  TEW), ``model`` (our OSEM with our model-based scatter correction, each view scaled to its TEW
  total, its parameters fitted to noise-free cylinder and rods acquisitions through the
  independent chain: ``benchmarks/independent_adapter.py``, fit cached in ``--cache``),
  ``adapter_tew<W>`` (our OSEM with TEW on the same projections: separates the OSEM from the
  scatter model) and ``adapter_simulated`` (our OSEM with the chain's expected photopeak scatter
  plus penetration as the additive term: an oracle; noise-free projections simulated again).
  Each option's calibration is the independent chain's cylinder reconstructed the same way.

Projections and finished rows are cached under ``--cache`` (rerun to resume).

    nice .venv/bin/python benchmarks/bench_scatter.py --cache results/bench_scatter --matrix 64 --bodies 8
    nice .venv/bin/python benchmarks/bench_scatter.py --cache results/bench_scatter --matrix 64 --bodies 8 \
        --chains independent --options tew20,model
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import independent_adapter as ica
import independent_chain as ic

from pvc_core.calibration import NOISE_STREAM, calibration_phantom, voi_mask
from pvc_core.config import load_config
from pvc_core.phantom import generate_case
from pvc_core.specs import Settings, phantom_specs
from pvc_core.spect.acquisition import AcquisitionChain, NoiseSeed
from pvc_core.spect.osem import reconstruct_together
from pvc_core.spect.projections import SIMULATED_SCATTER, Projections
from pvc_core.validation.phantoms import build_validation_phantom

PHANTOMS = ("sphere", "icrp110", "kidney_cortex")
OURS_OPTIONS = ("tew0", "tew5", "tew10", "tew20", "tew20_upper", "model", "model_fit", "simulated")
IC_OPTIONS = ("tew0", "tew5", "tew10", "tew20", "model", "model_fit", "adapter_tew20", "adapter_simulated")
RECONS = ("RR", "noRR")
FINE = 2
IC_SEED = 20261207


def settings(matrix: int) -> Settings:
    cfg = load_config(REPO / "config" / "paper.yaml", {"grid": {"recon_matrix": matrix, "recon_voxel_mm": 4.8,
                                                                  "sim_factor": FINE}})
    return Settings.from_config(cfg)


def cached_row(path: Path, compute, report: bool) -> dict | None:
    """The row cached at ``path``, computed (``compute()``, a dict) and written first when missing;
    None when missing under ``--report`` (which computes nothing)."""
    if not path.exists():
        if report:
            return None
        path.write_text(json.dumps(compute()))
    return json.loads(path.read_text())


def tag(option: str) -> str:
    """A cached row's fit version: the model options' rows carry the scatter-model fit's
    (:data:`pvc_core.spect.scatter_model.FIT_VERSION`; none for version 1, whose rows predate it)."""
    return ica.fit_tag() if option.startswith("model") else ""


def phantom(cache: Path, s: Settings, name: str) -> dict:
    """Activity (MBq/mL) and mu (1/cm) on the phantom grid, cached."""
    path = cache / "phantoms" / f"{name}_{s.grid.recon_matrix}.npz"
    if path.exists():
        return dict(np.load(path))
    if name.startswith("body"):
        cfg = copy.deepcopy(load_config(REPO / "config" / "paper.yaml"))
        cfg["grid"] = {"recon_matrix": s.grid.recon_matrix, "recon_voxel_mm": 4.8, "sim_factor": FINE}
        ps, grid = phantom_specs(cfg)
        pc = generate_case(int(name[4:]), int(cfg["seed"]), ps, grid)
        out = {"activity": pc.activity_mbq_ml, "mu": pc.mu_per_cm}
    elif name == "cylinder":
        act, mu, _ = calibration_phantom(s.calibration, s.grid)
        out = {"activity": act, "mu": mu}
    elif name == "point_air":
        n = s.grid.sim.matrix
        act = np.zeros((n,) * 3, np.float32)
        act[n // 2, n // 2, n // 2] = 1.0
        out = {"activity": act, "mu": np.zeros_like(act)}
    else:
        vp = build_validation_phantom(name, s.grid.sim.shape, s.grid.sim.voxel_mm)
        out = {"activity": vp.activity_mbq_ml.astype(np.float32), "mu": vp.mu_per_cm.astype(np.float32)}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **out)
    return out


def _save_proj(path: Path, p: Projections) -> None:
    np.savez_compressed(path, angles=p.angles_deg, radii=p.radii_mm, pixel=p.pixel_mm, tpv=p.time_per_view_s,
                        **{f"w_{k}": v for k, v in p.windows.items()})


def _load_proj(path: Path) -> Projections:
    z = np.load(path)
    return Projections({k[2:]: z[k] for k in z.files if k.startswith("w_")}, z["angles"], z["radii"],
                       float(z["pixel"]), float(z["tpv"]))


def ours_projections(cache: Path, s: Settings, name: str, chain: AcquisitionChain) -> tuple[Projections, float]:
    """Noisy projections (calibration cylinder: its own stream) and the true total (MBq), cached."""
    path = cache / "proj" / f"ours_{name}_{s.grid.recon_matrix}.npz"
    ph = phantom(cache, s, name)
    true_mbq = float(ph["activity"].sum(dtype=np.float64)) * s.grid.sim.voxel_ml
    if not path.exists():
        nf = chain.project(ph["activity"], ph["mu"])
        if name == "point_air":
            noisy = nf
        else:
            idx = int(name[4:]) if name.startswith("body") else 100 + (PHANTOMS.index(name) if name in PHANTOMS else 0)
            seed = NoiseSeed(s.seed, 0, NOISE_STREAM) if name == "cylinder" else NoiseSeed(s.seed, idx)
            noisy = chain.add_noise(nf, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        _save_proj(path, noisy)
    return _load_proj(path), true_mbq


def in_air_fractions(cache: Path, s: Settings, chain: AcquisitionChain) -> dict[str, float]:
    """Lower and upper window counts over photopeak counts of a point source in air (a clinic's measurement)."""
    p, _ = ours_projections(cache, s, "point_air", chain)
    t = p.total_counts()
    return {"lower": t["lower"] / t["photopeak"], "upper": t["upper"] / t["photopeak"]}


def ours_reconstruct(proj: Projections, mu: np.ndarray, s: Settings, option: str, recon: str,
                     kappa: dict[str, float]) -> np.ndarray:
    spec = s.reconstructions[recon]
    camera = s.camera
    scaling = "tew"
    if option.startswith("tew"):
        width = float(option[3:].split("_")[0])
        camera = replace(camera, tew_smoothing_fwhm_mm=width)
        spec = replace(spec, scatter_correction="tew")
        if option.endswith("_upper"):
            pk = proj.windows["photopeak"]
            proj = proj.replace_windows({**proj.windows, "lower": proj.windows["lower"] - kappa["lower"] * pk,
                                         "upper": proj.windows["upper"] - kappa["upper"] * pk})
    elif option.startswith("model"):
        spec = replace(spec, scatter_correction="model")
        scaling = "fit" if option == "model_fit" else "tew"
    else:
        spec = replace(spec, scatter_correction=option)
    params = AcquisitionChain(camera, s.grid).scatter_model(proj) if spec.scatter_correction == "model" else None
    return reconstruct_together([proj], mu, spec, camera, cache_subsets=(2, 6), model_scaling=scaling,
                                scatter_model=params)[0]


def run_ours(args, s: Settings, objects: list[str], options: list[str]) -> list[dict]:
    chain = AcquisitionChain(s.camera, s.grid, tuple(s.reconstructions[r] for r in RECONS))
    kappa = in_air_fractions(args.cache, s, chain)
    voxel_ml = s.grid.recon.voxel_ml
    cal_proj, cal_true = ours_projections(args.cache, s, "cylinder", chain)
    cal_mu = chain.mu_recon(phantom(args.cache, s, "cylinder")["mu"])
    voi = voi_mask(s.calibration, s.grid.recon)
    rows = []
    for option in options:
        for recon in RECONS:
            def calibrate(option=option, recon=recon) -> dict:
                t = time.perf_counter()
                img = ours_reconstruct(cal_proj, cal_mu, s, option, recon, kappa)
                return {"factor": float(img[voi].sum(dtype=np.float64)) * voxel_ml / cal_true,
                        "seconds": time.perf_counter() - t}

            cal = cached_row(args.cache / "rows" / f"ours_cal_{option}{tag(option)}_{recon}_{s.grid.recon_matrix}.json",
                             calibrate, args.report)
            if cal is None:
                continue
            factor = cal["factor"]
            for name in objects:
                def measure(name=name, option=option, recon=recon) -> dict:
                    proj, true_mbq = ours_projections(args.cache, s, name, chain)
                    mu = chain.mu_recon(phantom(args.cache, s, name)["mu"])
                    t = time.perf_counter()
                    img = ours_reconstruct(proj, mu, s, option, recon, kappa)
                    total = float(img.sum(dtype=np.float64)) * voxel_ml / factor
                    return {"chain": "ours", "object": name, "option": option, "recon": recon,
                            "ad_pct": 100.0 * (total / true_mbq - 1.0), "factor": factor,
                            "seconds": time.perf_counter() - t}

                row = cached_row(args.cache / "rows" / f"ours_{name}_{option}{tag(option)}_{recon}_{s.grid.recon_matrix}.json",
                                 measure, args.report)
                if row is None:
                    continue
                print(f"  ours {name} {option} {recon}: AD {row['ad_pct']:+.2f} % ({row['seconds']:.0f} s)", flush=True)
                rows.append(row)
    return rows


def ic_projections(cache: Path, s: Settings, name: str, protocol: ic.Protocol) -> tuple:
    path = cache / "proj" / f"ic_{name}_{protocol.matrix}.npz"
    ph = phantom(cache, s, name)
    vox_f = 4.8 / FINE
    true_mbq = float(ph["activity"].sum(dtype=np.float64)) * vox_f ** 3 / 1000.0
    radius = ic.orbit_radius_mm(ph["mu"], vox_f, protocol.orbit_clearance_mm)
    if not path.exists():
        proj = ic.simulate(ph["activity"], ph["mu"], vox_f, coarse_factor=FINE, protocol=protocol, radius_mm=radius)
        seed = 7 if name == "cylinder" else [IC_SEED, zlib.crc32(name.encode())]
        noisy = ic.add_noise(proj, np.random.default_rng(seed))
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, peak=noisy.peak, lower=noisy.lower, upper=noisy.upper)
    z = np.load(path)
    mu_r = ic.resample_concentration(ph["mu"], vox_f, protocol.matrix, protocol.voxel_mm)
    return ic.Projections(z["peak"], z["lower"], z["upper"]), mu_r, radius, true_mbq


def ic_expected_scatter(cache: Path, s: Settings, name: str, protocol: ic.Protocol) -> np.ndarray:
    """The independent chain's expected photopeak counts beside the primaries (scatter + septal
    penetration, noise-free; what no reconstruction's primary model holds), cached."""
    path = cache / "proj" / f"ic_{name}_{protocol.matrix}_expected_scatter.npz"
    if not path.exists():
        ph = phantom(cache, s, name)
        vox_f = 4.8 / FINE
        radius = ic.orbit_radius_mm(ph["mu"], vox_f, protocol.orbit_clearance_mm)
        proj = ic.simulate(ph["activity"], ph["mu"], vox_f, coarse_factor=FINE, protocol=protocol, radius_mm=radius)
        np.savez_compressed(path, scatter=proj.parts["scatter"] + proj.parts["penetration"])
    return np.load(path)["scatter"]


def ic_reconstruct(proj: ic.Projections, mu_r: np.ndarray, radius: float, s: Settings, protocol: ic.Protocol,
                   option: str, recon: str, factor: float = 1.0, expected: np.ndarray | None = None) -> np.ndarray:
    """The independent chain's projections reconstructed with ``option``: its own OSEM and TEW
    (``tew<W>``) or our OSEM through the adapter (``model``, ``model_fit``, ``adapter_tew<W>``, ``adapter_simulated``
    with ``expected`` as the additive term); MBq/mL / ``factor``."""
    if option.startswith("tew"):
        smooth_px = float(option[3:]) / ic.FWHM_PER_SIGMA / protocol.voxel_mm
        return ic.reconstruct(proj, mu_r, protocol, rr=recon == "RR", radius_mm=radius, calibration=factor,
                              tew_smooth_px=smooth_px)
    chain = ica.IndependentAdapterChain.build(s.camera, protocol, FINE)
    ours = ica.to_projections(proj, protocol, radius)
    if option in ("model", "model_fit"):
        img = ica.reconstruct(ours, mu_r, chain.camera, s.reconstructions[recon], "model",
                              scatter_model=ica.fitted_model(chain, IC_MODEL_CACHE[0]),
                              model_scaling="fit" if option == "model_fit" else "tew")
    elif option == "adapter_simulated":
        ours = ours.replace_windows({**ours.windows, SIMULATED_SCATTER: expected})
        img = ica.reconstruct(ours, mu_r, chain.camera, s.reconstructions[recon], "simulated")
    elif option.startswith("adapter_tew"):
        img = ica.reconstruct(ours, mu_r, chain.camera, s.reconstructions[recon], "tew",
                              tew_fwhm_mm=float(option[len("adapter_tew"):]))
    else:
        raise ValueError(f"unknown option {option!r} for the independent chain")
    return (img / np.float32(factor)).astype(np.float32)


#: Where the adapter's scatter-model fit is cached (set by :func:`run_ic` to ``--cache``).
IC_MODEL_CACHE: list = [None]


def run_ic(args, s: Settings, objects: list[str], options: list[str]) -> list[dict]:
    protocol = ic.Protocol(matrix=s.grid.recon_matrix)
    voxel_ml = protocol.voxel_mm ** 3 / 1000.0
    voi = ic.cylinder(protocol.matrix, protocol.voxel_mm, margin_mm=40.0) > 0.5
    IC_MODEL_CACHE[0] = args.cache
    if args.report and not (args.cache / "proj" / f"ic_cylinder_{protocol.matrix}.npz").exists():
        return []
    cal_proj, cal_mu, cal_radius, cal_true = ic_projections(args.cache, s, "cylinder", protocol)
    rows = []
    for option in options:
        for recon in RECONS:
            def calibrate(option=option, recon=recon) -> dict:
                expected = ic_expected_scatter(args.cache, s, "cylinder", protocol) if option == "adapter_simulated" else None
                img = ic_reconstruct(cal_proj, cal_mu, cal_radius, s, protocol, option, recon, expected=expected)
                return {"factor": float(img[voi].sum(dtype=np.float64)) * voxel_ml / cal_true}

            cal = cached_row(args.cache / "rows" / f"ic_cal_{option}{tag(option)}_{recon}_{protocol.matrix}.json",
                             calibrate, args.report)
            if cal is None:
                continue
            factor = cal["factor"]
            for name in objects:
                def measure(name=name, option=option, recon=recon) -> dict:
                    proj, mu_r, radius, true_mbq = ic_projections(args.cache, s, name, protocol)
                    t = time.perf_counter()
                    expected = ic_expected_scatter(args.cache, s, name, protocol) if option == "adapter_simulated" else None
                    img = ic_reconstruct(proj, mu_r, radius, s, protocol, option, recon, factor, expected)
                    total = float(img.sum(dtype=np.float64)) * voxel_ml
                    return {"chain": "independent", "object": name, "option": option, "recon": recon,
                            "ad_pct": 100.0 * (total / true_mbq - 1.0), "factor": factor,
                            "seconds": time.perf_counter() - t}

                row = cached_row(args.cache / "rows" / f"ic_{name}_{option}{tag(option)}_{recon}_{protocol.matrix}.json",
                                 measure, args.report)
                if row is None:
                    continue
                print(f"  ic {name} {option} {recon}: AD {row['ad_pct']:+.2f} %", flush=True)
                rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    """Markdown: one line per (chain, option), mean (SD) AD per object set and reconstruction."""
    sets = {"bodies": lambda o: o.startswith("body"), "phantoms": lambda o: o in PHANTOMS}
    lines = [("| chain | option | calibration RR / noRR | bodies RR_n | bodies noRR_n | phantoms RR_n | "
              "phantoms noRR_n | phantoms per object RR_n (sphere / icrp110 / cortex) |"), "|" + "---|" * 8]
    keys = list(dict.fromkeys((r["chain"], r["option"]) for r in rows))
    for chain, option in keys:
        sel = [r for r in rows if r["chain"] == chain and r["option"] == option]
        cells = []
        cal = {rc: next((r["factor"] for r in sel if r["recon"] == rc), float("nan")) for rc in RECONS}
        cells.append(f"{cal['RR']:.4f} / {cal['noRR']:.4f}")
        for pick in sets.values():
            for rc in RECONS:
                ad = [r["ad_pct"] for r in sel if r["recon"] == rc and pick(r["object"])]
                cells.append(f"{np.mean(ad):+.1f} ({np.std(ad, ddof=1) if len(ad) > 1 else 0:.1f}), n={len(ad)}"
                             if ad else "-")
        per = {r["object"]: r["ad_pct"] for r in sel if r["recon"] == "RR" and r["object"] in PHANTOMS}
        cells.append(" / ".join(f"{per[p]:+.1f}" if p in per else "-" for p in PHANTOMS))
        lines.append(f"| {chain} | {option} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cache", type=Path, default=REPO / "results" / "bench_scatter")
    p.add_argument("--matrix", type=int, default=64, help="reconstruction matrix at 4.8 mm")
    p.add_argument("--bodies", type=int, default=8)
    p.add_argument("--phantoms", default=",".join(PHANTOMS))
    p.add_argument("--chains", default="ours,independent")
    p.add_argument("--options", default=",".join(OURS_OPTIONS), help="ours; the independent chain runs its tew<W>, model and adapter_tew<W> ones")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--report", action="store_true", help="print the table of the cached rows only (compute nothing)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    (args.cache / "rows").mkdir(parents=True, exist_ok=True)
    s = settings(args.matrix)
    objects = [f"body{i}" for i in range(args.bodies)] + [x for x in args.phantoms.split(",") if x]
    options = [o for o in args.options.split(",") if o]
    t0 = time.perf_counter()
    rows = []
    if "ours" in args.chains:
        rows += run_ours(args, s, objects, options)
    if "independent" in args.chains:
        rows += run_ic(args, s, objects, [o for o in options if o in IC_OPTIONS])
    (args.cache / f"bench_scatter_{args.matrix}.json").write_text(json.dumps(rows, indent=1))
    print(f"\nmachine: {platform.platform()}, torch {torch.__version__}, {args.threads} thread(s); "
          f"{args.matrix}^3 x 4.8 mm, config/paper.yaml camera; {time.perf_counter() - t0:.0f} s")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
