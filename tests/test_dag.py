"""The whole DAG on config/test.yaml in a temporary folder: report and metrics exist, numbers are finite."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO

pytestmark = pytest.mark.dag


def _snakemake(workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(REPO / "config/test.yaml"), "--cores", "2", "--keep-going", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("dag")
    proc = _snakemake(workdir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir / "results" / "test"


def test_report_and_metrics_exist_with_finite_numbers(finished_run):
    report = finished_run / "report" / "report.html"
    assert report.is_file() and report.stat().st_size > 10_000
    html = report.read_text()
    assert "Table 1" in html and "data:image/png;base64" in html
    metrics = pd.read_csv(finished_run / "tables" / "metrics_main.csv")
    assert {"none", "iy_truth", "iy_spect"} <= set(metrics["method"])
    assert any(m.startswith("dl:") for m in metrics["method"])
    values = metrics[["ssim", "nrmse_pct", "vaa_pct", "ad_pct"]].to_numpy()
    assert np.all(np.isfinite(values))


def test_rerun_has_nothing_to_do(finished_run):
    workdir = finished_run.parents[1]
    proc = _snakemake(workdir, "-n")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr
