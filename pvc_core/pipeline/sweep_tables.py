"""The staged sweep's comparisons: paired Wilcoxon tests between the variants a stage compares.

For each stage of :func:`pvc_core.pipeline.models.sweep_stages` and each dataset, every pair of
the stage's variants (``extras``: each variant against the default model) is compared on every
metric of :data:`STAGE_METRICS`, over the test cases both were evaluated on (the sweep suite's
``tables/metrics_sweep.csv``): scipy's two-sided paired Wilcoxon signed-rank test.

Multiple tests: within one stage's table (all datasets, pairs and metrics together) the p-values
are adjusted with Holm's step-down method (Holm 1979), which controls the family-wise error rate
at the configuration's ``evaluation.significance`` (the paper's 1 %) without assuming independent
tests; ``significant`` is ``p_holm < significance``. The raw p-value is kept beside it.
"""

from __future__ import annotations

from itertools import combinations
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from pvc_core.domain import dl_method
from pvc_core.io.atomic import atomic_path

#: Metrics compared, and whether higher is better. ``abs_ad_pct`` is |activity deviation|.
STAGE_METRICS = {"ssim": True, "nrmse_pct": False, "vaa_pct": True, "abs_ad_pct": False}

COLUMNS = ("stage", "dataset", "variant_a", "variant_b", "model_a", "model_b", "metric", "n", "mean_a", "mean_b",
           "median_diff", "p", "p_holm", "significant", "better")

__all__ = ["COLUMNS", "STAGE_METRICS", "compare_stage", "holm"]


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (same order as given; capped at 1, monotone)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def _pairs(stage: str, labels: list[str]) -> list[tuple[str, str]]:
    if stage == "extras":
        return [(labels[0], other) for other in labels[1:]]
    return list(combinations(labels, 2))


def compare_stage(stage: str, variants: Sequence[Mapping], metrics: pd.DataFrame,
                  significance: float = 0.01) -> pd.DataFrame:
    """The table of one stage (:data:`COLUMNS`), one row per dataset x pair x metric.

    ``variants``: the stage's ``{"dataset", "variant", "model"}`` entries; ``metrics``: per-case
    rows with ``case``, ``dataset``, ``method`` (``dl:<model>``) and the metric columns.
    ``better`` names the variant with the better mean when the difference is significant, else
    ``"-"``. A pair with no differing case has p = 1.
    """
    df = metrics.copy()
    df["abs_ad_pct"] = df["ad_pct"].abs()
    rows = []
    for dataset in dict.fromkeys(v["dataset"] for v in variants):
        models = {v["variant"]: v["model"] for v in variants if v["dataset"] == dataset}
        for a, b in _pairs(stage, list(models)):
            ga = df[(df.dataset == dataset) & (df.method == dl_method(models[a]))].set_index("case")
            gb = df[(df.dataset == dataset) & (df.method == dl_method(models[b]))].set_index("case")
            cases = ga.index.intersection(gb.index)
            for metric in STAGE_METRICS:
                xa, xb = ga.loc[cases, metric].to_numpy(float), gb.loc[cases, metric].to_numpy(float)
                diff = xa - xb
                p = float(wilcoxon(xa, xb).pvalue) if len(diff) and np.any(diff != 0) else 1.0
                rows.append({"stage": stage, "dataset": dataset, "variant_a": a, "variant_b": b,
                             "model_a": models[a], "model_b": models[b], "metric": metric, "n": len(cases),
                             "mean_a": float(xa.mean()) if len(xa) else np.nan,
                             "mean_b": float(xb.mean()) if len(xb) else np.nan,
                             "median_diff": float(np.median(diff)) if len(diff) else np.nan, "p": p})
    table = pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in ("p_holm", "significant", "better")])
    table["p_holm"] = holm(table["p"]) if len(table) else []
    table["significant"] = table["p_holm"] < significance
    higher = table["metric"].map(STAGE_METRICS)
    a_better = np.where(higher, table["mean_a"] > table["mean_b"], table["mean_a"] < table["mean_b"])
    table["better"] = np.where(table["significant"], np.where(a_better, table["variant_a"], table["variant_b"]), "-")
    return table[list(COLUMNS)]


def write_sweep_tables(stages: Mapping[str, Sequence[Mapping]], metrics_csv: str, outputs: Mapping[str, str],
                       significance: float, log=print) -> dict[str, pd.DataFrame]:
    """Write ``tables/sweep_<stage>.csv`` for every stage (``outputs``: stage -> path)."""
    metrics = pd.read_csv(metrics_csv)
    tables = {}
    for stage, variants in stages.items():
        tables[stage] = table = compare_stage(stage, variants, metrics, significance)
        with atomic_path(outputs[stage], replace=True) as tmp:
            table.to_csv(tmp, index=False)
        n_sig = int(table["significant"].sum())
        log(f"sweep stage {stage}: {len(table)} tests, {n_sig} significant after Holm at {significance:g}")
    return tables
