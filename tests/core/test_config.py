"""Configuration validation: every shipped config is valid; bad keys give one line naming the key."""

import copy

import pytest
import yaml

from pvc_core.config import load_config, validate_config
from pvc_core.errors import InputError

from conftest import REPO


@pytest.mark.parametrize("name", ["config.yaml", "config/test.yaml", "config/paper.yaml"])
def test_shipped_configs_are_valid(name):
    cfg = load_config(REPO / name)
    assert cfg["grid"]["recon_matrix"] >= 8
    assert cfg["training"]["default"]["architecture"]


def test_defaults_are_filled():
    cfg = validate_config({"seed": 1, "n_cases": 1200})
    assert cfg["reconstruction"]["RR"] == {"iterations": 6, "subsets": 6, "scatter_correction": "tew"}
    assert cfg["reconstruction"]["noRR"] == {"iterations": 10, "subsets": 2, "scatter_correction": "tew"}
    assert cfg["evaluation"]["alpha"] == 0.05
    assert cfg["grid"]["recon_voxel_mm"] == 4.8


def _demo():
    return yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.mark.parametrize("mutate, key", [
    (lambda c: c.__setitem__("n_cases", -2), "n_cases"),
    (lambda c: c.__setitem__("n_cases", "many"), "n_cases"),
    (lambda c: c["training"]["default"].__setitem__("architecture", "resnet"), "training.default.architecture"),
    (lambda c: c["grid"].__setitem__("voxel", 3), "grid.voxel"),
    (lambda c: c.__delitem__("seed"), "seed"),
    (lambda c: c["split"].__setitem__("n_test", 40), "split"),
])
def test_bad_values_name_the_key(mutate, key):
    cfg = _demo()
    mutate(cfg)
    with pytest.raises(InputError) as err:
        validate_config(copy.deepcopy(cfg), "config.yaml")
    msg = str(err.value)
    assert msg.startswith("config.yaml: key '" + key)
    assert "\n" not in msg


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InputError, match="nothere.yaml: configuration file not found"):
        load_config(tmp_path / "nothere.yaml")


@pytest.mark.parametrize("override, named", [
    ("n_cases: -3\n", "key 'n_cases': -3 is less than the minimum of 1"),
    ("training: {default: {architecture: resnet}}\n", "key 'training.default.architecture'"),
    ("phantom: {source: voxel, voxel: {path: /nowhere/p.h33, labels: {0: outside, 1: soft_tissue},\n"
     "  bed_centres_mm: {head: 1, thorax: 2, abdomen: 3}}}\n", "/nowhere/p.h33: voxel phantom file not found"),
])
def test_snakemake_stops_before_any_job_with_one_line(tmp_path, override, named):
    """A bad configuration or a missing input file: exit code 2, one line naming it, nothing written."""
    import subprocess
    import sys

    (tmp_path / "bad.yaml").write_text(override)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--snakefile", str(REPO / "Snakefile"),
                           "--directory", str(tmp_path), "--cores", "1", "--configfile",
                           str(REPO / "config/test.yaml"), str(tmp_path / "bad.yaml")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("dlpvc:")]
    assert len(errors) == 1 and named in errors[0], proc.stderr[-2000:]
    assert not (tmp_path / "results").exists()
