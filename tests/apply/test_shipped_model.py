"""The shipped model (pvc_core/models/dlpvc_shipped, package data): it loads, its card says what it
was trained for and how it scored on its held-out test cases, and `dlpvc apply` uses it when --model
is omitted; DLPVC_MODEL_DIR replaces the shipped models with a folder of the same layout."""

from __future__ import annotations

import json
import shutil
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from pvc_core.apply.model import MODELS_DIR, SHIPPED_MODEL_DIR, find_model, load_apply_model, registry
from pvc_core.config import DEMO_CONFIG_PATH
from pvc_core.errors import InputError
from pvc_core.cli import main
from pvc_core.io import load_image, save_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_shipped_model_is_small_and_its_card_is_complete():
    model = SHIPPED_MODEL_DIR / "model.pt"
    assert model.stat().st_size < 50e6
    card = json.loads((SHIPPED_MODEL_DIR / "model_card.json").read_text())
    tf = card["trained_for"]
    assert tf["voxel_mm"] == [4.8] * 3 and tf["isotope"] == "Lu-177" and tf["dataset"] == "RR_n"
    assert tf["reconstruction"]["method"] == "OSEM" and tf["n_train_cases"] > 100
    metrics = card["test_metrics"]
    assert set(metrics["methods"]) == {"none", "iy_truth", "iy_spect", "dl_pvc"}
    assert set(metrics["dl_pvc_vs"]) == {"none", "iy_truth", "iy_spect"}
    loaded = load_apply_model(None, "cpu")
    assert loaded.cfg["architecture"] == card["model_cfg"]["architecture"] and not loaded.takes_ct


@pytest.mark.parametrize("kind", ["RR", "noRR"])
def test_the_clinic_models_are_the_defaults_and_their_cards_state_their_test_set(kind):
    """[3.4]: one model per reconstruction kind, trained on the randomised clinic chain in rounds
    (init_from recorded), with its test metrics on the fixed 50-case test set (config/clinic_test.yaml)."""
    folder = MODELS_DIR / registry()[kind]
    assert folder.name == f"dlpvc_{kind}" and (folder / "model.pt").stat().st_size < 50e6
    card = json.loads((folder / "model_card.json").read_text())
    tf = card["trained_for"]
    assert tf["dataset"] == f"{kind}_n" and tf["reconstruction"]["name"] == kind and tf["n_train_cases"] > 100
    assert set(tf["randomised"]) >= {"time_per_view_s", "collimator", "orbit", "reconstruction"}
    assert card["training"]["init_from"]["weights_sha256"] and card["model_cfg"]["precision"] == "bf16"
    metrics = card["test_metrics"]
    assert metrics["n_cases"] == 50 and metrics["dataset"] == f"{kind}_n"
    assert set(metrics["methods"]) == {"none", "iy_truth", "dl_pvc"} and metrics["vaa_ratio_to_no_pvc"] > 1
    assert card["domain"]["reconstruction"]["kind"] == kind
    assert load_apply_model(find_model(None, kind), "cpu").cfg["dataset"] == f"{kind}_n"


def test_apply_without_model_uses_the_shipped_one(tmp_path, capsys):
    act = np.zeros((24, 24, 24), np.float32)
    act[8:14, 9:15, 10:16] = 1.0
    act[15:17, 5:7, 5:7] = 3.0
    affine = np.diag([4.8, 4.8, 4.8, 1.0])
    src = save_image(tmp_path / "spect.nii.gz", gaussian_filter(act, 2.0), affine)
    code = main(["apply", "--input", str(src), "--output", str(tmp_path / "out.nii.gz")])
    assert code == 0, capsys.readouterr().err
    side = json.loads((tmp_path / "out.json").read_text())
    assert side["model"]["name"] == "dlpvc_RR" and side["research_use_only"]
    # 27 MBq, no stated reconstruction or scatter correction: outside the card's domain, said so
    assert side["domain"]["status"] == "outside" and len(side["warnings"]) == 1
    assert any("total activity" in r for r in side["domain"]["reasons"])
    out, inp = load_image(tmp_path / "out.nii.gz").data, load_image(src).data
    assert abs(out.sum(dtype=np.float64) / inp.sum(dtype=np.float64) - 1) < 1e-6


# ---- package data: found in the package, whatever the working folder --------------------------------

def test_shipped_models_and_demo_config_are_package_data(repo):
    """Every file of pvc_core/models/ and the demo configuration match pyproject.toml's package-data
    globs (so a wheel carries them), and the repository's config.yaml is the package's demo config."""
    package = repo / "pvc_core"
    assert MODELS_DIR == package / "models" and SHIPPED_MODEL_DIR.parent == MODELS_DIR
    assert DEMO_CONFIG_PATH == package / "config_demo.yaml"
    globs = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["pvc_core"]
    data = [p.relative_to(package).as_posix() for p in sorted(MODELS_DIR.rglob("*")) if p.is_file()]
    assert "models/registry.json" in data and "models/dlpvc_shipped/model.pt" in data
    assert "models/dlpvc_RR/model.pt" in data and "models/dlpvc_noRR/model_card.json" in data
    for name in [*data, "config_demo.yaml", "config_schema.yaml"]:
        assert any(fnmatch(name, g) and name.count("/") == g.count("/") for g in globs), name
    assert (repo / "config.yaml").resolve() == DEMO_CONFIG_PATH.resolve()



def test_simulate_without_config_uses_the_packaged_demo_config(tmp_path, monkeypatch):
    import pvc_core.config as config
    import pvc_core.user_simulation as user_simulation

    read, seen = [], {}
    real_load = config.load_config
    monkeypatch.setattr(config, "load_config", lambda path, *a, **k: read.append(path) or real_load(path, *a, **k))
    monkeypatch.setattr(user_simulation, "simulate_user_phantom", lambda act, mu, out, settings, **k: seen.update(
        settings=settings) or {"total_activity_mbq": 1.0, "counts_per_view": {"photopeak": [1.0]}})
    for name in ("act", "mu"):
        save_image(tmp_path / f"{name}.nii.gz", np.full((4, 4, 4), 0.1, np.float32), np.diag([4.0, 4.0, 4.0, 1.0]))
    assert main(["simulate", "--activity", str(tmp_path / "act.nii.gz"), "--mu", str(tmp_path / "mu.nii.gz"),
                 "--output", str(tmp_path / "sim")]) == 0
    assert read == [DEMO_CONFIG_PATH] and seen["settings"].grid.recon_matrix == 64

def _model_dir(tmp_path: Path, tiny_model: Path, registry: dict | None) -> Path:
    """A DLPVC_MODEL_DIR folder: the tiny model as ``tiny/`` and, unless None, ``registry.json``."""
    folder = tmp_path / "my_models"
    shutil.copytree(tiny_model.parent, folder / "tiny")
    if registry is not None:
        (folder / "registry.json").write_text(json.dumps({"default": registry}))
    return folder


def test_dlpvc_model_dir_replaces_the_shipped_models(tiny_model, tmp_path, capsys, monkeypatch):
    folder = _model_dir(tmp_path, tiny_model, {"RR": "tiny"})
    monkeypatch.setenv("DLPVC_MODEL_DIR", str(folder))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert f"tiny ({folder / 'tiny' / 'model.pt'}, the default for RR reconstructions)" in out
    assert "dlpvc_shipped" not in out
    assert find_model(None, "RR").path == folder / "tiny" / "model.pt"
    src = save_image(tmp_path / "spect.nii.gz", gaussian_filter(np.pad(np.ones((8, 8, 8), np.float32), 8), 2.0),
                     np.diag([4.8, 4.8, 4.8, 1.0]))
    assert main(["apply", "--input", str(src), "--output", str(tmp_path / "out.nii.gz"), "--reconstruction", "RR"]) == 0
    assert json.loads((tmp_path / "out.json").read_text())["model"]["name"] == "tiny"
    capsys.readouterr()
    code = main(["apply", "--input", str(src), "--output", str(tmp_path / "norr.nii.gz"), "--reconstruction", "noRR"])
    err = capsys.readouterr().err
    assert code == 2 and f"no model in DLPVC_MODEL_DIR={folder} for noRR reconstructions" in err and "RR (tiny)" in err
    monkeypatch.setenv("DLPVC_MODEL_DIR", "")  # empty: the shipped models
    assert find_model(None, "RR").path == MODELS_DIR / "dlpvc_RR" / "model.pt"


def test_dlpvc_model_dir_without_registry_lists_its_models_but_has_no_default(tiny_model, tmp_path, capsys,
                                                                              monkeypatch):
    monkeypatch.setenv("DLPVC_MODEL_DIR", str(_model_dir(tmp_path, tiny_model, None)))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tiny (") and "the default for" not in out
    with pytest.raises(InputError, match="no model in DLPVC_MODEL_DIR=.* for RR reconstructions .*exist for: none"):
        find_model(None, None)


@pytest.mark.parametrize("what", ["missing", "file"])
def test_dlpvc_model_dir_that_is_not_a_folder_is_refused(what, tmp_path, capsys, monkeypatch):
    value = tmp_path / "nowhere"
    if what == "file":
        value.write_text("not a folder")
    monkeypatch.setenv("DLPVC_MODEL_DIR", str(value))
    for argv in (["models"], ["apply", "--input", str(tmp_path / "a.nii.gz"), "--output", str(tmp_path / "o.nii.gz")]):
        if argv[0] == "apply":
            save_image(tmp_path / "a.nii.gz", np.ones((8, 8, 8), np.float32), np.diag([4.8, 4.8, 4.8, 1.0]))
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"DLPVC_MODEL_DIR: {value}: " in err[0], err
        assert ("no such folder" if what == "missing" else "not a folder") in err[0]
    assert not (tmp_path / "o.nii.gz").exists()


def test_a_body_gets_the_same_values_in_80_128_and_160_cubed_fields_of_view():
    """[3.1] item 8, with the shipped model through apply's own correction: region means within 2 %
    (instance norm over the empty space gave 8-15 % before the windows on the activity)."""
    from pvc_core.apply.correct import correct_image
    from pvc_core.io import Image

    model = load_apply_model(None, "cpu")
    rng = np.random.default_rng(3)
    n = 64
    z, y, x = np.mgrid[:n, :n, :n]
    c = (n - 1) / 2
    body = np.where(((x - c) / 26) ** 2 + ((y - c) / 18) ** 2 + ((z - c) / 28) ** 2 < 1, 0.05, 0.0)
    regions = []
    for k in range(5):
        p = rng.uniform(20, 44, 3)
        sphere = (z - p[0]) ** 2 + (y - p[1]) ** 2 + (x - p[2]) ** 2 < rng.uniform(3, 6) ** 2
        body[sphere] += rng.uniform(0.3, 1.5)
        regions.append(sphere)
    regions.append(body == 0.05)
    blurred = gaussian_filter(body, 9.0 / 2.355 / 4.8 * 2).astype(np.float32)
    means = []
    for fov in (80, 128, 160):
        lo = (fov - n) // 2
        big = np.zeros((fov,) * 3, np.float32)
        big[lo:lo + n, lo:lo + n, lo:lo + n] = blurred
        affine = np.diag([4.8, 4.8, 4.8, 1.0])
        affine[:3, 3] = -4.8 * lo
        out, _ = correct_image(model, Image(big, affine))
        inner = out[lo:lo + n, lo:lo + n, lo:lo + n]
        means.append([float(inner[r].mean()) for r in regions])
    means = np.asarray(means)
    assert np.max(np.abs(means / means[0] - 1)) < 0.02
