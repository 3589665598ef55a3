"""One self-contained HTML report of a run (figures embedded) that reads like the paper: what differs
from it, Table 1 for every dataset, Figures 2-7, the studies (:mod:`pvc_core.studies`) and the
sweep's supplement."""

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
from pvc_core.io import load_image, read_json
from pvc_core.io.atomic import atomic_path
from pvc_core.pipeline import paths
from pvc_core.pipeline.fingerprints import CASE_STAGES
from pvc_core.pipeline.shards import read_manifest
from pvc_core.pipeline.dataset_stages import REFERENCE_METHODS, usable_split
from pvc_core.report import figures
from pvc_core.report.differences import differences
from pvc_core.report.paper import PAPER_FWHM_MM, PAPER_TABLE1
from pvc_core.report.slices import metric_violins, slice_figure
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


#: Table 1's columns: metric, format (labels: :data:`pvc_core.report.figures.METRIC_LABELS`).
_TABLE1_FORMATS = {"ssim": "{:.3f}", "nrmse_pct": "{:.2f}", "vaa_pct": "{:.2f}", "ad_pct": "{:.2f}"}

#: Table 1's marks of a significant paired Wilcoxon test against each reference method.
_REFERENCE_MARKS = dict(zip(REFERENCE_METHODS, ("*", "\u2020")))


def table1(summary: pd.DataFrame, significance: float = 0.01) -> pd.DataFrame:
    """Mean (SD) per dataset and method, in the paper's Table 1 layout; a cell is marked ``*`` where
    the paired Wilcoxon test against no PVC is significant at ``significance``, ``†`` where the
    one against IY-PVC (true mask) is (the p-values are in :func:`wilcoxon_table`)."""
    rows = []
    for _, r in summary.iterrows():
        row = {"SPECT reconstruction": r["dataset"], "PVC method": figures.method_label(r["method"]), "n": int(r["n"])}
        for col, fmt in _TABLE1_FORMATS.items():
            cell = f"{fmt.format(r[f'{col}_mean'])} ({fmt.format(r[f'{col}_sd'])})"
            for ref, mark in _REFERENCE_MARKS.items():
                p = r.get(f"{col}_p_vs_{ref}")
                if p is not None and not pd.isna(p) and p < significance:
                    cell += mark
            row[figures.METRIC_LABELS[col]] = cell
        rows.append(row)
    return pd.DataFrame(rows)


def wilcoxon_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Paired Wilcoxon p-values of every DL-PVC model against each reference method (no PVC, IY-PVC
    with the true mask)."""
    rows = []
    for _, r in summary[summary["method"].str.startswith("dl:")].iterrows():
        for ref in REFERENCE_METHODS:
            rows.append({"SPECT reconstruction": r["dataset"], "DL-PVC model": r["method"][3:],
                         "against": figures.method_label(ref), "n": int(r["n"]),
                         **{figures.METRIC_LABELS[col]: r.get(f"{col}_p_vs_{ref}", float("nan"))
                            for col in _TABLE1_FORMATS}})
    return pd.DataFrame(rows)


def paper_table1() -> pd.DataFrame:
    """The paper's Table 1 (RR_nf and RR_n, 500 test cases), mean (SD), in the layout of :func:`table1`."""
    return pd.DataFrame([{"SPECT reconstruction": dataset,
                          "PVC method": "DL-PVC (R2U-Net)" if method == "dl" else figures.method_label(method),
                          **{figures.METRIC_LABELS[col]: f"{fmt.format(values[col][0])} ({fmt.format(values[col][1])})"
                             for col, fmt in _TABLE1_FORMATS.items()}}
                         for (dataset, method), values in PAPER_TABLE1.items()])


def stage_timing(layout: paths.RunLayout) -> pd.DataFrame:
    """Seconds per case of each per-case stage (from the manifests) and per job (benchmark files)."""
    rows = []
    for stage in CASE_STAGES:
        secs = []
        for p in glob.glob(str(layout.manifest(stage, "*"))):
            secs += list((read_manifest(p) or {}).get("seconds", {}).values())
        bench = [pd.read_csv(b, sep="\t")["s"].iloc[0] for b in glob.glob(str(layout.bench_file(stage, "*")))]
        rows.append({"stage": stage, "cases timed": len(secs),
                     "s per case (mean)": float(np.mean(secs)) if secs else float("nan"),
                     "s per case (max)": float(np.max(secs)) if secs else float("nan"),
                     "jobs": len(bench), "s per job (mean, Snakemake benchmark)": float(np.mean(bench)) if bench else float("nan")})
    for stage in ("split", "resolution", "train", "predict", "iy", "evaluate"):
        for b in sorted(glob.glob(str(layout.bench_file(stage, "*")))):
            s = pd.read_csv(b, sep="\t")["s"].iloc[0]
            rows.append({"stage": f"{stage} ({Path(b).stem})", "cases timed": np.nan, "s per case (mean)": np.nan,
                         "s per case (max)": np.nan, "jobs": 1, "s per job (mean, Snakemake benchmark)": float(s)})
    return pd.DataFrame(rows)


def failures(layout: paths.RunLayout) -> pd.DataFrame:
    """Every failed case with its stage and reason."""
    rows = []
    for stage in CASE_STAGES:
        for p in sorted(glob.glob(str(layout.manifest(stage, "*")))):
            for case, reason in ((read_manifest(p) or {}).get("failed") or {}).items():
                rows.append({"case": int(case), "stage": stage, "reason": reason})
    return pd.DataFrame(rows, columns=["case", "stage", "reason"])


def storage_table(layout: paths.RunLayout, scale_cases: int = 10_000) -> pd.DataFrame:
    """Mean bytes per case of each artefact group (before pruning) and the total for ``scale_cases``."""
    per_case: dict[str, list[int]] = {}
    n = 0
    for p in glob.glob(str(layout.manifest("prune", "*"))):
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


def counts_per_case(layout: paths.RunLayout, cases: list[int]) -> pd.DataFrame:
    """Total counts per window (noisy projections) of the given cases."""
    rows = []
    for case in cases:
        p = layout.marker_file(case, "noise")
        if p.is_file():
            rows.append({"case": case, **read_json(p).get("counts", {})})
    return pd.DataFrame(rows)


def _study_section(layout: paths.RunLayout, study: str, save_table: Callable[[pd.DataFrame, str], str]) -> list[str]:
    """A study's manifest rendered: title, paragraphs, tables (also saved beside the report) and figures."""
    man = read_json(layout.study_manifest(study))
    parts = [f"<h2>{html.escape(man['title'])}</h2>"] + [f"<p>{html.escape(t)}</p>" for t in man["paragraphs"]]
    for t in man["tables"]:
        df = pd.read_csv(layout.study_file(t["csv"]))
        parts += [f"<p class='note'>{html.escape(t['caption'])} ({save_table(df, t['csv'])})</p>", _table(df)]
    for f in man["figures"]:
        parts += [f"<p class='note'>{html.escape(f['caption'])}</p>", _img(layout.study_file(f["png"]), f["caption"])]
    return parts


def build_report(settings: "Settings", layout: paths.RunLayout, model: str, recon_manifests: list[str], out: str,
                 log: Callable = print, sweep_stages: list[str] = ()) -> str:
    """Write the run's report to ``out``: one self-contained HTML file (figures embedded), its
    tables also as CSV under ``tables/`` beside it.

    ``model``: the default model (its dataset's figures and the studies); the Table 1 rows come
    from the main evaluation (every model of ``training.datasets``); ``sweep_stages``: the sweep's
    stage tables shown as the supplement.
    """
    t_start = time.perf_counter()
    out = Path(out)
    fig_dir = out.parent / "figures"
    table_dir = out.parent / "tables"
    fig_dir.mkdir(parents=True, exist_ok=True)
    table_dir.mkdir(parents=True, exist_ok=True)

    def save_table(df: pd.DataFrame, name: str) -> str:
        with atomic_path(table_dir / name, replace=True) as tmp:
            df.to_csv(tmp, index=False)
        return f"CSV: <code>tables/{html.escape(name)}</code>"

    metrics = pd.read_csv(layout.metrics_table("main"))
    summary = pd.read_csv(layout.summary_table("main"))
    split = usable_split(str(layout.split_file()), recon_manifests)
    training = read_json(layout.predictions_done(model))["training"]
    card = read_json(layout.model_folder(training).card)
    dataset = card["model_cfg"]["dataset"]
    resolution = {m: read_json(layout.resolution_file(m)) for m in RECONSTRUCTIONS}
    examples = split["test"][: settings.report.n_example_cases]
    alpha = settings.evaluation.alpha
    significance = settings.evaluation.significance

    example_pngs = []
    for case in examples:
        truth = load_image(layout.case_file(case, paths.TRUTH), name="truth")
        panels = [("truth", truth.data),
                  (figures.method_label("none"), load_image(layout.case_file(case, paths.recon_name(dataset))).data),
                  (figures.method_label("iy_truth"), load_image(layout.iy_file(dataset, "truth", case)).data),
                  ("DL-PVC", load_image(layout.prediction_file(model, case)).data)]
        mu = load_image(layout.case_file(case, paths.MU), name="attenuation map").data
        example_pngs.append((case, slice_figure(panels, truth.data, mu, float(truth.voxel_size_mm[0]),
                                                str(fig_dir / f"case_{case:05d}.png"), title=f"test case {case} ({dataset})",
                                                alpha=alpha)))
    figs = {
        # one DL-PVC group: each dataset's violin is its own model (training.datasets)
        "violins": metric_violins(metrics.assign(method=metrics["method"].mask(metrics["method"].str.startswith("dl:"), "dl")),
                                  str(fig_dir / "metrics.png")),
        "histograms": figures.activity_histograms(layout, split["test"], dataset, model, str(fig_dir / "histograms.png")),
    }
    history = layout.model_folder(training).history
    if history.is_file():
        figs["training"] = figures.training_curve(history, str(fig_dir / "training.png"))
    montage = layout.montage_file()

    fail = failures(layout)
    counts = counts_per_case(layout, split["test"] + split["train"][:20])
    cal_rows = pd.DataFrame([{"reconstruction": r, **{k: v for k, v in read_json(layout.calibration_file(r)).items()
                                                       if k in ("factor", "true_mbq", "reconstructed_mbq", "voi_ml")}}
                             for r in RECONSTRUCTIONS if layout.calibration_file(r).is_file()])
    res_rows = pd.DataFrame([{"reconstruction": m, "matched-filter FWHM (mm)": r["fwhm_mm"], "SD (mm)": r["sd_mm"],
                              "calibration cases": len(r["calibration_cases"]),
                              "paper (mm)": PAPER_FWHM_MM[m]} for m, r in resolution.items()])
    diff = differences(settings, card["model_cfg"], len(split["train"]), len(split["validation"]), len(split["test"]),
                       len(fail["case"].unique()) if len(fail) else 0)
    t1, wilcoxon, paper = table1(summary, significance), wilcoxon_table(summary), paper_table1()
    timing, storage = stage_timing(layout), storage_table(layout)
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>dlpvc report</title><style>{CSS}</style>"
        "</head><body>",
        "<h1>dlpvc run report</h1>",
        f"<p class='note'>dlpvc {__version__}, generated {time.strftime('%Y-%m-%d %H:%M')} on {html.escape(platform.node())} "
        f"({platform.machine()}, Python {platform.python_version()}). Results folder: {html.escape(str(layout.results))}. "
        f"{settings.n_cases} cases: {len(split['train'])} training, {len(split['validation'])} validation, "
        f"{len(split['test'])} test, {len(fail['case'].unique()) if len(fail) else 0} failed.</p>",
        "<h2>What differs from the paper</h2>",
        "<p class='note'>This run's chain beside the paper's (Leube et al., J Nucl Med 2024), from its settings: the "
        "numbers below can be set beside the paper's only where the chain is the same. "
        f"{save_table(diff, 'differences.csv')}</p>", _table(diff),
        "<h2>Table 1: PVC methods on the test cases (mean (SD))</h2>",
        "<p class='note'>Metrics over the true-activity mask (DESIGN.md). * and †: the paired two-sided Wilcoxon "
        f"test against no PVC (*) and against IY-PVC with the true mask (†) is significant at {significance:g}. "
        "Mask-free baselines: Richardson-Lucy and Van Cittert (PETPVC's definitions, the matched-filter FWHM). "
        f"The figures use the default model <b>{html.escape(model)}</b>. {save_table(t1, 'table1.csv')}</p>",
        _table(t1),
        f"<p class='note'>Paired Wilcoxon p-values of DL-PVC. {save_table(wilcoxon, 'table1_wilcoxon.csv')}</p>",
        _table(wilcoxon),
        f"<p class='note'>The paper's Table 1 (500 test cases). {save_table(paper, 'table1_paper.csv')}</p>",
        _table(paper),
        "<h2>Metric distributions (Figure 3)</h2>",
        "<p class='note'>Violins per method and dataset (solid: median; dashed: quartiles).</p>",
        _img(figs["violins"], "metric distributions"),
        "<h2>Test cases (Figure 4)</h2>",
        "<p class='note'>Axial slice with the most true activity: attenuation map as grey underlay, cropped to the body, "
        "true-activity outline in cyan; VAA maps (cyan: within the tolerance, red: off by more); the cross-section "
        "profile along the dashed line (Figure 4B).</p>",
        *[_img(png, f"test case {case}") for case, png in example_pngs],
        "<h2>Activity-concentration histograms (Figure 6)</h2>", _img(figs["histograms"], "histograms"),
    ]
    for study in paths.STUDIES:
        parts += _study_section(layout, study, save_table)
    if sweep_stages:
        parts += ["<h2>Supplement: the staged sweep</h2>",
                  "<p class='note'>Each stage changes one choice of the default model on every sweep dataset; paired "
                  "Wilcoxon tests between its variants, Holm-adjusted over the stage's table.</p>"]
        for stage in sweep_stages:
            df = pd.read_csv(layout.sweep_table(stage))
            parts += [f"<h3>Stage: {html.escape(stage)}</h3>",
                      f"<p class='note'>{save_table(df, f'sweep_{stage}.csv')}</p>", _table(df)]
    parts += [
        "<h2>Phantoms (Figure 2)</h2>",
        _img(montage, "phantom montage") if montage.is_file() else "<p>(no montage)</p>",
        "<h2>Resolution (matched filter)</h2>", f"<p class='note'>{save_table(res_rows, 'resolution.csv')}</p>",
        _table(res_rows),
        "<h2>Calibration (uniform cylinder, MIRD 26)</h2>",
        "<p class='note'>Each reconstruction's images are divided by its factor: reconstructed / known activity of "
        f"the calibration cylinder in its VOI, acquired and reconstructed like the cases. "
        f"{save_table(cal_rows, 'calibration.csv')}</p>", _table(cal_rows),
        "<h2>Training</h2>",
        f"<p class='note'>{html.escape(str(card['model_cfg']))}; {card['data']['n_train_cases']} training cases; "
        f"best validation loss {card['training']['best_val_loss']:.4g} at epoch {card['training']['best_epoch']}"
        + (f" (masked NRMSE {card['training']['best_val_nrmse_pct']:.2f} %, VAA {card['training']['best_val_vaa_pct']:.1f} %; "
           f"selected by {html.escape(card['training']['selection'])})"
           if card["training"].get("best_val_nrmse_pct") is not None else "") + "; "
        f"training time {card['training']['seconds']:.0f} s on {card['training']['device']} ({html.escape(training)}).</p>",
        _img(figs["training"], "training curve") if "training" in figs else "",
        "<h2>Counts per case (noisy projections)</h2>",
        f"<p class='note'>{save_table(counts, 'counts.csv')}</p>" + _table(counts.describe().reset_index())
        if len(counts) else "",
        "<h2>Time per stage</h2>", f"<p class='note'>{save_table(timing, 'time_per_stage.csv')}</p>", _table(timing),
        "<h2>Storage per case</h2>",
        "<p class='note'>Sizes at this run's grid, before pruning (config key <code>storage</code> drops projections "
        f"and phantom-grid images once both reconstructions exist). {save_table(storage, 'storage.csv')}</p>",
        _table(storage),
        "<h2>Failed cases</h2>", f"<p class='note'>{save_table(fail, 'failed_cases.csv')}</p>" + _table(fail)
        if len(fail) else "<p>None.</p>",
        "<h2>Configuration</h2>", f"<pre>{html.escape(yaml.safe_dump(spec_dict(settings), sort_keys=False))}</pre>",
        f"<p class='note'>Report built in {time.perf_counter() - t_start:.1f} s.</p>",
        "</body></html>",
    ]
    with atomic_path(out, replace=True) as tmp:
        tmp.write_text("\n".join(parts))
    log(f"report -> {out} ({out.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - t_start:.1f} s)")
    return str(out)
