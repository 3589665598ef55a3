"""The whole DAG on config/test.yaml in temporary folders.

1. A corrupt intermediate (projections of case 1) fails that case only (the session fixture
   ``faulty_then_rerun`` of conftest.py, which test_dag_fingerprints.py reuses): the run completes, the
   report lists the case, the metrics are finite and leave it out. The rerun redoes case 1 alone in every stage
   and the report then lists no failure; a third run has nothing to do.
2. A run killed midway and rerun: cases finished before the kill are never redone.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, TEST_RESULTS, run_snakemake, snakemake_cmd

pytestmark = pytest.mark.dag
RESULTS = TEST_RESULTS


def _cmd(workdir: Path, *extra: str) -> list[str]:
    return snakemake_cmd(workdir, REPO / "config/test.yaml", *extra)


def _snakemake(workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_snakemake(workdir, REPO / "config/test.yaml", *extra)


def _manifest(workdir: Path, stage: str, shard: int) -> dict:
    return json.loads((workdir / RESULTS / "manifests" / stage / f"shard{shard:04d}.json").read_text())


def test_failed_case_is_reported_and_others_finish(faulty_then_rerun):
    _, state = faulty_then_rerun
    assert 1 in state["split"]["train"] + state["split"]["validation"] + state["split"]["test"]  # settings only
    assert 1 not in set(state["metrics"]["case"])  # the consumers drop the failed case
    assert "Failed cases" in state["report"] and "unreadable" in state["report"]
    values = state["metrics"][["ssim", "nrmse_pct", "vaa_pct", "ad_pct"]].to_numpy()
    assert len(values) > 0 and np.all(np.isfinite(values))


def test_rerun_redoes_only_the_failed_case(faulty_then_rerun):
    wd, _ = faulty_then_rerun
    for stage in ("simulate", "noise", "recon_RR", "recon_noRR"):
        m = _manifest(wd, stage, 0)
        assert list(m["seconds"]) == ["1"], (stage, m)
        assert sorted(m["skipped"]) == [0, 2] and m["failed"] == {}
    assert _manifest(wd, "simulate", 1)["attempt"] == 1  # the other shard never ran again


def test_report_and_metrics_after_rerun(faulty_then_rerun):
    wd, _ = faulty_then_rerun
    report = wd / RESULTS / "report" / "report.html"
    html = report.read_text()
    assert "Table 1" in html and "data:image/png;base64" in html and "Failed cases</h2>\n<p>None." in html
    metrics = pd.read_csv(wd / RESULTS / "tables" / "metrics_main.csv")
    assert {"none", "iy_truth", "iy_spect"} <= set(metrics["method"])
    assert any(m.startswith("dl:") for m in metrics["method"])
    assert np.all(np.isfinite(metrics[["ssim", "nrmse_pct", "vaa_pct", "ad_pct"]].to_numpy()))
    proc = _snakemake(wd, "-n")
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr


def test_table1_covers_every_dataset_with_the_baselines_and_a_model_each(faulty_then_rerun):
    wd, _ = faulty_then_rerun
    summary = pd.read_csv(wd / RESULTS / "tables" / "summary_main.csv")
    for dataset in ("RR_nf", "RR_n", "noRR_nf", "noRR_n"):
        methods = set(summary.loc[summary["dataset"] == dataset, "method"])
        assert {"none", "iy_truth", "iy_spect", "rl", "vc"} <= methods, dataset
        dl = [m for m in methods if m.startswith("dl:")]
        assert len(dl) == 1 and f"_{dataset}_" in dl[0], (dataset, dl)
        row = summary[(summary["dataset"] == dataset) & (summary["method"] == dl[0])].iloc[0]
        assert 0 <= row["vaa_pct_p_vs_none"] <= 1 and 0 <= row["vaa_pct_p_vs_iy_truth"] <= 1


def test_studies_have_the_documented_rows(faulty_then_rerun):
    wd, _ = faulty_then_rerun
    mfs = pd.read_csv(wd / RESULTS / "studies" / "min_feature_size.csv")
    assert {"edge_voxels", "method", "rc", "n"} <= set(mfs.columns)
    assert len(mfs) == 30 and sorted(mfs["edge_voxels"].unique()) == list(range(1, 11))
    assert set(mfs["method"]) == {"none", "iy_truth", "dl"} and np.all(np.isfinite(mfs["rc"]))
    vp = pd.read_csv(wd / RESULTS / "studies" / "validation_phantoms.csv")
    assert {"phantom", "region", "method", "ssim", "nrmse_pct", "vaa_pct", "rc"} <= set(vp.columns)
    assert sorted(vp["phantom"].unique()) == ["ellipsoid", "icrp110", "kidney_cortex", "sphere"]
    assert vp.groupby("phantom")["method"].nunique().eq(4).all()
    assert set(vp["method"]) == {"none", "iy_truth", "iy_spect", "dl"}
    assert np.all(np.isfinite(vp[["ssim", "nrmse_pct", "vaa_pct", "rc"]].to_numpy()))


def test_report_renders_in_chromium_with_every_figure(faulty_then_rerun, chromium_path):
    from pvc_core.report.render import render_report

    wd, _ = faulty_then_rerun
    report = wd / RESULTS / "report" / "report.html"
    rendered = render_report(report, chromium=chromium_path)
    assert rendered["broken"] == []
    # Table 1's figures, two example cases, the two studies' figures (2 + 4 phantoms x 2), phantoms, training
    assert rendered["images"] == report.read_text().count("<img ") >= 14
    html = report.read_text()
    for section in ("What differs from the paper", "Minimum feature size (Figure 5)",
                    "Validation phantoms (Table 2, Figure 7)", "Richardson-Lucy", "Van Cittert"):
        assert section in html, section
    assert (wd / RESULTS / "report" / "tables" / "table1.csv").is_file()


def test_killed_run_resumes_without_redoing_finished_cases(tmp_path):
    # One job at a time: after its first case (about 1 s) a shard writes its other two within 0.1 s (faster
    # than a poll), and the next shard's job takes seconds to start, so the kill lands after one shard.
    # With two cores both shards could finish between two polls (CI of stop 33).
    cases = tmp_path / RESULTS / "cases"
    proc = subprocess.Popen(_cmd(tmp_path, "--cores", "1", "dataset"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 600
    try:
        while time.time() < deadline and len(list(cases.glob("*/simulate.json"))) < 2:
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finished = {int(p.parent.name) for p in cases.glob("*/simulate.json")}
    assert 2 <= len(finished) < 6, "the kill came too late to test a resume"
    assert _snakemake(tmp_path, "--unlock").returncode == 0  # a killed Snakemake leaves its lock behind
    rerun = _snakemake(tmp_path, "dataset")
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    redone = set()
    skipped = set()
    for shard in (0, 1):
        m = _manifest(tmp_path, "simulate", shard)
        redone |= {int(c) for c in m["seconds"]}
        skipped |= set(m["skipped"])
    assert finished <= skipped and not finished & redone
    assert redone | skipped == set(range(6))
