"""DL-PVC's robustness on images of an independent acquisition chain ([3.3] item 3).

Test images come from ``benchmarks/independent_chain.py`` (PyTomography's projector and OSEM, our
own scatter, penetration and TEW; nothing from ``pvc_core.spect``). Rows are conditions, two or
three cases each:

* ``a_bodies``: procedural bodies (``pvc_core.phantom.generate_case``, config/paper.yaml's phantom
  settings and seed on this grid);
* ``b_validation``: hot spheres 10-37 mm (10:1 over a warm water cylinder), the two-compartment
  kidney with spleen and the kidney-cortex shell (``pvc_core.validation.phantoms``);
* ``c_patient``: patient-like uptake written here: warm liver, spleen, kidneys and body
  background with 1-30 mL lesions at 3-20x their organ;
* ``d_time_10s``: row c's phantoms at a third of the counts (10 s per view instead of 30 s);
* ``d_filter_5mm``: row c's RR images with a 5 mm FWHM Gaussian post-filter;
* ``d_voxel_3.9mm``: row c's phantoms reconstructed at 3.9 mm voxels and resampled to the model grid.

Rows past the shipped model's training domain (its card's ``trained_for``: Siemens MELP, 120 views
x 30 s, RR OSEM 6 x 6, no post-filter, 4.8 mm voxels, body-contour orbit, intrinsic 3.8 mm at
140 keV), one randomised axis each, on row c's phantoms, each calibrated with its own protocol:

* ``d_collimator_megp``: the GE MEGP collimator (3.0 mm holes, 1.05 mm septa, 58 mm long; about half
  MELP's sensitivity, so half the counts, and a narrower response far from the face) instead of
  Siemens MELP;
* ``d_intrinsic_5mm``: intrinsic resolution 5.0 mm FWHM at 140 keV (4.1 mm at 208 keV) instead of
  3.9 mm, past the project's randomised 3.5-4.4 mm;
* ``d_iter_12x6``: RR with 12 iterations x 6 subsets (72 updates) instead of 6 x 6;
* ``d_orbit_far``: a circular orbit 100 mm clear of the body instead of 30 mm (the training
  orbit follows the body contour);
* ``d_voxel_5.3mm``: reconstruction at 5.3 mm voxels, resampled to the model grid (as 3.9 mm).

The time per view (``d_time_10s``) and the post-filter (``d_filter_5mm``) are the other two axes;
the scatter correction is TEW in every row (the model was trained with the simulator's scatter).

Columns per method (no PVC / IY with the true-activity mask and a fitted FWHM / DL-PVC with the
shipped RR model through ``pvc_core.apply.correct.correct_image``, all on RR images): NRMSE, VAA,
AD, mean RC over the row's lesions or spheres or organs, and the hollow guard's flag count; and the
no-PVC AD of the chain's RR and noRR images (its calibration check).

Inputs are cached under ``--cache`` (.npz per case); a finished row is saved as JSON there and
skipped on the next run. Output: a markdown table on stdout, ``robustness.csv`` and
``robustness.json`` in ``--cache``. ``--model model.pt`` puts another model in the DL-PVC column
(same images; its rows and outputs under ``rows/<the file's sha256[:12]>/``).

    nice .venv/bin/python benchmarks/bench_robustness.py --cache results/robustness --matrix 64 --cases 2
"""

from __future__ import annotations

import argparse
import hashlib
import copy
import json
import platform
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from scipy.optimize import minimize_scalar

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import independent_chain as ic

from pvc_core.apply.correct import correct_image
from pvc_core.apply.hollow import hollow_regions
from pvc_core.apply.model import load_apply_model
from pvc_core.config import load_config
from pvc_core.io import Image, affine_from_voxel_size
from pvc_core.metrics import activity_deviation, compute_all, recovery_coefficient
from pvc_core.phantom import generate_case
from pvc_core.pvc.iterative_yang import iterative_yang
from pvc_core.pvc.masks import truth_labels
from pvc_core.validation.phantoms import build_validation_phantom

ROWS = ("a_bodies", "b_validation", "c_patient", "d_time_10s", "d_filter_5mm", "d_voxel_3.9mm",
        "d_collimator_megp", "d_intrinsic_5mm", "d_iter_12x6", "d_orbit_far", "d_voxel_5.3mm")
#: Row -> (changes to the base protocol, tag of its cached images). Rows not listed use the base
#: protocol and tag "base"; ``d_filter_5mm`` filters row c's cached images.
ROW_PROTOCOLS = {
    "d_time_10s": ({"time_per_view_s": ic.Protocol().time_per_view_s / 3.0}, "t10"),
    "d_voxel_3.9mm": ({"voxel_mm": 3.9}, "v39"),
    "d_collimator_megp": ({"collimator": "ge_megp"}, "megp"),
    "d_intrinsic_5mm": ({"intrinsic_fwhm_140kev_mm": 5.0}, "int50"),
    "d_iter_12x6": ({"rr": (12, 6)}, "rr12x6"),
    "d_orbit_far": ({"orbit_clearance_mm": 100.0}, "clr100"),
    "d_voxel_5.3mm": ({"voxel_mm": 5.3}, "v53"),
}
METHODS = ("none", "iy", "iy_regions", "dl")
#: Bumped when a row's evaluation changes: rows saved by another version are evaluated again (images stay cached).
EVALUATION_VERSION = 2
FINE = 2            # phantom grid: FINE x finer than the reconstruction grid
SEED = 20261207


# ---------------------------------------------------------------- phantoms

def _block_mean(x: np.ndarray, f: int) -> np.ndarray:
    n = x.shape[0] // f
    return x.reshape(n, f, n, f, n, f).mean(axis=(1, 3, 5)).astype(np.float32)


def _coords(n: int, voxel_mm: float):
    c = (np.arange(n) - (n - 1) / 2.0) * voxel_mm
    return np.meshgrid(c, c, c, indexing="ij")


def _ellipsoid(n, voxel_mm, centre, semi):
    x, y, z = _coords(n, voxel_mm)
    return ((x - centre[0]) / semi[0]) ** 2 + ((y - centre[1]) / semi[1]) ** 2 + ((z - centre[2]) / semi[2]) ** 2 <= 1.0


def spheres_phantom(n: int, voxel_mm: float) -> dict:
    """Six hot spheres (10-37 mm) on a 57 mm ring, 1.0 MBq/mL over 0.1 MBq/mL in a 216 x 186 mm water cylinder."""
    water = ic.cylinder(n, voxel_mm) > 0.5
    act = water * np.float32(0.1)
    regions = {}
    for k, d in enumerate((10.0, 13.0, 17.0, 22.0, 28.0, 37.0)):
        a = 2 * np.pi * k / 6
        s = _ellipsoid(n, voxel_mm, (57 * np.cos(a), 57 * np.sin(a), 0.0), (d / 2,) * 3)
        act = np.where(s, np.float32(1.0), act)
        regions[f"sphere_{d:.0f}mm"] = s
    return {"activity": act.astype(np.float32), "mu": (water * ic.MU_WATER_PER_CM).astype(np.float32),
            "regions": regions}


def validation_phantom(name: str, n: int, voxel_mm: float) -> dict:
    vp = build_validation_phantom(name, (n, n, n), voxel_mm)
    if name == "icrp110":
        regions = {"kidney": vp.compartments["icrp110_kidney_cortex"] + vp.compartments["icrp110_kidney_medulla"] > 0.5,
                   "spleen": vp.compartments["icrp110_spleen"] > 0.5}
    else:
        regions = {k: v > 0.5 for k, v in vp.compartments.items()}
    return {"activity": vp.activity_mbq_ml, "mu": vp.mu_per_cm.astype(np.float32), "regions": regions}


def patient_like(n: int, voxel_mm: float, rng: np.random.Generator) -> dict:
    """Warm organs (liver, spleen, kidneys) and body background with 3-6 lesions of 1-30 mL at
    3-20x their organ, total activity log-uniform in 300-3000 MBq (RAS: axis 0 to the patient's right)."""
    x, y, _ = _coords(n, voxel_mm)
    a, b = rng.uniform(125, 145), rng.uniform(90, 110)
    body = (x / a) ** 2 + (y / b) ** 2 <= 1.0
    mu = body * np.float32(0.14)
    lungs = [_ellipsoid(n, voxel_mm, (s * 60, 5, 110), (45, 55, 70)) & body for s in (1, -1)]
    for lung in lungs:
        mu = np.where(lung, np.float32(0.04), mu)
    j = lambda: rng.uniform(-8, 8)
    g = lambda: rng.uniform(0.85, 1.15)
    organs = {
        "liver": _ellipsoid(n, voxel_mm, (55 + j(), 5 + j(), 10 + j()), (75 * g(), 60 * g(), 55 * g())),
        "spleen": _ellipsoid(n, voxel_mm, (-80 + j(), -15 + j(), 20 + j()), (35 * g(), 30 * g(), 50 * g())),
        "kidney_r": _ellipsoid(n, voxel_mm, (65 + j(), -50 + j(), -45 + j()), (30 * g(), 25 * g(), 55 * g())),
        "kidney_l": _ellipsoid(n, voxel_mm, (-65 + j(), -50 + j(), -40 + j()), (30 * g(), 25 * g(), 55 * g())),
    }
    conc = {"background": 1.0, "liver": rng.uniform(3, 6), "spleen": rng.uniform(3, 8),
            "kidney_r": rng.uniform(6, 15)}
    conc["kidney_l"] = conc["kidney_r"] * rng.uniform(0.9, 1.1)
    act = body * np.float32(conc["background"])
    for lung in lungs:
        act = np.where(lung, np.float32(0.2), act)
    host = np.where(body, 0, -1).astype(np.int8)        # 0 background, k organ index
    names = list(organs)
    for k, name in enumerate(names, start=1):
        m = organs[name] & body
        act = np.where(m, np.float32(conc[name]), act)
        host = np.where(m, k, host)
    regions = {}
    soft = body & ~lungs[0] & ~lungs[1]
    for i in range(int(rng.integers(3, 7))):
        vol_ml = float(np.exp(rng.uniform(np.log(1.0), np.log(30.0))))
        r = (3 * vol_ml * 1000 / (4 * np.pi)) ** (1 / 3)
        where = rng.choice(["liver", "liver", "spleen", "kidney", "background"])
        if where == "kidney":
            where = str(rng.choice(["kidney_r", "kidney_l"]))
        inside = organs[where] & body if where != "background" else soft & (host == 0)
        depth = ndimage.distance_transform_edt(inside) * voxel_mm
        cand = np.argwhere(depth >= r + voxel_mm)
        if not len(cand):
            continue
        c = (cand[rng.integers(len(cand))] - (n - 1) / 2.0) * voxel_mm
        lesion = _ellipsoid(n, voxel_mm, c, (r, r, r))
        contrast = float(rng.uniform(3, 20))
        act = np.where(lesion, np.float32(conc[where] * contrast), act)
        regions[f"lesion{i}_{where}_{vol_ml:.1f}mL_x{contrast:.0f}"] = lesion
    total = float(np.exp(rng.uniform(np.log(300.0), np.log(3000.0))))
    act = act * np.float32(total / (act.sum() * voxel_mm**3 / 1000.0))
    return {"activity": act.astype(np.float32), "mu": mu.astype(np.float32), "regions": regions}


def body_phantom(case_id: int, matrix: int, voxel_mm: float) -> dict:
    """A procedural body of ``generate_case`` with config/paper.yaml's phantom settings and seed."""
    from pvc_core.specs import (
        phantom_specs,  # the settings floor is being refactored: kept in one place
    )

    cfg = copy.deepcopy(load_config(REPO / "config" / "paper.yaml"))
    cfg["grid"] = {"recon_matrix": matrix, "recon_voxel_mm": voxel_mm, "sim_factor": FINE}
    settings, grid = phantom_specs(cfg)
    pc = generate_case(case_id, int(cfg["seed"]), settings, grid)
    return {"activity": pc.activity_mbq_ml, "mu": pc.mu_per_cm, "regions": None}


# ---------------------------------------------------------------- chain, cached

def _protocol(matrix: int, **kw) -> ic.Protocol:
    return replace(ic.Protocol(matrix=matrix), **kw)


def row_protocol(row: str, matrix: int) -> tuple[ic.Protocol, str]:
    """The row's protocol (the base at ``matrix`` x 4.8 mm with the row's changes; another voxel
    size keeps the field of view) and the tag of its cached images."""
    changes, tag = ROW_PROTOCOLS.get(row, ({}, "base"))
    protocol = _protocol(matrix, **changes)
    if protocol.voxel_mm != 4.8:
        protocol = replace(protocol, matrix=round(matrix * 4.8 / protocol.voxel_mm))
    return protocol, tag


def calibration_key(protocol: ic.Protocol) -> str:
    """Cache name of a protocol's calibration: matrix, voxel, views and post-filter, then each
    field that changes the factor and differs from the default (collimator, intrinsic resolution,
    orbit clearance, iterations x subsets), so the default protocol keeps its old name. The time
    per view does not change the factor (it is per MBq per second)."""
    key = f"cal_{protocol.matrix}_{protocol.voxel_mm:g}mm_{protocol.n_views}v_{protocol.post_filter_fwhm_mm:g}pf"
    d = ic.Protocol()
    if protocol.collimator != d.collimator:
        key += f"_{protocol.collimator}"
    if protocol.intrinsic_fwhm_140kev_mm != d.intrinsic_fwhm_140kev_mm:
        key += f"_int{protocol.intrinsic_fwhm_140kev_mm:g}mm"
    if protocol.orbit_clearance_mm != d.orbit_clearance_mm:
        key += f"_clr{protocol.orbit_clearance_mm:g}mm"
    if tuple(protocol.rr) != tuple(d.rr):
        key += f"_rr{protocol.rr[0]}x{protocol.rr[1]}"
    if tuple(protocol.norr) != tuple(d.norr):
        key += f"_norr{protocol.norr[0]}x{protocol.norr[1]}"
    return key


def calibration(cache: Path, protocol: ic.Protocol) -> dict:
    path = cache / f"{calibration_key(protocol)}.json"
    if path.exists():
        return json.loads(path.read_text())
    t = time.perf_counter()
    f = ic.calibration_factors(protocol, fine_factor=FINE)
    f["seconds"] = time.perf_counter() - t
    path.write_text(json.dumps(f, indent=1))
    return f


def phantom_for(cache: Path, kind: str, index: int, matrix: int) -> dict:
    """Fine-grid phantom (activity, mu) and region masks, cached as npz."""
    path = cache / "phantoms" / f"{kind}_{index}.npz"
    if path.exists():
        z = np.load(path)
        regions = {k[4:]: z[k] for k in z.files if k.startswith("reg_")}
        return {"activity": z["activity"], "mu": z["mu"], "regions": regions or None}
    n, vox = matrix * FINE, 4.8 / FINE
    if kind == "body":
        ph = body_phantom(index, matrix, 4.8)
    elif kind == "validation":
        ph = spheres_phantom(n, vox) if index == 0 else validation_phantom(("icrp110", "kidney_cortex")[index - 1], n, vox)
    else:
        ph = patient_like(n, vox, np.random.default_rng([SEED, index]))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, activity=ph["activity"], mu=ph["mu"],
                        **{f"reg_{k}": v for k, v in (ph["regions"] or {}).items()})
    return ph


def images_for(cache: Path, kind: str, index: int, matrix: int, protocol: ic.Protocol, tag: str, cal: dict) -> dict:
    """Truth, mu and calibrated RR / noRR images on the model's 4.8 mm grid, cached as npz."""
    path = cache / "images" / f"{kind}_{index}_{tag}.npz"
    if path.exists():
        return dict(np.load(path))
    ph = phantom_for(cache, kind, index, matrix)
    vox_f = 4.8 / FINE
    radius = ic.orbit_radius_mm(ph["mu"], vox_f, protocol.orbit_clearance_mm)
    proj = ic.simulate(ph["activity"], ph["mu"], vox_f, coarse_factor=FINE, protocol=protocol, radius_mm=radius)
    seed = [SEED, index, {"body": 1, "validation": 2, "patient": 3}[kind], int(protocol.time_per_view_s),
            int(protocol.voxel_mm * 10)]
    noisy = ic.add_noise(proj, np.random.default_rng(seed))
    mu_r = ic.resample_concentration(ph["mu"], vox_f, protocol.matrix, protocol.voxel_mm)
    out = {"truth": _block_mean(ph["activity"], FINE), "mu": _block_mean(ph["mu"], FINE),
           "scatter_fraction": np.float32(proj.parts["scatter"].sum() / proj.peak.sum()),
           "orbit_radius_mm": np.float32(radius)}
    for kind_r in ("RR", "noRR"):
        img = ic.reconstruct(noisy, mu_r, protocol, rr=kind_r == "RR", radius_mm=radius, calibration=cal[kind_r])
        if protocol.voxel_mm != 4.8:
            img = ic.resample_concentration(img, protocol.voxel_mm, matrix, 4.8)
        out[kind_r] = img
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **out)
    return out


# ---------------------------------------------------------------- evaluation

def fitted_fwhm_mm(image: np.ndarray, truth: np.ndarray, voxel_mm: float = 4.8) -> float:
    """FWHM (mm) of the Gaussian that, applied to the truth and scaled, best fits the image (least squares)."""
    def cost(fwhm):
        b = ndimage.gaussian_filter(truth, fwhm / ic.FWHM_PER_SIGMA / voxel_mm, mode="constant")
        s = float((b * image).sum() / max((b * b).sum(), 1e-30))
        return float(((s * b - image) ** 2).sum())
    return float(minimize_scalar(cost, bounds=(3.0, 25.0), method="bounded", options={"xatol": 0.1}).x)


def region_masks(truth: np.ndarray, regions: dict | None) -> list[np.ndarray]:
    """Recon-grid masks of the named regions (fine masks, >= half a voxel), else the 10 largest
    connected components of the active region (procedural bodies)."""
    if regions:
        return [m for m in (_block_mean(r.astype(np.float32), FINE) >= 0.5 for r in regions.values()) if m.any()]
    lab, k = ndimage.label(truth > 0, structure=np.ones((3, 3, 3)))
    sizes = ndimage.sum_labels(np.ones_like(truth), lab, index=np.arange(1, k + 1))
    order = np.argsort(sizes)[::-1][:10]
    return [lab == i + 1 for i in order if sizes[i] >= 8]


def region_labels(truth: np.ndarray, regions: dict | None) -> np.ndarray:
    """IY's label map with one label per compartment of the phantom: the active voxels are label
    1, each named region (organ, lesion, sphere, cortex, in the phantom's order, later ones on top)
    its own label on the recon grid (voxels at least half inside); for procedural bodies each
    26-connected active component (:func:`pvc_core.pvc.truth_labels` ``split="component"``)."""
    if not regions:
        return truth_labels(truth, split="component")
    labels = (truth > 0).astype(np.int32)
    for k, mask in enumerate((_block_mean(r.astype(np.float32), FINE) >= 0.5 for r in regions.values()), start=2):
        labels[mask & (truth > 0)] = k
    return labels


def evaluate_case(img: dict, regions: dict | None, model, affine: np.ndarray) -> dict:
    truth, rr = img["truth"], img["RR"]
    fwhm = fitted_fwhm_mm(rr, truth)
    labels = (truth > 0).astype(np.int32)
    t = time.perf_counter()
    iy = iterative_yang(rr, labels, fwhm, (4.8,) * 3)
    t_iy = time.perf_counter() - t
    iy_regions = iterative_yang(rr, region_labels(truth, regions), fwhm, (4.8,) * 3)
    t = time.perf_counter()
    dl, _ = correct_image(model, Image(rr, affine))
    t_dl = time.perf_counter() - t
    masks = region_masks(truth, regions)
    res = {"fwhm_fit_mm": fwhm, "iy_s": t_iy, "dl_s": t_dl, "n_regions": len(masks),
           "scatter_fraction": float(img["scatter_fraction"]),
           "ad_noRR_pct": activity_deviation(img["noRR"], truth), "ad_RR_pct": activity_deviation(rr, truth)}
    for name, im in (("none", rr), ("iy", iy), ("iy_regions", iy_regions), ("dl", dl)):
        m = compute_all(im, truth)
        res[name] = {"nrmse_pct": m["nrmse_pct"], "vaa_pct": m["vaa_pct"], "ad_pct": m["ad_pct"],
                     "ssim": m["ssim"],
                     "rc": float(np.mean([recovery_coefficient(im, truth, r) for r in masks])) if masks else float("nan"),
                     "hollow": 0 if name == "none" else len(hollow_regions(rr, im, affine))}
    return res


def run_row(row: str, args, model, affine) -> dict:
    m = args.matrix
    base = _protocol(m)
    # d_time_10s: 10 s per view at the paper's 120 views = a third of the counts of 30 s per view
    protocol, tag = row_protocol(row, m)
    kind = {"a_bodies": "body", "b_validation": "validation"}.get(row, "patient")
    n_cases = 3 if kind == "validation" else args.cases
    t0 = time.perf_counter()
    cal = calibration(args.cache, replace(protocol, time_per_view_s=base.time_per_view_s))
    cases = []
    for i in range(n_cases):
        tc = time.perf_counter()
        img = images_for(args.cache, kind, i, m, protocol, tag, cal)
        if row == "d_filter_5mm":
            img = dict(img, RR=ic.post_filter(img["RR"], 5.0, 4.8), noRR=ic.post_filter(img["noRR"], 5.0, 4.8))
        regions = phantom_for(args.cache, kind, i, m)["regions"]
        res = evaluate_case(img, regions, model, affine)
        res.update(case=f"{kind}_{i}", seconds=time.perf_counter() - tc)
        cases.append(res)
        print(f"  {row} case {i}: {res['seconds']:.0f} s, fwhm {res['fwhm_fit_mm']:.1f} mm, "
              f"AD RR {res['ad_RR_pct']:+.1f} %, VAA none/iy/dl {res['none']['vaa_pct']:.1f}/"
              f"{res['iy']['vaa_pct']:.1f}/{res['dl']['vaa_pct']:.1f}", flush=True)
    cam = protocol.camera()
    camera = dict(asdict(cam), sensitivity_cps_per_mbq=cam.sensitivity_cps_per_mbq,
                  fwhm_100mm=float(cam.fwhm_mm(100.0)), intrinsic_fwhm_208kev_mm=float(cam.intrinsic_fwhm_mm))
    return {"row": row, "evaluation_version": EVALUATION_VERSION, "protocol": asdict(protocol), "camera": camera,
            "calibration": cal, "cases": cases,
            "seconds": time.perf_counter() - t0}


def summary(rows: list[dict]) -> list[dict]:
    out = []
    for r in rows:
        c = r["cases"]
        s = {"row": r["row"], "n": len(c), "seconds": r["seconds"],
             "ad_noRR_pct": float(np.mean([x["ad_noRR_pct"] for x in c])),
             "ad_RR_pct": float(np.mean([x["ad_RR_pct"] for x in c])),
             "fwhm_fit_mm": float(np.mean([x["fwhm_fit_mm"] for x in c]))}
        for m in METHODS:
            for key in ("nrmse_pct", "vaa_pct", "ad_pct", "rc"):
                s[f"{m}_{key}"] = float(np.mean([x[m][key] for x in c]))
            s[f"{m}_hollow"] = int(sum(x[m]["hollow"] for x in c))
        out.append(s)
    return out


def markdown(rows: list[dict]) -> str:
    head = ("| row | n | NRMSE % none / IY / IY-regions / DL | VAA % none / IY / IY-regions / DL | "
            "AD % none / IY / IY-regions / DL | RC none / IY / IY-regions / DL | hollow IY / IY-regions / DL | "
            "no-PVC AD % RR / noRR | FWHM fit mm | s |")
    lines = [head, "|" + "---|" * 10]
    for s in rows:
        def tri(k, f, s=s):
            return " / ".join(f.format(s[f"{m}_{k}"]) for m in METHODS)
        lines.append(f"| {s['row']} | {s['n']} | {tri('nrmse_pct', '{:.1f}')} | {tri('vaa_pct', '{:.1f}')} | "
                     f"{tri('ad_pct', '{:+.1f}')} | {tri('rc', '{:.3f}')} | {s['iy_hollow']} / {s['iy_regions_hollow']} / {s['dl_hollow']} | "
                     f"{s['ad_RR_pct']:+.1f} / {s['ad_noRR_pct']:+.1f} | {s['fwhm_fit_mm']:.1f} | {s['seconds']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cache", type=Path, default=REPO / "results" / "robustness")
    p.add_argument("--matrix", type=int, default=64, help="reconstruction matrix at 4.8 mm (64 or 80)")
    p.add_argument("--cases", type=int, default=2, help="cases per row (the validation row has 3)")
    p.add_argument("--rows", default=",".join(ROWS))
    p.add_argument("--model", default=None,
                   help="model.pt of the DL-PVC column (default: the shipped RR model); its rows go to rows/<sha256[:12]>/, "
                        "the images are the same")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    args.cache.mkdir(parents=True, exist_ok=True)
    rows_dir = args.cache / "rows"
    if args.model:
        rows_dir = rows_dir / hashlib.sha256(Path(args.model).read_bytes()).hexdigest()[:12]
    rows_dir.mkdir(parents=True, exist_ok=True)
    model = load_apply_model(args.model, device="cpu")
    affine = affine_from_voxel_size(4.8, (args.matrix,) * 3)
    done = []
    for row in args.rows.split(","):
        path = rows_dir / f"{row}.json"
        if path.exists() and json.loads(path.read_text()).get("evaluation_version") == EVALUATION_VERSION:
            print(f"{row}: done before ({path})", flush=True)
        else:
            print(f"{row}: running", flush=True)
            path.write_text(json.dumps(run_row(row, args, model, affine), indent=1))
        done.append(json.loads(path.read_text()))
    rows = summary(done)
    meta = {"machine": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "matrix": args.matrix, "model": args.model or "shipped", "chain": asdict(ic.Protocol(matrix=args.matrix)),
            "collimator": asdict(ic.Collimator()), "scatter": asdict(ic.ScatterModel()),
            "sensitivity_cps_per_mbq": ic.Collimator().sensitivity_cps_per_mbq,
            "collimator_presets": {k: dict(asdict(c), sensitivity_cps_per_mbq=c.sensitivity_cps_per_mbq)
                                   for k, c in ic.COLLIMATORS.items()}}
    out_dir = rows_dir if args.model else args.cache
    (out_dir / "robustness.json").write_text(json.dumps({"meta": meta, "summary": rows, "rows": done}, indent=1))
    keys = list(rows[0])
    with open(out_dir / "robustness.csv", "w") as f:
        f.write(",".join(keys) + "\n")
        f.writelines(",".join(f"{s[k]:.4g}" if isinstance(s[k], float) else str(s[k]) for k in keys) + "\n" for s in rows)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
