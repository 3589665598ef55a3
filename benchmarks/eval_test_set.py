"""[3.4]'s evaluator: a run's test cases corrected by each model, beside no PVC and IY, against the goals.

    nice .venv/bin/python benchmarks/eval_test_set.py CONFIG --reconstruction RR|noRR \\
        --model LABEL=PATH[:CASES_SEEN] [--model ...] [--out DIR] [--cases N]

The test set is the ``"test"`` list of ``splits.json`` in CONFIG's ``results_dir`` (relative to the
working folder, as Snakemake reads it); each case gives ``cases/NNNNN/spect_<RECON>_n.nii.gz`` and
``truth.nii.gz``; a case without them (a dataset still being built) is left out with a note on
stderr. ``--cases N`` takes the first N of them (a quick look). Methods per case:

* ``none``: the reconstruction itself;
* ``iy_truth``: iterative Yang (:func:`pvc_core.pvc.iterative_yang`, 10 iterations) with the
  true-activity mask (:func:`pvc_core.pvc.truth_labels`, the paper's setting, a bias in IY's
  favour) and the FWHM fitted per case on the image against its truth (``fitted_fwhm_mm`` of
  ``benchmarks/bench_robustness.py``, so both benchmarks give IY the same resolution);
* each ``--model``: :func:`pvc_core.apply.correct.correct_image`, what ``dlpvc apply`` runs.
  PATH is a ``model.pt``, a model folder, or ``shipped`` (the shipped default RR model, also for
  noRR images); CASES_SEEN, the training cases the model has seen, puts it on the learning curve.

Metrics: :func:`pvc_core.metrics.compute_all` (SSIM, NRMSE %, VAA % with the config's
``evaluation.alpha``, AD %) against the truth, over ``truth > 0``, as the pipeline's evaluation.

Each (case, method) result is cached as ``<out>/cases/NNNNN/<key>.json`` (key ``none``,
``iy_truth`` or the first 12 hex digits of the model file's SHA-256), with the SHA-256 of the case's
two images: adding a model later computes only that model, and a rebuilt case is computed again.
Default ``<out>``: ``results/eval_test_set/<results_dir name>/<reconstruction>/`` of the repository.

Written to ``<out>``: ``per_case.csv`` (case, method, label, metrics), ``summary.csv`` (per
method: mean metrics; VAA and NRMSE as ratios of the means to no PVC's; paired two-sided Wilcoxon p
of VAA and NRMSE against ``none``, ``iy_truth`` and the model labelled ``shipped``; cases seen) and,
when two or more models state CASES_SEEN, ``learning_curve.csv``; the same summary per uptake model
of the phantoms (``summary_shapes.csv``, ``summary_patient.csv``: the paper's random shapes and
[3.3]'s patient-like uptake, groups of at least 3 cases); per model ``test_metrics_<LABEL>.json``,
what ``scripts/ship_model.py --test-metrics`` puts in a shipped card. Printed: the summary as a
markdown table (for RR, the paper's Table 1 RR_n rows under it, as reference), the learning curve,
and [3.4]'s goals per model, one line each, ``met`` or ``NOT met`` with the numbers:

* RR: VAA >= 2.5x no PVC's and NRMSE <= 0.7x no PVC's; noRR: VAA >= 2x no PVC's;
* both: higher VAA and lower NRMSE than ``iy_truth``, each with Wilcoxon p below the config's
  ``evaluation.significance`` (0.01), and the same against ``shipped`` when it is given.

Bad input (configuration, results folder, splits, no built test case, an unreadable image,
``--model``, an option) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_robustness import fitted_fwhm_mm

from pvc_core.apply.correct import correct_image
from pvc_core.apply.model import MODELS_DIR, find_model, load_apply_model
from pvc_core.apply.plan import content_digest
from pvc_core.cli import _Parser  # one-line usage errors, as dlpvc's
from pvc_core.config import load_config
from pvc_core.domain import NO_PVC, RECONSTRUCTIONS
from pvc_core.errors import InputError
from pvc_core.io import load_image, read_json, write_json
from pvc_core.metrics import compute_all
from pvc_core.model_files import ModelFolder
from pvc_core.pipeline.dataset_stages import METRIC_COLUMNS, paired_wilcoxon_p
from pvc_core.pvc import iterative_yang, truth_labels
from pvc_core.report.paper import PAPER_TABLE1

IY = "iy_truth"
SHIPPED = "shipped"
#: Bumped when a cached result would be computed differently: results of another version are computed again.
EVALUATION_VERSION = 1
#: [3.4]'s goals per reconstruction: the model's mean VAA at least this many times no PVC's, its mean
#: NRMSE at most this many times no PVC's (None: no NRMSE goal).
GOALS = {"RR": {"vaa_ratio_min": 2.5, "nrmse_ratio_max": 0.7}, "noRR": {"vaa_ratio_min": 2.0, "nrmse_ratio_max": None}}
#: The paper's Table 1 dataset printed under the summary of a reconstruction (Leube et al. 2024, 500 cases).
PAPER_DATASET = {"RR": "RR_n"}
PAPER_METHODS = {NO_PVC: "no PVC", IY: "IY", "dl": "DL-PVC"}


@dataclass(frozen=True)
class ModelArg:
    """One ``--model LABEL=PATH[:CASES_SEEN]``: its label, weights file, cache key and cases seen."""

    label: str
    weights: Path
    key: str                  # the weights file's SHA-256, first 12 hex digits
    cases_seen: int | None


@dataclass(frozen=True)
class Method:
    """A column of the evaluation: ``none``, ``iy_truth`` or a model."""

    key: str
    label: str
    model: ModelArg | None = None

    @property
    def cases_seen(self) -> int | None:
        return self.model.cases_seen if self.model else None


def parse_model(text: str) -> ModelArg:
    """``LABEL=PATH[:CASES_SEEN]`` as a :class:`ModelArg`; PATH is a model.pt, a model folder, the
    name of a shipped model (``dlpvc_shipped``, ``dlpvc_RR``, ...) or ``shipped`` (the shipped
    default RR model). Raises :class:`InputError` naming ``--model``."""
    label, sep, rest = text.partition("=")
    label = label.strip()
    if not sep or not label or not rest.strip():
        raise InputError(f"{text!r}: give LABEL=PATH[:CASES_SEEN] (e.g. round1=models/x/model.pt:420)", "--model")
    if label in (NO_PVC, IY) or not all(c.isalnum() or c in "_-." for c in label):
        raise InputError(f"{text!r}: the label must be letters, digits, '_', '-' or '.', and not "
                         f"{NO_PVC!r} or {IY!r}", "--model")
    path, cases_seen = rest, None
    head, colon, tail = rest.rpartition(":")
    if colon and tail.strip().isdigit():
        path, cases_seen = head, int(tail)
    if not path.strip():
        raise InputError(f"{text!r}: no PATH before :{cases_seen}", "--model")
    if path == SHIPPED:
        ref = find_model(None, "RR")
    elif "/" not in path and ModelFolder(MODELS_DIR / path).weights.is_file():  # a shipped model's name
        ref = find_model(str(ModelFolder(MODELS_DIR / path).weights), None)
    else:
        where = Path(path).expanduser()
        if where.is_dir():
            if not ModelFolder(where).weights.is_file():
                raise InputError(f"{label}={path}: folder without {ModelFolder(where).weights.name}", "--model")
            where = ModelFolder(where).weights
        elif not where.is_file():
            raise InputError(f"{label}={path}: model file not found", "--model")
        ref = find_model(str(where), None)
    return ModelArg(label, ref.path, ref.sha256[:12], cases_seen)


def _methods(models: list[ModelArg]) -> list[Method]:
    labels = [m.label for m in models]
    twice = sorted({x for x in labels if labels.count(x) > 1})
    if twice:
        raise InputError(f"label {twice[0]!r} given more than once", "--model")
    return [Method(NO_PVC, NO_PVC), Method(IY, IY)] + [Method(m.key, m.label, m) for m in models]


def _test_cases(config: str, first: int | None) -> tuple[dict, Path, list[int]]:
    """The validated configuration, its results folder and the test case ids (the first ``first``)."""
    cfg = load_config(config)
    root = Path(cfg["results_dir"])
    if not root.is_dir():
        raise InputError(f"results folder not found (results_dir of {config}; relative to the working folder)", root)
    splits = read_json(root / "splits.json")
    test = splits.get("test") if isinstance(splits, dict) else None
    if not isinstance(test, list) or not test or not all(isinstance(c, int) for c in test):
        raise InputError("no list of test case ids under the key 'test'", root / "splits.json")
    return cfg, root, test[:first] if first else test


def _case_paths(root: Path, case: int, reconstruction: str) -> tuple[Path, Path]:
    folder = root / "cases" / f"{case:05d}"
    return folder / f"spect_{reconstruction}_n.nii.gz", folder / "truth.nii.gz"


def _correct(method: Method, image, truth: np.ndarray, models: dict) -> tuple[np.ndarray, dict]:
    """The image corrected by ``method`` on the image's grid, and what to record beside its metrics."""
    if method.key == NO_PVC:
        return image.data, {}
    if method.key == IY:
        voxel = image.voxel_size_mm
        if max(voxel) - min(voxel) > 1e-3 * max(voxel):
            raise InputError(f"voxels of {' x '.join(f'{v:.4g}' for v in voxel)} mm: the FWHM fit needs "
                             "isotropic voxels")
        fwhm = fitted_fwhm_mm(image.data, truth, float(voxel[0]))
        return iterative_yang(image.data, truth_labels(truth), fwhm, voxel), {"fwhm_mm": fwhm}
    if method.key not in models:
        models[method.key] = load_apply_model(method.model.weights, device="cpu")
    return correct_image(models[method.key], image)[0], {"weights": str(method.model.weights)}


def evaluate_case(case: int, root: Path, reconstruction: str, methods: list[Method], cache: Path, alpha: float,
                  models: dict) -> tuple[dict[str, dict], int]:
    """Each method's cached (or now computed and cached) result for one case, by method key, and how
    many were computed. A cached result counts when it was computed by this version from the same
    two images with the same VAA tolerance; the images are read only when one is missing or stale."""
    spect_path, truth_path = _case_paths(root, case, reconstruction)
    inputs = {"spect_sha256": content_digest(spect_path), "truth_sha256": content_digest(truth_path), "alpha": alpha}
    results, computed, images = {}, 0, None
    for method in methods:
        path = cache / "cases" / f"{case:05d}" / f"{method.key}.json"
        if path.is_file():
            try:
                old = read_json(path)
            except InputError:  # a damaged cache file: computed again
                old = None
            if isinstance(old, dict) and old.get("version") == EVALUATION_VERSION and old.get("inputs") == inputs:
                results[method.key] = old
                continue
        if images is None:
            images = load_image(spect_path, name="SPECT image"), load_image(truth_path, name="truth").data
        t = time.perf_counter()
        out, extra = _correct(method, images[0], images[1], models)
        record = {"version": EVALUATION_VERSION, "case": case, "method": method.key, "inputs": inputs,
                  "metrics": compute_all(out, images[1], alpha=alpha), **extra,
                  "seconds": time.perf_counter() - t}
        write_json(path, record)
        results[method.key] = record
        computed += 1
    return results, computed


def summarise(per_case: pd.DataFrame, methods: list[Method]) -> pd.DataFrame:
    """One row per method: mean metrics, VAA and NRMSE as ratios of the means to no PVC's, paired
    Wilcoxon p of VAA and NRMSE against ``none``, ``iy_truth`` and ``shipped`` (NaN against itself
    and when ``shipped`` is not given), and the cases seen."""
    by = {m.label: per_case[per_case["label"] == m.label].set_index("case") for m in methods}
    refs = {NO_PVC: methods[0], IY: methods[1], SHIPPED: next((m for m in methods if m.label == SHIPPED), None)}
    none_vaa, none_nrmse = by[NO_PVC]["vaa_pct"].mean(), by[NO_PVC]["nrmse_pct"].mean()
    rows = []
    for m in methods:
        d = by[m.label]
        row = {"method": m.key, "label": m.label, "n": len(d), **{c: float(d[c].mean()) for c in METRIC_COLUMNS},
               "vaa_ratio_none": float(d["vaa_pct"].mean() / none_vaa),
               "nrmse_ratio_none": float(d["nrmse_pct"].mean() / none_nrmse)}
        for name, ref in refs.items():
            for col in ("vaa", "nrmse"):
                row[f"{col}_p_vs_{name}"] = (math.nan if ref is None or ref is m
                                             else paired_wilcoxon_p(d[f"{col}_pct"], by[ref.label][f"{col}_pct"]))
        row["cases_seen"] = m.cases_seen
        rows.append(row)
    return pd.DataFrame(rows)


def _fmt_p(p: float) -> str:
    return "–" if p is None or (isinstance(p, float) and math.isnan(p)) else f"{p:.2g}"


def markdown(summary: pd.DataFrame, reconstruction: str, paper: bool = True) -> str:
    """The summary as a markdown table; for RR (and ``paper``) the paper's Table 1 RR_n rows under it."""
    head = ("| method | n | SSIM | NRMSE % | VAA % | AD % | VAA / none | NRMSE / none | p VAA, NRMSE vs none | "
            "vs iy_truth | vs shipped | cases seen |")
    lines = [head, "|" + "---|" * 12]
    for r in summary.to_dict("records"):
        name = r["label"] if r["method"] in (NO_PVC, IY) else f"{r['label']} ({r['method']})"
        seen = "" if r["cases_seen"] is None or pd.isna(r["cases_seen"]) else str(int(r["cases_seen"]))
        ps = [f"{_fmt_p(r[f'vaa_p_vs_{k}'])}, {_fmt_p(r[f'nrmse_p_vs_{k}'])}" for k in (NO_PVC, IY, SHIPPED)]
        lines.append(f"| {name} | {r['n']} | {r['ssim']:.3f} | {r['nrmse_pct']:.2f} | {r['vaa_pct']:.1f} | "
                     f"{r['ad_pct']:+.2f} | {r['vaa_ratio_none']:.2f} | {r['nrmse_ratio_none']:.2f} | "
                     f"{' | '.join(ps)} | {seen} |")
    dataset = PAPER_DATASET.get(reconstruction)
    if dataset and paper:
        none = PAPER_TABLE1[(dataset, NO_PVC)]
        lines.append(f"\nReference, the paper's Table 1 ({dataset}, 500 test cases, means):\n")
        lines += ["| method | SSIM | NRMSE % | VAA % | AD % | VAA / none | NRMSE / none |", "|" + "---|" * 7]
        for key, name in PAPER_METHODS.items():
            t = PAPER_TABLE1[(dataset, key)]
            lines.append(f"| {name} | {t['ssim'][0]:.3f} | {t['nrmse_pct'][0]:.2f} | {t['vaa_pct'][0]:.1f} | "
                         f"{t['ad_pct'][0]:+.2f} | {t['vaa_pct'][0] / none['vaa_pct'][0]:.2f} | "
                         f"{t['nrmse_pct'][0] / none['nrmse_pct'][0]:.2f} |")
    return "\n".join(lines)


def learning_curve(summary: pd.DataFrame) -> pd.DataFrame:
    """The models that state the cases they have seen, in that order, with their VAA and NRMSE ratios to no PVC."""
    seen = summary[summary["cases_seen"].notna()].sort_values("cases_seen", kind="stable")
    out = seen[["cases_seen", "label", "method", "vaa_ratio_none", "nrmse_ratio_none", "vaa_pct", "nrmse_pct"]].copy()
    out["cases_seen"] = out["cases_seen"].astype(int)
    return out.reset_index(drop=True)


def _better(r: dict, ref: dict, name: str, significance: float) -> tuple[bool, str]:
    """Whether ``r`` has a higher mean VAA and a lower mean NRMSE than ``ref`` (the reference
    ``name``), each with Wilcoxon p < ``significance``, and the numbers in words."""
    p_vaa, p_nrmse = r[f"vaa_p_vs_{name}"], r[f"nrmse_p_vs_{name}"]
    ok = (r["vaa_pct"] > ref["vaa_pct"] and p_vaa < significance
          and r["nrmse_pct"] < ref["nrmse_pct"] and p_nrmse < significance)
    text = (f"VAA {r['vaa_pct']:.1f} vs {ref['vaa_pct']:.1f} % (p = {_fmt_p(p_vaa)}), "
            f"NRMSE {r['nrmse_pct']:.2f} vs {ref['nrmse_pct']:.2f} % (p = {_fmt_p(p_nrmse)})")
    return ok, text


def goal_lines(summary: pd.DataFrame, reconstruction: str, significance: float) -> list[str]:
    """[3.4]'s goals for each model, one line each: the goal, the numbers, ``met`` or ``NOT met``."""
    goals = GOALS[reconstruction]
    rows = {r["label"]: r for r in summary.to_dict("records")}
    none = rows[NO_PVC]
    lines = []
    for r in summary.to_dict("records"):
        if r["method"] in (NO_PVC, IY):
            continue
        who = r["label"]
        ok = r["vaa_ratio_none"] >= goals["vaa_ratio_min"]
        lines.append(f"{who}: VAA >= {goals['vaa_ratio_min']:g}x no PVC: {r['vaa_ratio_none']:.2f}x "
                     f"({r['vaa_pct']:.1f} vs {none['vaa_pct']:.1f} %): {'met' if ok else 'NOT met'}")
        if goals["nrmse_ratio_max"] is not None:
            ok = r["nrmse_ratio_none"] <= goals["nrmse_ratio_max"]
            lines.append(f"{who}: NRMSE <= {goals['nrmse_ratio_max']:g}x no PVC: {r['nrmse_ratio_none']:.2f}x "
                         f"({r['nrmse_pct']:.2f} vs {none['nrmse_pct']:.2f} %): {'met' if ok else 'NOT met'}")
        for ref in (IY, SHIPPED):
            if ref not in rows or who == ref:
                continue
            ok, text = _better(r, rows[ref], ref, significance)
            lines.append(f"{who}: better than {ref} on VAA and NRMSE, p < {significance:g}: {text}: "
                         f"{'met' if ok else 'NOT met'}")
    return lines


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, float_format="%.6g", quoting=csv.QUOTE_MINIMAL)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="eval_test_set.py", description=__doc__.split("\n")[0])
    p.add_argument("config", help="the run's configuration (its results_dir holds splits.json and cases/)")
    p.add_argument("--reconstruction", required=True, choices=RECONSTRUCTIONS, help="which images: RR or noRR")
    p.add_argument("--model", action="append", required=True, metavar="LABEL=PATH[:CASES_SEEN]",
                   help="a model to evaluate: model.pt, model folder or 'shipped'; CASES_SEEN (the training cases "
                        "it has seen) puts it on the learning curve; repeat for more models")
    p.add_argument("--out", type=Path, default=None,
                   help="cache and CSV folder (default results/eval_test_set/<results_dir name>/<reconstruction>/)")
    p.add_argument("--cases", type=_positive_int, default=None, help="only the first N test cases")
    return p


def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    """Evaluate, write the CSVs and print the tables and goals (module docstring)."""
    cfg, root, cases = _test_cases(args.config, args.cases)
    methods = _methods([parse_model(text) for text in args.model])
    built = [c for c in cases if all(p.is_file() for p in _case_paths(root, c, args.reconstruction))]
    if not built:
        raise InputError(f"none of the {len(cases)} test cases has spect_{args.reconstruction}_n.nii.gz and "
                         "truth.nii.gz (is the dataset built?)", root / "cases")
    if len(built) < len(cases):  # a dataset still being built: evaluate what is there, and say so
        missing = sorted(set(cases) - set(built))
        print(f"eval_test_set.py: {len(missing)} of {len(cases)} test cases not built yet, left out: "
              f"{', '.join(map(str, missing))}", file=sys.stderr)
    listed, cases = len(cases), built
    out = args.out or REPO / "results" / "eval_test_set" / root.resolve().name / args.reconstruction
    alpha, significance = cfg["evaluation"]["alpha"], cfg["evaluation"]["significance"]
    torch.set_num_threads(2)
    models: dict = {}
    records, computed = [], 0
    for case in cases:
        results, n = evaluate_case(case, root, args.reconstruction, methods, out, alpha, models)
        computed += n
        for m in methods:
            records.append({"case": case, "method": m.key, "label": m.label, **results[m.key]["metrics"],
                            "fwhm_mm": results[m.key].get("fwhm_mm")})
        print(f"case {case}: VAA % " + ", ".join(f"{m.label} {results[m.key]['metrics']['vaa_pct']:.1f}"
                                                 for m in methods) + f" ({n} computed)", flush=True)
    per_case = pd.DataFrame(records)
    summary = summarise(per_case, methods)
    _write_csv(out / "per_case.csv", per_case)
    _write_csv(out / "summary.csv", summary)
    print(f"\n{len(cases)} test cases of {root}" + (f" (of {listed} listed)" if listed > len(cases) else "")
          + f" ({args.reconstruction}_n); computed {computed} of "
          f"{len(cases) * len(methods)} (case, method) results, the rest from the cache in {out}\n")
    print(markdown(summary, args.reconstruction))
    curve = learning_curve(summary)
    if len(curve) >= 2:
        _write_csv(out / "learning_curve.csv", curve)
        print("\nLearning curve (ratios of the means to no PVC's):\n")
        print("| cases seen | model | VAA / none | NRMSE / none |\n|---|---|---|---|")
        for r in curve.to_dict("records"):
            print(f"| {r['cases_seen']} | {r['label']} | {r['vaa_ratio_none']:.2f} | {r['nrmse_ratio_none']:.2f} |")
    groups = uptake_groups(root, cases)
    by_uptake = {}
    for group, members in sorted(groups.items()):
        if len(members) < 3:  # too few for a Wilcoxon test
            continue
        by_uptake[group] = summarise(per_case[per_case["case"].isin(members)], methods)
        _write_csv(out / f"summary_{group}.csv", by_uptake[group])
        print(f"\n{len(members)} test cases with {group} uptake:\n")
        print(markdown(by_uptake[group], "", paper=False))
    for m in methods[2:]:
        write_json(out / f"test_metrics_{m.label}.json",
                   test_metrics(per_case, summary, by_uptake, m, root, args.reconstruction, alpha, significance))
    print(f"\nGoals ([3.4], {args.reconstruction}):")
    for line in goal_lines(summary, args.reconstruction, significance):
        print(f"- {line}")
    return 0


def uptake_groups(root: Path, cases: list[int]) -> dict[str, list[int]]:
    """Test cases by the uptake model of their phantom (``phantom.json``'s ``uptake_model``:
    ``shapes``, the paper's random shapes, or ``patient``); cases that do not say are left out."""
    groups: dict[str, list[int]] = {}
    for case in cases:
        path = root / "cases" / f"{case:05d}" / "phantom.json"
        model = read_json(path).get("uptake_model") if path.is_file() else None
        if isinstance(model, str):
            groups.setdefault(model, []).append(case)
    return groups


def test_metrics(per_case: pd.DataFrame, summary: pd.DataFrame, by_uptake: dict[str, pd.DataFrame], model: Method,
                 root: Path, reconstruction: str, alpha: float, significance: float) -> dict:
    """A model's test metrics as a shipped card records them (``scripts/ship_model.py --test-metrics``):
    mean and SD of each metric per method on this test set, the model's summary row (ratios to no
    PVC, Wilcoxon p against each reference) and the same row per uptake group."""
    methods = {}
    for label, g in per_case.groupby("label"):
        if label in (NO_PVC, IY, model.label):
            methods["dl_pvc" if label == model.label else label] = {
                f"{c}_{s}": float(getattr(g[c], s)()) for c in METRIC_COLUMNS for s in ("mean", "std")}

    def row(frame: pd.DataFrame) -> dict:
        r = frame[frame["label"] == model.label].iloc[0].to_dict()
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}

    own = row(summary)
    return {"test_set": str(root), "dataset": f"{reconstruction}_n", "n_cases": int(summary["n"].iloc[0]),
            "vaa_alpha": alpha, "significance": significance, "methods": methods, "dl_pvc": own,
            "vaa_ratio_to_no_pvc": float(own["vaa_ratio_none"]),
            "by_uptake": {g: row(f) for g, f in by_uptake.items()},
            "script": "benchmarks/eval_test_set.py"}


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as stop:  # usage errors: one line already printed
        return int(stop.code or 0)
    try:
        return run(args)
    except InputError as err:
        print(f"eval_test_set.py: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
