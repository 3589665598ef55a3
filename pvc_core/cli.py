"""The ``dlpvc`` command: user-facing entry points (see DESIGN.md for the stable names).

Exit codes, for every command: 0 done (warnings and notes, one line each, go to stderr); 2 the
call or its input was refused: one line on stderr, ``dlpvc <command>: <file or option>:
<problem>``, nothing written for it; 1 we failed (an I/O error such as a full disk, or a fault of
dlpvc: one line, never a traceback; ``DLPVC_DEBUG=1`` shows it); 130 / 143 interrupted by SIGINT /
SIGTERM, temporaries removed. ``dlpvc apply`` corrects a batch input by input and exits 1 if any
failed, else 2 if any was refused, else 0 (:mod:`pvc_core.apply.batch`). ``python -m pvc_core`` is
the same command.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import Sequence

from pvc_core import __version__
from pvc_core.apply.exit_codes import EXIT_CODES
from pvc_core.domain import RECONSTRUCTIONS
from pvc_core.errors import InputError


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line: ``dlpvc <command>: <option>: <problem>``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        message = re.sub(r"^argument ([^:]+): ", r"\1: ", " ".join(message.split()))
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _number(text: str, kind: type, what: str) -> float | int:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{what}, got {text!r}")
    return value


#: Larger FWHMs (mm) are typing errors: no SPECT field of view is this wide.
_MAX_FWHM_MM = 1000.0

#: More iterations are typing errors (PETPVC's default is 10; IY converges in tens).
_MAX_ITERATIONS = 10000


def _fwhm_mm(text: str) -> float:
    what = f"must be a FWHM in mm, >= 0 and at most {_MAX_FWHM_MM:g}"
    value = _number(text, float, what)
    if not 0 <= value <= _MAX_FWHM_MM:
        raise argparse.ArgumentTypeError(f"{what}, got {text!r}")
    return value


def _iterations(text: str) -> int:
    what = f"must be a whole number of iterations from 1 to {_MAX_ITERATIONS}"
    value = _number(text, int, what)
    if not 1 <= value <= _MAX_ITERATIONS:
        raise argparse.ArgumentTypeError(f"{what}, got {text!r}")
    return value


def _seed(text: str) -> int:
    value = _number(text, int, "must be a whole number >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return value


def _alpha(text: str) -> float:
    value = _number(text, float, "must be a relative tolerance in (0, 1)")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a relative tolerance in (0, 1) (0.05 = 5 %), got {text!r}")
    return value


class _Stderr:
    """One-line warnings and notes of a command on stderr (``dlpvc <command>: ...``)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def note(self, text: str) -> None:
        print(f"dlpvc {self.command}: note: {text}", file=sys.stderr, flush=True)

    def warning(self, text: str) -> None:
        print(f"dlpvc {self.command}: WARNING: {text}", file=sys.stderr, flush=True)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    # lazy: io and metrics (numpy, nibabel, pydicom, scikit-image: ~0.5 s) stay out of dlpvc --help
    from pvc_core.io import load_image, require_same_grid
    from pvc_core.metrics import compute_all

    say = _Stderr("evaluate")
    image = load_image(args.image, name="image", clip_tiny_negatives=True, note=say.note)
    truth = load_image(args.truth, allow_negative=False, name="truth", clip_tiny_negatives=True, note=say.note)
    require_same_grid(image, args.image, truth, args.truth)
    mask = None
    if args.mask:
        m = load_image(args.mask, name="mask")
        require_same_grid(m, args.mask, truth, args.truth)
        mask = m.data > 0
        if not mask.any():
            raise InputError("mask is empty (no voxel > 0)", args.mask)
    elif not (truth.data > 0).any():
        raise InputError("truth has no voxel with activity > 0, so the metric mask is empty", args.truth)
    try:
        result = compute_all(image.data, truth.data, mask=mask, alpha=args.alpha)
    except InputError as err:
        raise InputError(err.problem, err.source or args.truth) from None
    if args.json:
        print(json.dumps(result))
    else:
        print(f"SSIM  {result['ssim']:.4f}\nNRMSE {result['nrmse_pct']:.2f} %\n"
              f"VAA   {result['vaa_pct']:.2f} % (alpha {args.alpha:g})\nAD    {result['ad_pct']:+.2f} %")
    return 0


def _cmd_iy(args: argparse.Namespace) -> int:
    # lazy: numpy, io and the PVC methods (nibabel, torch: ~2 s) stay out of dlpvc --help
    import numpy as np

    from pvc_core.io import load_image, load_labels, require_nifti_output, require_same_grid, save_image
    from pvc_core.pvc import iterative_yang

    say = _Stderr("iy")
    if len(args.fwhm_mm) not in (1, 3):
        raise InputError(f"takes one value or three (array axes 0, 1, 2), got {len(args.fwhm_mm)}", "--fwhm-mm")
    output = require_nifti_output(args.output, "--output", inputs=(args.input, args.labels))
    if output.exists() and not args.overwrite:
        raise InputError(f"{output} exists; give --overwrite to replace it", "--output")
    image = load_image(args.input, name="SPECT image", clip_tiny_negatives=True, note=say.note)
    if not float(image.data.max()) > 0:
        raise InputError("holds no positive value (all zero or negative): not an activity image", args.input)
    labels = load_labels(args.labels, name="label image")
    require_same_grid(labels, args.labels, image, args.input)
    values = np.unique(labels.data)
    if values.size == 1 and values[0] == 0:
        say.warning(f"{args.labels}: the label image holds only the background (0), so IY sees one region "
                    "and makes no correction (the output equals the input); check the label file")
    zero_axes = [i for i, f in enumerate(np.broadcast_to(args.fwhm_mm, (3,))) if f == 0]
    if len(zero_axes) == 3:
        say.warning("--fwhm-mm 0: a FWHM of 0 mm is no blur, so IY makes no correction (the output equals the input)")
    elif zero_axes:
        say.warning(f"--fwhm-mm: FWHM 0 mm along array axes {zero_axes} means no correction along them")
    fwhm = args.fwhm_mm[0] if len(args.fwhm_mm) == 1 else tuple(args.fwhm_mm)
    out = iterative_yang(image.data, labels.data, fwhm, image.voxel_size_mm, iterations=args.iterations)
    save_image(output, out, image.affine, "IY-PVC MBq/mL", replace=args.overwrite)
    regions = _regions_text(values)
    fwhm_text = " x ".join(f"{f:g}" for f in args.fwhm_mm)
    print(f"iterative Yang: {args.iterations} iterations, FWHM {fwhm_text} mm, {regions} -> {output}")
    return 0


def _regions_text(values) -> str:
    """``"3 regions (background 0 and 2 labels)"`` for the distinct label values ``values`` (sorted)."""
    n = len(values)
    text = f"{n} region" + ("s" if n != 1 else "")
    if values[0] != 0:
        return text
    n_labels = n - 1
    if n_labels == 0:
        return text + " (background 0 only)"
    return text + f" (background 0 and {n_labels} label" + ("s" if n_labels != 1 else "") + ")"


def _cmd_simulate(args: argparse.Namespace) -> int:
    # lazy: the configuration, io and the simulation (schema, nibabel, scipy: ~0.8 s) stay out of dlpvc --help
    from pvc_core.config import DEMO_CONFIG_PATH, load_config
    from pvc_core.io import require_output_folder
    from pvc_core.specs import Settings
    from pvc_core.user_simulation import simulate_user_phantom

    require_output_folder(args.output, "--output")
    for option, path in (("--activity", args.activity), ("--mu", args.mu)):
        if not Path(path).is_file():
            raise InputError(f"{path}: file not found" if not Path(path).exists() else f"{path}: not a file", option)
    config_path = args.config or DEMO_CONFIG_PATH
    settings = Settings.from_config(load_config(config_path))
    summary = simulate_user_phantom(args.activity, args.mu, args.output, settings, seed=args.seed,
                                    progress=lambda m: print(f"dlpvc simulate: {m}", flush=True))
    print(f"total activity {summary['total_activity_mbq']:.2f} MBq; photopeak counts "
          f"{float(sum(summary['counts_per_view']['photopeak'])):.4g}; files in {args.output}")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    # lazy: the configuration and the pipeline's plan (schema, nibabel, scipy: ~0.8 s) stay out of dlpvc --help
    from dataclasses import replace

    from pvc_core.config import load_config
    from pvc_core.pipeline.plan import plan_lines
    from pvc_core.specs import Settings

    directory = Path(args.directory)
    if not directory.is_dir():
        raise InputError(f"{args.directory}: not a folder", "--directory")
    settings = Settings.from_config(load_config(args.configfile))
    results = settings.results_dir if os.path.isabs(settings.results_dir) else str(directory / settings.results_dir)
    for line in plan_lines(replace(settings, results_dir=results)):
        print(line)
    return 0


def _cmd_apply(args: argparse.Namespace) -> int:
    from pvc_core.apply.batch import ApplyOptions, run_apply  # lazy: numpy, nibabel (~0.4 s) not for --help

    return run_apply(ApplyOptions(inputs=args.input, outputs=args.output, cts=args.ct, model=args.model,
                                  device=args.device, reconstruction=args.reconstruction, strict=args.strict,
                                  overwrite=args.overwrite, skip_existing=args.skip_existing, summary=args.summary,
                                  uncertainty=args.uncertainty, labels=args.labels))


def _cmd_models(args: argparse.Namespace) -> int:
    # lazy: the models' registry and cards (numpy, nibabel, pydicom: ~0.4 s) stay out of dlpvc --help
    from pvc_core.apply.domain import describe_domain
    from pvc_core.apply.model import (MODEL_DIR_ENV, MODELS_DIR, find_model, load_apply_model, models_dir, registry,
                                      shipped_models)

    if args.model is not None:
        ref = find_model(args.model, None)
        load_apply_model(ref, "cpu")  # refuses a file that is not a dlpvc model (exit 2)
        refs = [ref]
    else:
        refs = shipped_models()
    defaults = {v: k for k, v in registry().items()}
    if args.json:
        print(json.dumps([{"name": r.name, "path": str(r.path), "sha256": r.sha256,
                           "default_for": defaults.get(r.name), "domain": r.domain,
                           "test_metrics": (r.card or {}).get("test_metrics")} for r in refs], indent=2))
        return 0
    for ref in refs:
        default = f", the default for {defaults[ref.name]} reconstructions" if ref.name in defaults else ""
        print(f"{ref.name} ({ref.path}{default})")
        for line in describe_domain(ref.domain):
            print(f"  {line}")
        metrics = (ref.card or {}).get("test_metrics") or {}
        if metrics.get("vaa_ratio_to_no_pvc"):
            dl = metrics["methods"]["dl_pvc"]
            print(f"  test ({metrics.get('n_cases')} cases of {metrics.get('dataset')}): VAA {dl['vaa_pct_mean']:.1f} % "
                  f"= {metrics['vaa_ratio_to_no_pvc']:.2f} x no PVC, NRMSE {dl['nrmse_pct_mean']:.2f} %")
    if not refs:
        folder = models_dir()
        where = "installed" if folder == MODELS_DIR else f"in {MODEL_DIR_ENV}={folder}"
        print(f"no models {where}; give --model to apply")
    return 0


def version() -> str:
    """The installed ``dlpvc`` version (package metadata), else ``pvc_core.__version__``."""
    try:
        return _dist_version("dlpvc")
    except PackageNotFoundError:
        return __version__


_APPLY_DESCRIPTION = """\
Correct SPECT images with a trained DL-PVC network: NIfTI in MBq/mL or DICOM NM/PT in Bq/mL, each
written with the input's geometry, its total activity kept, and a JSON sidecar (model, domain
check, warnings; research use only, not for diagnosis).

Nothing is ever overwritten or lost: every output and sidecar is checked against every input, the
inputs' sidecars, the other outputs and the existing files before anything loads; an existing
output is replaced only with --overwrite (never an input), and a file is written whole or not at
all. An input outside the model's domain (reconstruction, voxel size, activity ...) is corrected
with a warning, or refused with --strict; physically impossible input (units off by 1e3/1e6,
voxel size in metres, fewer than 16 voxels along an axis) is refused."""


def _apply_epilog() -> str:
    codes = "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())
    return f"""examples:
  one NIfTI image (MBq/mL), reconstructed with resolution recovery:
    dlpvc apply --input spect.nii.gz --output spect_dlpvc.nii.gz --reconstruction RR
  a folder of NIfTI files and DICOM series folders, resumable, with a summary:
    dlpvc apply --input patients/ --output corrected/ --skip-existing --summary corrected.jsonl
  a DICOM series with its CT, for a model trained with the CT channel:
    dlpvc apply --input study/spect/ --output study/spect_dlpvc/ --ct study/ct/ --model my_model/model.pt

exit codes:
{codes}"""


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dlpvc", description="Deep-learning partial-volume correction for Lu-177 SPECT.")
    p.add_argument("--version", action="version", version=f"dlpvc {version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    e = sub.add_parser("evaluate", help="SSIM, NRMSE, VAA and activity deviation of an image against the truth")
    e.add_argument("--image", required=True, help="image to evaluate (NIfTI, MBq/mL)")
    e.add_argument("--truth", required=True, help="true activity (NIfTI, MBq/mL, same grid)")
    e.add_argument("--mask", help="evaluation mask (NIfTI, >0 = inside, same grid); default: truth > 0")
    e.add_argument("--alpha", type=_alpha, default=0.05, help="VAA tolerance, relative, in (0, 1) (default 0.05)")
    e.add_argument("--json", action="store_true", help="print one JSON object (ssim, nrmse_pct, vaa_pct, ad_pct)")
    e.set_defaults(func=_cmd_evaluate)

    y = sub.add_parser("iy", help="iterative-Yang PVC (PETPVC's method) with a label image")
    y.add_argument("--input", required=True, help="SPECT image (NIfTI, MBq/mL)")
    y.add_argument("--labels", required=True, help="label image (NIfTI, integers >= 0, 0 = background region, same grid)")
    y.add_argument("--fwhm-mm", type=_fwhm_mm, nargs="+", required=True,
                   help="system FWHM in mm (0 to 1000; 0 = no correction): one value or three (array axes)")
    y.add_argument("--iterations", type=_iterations, default=10, help="iterations, 1 to 10000 (default 10, as PETPVC)")
    y.add_argument("--output", required=True, help="corrected image (NIfTI: .nii.gz or .nii, in an existing folder)")
    y.add_argument("--overwrite", action="store_true", help="replace an existing output (never an input)")
    y.set_defaults(func=_cmd_iy)

    ap = sub.add_parser("apply", help="DL-PVC of your SPECT image(s) (NIfTI in MBq/mL, or DICOM NM/PT in Bq/mL)",
                        description=_APPLY_DESCRIPTION, epilog=_apply_epilog(),
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", action="append", required=True,
                    help="SPECT: NIfTI file (MBq/mL), DICOM file or series folder; repeat for several, or one folder of "
                         "NIfTI files and DICOM series folders")
    ap.add_argument("--output", action="append", required=True,
                    help="corrected image: *.nii.gz / *.nii, or a new folder for a DICOM series (DICOM input); one per "
                         "--input (an output folder for a folder of inputs); a JSON sidecar is written beside it")
    ap.add_argument("--model", help="a dlpvc model.pt (its model_card.json beside it); default: the shipped model "
                                    "for the reconstruction kind (see dlpvc models), or $DLPVC_MODEL_DIR's when set")
    ap.add_argument("--ct", action="append",
                    help="CT in HU (NIfTI or DICOM series, any grid) for a model that takes the CT channel; one per --input")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                    help="where the network runs (default auto: the GPU when torch sees one)")
    ap.add_argument("--reconstruction", choices=list(RECONSTRUCTIONS),
                    help="how the input was reconstructed: RR (OSEM with resolution recovery) or noRR; picks the "
                         "model and is checked against its domain (default: what the input's sidecar or DICOM "
                         "header says, else unknown)")
    ap.add_argument("--strict", action="store_true",
                    help="refuse an input outside the model's domain or of unknown reconstruction (default: "
                         "correct it with a warning, on stderr and in the sidecar)")
    existing = ap.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true",
                          help="replace existing outputs (never an input or an input's sidecar)")
    existing.add_argument("--skip-existing", action="store_true",
                          help="resume a batch: skip an input whose output and sidecar exist from the same input "
                               "and model")
    ap.add_argument("--summary", metavar="FILE",
                    help="write one JSON line per input (input, output, status, reasons, totals, domain)")
    ap.add_argument("--uncertainty", action="store_true",
                    help="also correct with each of the 16 orbit symmetries (flips, axial quarter turns: the test-time "
                         "augmentations) and write their voxel-wise SD beside each output, <output stem>_sd.nii.gz "
                         "(MBq/mL) with its JSON sidecar; the corrected image is unchanged. A lower bound on the "
                         "error, not a confidence interval. Costs 16x the network time for a model without "
                         "test-time augmentation")
    ap.add_argument("--labels", action="append", metavar="FILE",
                    help="with --uncertainty: a label image (NIfTI, integers >= 0, on the input's grid) whose regions "
                         "(labels > 0) get their total activity (MBq), its SD over the symmetries and CV in "
                         "<output stem>_regions.csv and the sidecars; one per --input")
    ap.set_defaults(func=_cmd_apply)

    md = sub.add_parser("models", help="the models dlpvc apply can use, with the domain each is valid for",
                        description="The models dlpvc apply can use, with the domain each is valid for: the ones "
                                    "shipped with dlpvc, or, when the environment variable DLPVC_MODEL_DIR is set, "
                                    "those of that folder instead (registry.json naming the default model per "
                                    "reconstruction kind, and one folder per model with model.pt and "
                                    "model_card.json).")
    md.add_argument("--model", help="describe this model.pt instead of the shipped ones")
    md.add_argument("--json", action="store_true", help="print JSON")
    md.set_defaults(func=_cmd_models)

    pl = sub.add_parser("plan", help="what a run of a configuration would redo, stage by stage, and which setting changed")
    pl.add_argument("--configfile", required=True, help="the configuration the next snakemake run uses")
    pl.add_argument("--directory", default=".", help="snakemake's working directory (default: here)")
    pl.set_defaults(func=_cmd_plan)

    s = sub.add_parser("simulate", help="Lu-177 acquisition and four reconstructions of your own phantom")
    s.add_argument("--activity", required=True, help="activity concentration (NIfTI, MBq/mL)")
    s.add_argument("--mu", required=True, help="attenuation map on the same grid (NIfTI, 1/cm at 208 keV)")
    s.add_argument("--output", required=True, help="output folder (created; must not exist or be empty)")
    s.add_argument("--config", help="configuration with grid, camera and reconstruction (default: the demo "
                                     "configuration, shipped with dlpvc; config.yaml in the repository)")
    s.add_argument("--seed", type=_seed, default=0, help="seed of the Poisson noise, >= 0 (same seed = identical files)")
    s.set_defaults(func=_cmd_simulate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dlpvc`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    try:
        args, extra = build_parser().parse_known_args(argv)
        if extra:
            _error_line(args.command, f"unrecognized arguments: {' '.join(extra)} (see dlpvc {args.command} --help)")
            return 2
    except SystemExit as done:  # --help, --version and usage errors (already printed)
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 2)
    except KeyboardInterrupt:
        _error_line("", "interrupted (SIGINT)")
        return 130
    try:
        return args.func(args)
    except InputError as err:
        _error_line(args.command, " ".join(str(err).split()))
        return 2
    except KeyboardInterrupt:
        _error_line(args.command, "interrupted (SIGINT)")
        return 130
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        _error_line(args.command, f"{where}{err.strerror or err}")
        return 1
    except Exception as err:  # noqa: BLE001 - a fault of ours: one line, never a traceback
        if os.environ.get("DLPVC_DEBUG"):
            raise
        _error_line(args.command, f"internal error, please report it (DLPVC_DEBUG=1 shows the traceback): "
                                  f"{' '.join(f'{type(err).__name__}: {err}'.split())}")
        return 1


def _error_line(command: str, text: str) -> None:
    try:
        print(f"dlpvc {command}: {text}".replace("dlpvc : ", "dlpvc: "), file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
