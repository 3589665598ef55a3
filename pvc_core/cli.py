"""The ``dlpvc`` command: user-facing entry points (see DESIGN.md for the stable names).

Exit codes: 0 success, 2 bad input (one line on stderr naming the file and the problem).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from pvc_core.errors import InputError


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from pvc_core.io import load_image
    from pvc_core.metrics import compute_all

    image = load_image(args.image, name="image")
    truth = load_image(args.truth, allow_negative=False, name="truth")
    if image.data.shape != truth.data.shape:
        raise InputError(f"image shape {image.data.shape} differs from truth shape {truth.data.shape} ({args.truth})",
                         args.image)
    mask = None
    if args.mask:
        m = load_image(args.mask, name="mask")
        if m.data.shape != truth.data.shape:
            raise InputError(f"mask shape {m.data.shape} differs from truth shape {truth.data.shape}", args.mask)
        mask = m.data > 0
        if not mask.any():
            raise InputError("mask is empty (no voxel > 0)", args.mask)
    elif not np.any(truth.data > 0):
        raise InputError("truth has no voxel with activity > 0, so the metric mask is empty", args.truth)
    result = compute_all(image.data, truth.data, mask=mask, alpha=args.alpha)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"SSIM  {result['ssim']:.4f}\nNRMSE {result['nrmse_pct']:.2f} %\n"
              f"VAA   {result['vaa_pct']:.2f} % (alpha {args.alpha:g})\nAD    {result['ad_pct']:+.2f} %")
    return 0


def _cmd_iy(args: argparse.Namespace) -> int:
    import numpy as np

    from pvc_core.io import load_image, save_image
    from pvc_core.pvc import iterative_yang

    image = load_image(args.input, name="SPECT image")
    labels = load_image(args.labels, name="label image")
    if labels.data.shape != image.data.shape:
        raise InputError(f"label shape {labels.data.shape} differs from image shape {image.data.shape}", args.labels)
    if not np.allclose(labels.data, np.round(labels.data)) or labels.data.min() < 0:
        raise InputError("labels must be non-negative integers (0 = background region)", args.labels)
    fwhm = args.fwhm_mm[0] if len(args.fwhm_mm) == 1 else tuple(args.fwhm_mm)
    out = iterative_yang(image.data, labels.data.astype(np.int32), fwhm, image.voxel_size_mm, iterations=args.iterations)
    save_image(args.output, out, image.affine, "IY-PVC MBq/mL")
    print(f"iterative Yang: {args.iterations} iterations, FWHM {args.fwhm_mm} mm, "
          f"{len(np.unique(labels.data))} regions -> {args.output}")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pvc_core.config import load_config
    from pvc_core.user_simulation import simulate_user_phantom

    config_path = args.config or str(Path(__file__).resolve().parents[1] / "config.yaml")
    config = load_config(config_path)
    summary = simulate_user_phantom(args.activity, args.mu, args.output, config, seed=args.seed,
                                    progress=lambda m: print(f"dlpvc simulate: {m}", flush=True))
    print(f"total activity {summary['total_activity_mbq']:.2f} MBq; photopeak counts "
          f"{float(sum(summary['counts_per_view']['photopeak'])):.4g}; files in {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dlpvc", description="Deep-learning partial-volume correction for Lu-177 SPECT.")
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("evaluate", help="SSIM, NRMSE, VAA and activity deviation of an image against the truth")
    e.add_argument("--image", required=True, help="image to evaluate (NIfTI, MBq/mL)")
    e.add_argument("--truth", required=True, help="true activity (NIfTI, MBq/mL, same grid)")
    e.add_argument("--mask", help="evaluation mask (NIfTI, >0 = inside); default: truth > 0")
    e.add_argument("--alpha", type=float, default=0.05, help="VAA tolerance, relative (default 0.05)")
    e.add_argument("--json", action="store_true", help="print one JSON object (ssim, nrmse_pct, vaa_pct, ad_pct)")
    e.set_defaults(func=_cmd_evaluate)

    y = sub.add_parser("iy", help="iterative-Yang PVC (PETPVC's method) with a label image")
    y.add_argument("--input", required=True, help="SPECT image (NIfTI, MBq/mL)")
    y.add_argument("--labels", required=True, help="label image (NIfTI, integers, 0 = background region)")
    y.add_argument("--fwhm-mm", type=float, nargs="+", required=True, help="system FWHM in mm: one value or three (array axes)")
    y.add_argument("--iterations", type=int, default=10, help="iterations (default 10, as PETPVC)")
    y.add_argument("--output", required=True, help="corrected image (NIfTI)")
    y.set_defaults(func=_cmd_iy)

    s = sub.add_parser("simulate", help="Lu-177 acquisition and four reconstructions of your own phantom")
    s.add_argument("--activity", required=True, help="activity concentration (NIfTI, MBq/mL)")
    s.add_argument("--mu", required=True, help="attenuation map on the same grid (NIfTI, 1/cm at 208 keV)")
    s.add_argument("--output", required=True, help="output folder (created; must not exist or be empty)")
    s.add_argument("--config", help="configuration with grid, camera and reconstruction (default: the demo config.yaml)")
    s.add_argument("--seed", type=int, default=0, help="seed of the Poisson noise (same seed = identical files)")
    s.set_defaults(func=_cmd_simulate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "fwhm_mm", None) is not None and len(args.fwhm_mm) not in (1, 3):
        print("dlpvc: --fwhm-mm takes one value or three", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except InputError as err:
        print(f"dlpvc {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
