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
    assert cfg["reconstruction"]["RR"] == {"iterations": 6, "subsets": 6}
    assert cfg["reconstruction"]["noRR"] == {"iterations": 10, "subsets": 2}
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
