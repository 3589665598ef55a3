"""A changed setting redoes exactly its dependants, on config/test.yaml, starting from a copy of the
finished run of test_dag.py (the session fixture ``faulty_then_rerun``).

After one full run: RR iterations changed -> Snakemake and ``dlpvc plan`` plan RR and what
depends on it, never noRR; a report setting -> the report alone; the time per view doubled ->
simulate, noise, both reconstructions and the training are redone for every case (run for real up
to the training), every phantom file stays byte-identical, and what is left to plan is downstream.
"""

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO
from pvc_core.config import load_config
from pvc_core.pipeline.models import training_name

pytestmark = pytest.mark.dag
RESULTS = Path("results") / "test"
PHANTOM_FILES = ("truth_sim.nii.gz", "mu_sim.nii.gz", "labels_sim.nii.gz", "truth.nii.gz", "mu.nii.gz")


def _snakemake(workdir: Path, config: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(config), "--cores", "2", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1200)


def _planned_jobs(workdir: Path, config: Path) -> dict[str, int]:
    """Rule -> number of jobs from a dry run's job table ({} when nothing is to be done)."""
    proc = _snakemake(workdir, config, "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


def _plan(workdir: Path, config: Path) -> dict[str, str]:
    proc = subprocess.run([sys.executable, "-m", "pvc_core", "plan", "--configfile", str(config), "--directory",
                           str(workdir)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return dict(line.split(": ", 1) for line in proc.stdout.splitlines())


def _variant(tmp_path: Path, name: str, change=None) -> Path:
    cfg = yaml.safe_load((REPO / "config/test.yaml").read_text())
    if change:
        change(cfg)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _phantom_digests(workdir: Path) -> dict[str, str]:
    cases = workdir / RESULTS / "cases"
    return {f"{c.name}/{f}": hashlib.sha256((c / f).read_bytes()).hexdigest()
            for c in sorted(cases.iterdir()) for f in PHANTOM_FILES}


@pytest.fixture(scope="module")
def finished(faulty_then_rerun, tmp_path_factory):
    """A copy of test_dag.py's finished run (files, modification times and Snakemake's metadata)."""
    wd, cfgs = tmp_path_factory.mktemp("fp") / "run", tmp_path_factory.mktemp("fp_configs")
    shutil.copytree(faulty_then_rerun[0], wd, symlinks=True)
    _variant(cfgs, "base")
    return wd, cfgs


def test_unchanged_configuration_plans_nothing(finished):
    wd, cfgs = finished
    assert _planned_jobs(wd, cfgs / "base.yaml") == {}
    assert all(v.startswith("nothing to redo") for v in _plan(wd, cfgs / "base.yaml").values())


def test_rr_iterations_plan_rr_and_its_dependants_not_norr(finished):
    wd, cfgs = finished
    config = _variant(cfgs, "rr", lambda c: c["reconstruction"]["RR"].update(iterations=3))
    jobs = _planned_jobs(wd, config)
    # RR_n and RR_nf: their models, IY and deconvolutions; the studies use the default model (RR_n)
    assert jobs == {"calibrate_reconstruction": 1, "reconstruct_osem": 2, "measure_resolution": 1, "train_network": 2,
                    "predict_test_cases": 2, "correct_iterative_yang": 2, "correct_deconvolution": 2, "run_study": 2,
                    "evaluate_methods": 1, "make_report": 1, "all": 1}
    proc = _snakemake(wd, config, "-n")
    assert "recon=noRR" not in proc.stdout and "dataset=noRR" not in proc.stdout
    plan = _plan(wd, config)
    assert plan["recon_RR"] == "redo 6 of 6 cases (6 changed: reconstruction.RR.iterations)"
    for stage in ("phantom", "simulate", "noise", "recon_noRR", "calibration_noRR", "split", "resolution_noRR",
                  "iy_noRR_n", "iy_noRR_nf", "deconv_noRR_n", "deconv_noRR_nf"):
        assert plan[stage].startswith("nothing to redo"), (stage, plan[stage])
    assert "reconstruction.RR.iterations" in plan["iy_RR_n"] and "reconstruction.RR.iterations" in plan["report"]


def test_report_setting_plans_the_report_only(finished):
    wd, cfgs = finished
    config = _variant(cfgs, "report", lambda c: c.update(report={"n_example_cases": 1}))
    assert _planned_jobs(wd, config) == {"make_report": 1, "all": 1}
    plan = _plan(wd, config)
    assert plan["report"] == "redo (1 changed: report.n_example_cases)"
    assert sum(not v.startswith("nothing to redo") for v in plan.values()) == 1


def test_staged_sweep_reuses_the_default_training_and_writes_its_stage_tables(finished):
    """sum vs max and TTA are inference-only: the sweep trains nothing new after the main run."""
    wd, cfgs = finished
    config = _variant(cfgs, "sweep", lambda c: c["training"].update(
        sweep={"normalisations": ["sum", "max"], "extras": {"tta": {"tta": True}}}))
    proc = _snakemake(wd, config, "-n", "sweep")
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = (proc.stdout + proc.stderr).split("Job stats:")[1].split("total")[0]
    jobs = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}
    assert jobs == {"predict_test_cases": 2, "evaluate_methods": 1, "compare_sweep_stages": 1, "sweep": 1}
    proc = _snakemake(wd, config, "sweep")
    assert proc.returncode == 0, proc.stderr[-4000:]
    for stage in ("normalisation", "extras"):
        t = pd.read_csv(wd / RESULTS / "tables" / f"sweep_{stage}.csv")
        assert len(t) == 4 and set(t.metric) == {"ssim", "nrmse_pct", "vaa_pct", "abs_ad_pct"}, stage
        assert (t.n > 0).all() and (t.p_holm >= t.p).all()
    extras = pd.read_csv(wd / RESULTS / "tables" / "sweep_extras.csv")
    assert set(extras.variant_a) == {"default"} and set(extras.variant_b) == {"tta"}
    # the sum model conserves the SPECT's total: its activity deviation is that of no PVC, case by case
    m = pd.read_csv(wd / RESULTS / "tables" / "metrics_sweep.csv")
    m = m[m.dataset == "RR_n"]
    none = m[m.method == "none"].set_index("case")["ad_pct"]
    sum_model = extras.model_a.iloc[0]
    assert np.allclose(m[m.method == f"dl:{sum_model}"].set_index("case")["ad_pct"].reindex(none.index), none, atol=1e-4)


def test_doubled_time_per_view_redoes_the_acquisition_and_after_keeps_phantoms(finished):
    wd, cfgs = finished
    config = _variant(cfgs, "time", lambda c: c["camera"].update(time_per_view_s=2 * c["camera"]["time_per_view_s"]))
    phantoms = _phantom_digests(wd)
    phantom_manifest = wd / RESULTS / "manifests" / "phantom" / "shard0000.json"
    phantom_mtime = phantom_manifest.stat().st_mtime_ns
    plan = _plan(wd, config)
    assert plan["phantom"].startswith("nothing to redo")
    for stage in ("simulate", "noise", "recon_noRR", "recon_RR"):
        assert plan[stage] == "redo 6 of 6 cases (6 changed: camera.time_per_view_s)", plan[stage]
    proc = _snakemake(wd, config, "dataset", "train")  # for real up to the trainings (all four datasets'); the rest planned below
    assert proc.returncode == 0, proc.stderr[-4000:]
    for stage in ("simulate", "noise", "recon_noRR", "recon_RR"):
        redone = set()
        for shard in (0, 1):
            m = json.loads((wd / RESULTS / "manifests" / stage / f"shard{shard:04d}.json").read_text())
            redone |= {int(c) for c in m["seconds"]}
        assert redone == set(range(6)), stage
    assert phantom_manifest.stat().st_mtime_ns == phantom_mtime  # the phantom job did not run again
    assert _phantom_digests(wd) == phantoms
    training = training_name(load_config(config)["training"]["default"])
    record = json.loads((wd / RESULTS / "fingerprints" / f"train_{training}.json").read_text())
    assert record["depends_on"]["camera.time_per_view_s"] == 300.0
    # what is left is downstream of the new reconstructions and model, and nothing upstream
    assert _planned_jobs(wd, config) == {"measure_resolution": 2, "predict_test_cases": 4,
                                         "correct_iterative_yang": 4,
                                         "correct_deconvolution": 4, "run_study": 2, "evaluate_methods": 1,
                                         "make_report": 1, "all": 1}
    plan = _plan(wd, config)
    for stage in ("phantom", "simulate", "noise", "recon_noRR", "recon_RR", "calibration_RR", f"train_{training}"):
        assert plan[stage].startswith("nothing to redo"), (stage, plan[stage])
