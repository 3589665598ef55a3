"""Fan-in stages: split, resolution, training, prediction, iterative Yang, evaluation."""

from __future__ import annotations

import time
from pathlib import Path
from collections import defaultdict
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from pvc_core.domain import DATASETS, DECONVOLUTIONS, IY_MASKS, NO_PVC, dataset_name, dl_method
from pvc_core.errors import InputError
from pvc_core.io import load_image, read_json, save_image, write_json
from pvc_core.io.atomic import atomic_path
from pvc_core.pipeline import paths
from pvc_core.pipeline.shards import failed_cases, read_manifest
from pvc_core.seeding import rng_for
from pvc_core.specs import EvaluationSpec, PvcSpec, ResolutionSpec, SplitSpec

Log = Callable[[str], None]


def finished_cases(manifests: list[str]) -> set[int]:
    """Cases done in every stage that the manifests cover (union over shards, intersection over stages)."""
    by_stage: dict[str, set[int]] = defaultdict(set)
    for p in manifests:
        m = read_manifest(p) or {}
        by_stage[m.get("stage", "?")].update(m.get("done", []))
    return set.intersection(*by_stage.values()) if by_stage else set()


def make_split(spec: SplitSpec, seed: int, n_cases: int, out: str, log: Log = print) -> dict:
    """Deterministic train / validation / test lists of every case id.

    The ids 0..n-1 are permuted with the split stream of ``seed``; the first ``n_test`` are
    test, the next ``n_validation`` validation, the rest training. The split depends on these
    settings alone, not on which cases finished, so a case redone in one reconstruction does
    not touch what was computed from the other: every consumer drops the cases its own inputs
    lack (:func:`usable_split`).
    """
    perm = rng_for(seed, 0, "split").permutation(n_cases)
    n_test, n_val = spec.n_test, spec.n_validation
    parts = {"test": perm[:n_test], "validation": perm[n_test:n_test + n_val], "train": perm[n_test + n_val:]}
    split = {k: sorted(int(c) for c in v) for k, v in parts.items()}
    write_json(out, split)
    log(f"split: {len(split['train'])} train, {len(split['validation'])} validation, {len(split['test'])} test")
    return split


def usable_split(split_path: str, manifests: list[str]) -> dict:
    """The split restricted to cases finished in every stage the ``manifests`` cover; cases
    that failed are listed under ``failed`` with their stage and reason.

    Raises :class:`InputError` when no training or no test case is left.
    """
    split = read_json(split_path)
    ok = finished_cases(manifests)
    failed = failed_cases(manifests)
    out: dict = {k: [c for c in split[k] if c in ok] for k in ("train", "validation", "test")}
    out["failed"] = {str(k): v for k, v in sorted(failed.items())}
    for k in ("train", "test"):
        if not out[k]:
            raise InputError(f"no finished {k} case ({len(failed)} failed); see the stage logs", split_path)
    return out


def measure_resolution(reconstruction: str, spec: ResolutionSpec, layout: paths.RunLayout, split_path: str,
                       recon_manifests: list[str], out: str, log: Log = print) -> dict:
    """Matched-filter FWHM (mm) of a reconstruction from noise-free calibration cases."""
    from pvc_core.resolution import matched_filter_fwhm  # lazy: torch (~1.5 s); this module is also the report's

    split = usable_split(split_path, recon_manifests)
    cases = split["train"][: spec.calibration_cases]
    dataset = dataset_name(reconstruction, "nf")
    per_case = {}
    for case in cases:
        truth = load_image(layout.case_file(case, paths.TRUTH), name="truth")
        recon = load_image(layout.case_file(case, paths.recon_name(dataset)), name="reconstruction")
        per_case[str(case)] = float(matched_filter_fwhm(recon.data, truth.data, truth.voxel_size_mm,
                                                        bracket_mm=tuple(spec.fwhm_search_mm)))
        log(f"resolution {reconstruction}: case {case}: FWHM {per_case[str(case)]:.2f} mm")
    fwhm = float(np.mean(list(per_case.values())))
    result = {"reconstruction": reconstruction, "fwhm_mm": fwhm, "sd_mm": float(np.std(list(per_case.values()))),
              "calibration_cases": per_case, "dataset": dataset}
    write_json(out, result)
    log(f"resolution {reconstruction}: matched-filter FWHM {fwhm:.2f} mm over {len(cases)} cases")
    return result


def _pairs(layout: paths.RunLayout, cases: list[int], dataset: str, attenuation: bool = False) -> list[tuple[str, ...]]:
    """``(case id, reconstruction, truth[, mu])`` of ``cases``: the training pairs of a dataset."""
    return [(f"{c:05d}", str(layout.case_file(c, paths.recon_name(dataset))),
             str(layout.case_file(c, paths.TRUTH)), *([str(layout.case_file(c, paths.MU))]
                                                              if attenuation else []))
            for c in cases]


def train_network(spec: dict, seed: int, layout: paths.RunLayout | Mapping, split_path: str, recon_manifests: list[str], out_dir: str,
                  log: Log = print, threads: int = 1, fingerprint: str | None = None,
                  vaa_alpha: float = 0.05, trained_for: dict | None = None) -> dict:
    """Train one network on the training split; validation split picks the best epoch.

    The best epoch is chosen by the model's ``selection`` rule on the validation cases' masked
    NRMSE and VAA (tolerance ``vaa_alpha``, the configuration's ``evaluation.alpha``).

    ``layout`` may come as :meth:`~pvc_core.pipeline.paths.RunLayout.as_dict` (the JSON job of a
    torchrun launch). The cases are cached normalised under ``layout.training_cache_dir`` (shared by every model of
    the dataset); ``threads`` (the job's CPUs) sets the DataLoader workers on a GPU unless the model's
    ``num_workers`` option does; the device is the model's ``device`` option. A checkpoint
    left in ``out_dir`` by a job of the same ``fingerprint`` (a resubmitted job) is resumed.
    ``trained_for`` (:func:`pvc_core.pipeline.models.trained_for`) goes into the model card.
    """
    from pvc_core.training import train_model  # lazy: torch (~2 s); this module is also the report's

    layout = layout if isinstance(layout, paths.RunLayout) else paths.RunLayout(**layout)
    split = usable_split(split_path, recon_manifests)
    val = split["validation"] or split["train"][:1]
    mu = bool(spec.get("attenuation_channel", False))
    return train_model(_pairs(layout, split["train"], spec["dataset"], mu), _pairs(layout, val, spec["dataset"], mu),
                       spec, out_dir, seed=seed, log=log, cache_dir=layout.training_cache_dir(spec["dataset"]),
                       threads=threads, pipeline_fingerprint=fingerprint, vaa_alpha=vaa_alpha,
                       trained_for=trained_for)


def predict_test_cases(model: str, model_path: str, layout: paths.RunLayout, split_path: str, recon_manifests: list[str],
                       out: str, log: Log = print, inference: dict | None = None) -> dict:
    """DL-PVC of every test case with a trained network (``model_path``) applied as the model's
    ``inference`` keys say (:data:`pvc_core.pipeline.models.INFERENCE_KEYS`: normalisation, sum
    conserving the total activity; test-time augmentation); default the network's own.

    Runs on CUDA when torch sees a GPU (the rule requests one), else on the CPU; a bf16-trained
    model predicts in bf16 autocast (CUDA and CPU), an fp32 model in fp32. ``out`` records the model, its
    training (the folder of ``model_path``), dataset, normalisation and the seconds per case.
    """
    from pvc_core.training import load_model, predict_image  # lazy: torch (~2 s); this module is also the report's
    from pvc_core.training.predict import takes_attenuation

    module, spec = load_model(model_path, device="auto")
    spec = {**spec, **(inference or {})}
    log(f"predict {model}: on {next(module.parameters()).device}, normalisation {spec['normalisation']}, "
        f"test-time augmentation {'on' if spec.get('tta') else 'off'}")
    split = usable_split(split_path, recon_manifests)
    done = {}
    for case in split["test"]:
        img = load_image(layout.case_file(case, paths.recon_name(spec["dataset"])), name="reconstruction")
        t0 = time.perf_counter()
        mu = (load_image(layout.case_file(case, paths.MU), name="attenuation map").data
              if takes_attenuation(spec) else None)
        corrected = predict_image(module, spec, img.data, mu_cm=mu)
        done[str(case)] = time.perf_counter() - t0
        save_image(layout.prediction_file(model, case), corrected, img.affine, "DL-PVC MBq/mL")
        log(f"predict {model}: case {case} in {done[str(case)]:.2f} s")
    write_json(out, {"model": model, "training": Path(model_path).parent.name, "dataset": spec["dataset"],
                     "normalisation": spec["normalisation"], "tta": bool(spec.get("tta")), "seconds": done})
    return done


def correct_iterative_yang(dataset: str, spec: PvcSpec, layout: paths.RunLayout, split_path: str, recon_manifests: list[str],
                           resolution_path: str, out: str, log: Log = print) -> dict:
    """Iterative-Yang PVC of the test cases with the matched-filter FWHM and two masks.

    ``truth``: the ground-truth activity mask (the paper's setting, favourable to IY);
    ``spect``: a mask thresholded from the SPECT image alone (what a user without the truth has).
    """
    from pvc_core.pvc import iterative_yang, threshold_labels, truth_labels  # lazy: torch (~1.5 s); this module is also the report's
    from pvc_core.pvc.petpvc_backend import run_petpvc_iy

    split = usable_split(split_path, recon_manifests)
    fwhm = read_json(resolution_path)["fwhm_mm"]
    iters = spec.iy_iterations
    seconds = {}
    for case in split["test"]:
        truth = load_image(layout.case_file(case, paths.TRUTH), name="truth")
        img = load_image(layout.case_file(case, paths.recon_name(dataset)), name="reconstruction")
        for mask, labels in (("truth", truth_labels(truth.data)), ("spect", threshold_labels(img.data))):
            t0 = time.perf_counter()
            if spec.backend == "petpvc":
                corrected = run_petpvc_iy(img.data, labels, fwhm, img.voxel_size_mm, iters)
            else:
                corrected = iterative_yang(img.data, labels, fwhm, img.voxel_size_mm, iterations=iters)
            seconds[f"{case}_{mask}"] = time.perf_counter() - t0
            save_image(layout.iy_file(dataset, mask, case), corrected, img.affine, f"IY-PVC {mask} mask MBq/mL")
        log(f"iy {dataset}: case {case} done (FWHM {fwhm:.2f} mm)")
    write_json(out, {"dataset": dataset, "fwhm_mm": fwhm, "iterations": iters, "seconds": seconds})
    return seconds


def correct_deconvolution(dataset: str, spec: PvcSpec, layout: paths.RunLayout, split_path: str, recon_manifests: list[str],
                          resolution_path: str, out: str, log: Log = print) -> dict:
    """The mask-free baselines of the test cases: Richardson-Lucy (``rl``) and reblurred Van
    Cittert (``vc``) with the matched-filter FWHM, PETPVC's definitions (:mod:`pvc_core.pvc.deconvolution`)."""
    from pvc_core.pvc import richardson_lucy, van_cittert  # lazy: torch (~1.5 s); this module is also the report's

    split = usable_split(split_path, recon_manifests)
    fwhm = read_json(resolution_path)["fwhm_mm"]
    seconds = {}
    for case in split["test"]:
        img = load_image(layout.case_file(case, paths.recon_name(dataset)), name="reconstruction")
        for method, correct in (("rl", lambda: richardson_lucy(img.data, fwhm, img.voxel_size_mm, spec.rl_iterations)),
                                ("vc", lambda: van_cittert(img.data, fwhm, img.voxel_size_mm, spec.vc_iterations))):
            t0 = time.perf_counter()
            corrected = correct()
            seconds[f"{case}_{method}"] = time.perf_counter() - t0
            save_image(layout.deconvolution_file(dataset, method, case), corrected, img.affine,
                       f"{method.upper()} deconvolution MBq/mL")
        log(f"deconvolution {dataset}: case {case} done (FWHM {fwhm:.2f} mm)")
    write_json(out, {"dataset": dataset, "fwhm_mm": fwhm, "iterations": {"rl": spec.rl_iterations,
                                                                          "vc": spec.vc_iterations},
                     "seconds": seconds})
    return seconds


def evaluate(spec: EvaluationSpec, layout: paths.RunLayout, split_path: str, recon_manifests: list[str], models: list[str],
             out_csv: str, out_summary: str, log: Log = print) -> pd.DataFrame:
    """Metrics per test case x dataset x PVC method (none, IY with both masks, RL and VC, each DL model),
    over the test cases finished in every reconstruction."""
    from pvc_core.metrics import compute_all  # lazy: scikit-image (~0.3 s), evaluation only

    split = usable_split(split_path, recon_manifests)
    alpha = spec.alpha
    model_dataset = {m: read_json(layout.predictions_done(m))["dataset"] for m in models}
    rows = []
    for case in split["test"]:
        truth = load_image(layout.case_file(case, paths.TRUTH), name="truth").data
        for dataset in DATASETS:
            images = {NO_PVC: layout.case_file(case, paths.recon_name(dataset))}
            images.update({f"iy_{mask}": layout.iy_file(dataset, mask, case) for mask in IY_MASKS})
            images.update({m: layout.deconvolution_file(dataset, m, case) for m in DECONVOLUTIONS})
            images.update({dl_method(m): layout.prediction_file(m, case)
                           for m, d in model_dataset.items() if d == dataset})
            for method, path in images.items():
                img = load_image(path, name=method).data
                rows.append({"case": case, "dataset": dataset, "method": method, **compute_all(img, truth, alpha=alpha)})
    df = pd.DataFrame(rows)
    with atomic_path(out_csv, replace=True) as tmp:
        df.to_csv(tmp, index=False)
    summary = summarise(df, spec.significance)
    with atomic_path(out_summary, replace=True) as tmp:
        summary.to_csv(tmp, index=False)
    log(summary.to_string(index=False))
    return df


METRIC_COLUMNS = ("ssim", "nrmse_pct", "vaa_pct", "ad_pct")


#: The methods every other method of a dataset is tested against (paired Wilcoxon): no PVC, and
#: iterative Yang with the true mask (the paper's comparison of DL-PVC with IY).
REFERENCE_METHODS = (NO_PVC, "iy_truth")


def paired_wilcoxon_p(a: pd.Series, b: pd.Series) -> float:
    """Two-sided paired Wilcoxon signed-rank p-value of two case-indexed series (scipy's
    ``wilcoxon``) over the cases both have; 1.0 when every difference is 0, NaN without a pair."""
    from scipy.stats import wilcoxon  # lazy: scipy.stats (~0.6 s), evaluation only

    both = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
    if both.empty:
        return float("nan")
    diff = (both["a"] - both["b"]).to_numpy()
    return float(wilcoxon(both["a"], both["b"]).pvalue) if np.any(diff != 0) else 1.0


def summarise(df: pd.DataFrame, significance: float = 0.01) -> pd.DataFrame:
    """Mean and SD per dataset x method, and paired Wilcoxon p-values of each method against each
    of :data:`REFERENCE_METHODS` (``<metric>_p_vs_none``, ``<metric>_p_vs_iy_truth``).

    The p-value is per metric, over the same test cases (two-sided); with fewer than 6 pairs no
    test at the 1% level can be significant, and the p-value is still given.
    """
    groups = {key: g.set_index("case") for key, g in df.groupby(["dataset", "method"], sort=False)}
    out = []
    for (dataset, method), a in groups.items():
        row = {"dataset": dataset, "method": method, "n": len(a)}
        for col in METRIC_COLUMNS:
            row[f"{col}_mean"] = float(a[col].mean())
            row[f"{col}_sd"] = float(a[col].std(ddof=1)) if len(a) > 1 else 0.0
            for ref in REFERENCE_METHODS:
                base = groups.get((dataset, ref))
                if method == ref or base is None:
                    continue
                p = paired_wilcoxon_p(a[col], base[col])
                row[f"{col}_p_vs_{ref}"] = p
                row[f"{col}_significant_vs_{ref}"] = bool(p < significance)
        out.append(row)
    return pd.DataFrame(out)
