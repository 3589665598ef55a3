"""[3.4]'s test-set evaluator (benchmarks/eval_test_set.py) on a tiny results folder written here:
two 16^3 test cases (4.8 mm) whose image is the blurred truth, corrected by the shipped model."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import eval_test_set as ets

from pvc_core.io import affine_from_voxel_size, save_image

N, VOXEL_MM = 16, 4.8


def _write_case(folder: Path, seed: int) -> None:
    """A hot cube in a warm block (MBq/mL) and the image: the truth blurred by a 9 mm FWHM Gaussian."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((N,) * 3, np.float32)
    truth[3:13, 3:13, 3:13] = 0.2
    a, b = rng.integers(5, 8, 3), rng.integers(3, 5)
    truth[a[0]:a[0] + b, a[1]:a[1] + b, a[2]:a[2] + b] = 2.0
    image = ndimage.gaussian_filter(truth, 9.0 / 2.3548 / VOXEL_MM, mode="constant").astype(np.float32)
    affine = affine_from_voxel_size(VOXEL_MM, truth.shape)
    folder.mkdir(parents=True)
    save_image(folder / "truth.nii.gz", truth, affine)
    save_image(folder / "spect_RR_n.nii.gz", image, affine)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eval")
    results = root / "results"
    for case in (2, 5):
        _write_case(results / "cases" / f"{case:05d}", case)
    (results / "splits.json").write_text(json.dumps({"test": [2, 5], "validation": [0, 1], "train": [3, 4, 6, 7]}))
    (root / "config.yaml").write_text(f"seed: 1\nn_cases: 8\nresults_dir: {results}\n"
                                      "split: {n_test: 2, n_validation: 2}\n")
    return root


def _args(root: Path, *extra: str) -> list[str]:
    return [str(root / "config.yaml"), "--reconstruction", "RR", "--out", str(root / "out"), *extra]


def _rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_summary_cache_and_learning_curve(run_dir, capsys):
    """Rows none / iy_truth / each model, none's ratios exactly 1, one cached result per (case,
    method key), and a second call that computes nothing."""
    argv = _args(run_dir, "--model", "shipped=shipped:0", "--model", "again=shipped:7")
    assert ets.main(argv) == 0
    first = capsys.readouterr().out
    summary = _rows(run_dir / "out" / "summary.csv")
    assert [r["label"] for r in summary] == ["none", "iy_truth", "shipped", "again"]
    none = summary[0]
    assert float(none["vaa_ratio_none"]) == 1.0 and float(none["nrmse_ratio_none"]) == 1.0
    assert none["vaa_p_vs_none"] == ""                      # not tested against itself
    key = summary[2]["method"]
    assert len(key) == 12 and summary[3]["method"] == key   # the weights' SHA-256, shared by both labels
    assert float(summary[2]["vaa_p_vs_none"]) == pytest.approx(0.5)  # exact test, two pairs
    assert len(_rows(run_dir / "out" / "per_case.csv")) == 2 * 4
    cached = sorted(str(p.relative_to(run_dir / "out" / "cases")) for p in (run_dir / "out" / "cases").rglob("*.json"))
    assert cached == sorted(f"{c}/{m}.json" for c in ("00002", "00005") for m in ("none", "iy_truth", key))
    assert json.loads((run_dir / "out" / "cases" / "00002" / "iy_truth.json").read_text())["fwhm_mm"] > 3.0
    assert "computed 6 of 8" in first
    assert [r["cases_seen"] for r in _rows(run_dir / "out" / "learning_curve.csv")] == ["0", "7"]
    assert "Learning curve" in first and "Table 1 (RR_n" in first and "| DL-PVC | 0.947 |" in first
    goals = [line for line in first.splitlines() if line.startswith("- again:")]
    assert len(goals) == 4 and all(line.endswith((": met", ": NOT met")) for line in goals)   # 2 ratios, iy_truth, shipped
    card = json.loads((run_dir / "out" / "test_metrics_again.json").read_text())   # what ship_model.py takes
    assert card["n_cases"] == 2 and set(card["methods"]) == {"none", "iy_truth", "dl_pvc"}
    assert card["vaa_ratio_to_no_pvc"] == pytest.approx(float(summary[3]["vaa_ratio_none"]), rel=1e-5)  # CSV: 6 digits
    assert card["methods"]["none"]["vaa_pct_mean"] == pytest.approx(float(none["vaa_pct"]), rel=1e-5)
    stamps = {p: p.stat().st_mtime_ns for p in (run_dir / "out" / "cases").rglob("*.json")}

    assert ets.main(argv) == 0
    assert "computed 0 of 8" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in (run_dir / "out" / "cases").rglob("*.json")} == stamps


@pytest.mark.parametrize(("extra", "names"), [
    (["--model", "shipped"], "--model"),                               # no LABEL=
    (["--model", "x=nowhere/model.pt:3"], "nowhere/model.pt"),          # missing file
    (["--model", "none=shipped"], "--model"),                          # reserved label
    (["--model", "a=shipped", "--model", "a=shipped"], "--model"),     # label twice
])
def test_bad_model_is_one_line_and_exit_2(run_dir, capsys, extra, names):
    assert ets.main(_args(run_dir, *extra)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and names in err and "Traceback" not in err


def test_bad_reconstruction_config_and_results_dir(run_dir, tmp_path, capsys):
    assert ets.main([str(run_dir / "config.yaml"), "--reconstruction", "XX", "--model", "a=shipped"]) == 2
    assert "--reconstruction" in capsys.readouterr().err
    assert ets.main([str(tmp_path / "missing.yaml"), "--reconstruction", "RR", "--model", "a=shipped"]) == 2
    assert "missing.yaml" in capsys.readouterr().err
    config = tmp_path / "c.yaml"
    config.write_text(f"seed: 1\nn_cases: 8\nresults_dir: {tmp_path / 'gone'}\nsplit: {{n_test: 2, n_validation: 2}}\n")
    assert ets.main([str(config), "--reconstruction", "RR", "--model", "a=shipped"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "gone" in err
    (tmp_path / "gone").mkdir()
    (tmp_path / "gone" / "splits.json").write_text('{"test": [9]}')   # listed, never built
    assert ets.main([str(config), "--reconstruction", "RR", "--model", "a=shipped"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none of the 1 test cases" in err


def test_uptake_groups_read_each_cases_phantom(tmp_path):
    for case, model in ((1, "patient"), (2, "shapes"), (3, "patient"), (4, None)):
        folder = tmp_path / "cases" / f"{case:05d}"
        folder.mkdir(parents=True)
        (folder / "phantom.json").write_text(json.dumps({"uptake_model": model} if model else {}))
    assert ets.uptake_groups(tmp_path, [1, 2, 3, 4, 5]) == {"patient": [1, 3], "shapes": [2]}


def test_a_shipped_model_is_named_by_its_folder():
    from pvc_core.apply.model import MODELS_DIR
    from pvc_core.apply.plan import content_digest

    arg = ets.parse_model("first=dlpvc_shipped:0")
    assert arg.weights == MODELS_DIR / "dlpvc_shipped" / "model.pt" and arg.cases_seen == 0
    assert arg.key == content_digest(MODELS_DIR / "dlpvc_shipped" / "model.pt")[:12]
