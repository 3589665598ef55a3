"""Make a shipped model from a finished DAG run: its network, and a card with its test metrics.

``scripts/ship_model.py results/shipped`` copies ``models/<training>/model.pt`` of the run's
default model into ``pvc_core/models/dlpvc_shipped/`` (package data) and writes its ``model_card.json``: the training's
card plus its validity ``domain`` (:func:`pvc_core.apply.domain.domain_from_trained_for`) and
``test_metrics`` measured by the run's ``evaluate_methods`` on the held-out test cases
(mean and SD per method, and paired two-sided Wilcoxon tests of DL-PVC against no PVC and both
iterative-Yang variants, per metric, over the same cases).

A run that only trained (``-- train``, the clinic rounds) names its training (``--training``) and
brings its test metrics from a separate test set (``benchmarks/eval_test_set.py``'s
``test_metrics.json``); :func:`set_default` makes a shipped folder ``dlpvc apply``'s default for a
reconstruction kind (``registry.json``).
"""

from __future__ import annotations

import glob
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from pvc_core.apply.domain import domain_from_trained_for
from pvc_core.domain import NO_PVC, RECONSTRUCTIONS, dl_method
from pvc_core.io import read_json, write_json
from pvc_core.io.atomic import atomic_path
from pvc_core.model_files import ModelFolder, registry_file
from pvc_core.pipeline import paths

#: Metrics reported, and whether higher is better.
METRICS = {"ssim": True, "nrmse_pct": False, "vaa_pct": True, "ad_pct": None}
#: Methods DL-PVC is compared with.
BASELINES = (NO_PVC, "iy_truth", "iy_spect")

__all__ = ["test_metrics", "ship", "set_default"]


def test_metrics(metrics_csv: str | Path, model: str, dataset: str, significance: float = 0.01) -> dict:
    """Per method, mean/SD of each metric on ``dataset``'s test cases; DL-PVC's paired Wilcoxon
    p-values against each baseline, whether DL-PVC is significantly better, and its VAA ratio."""
    df = pd.read_csv(metrics_csv)
    df = df[df.dataset == dataset]
    dl = dl_method(model)
    out: dict = {"dataset": dataset, "n_cases": int((df.method == dl).sum()), "significance": significance,
                 "methods": {}, "dl_pvc_vs": {}}
    for method in (*BASELINES, dl):
        g = df[df.method == method]
        out["methods"]["dl_pvc" if method == dl else method] = {
            f"{m}_{s}": float(getattr(g[m], s)()) for m in METRICS for s in ("mean", "std")}
    a = df[df.method == dl].set_index("case")
    for base in BASELINES:
        b = df[df.method == base].set_index("case").reindex(a.index)
        res = {}
        for m, higher in METRICS.items():
            if higher is None:
                continue
            diff = (a[m] - b[m]).to_numpy()
            p = float(wilcoxon(a[m], b[m]).pvalue) if np.any(diff != 0) else 1.0
            better = bool(np.mean(diff) > 0) if higher else bool(np.mean(diff) < 0)
            res[m] = {"p": p, "dl_pvc_better": better, "significant": bool(p < significance)}
        out["dl_pvc_vs"][base] = res
    none_vaa = out["methods"][NO_PVC]["vaa_pct_mean"]
    out["vaa_ratio_to_no_pvc"] = out["methods"]["dl_pvc"]["vaa_pct_mean"] / none_vaa if none_vaa else None
    return out


def ship(layout: paths.RunLayout, out_dir: str | Path, significance: float = 0.01, *,
         training: str | None = None, metrics: dict | None = None) -> dict:
    """Copy a finished run's model to ``out_dir`` with its card and test metrics.

    Without ``training``: the run's one evaluated model, its test metrics from the run's own
    evaluation. With ``training`` (a folder name under the run's ``models/``): that model, whose
    test metrics ``metrics`` (required) were measured elsewhere.
    """
    if training is None:
        done = sorted(Path(p) for p in glob.glob(str(layout.predictions_done("*"))))
        main = pd.read_csv(layout.metrics_table("main"))
        models = [d.parent.name for d in done if dl_method(d.parent.name) in set(main.method)]
        if len(models) != 1:
            raise ValueError(f"expected one evaluated model in {layout.results}, found {models}")
        model = models[0]
        training = read_json(layout.predictions_done(model))["training"]
    else:
        if metrics is None:
            raise ValueError(f"{training}: a model shipped from its training needs its test metrics")
        if not layout.model_folder(training).weights.is_file():
            raise ValueError(f"{layout.model_folder(training).weights}: no such model")
        model = read_json(layout.model_folder(training).card).get("model", training)
    shipped = ModelFolder(out_dir)
    shipped.path.mkdir(parents=True, exist_ok=True)
    with atomic_path(shipped.weights, replace=True) as tmp:
        shutil.copyfile(layout.model_folder(training).weights, tmp)
    card = read_json(layout.model_folder(training).card)
    card["shipped_as"] = {"model": model, "training": training, "run": str(layout.results)}
    card["domain"] = domain_from_trained_for(card["trained_for"])
    card["test_metrics"] = metrics if metrics is not None else test_metrics(
        layout.metrics_table("main"), model, card["model_cfg"]["dataset"], significance)
    write_json(shipped.card, card)
    return card


def set_default(models_dir: str | Path, kind: str, folder: str) -> dict:
    """Make ``folder`` (a model folder of ``models_dir``) the default of ``dlpvc apply`` for the
    reconstruction kind ``kind`` in ``models_dir``'s registry; the other kinds keep theirs."""
    if kind not in RECONSTRUCTIONS:
        raise ValueError(f"{kind}: not a reconstruction kind ({', '.join(RECONSTRUCTIONS)})")
    if not ModelFolder(Path(models_dir) / folder).weights.is_file():
        raise ValueError(f"{Path(models_dir) / folder}: no model there")
    path = registry_file(models_dir)
    data = read_json(path) if path.is_file() else {}
    data.setdefault("default", {})[kind] = folder
    write_json(path, data)
    return data
