"""RR's fitted collimator-detector response vs the simulator's: table and figure.

Usage::

    .venv/bin/python benchmarks/response_fit.py                  # config.yaml's camera, 4.8 mm pixels
    .venv/bin/python benchmarks/response_fit.py --pixel-mm 9.6 --figure /tmp/fit.png

Prints, for the camera of ``--config`` at the detector pixel ``--pixel-mm`` (default the paper's
4.8 mm), per distance from the collimator face: the FWHM of a simulated point source in air (the
simulator's core + pedestal, measured as :mod:`pvc_core.spect.response_fit` measures it; ``*``
marks the distances the model is fitted to), the fitted model's FWHM (what RR uses) and the
collimator formula's (what the simulator's core uses), in mm, then the fitted coefficients; and
writes a figure of FWHM vs distance with the relative differences.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pvc_core.config import load_config
from pvc_core.spect.collimator import FWHM_PER_SIGMA, Collimator
from pvc_core.spect.osem import rr_response
from pvc_core.spect.response_fit import FIT_DISTANCES_MM, gaussian_fwhm_mm, point_source_projections
from pvc_core.specs import CameraSpec

REPO = Path(__file__).resolve().parents[1]
#: Distances of the table: the fitted ones and some in between and beyond.
TABLE_DISTANCES_MM = (0.0, 25.0, 50.0, 75.0, 100.0, 150.0, 175.0, 200.0, 250.0, 300.0, 350.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(REPO / "config.yaml"))
    ap.add_argument("--pixel-mm", type=float, default=4.8, help="reconstruction pixel (mm); paper 4.8")
    ap.add_argument("--figure", default=str(REPO / "docs" / "response_fit.png"))
    args = ap.parse_args()

    camera = CameraSpec.from_config(load_config(args.config))
    col = Collimator.from_spec(camera.collimator)
    fitted = rr_response(camera, args.pixel_mm)
    d = np.asarray(TABLE_DISTANCES_MM)
    images = point_source_projections(col, fitted.detector_pixel_mm, d)
    simulated = np.array([np.sqrt(np.mean(np.square(gaussian_fwhm_mm(im, fitted.detector_pixel_mm)))) for im in images])
    model, formula = fitted.fwhm_mm(d), col.system_fwhm_mm(d)

    print(f"camera: {camera.collimator_name}, intrinsic {col.intrinsic_fwhm_mm} mm, pedestal {col.tail_fraction}; "
          f"reconstruction pixel {args.pixel_mm} mm, point sources measured on {fitted.detector_pixel_mm} mm pixels")
    print("| distance (mm) | simulated FWHM (mm) | fitted FWHM (mm) | formula FWHM (mm) | fitted / formula - 1 |")
    print("|---:|---:|---:|---:|---:|")
    for di, s, m, f in zip(d, simulated, model, formula):
        mark = "*" if di in FIT_DISTANCES_MM else " "
        print(f"| {di:5.0f}{mark} | {s:6.3f} | {m:6.3f} | {f:6.3f} | {100 * (m / f - 1):+.2f} % |")
    print(f"fitted sigma^2(d) = {fitted.c0_mm2:.4f} + {fitted.c1_mm:.5f} d + {fitted.c2:.7f} d^2  (mm^2, d in mm)")
    s0 = np.sqrt(fitted.c0_mm2)
    print(f"sigma(0) = {s0:.3f} mm (FWHM {FWHM_PER_SIGMA * s0:.3f} mm); formula FWHM(0) = {float(formula[0]):.3f} mm")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dd = np.linspace(0.0, 360.0, 181)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.0, 5.2), sharex=True, gridspec_kw={"height_ratios": [2.2, 1]})
    top.plot(dd, col.system_fwhm_mm(dd), "k--", lw=1.2, label="collimator formula (simulator's core)")
    top.plot(dd, fitted.fwhm_mm(dd), "C0-", lw=1.5, label="fitted model (RR)")
    fit_mask = np.isin(d, FIT_DISTANCES_MM)
    top.plot(d[fit_mask], simulated[fit_mask], "C3o", ms=5, label="simulated point source (fitted)")
    top.plot(d[~fit_mask], simulated[~fit_mask], "C3s", ms=5, mfc="none", label="simulated point source (not fitted)")
    top.set_ylabel("FWHM (mm)")
    top.set_title(f"{camera.collimator_name}: pedestal {col.tail_fraction}, {fitted.detector_pixel_mm} mm pixels", fontsize=9)
    top.legend(fontsize=8, loc="upper left")
    top.grid(alpha=0.3)
    bottom.axhline(0.0, color="k", lw=0.8, ls="--")
    bottom.plot(dd, 100 * (fitted.fwhm_mm(dd) / col.system_fwhm_mm(dd) - 1), "C0-", lw=1.5, label="fitted / formula")
    bottom.plot(d, 100 * (simulated / formula - 1), "C3o", ms=4, label="simulated / formula")
    bottom.set_xlabel("distance from the collimator face (mm)")
    bottom.set_ylabel("difference (%)")
    bottom.legend(fontsize=8)
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(args.figure)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"figure: {out}")


if __name__ == "__main__":
    main()
