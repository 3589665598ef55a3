"""One self-contained HTML report of a run (figures embedded), mirroring the paper's Table 1 and Figures 2-6."""

from __future__ import annotations

import base64
import glob
import html
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd
import yaml

from pvc_core import __version__
from pvc_core.domain import RECONSTRUCTIONS
from pvc_core.io import read_json
from pvc_core.pipeline import paths
from pvc_core.pipeline.fingerprints import CASE_STAGES
from pvc_core.pipeline.shards import read_manifest
from pvc_core.report import figures
from pvc_core.specs import spec_dict

if TYPE_CHECKING:
    from pvc_core.specs import Settings

CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#eee}td:first-child,td:nth-child(2){text-align:left}img{max-width:100%}
.note{color:#555;font-size:13px}pre{background:#f6f6f6;padding:1em;font-size:12px;overflow:auto}"""


def _img(path: str | Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, escape=True, float_format=lambda v: f"{v:.4g}")


def table1(summary: pd.DataFrame) -> pd.DataFrame:
    """Mean (SD) per dataset and method, in the paper's Table 1 layout."""
    rows = []
    for _, r in summary.iterrows():
        row = {"SPECT reconstruction": r["dataset"], "PVC method": figures.method_label(r["method"]), "n": int(r["n"])}
        for col, name, fmt in (("ssim", "SSIM", "{:.3f}"), ("nrmse_pct", "NRMSE (%)", "{:.2f}"),
                               ("vaa_pct", "VAA (%)", "{:.2f}"), ("ad_pct", "AD (%)", "{:.2f}")):
            cell = f"{fmt.format(r[f'{col}_mean'])} ({fmt.format(r[f'{col}_sd'])})"
            if r["method"] != "none" and f"{col}_p_vs_none" in r and not pd.isna(r[f"{col}_p_vs_none"]):
                cell += f" p={r[f'{col}_p_vs_none']:.2g}"
            row[name] = cell
        rows.append(row)
    return pd.DataFrame(rows)


def stage_timing(results: str) -> pd.DataFrame:
    """Seconds per case of each per-case stage (from the manifests) and per job (benchmark files)."""
    rows = []
    for stage in CASE_STAGES:
        secs = []
        for p in glob.glob(str(Path(results) / "manifests" / stage / "*.json")):
            secs += list((read_manifest(p) or {}).get("seconds", {}).values())
        bench = [pd.read_csv(b, sep="\t")["s"].iloc[0] for b in glob.glob(str(Path(results) / "benchmarks" / stage / "*.tsv"))]
        rows.append({"stage": stage, "cases timed": len(secs),
                     "s per case (mean)": float(np.mean(secs)) if secs else float("nan"),
                     "s per case (max)": float(np.max(secs)) if secs else float("nan"),
                     "jobs": len(bench), "s per job (mean, Snakemake benchmark)": float(np.mean(bench)) if bench else float("nan")})
    for stage in ("split", "resolution", "train", "predict", "iy", "evaluate"):
        for b in sorted(glob.glob(str(Path(results) / "benchmarks" / stage / "*.tsv"))):
            s = pd.read_csv(b, sep="\t")["s"].iloc[0]
            rows.append({"stage": f"{stage} ({Path(b).stem})", "cases timed": np.nan, "s per case (mean)": np.nan,
                         "s per case (max)": np.nan, "jobs": 1, "s per job (mean, Snakemake benchmark)": float(s)})
    return pd.DataFrame(rows)


def failures(results: str) -> pd.DataFrame:
    """Every failed case with its stage and reason."""
    rows = []
    for stage in CASE_STAGES:
        for p in sorted(glob.glob(str(Path(results) / "manifests" / stage / "*.json"))):
            for case, reason in ((read_manifest(p) or {}).get("failed") or {}).items():
                rows.append({"case": int(case), "stage": stage, "reason": reason})
    return pd.DataFrame(rows, columns=["case", "stage", "reason"])


def storage_table(results: str, scale_cases: int = 10_000) -> pd.DataFrame:
    """Mean bytes per case of each artefact group (before pruning) and the total for ``scale_cases``."""
    per_case: dict[str, list[int]] = {}
    n = 0
    for p in glob.glob(str(Path(results) / "manifests" / "prune" / "*.json")):
        for sizes in ((read_manifest(p) or {}).get("bytes") or {}).values():
            n += 1
            for group, b in sizes.items():
                per_case.setdefault(group, []).append(b)
    rows = [{"artefact": g, "MB per case": np.sum(v) / max(n, 1) / 1e6,
             f"GB for {scale_cases:,} cases": np.sum(v) / max(n, 1) * scale_cases / 1e9} for g, v in sorted(per_case.items())]
    if rows:
        rows.append({"artefact": "total", "MB per case": sum(r["MB per case"] for r in rows),
                     f"GB for {scale_cases:,} cases": sum(r[f"GB for {scale_cases:,} cases"] for r in rows)})
    return pd.DataFrame(rows)


def counts_per_case(results: str, cases: list[int]) -> pd.DataFrame:
    """Total counts per window (noisy projections) of the given cases."""
    rows = []
    for case in cases:
        p = paths.marker_file(results, case, "noise")
        if p.is_file():
            rows.append({"case": case, **read_json(p).get("counts", {})})
    return pd.DataFrame(rows)


def build_report(settings: "Settings", results: str, model: str, recon_manifests: list[str], out: str,
                 log: Callable = print) -> str:
    """Write the run's report to ``out`` (one HTML file with embedded figures)."""
    from pvc_core.pipeline.dataset_stages import usable_split

    out = Path(out)
    fig_dir = out.parent / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    metrics = pd.read_csv(paths.metrics_table(results, "main"))
    summary = pd.read_csv(paths.summary_table(results, "main"))
    split = usable_split(str(paths.split_file(results)), recon_manifests)
    card = read_json(paths.model_card_file(results, read_json(paths.predictions_done(results, model))["training"]))
    dataset = card["model_cfg"]["dataset"]
    resolution = {m: read_json(paths.resolution_file(results, m)) for m in RECONSTRUCTIONS}
    examples = split["test"][: settings.report.n_example_cases]
    alpha = settings.evaluation.alpha

    figs = {
        "examples": figures.example_slices(results, examples, dataset, model, str(fig_dir / "examples.png"), alpha),
        "boxplots": figures.metric_boxplots(metrics, str(fig_dir / "metrics.png")),
        "histograms": figures.activity_histograms(results, split["test"], dataset, model, str(fig_dir / "histograms.png")),
    }
    history = paths.history_file(results, model)
    if history.is_file():
        figs["training"] = figures.training_curve(history, str(fig_dir / "training.png"))
    montage = Path(results) / "figures" / "phantoms.png"

    fail = failures(results)
    counts = counts_per_case(results, split["test"] + split["train"][:20])
    cal_rows = pd.DataFrame([{"reconstruction": r, **{k: v for k, v in read_json(paths.calibration_file(results, r)).items()
                                                       if k in ("factor", "true_mbq", "reconstructed_mbq", "voi_ml")}}
                             for r in RECONSTRUCTIONS if paths.calibration_file(results, r).is_file()])
    res_rows = pd.DataFrame([{"reconstruction": m, "matched-filter FWHM (mm)": r["fwhm_mm"], "SD (mm)": r["sd_mm"],
                              "calibration cases": len(r["calibration_cases"]),
                              "paper (mm)": {"RR": 8.75, "noRR": 21.35}[m]} for m, r in resolution.items()])
    parts = [
        f"<html><head><meta charset='utf-8'><title>dlpvc report</title><style>{CSS}</style></head><body>",
        "<h1>dlpvc run report</h1>",
        f"<p class='note'>dlpvc {__version__}, generated {time.strftime('%Y-%m-%d %H:%M')} on {html.escape(platform.node())} "
        f"({platform.machine()}, Python {platform.python_version()}). Results folder: {html.escape(str(results))}. "
        f"{settings.n_cases} cases: {len(split['train'])} training, {len(split['validation'])} validation, "
        f"{len(split['test'])} test, {len(fail['case'].unique()) if len(fail) else 0} failed.</p>",
        "<h2>Table 1: PVC methods on the test cases (mean (SD))</h2>",
        "<p class='note'>Metrics over the true-activity mask as in DESIGN.md. p = paired Wilcoxon test against no PVC "
        f"(significance level {settings.evaluation.significance}). DL-PVC model: <b>{html.escape(model)}</b>. "
        "Paper (RR_n, 500 test cases): no PVC 0.890 / 10.44% / 12.1%; IY 0.936 / 8.58% / 15.1%; DL-PVC 0.947 / 7.75% / 35.8% "
        "(SSIM / NRMSE / VAA).</p>",
        _table(table1(summary)),
        "<h2>Slices and VAA maps (Figure 4)</h2>", _img(figs["examples"], "example slices"),
        "<h2>Metric distributions (Figure 3)</h2>", _img(figs["boxplots"], "metric distributions"),
        "<h2>Activity-concentration histograms (Figure 6)</h2>", _img(figs["histograms"], "histograms"),
        "<h2>Phantoms (Figure 2)</h2>",
        _img(montage, "phantom montage") if montage.is_file() else "<p>(no montage)</p>",
        "<h2>Resolution (matched filter)</h2>", _table(res_rows),
        "<h2>Calibration (uniform cylinder, MIRD 26)</h2>",
        "<p class='note'>Each reconstruction's images are divided by its factor: reconstructed / known activity of "
        "the calibration cylinder in its VOI, acquired and reconstructed like the cases.</p>", _table(cal_rows),
        "<h2>Training</h2>",
        f"<p class='note'>{html.escape(str(card['model_cfg']))}; {card['data']['n_train_cases']} training cases; "
        f"best validation loss {card['training']['best_val_loss']:.4g} at epoch {card['training']['best_epoch']}"
        + (f" (masked NRMSE {card['training']['best_val_nrmse_pct']:.2f} %, VAA {card['training']['best_val_vaa_pct']:.1f} %; "
           f"selected by {html.escape(card['training']['selection'])})"
           if card["training"].get("best_val_nrmse_pct") is not None else "") + "; "
        f"training time {card['training']['seconds']:.0f} s on {card['training']['device']}.</p>",
        _img(figs["training"], "training curve") if "training" in figs else "",
        "<h2>Counts per case (noisy projections)</h2>", _table(counts.describe().reset_index()) if len(counts) else "",
        "<h2>Time per stage</h2>", _table(stage_timing(results)),
        "<h2>Storage per case</h2>",
        "<p class='note'>Sizes at this run's grid, before pruning (config key <code>storage</code> drops projections "
        "and phantom-grid images once both reconstructions exist).</p>", _table(storage_table(results)),
        "<h2>Failed cases</h2>", _table(fail) if len(fail) else "<p>None.</p>",
        "<h2>Configuration</h2>", f"<pre>{html.escape(yaml.safe_dump(spec_dict(settings), sort_keys=False))}</pre>",
        "</body></html>",
    ]
    out.write_text("\n".join(parts))
    log(f"report -> {out}")
    return str(out)
