"""dlpvc simulate: bad input gives exit 2 and no output folder; the same seed gives identical files."""

import hashlib

import numpy as np
import pytest
import yaml

from pvc_core.cli import main
from pvc_core.io import save_image
from pvc_core.user_simulation import resample_to_grid
from pvc_core.io.nifti import Image, affine_from_voxel_size

from conftest import REPO


@pytest.fixture
def tiny_config(tmp_path):
    cfg = yaml.safe_load((REPO / "config/test.yaml").read_text())
    cfg.update({"grid": {"recon_matrix": 16, "recon_voxel_mm": 19.2, "sim_factor": 1},
                "camera": {"n_views": 8, "time_per_view_s": 300.0},
                "reconstruction": {"noRR": {"iterations": 1, "subsets": 2}, "RR": {"iterations": 1, "subsets": 2}}})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def phantom(tmp_path):
    shape, vox = (40, 40, 30), 6.0
    x, y, z = np.meshgrid(*[(np.arange(n) - (n - 1) / 2) * vox for n in shape], indexing="ij")
    mu = np.where(x**2 + y**2 < 90**2, 0.135, 0.0).astype(np.float32)
    act = np.where(x**2 + y**2 + z**2 < 30**2, 1.0, 0.0).astype(np.float32)
    save_image(tmp_path / "act.nii.gz", act, vox, "activity MBq/mL")
    save_image(tmp_path / "mu.nii.gz", mu, vox, "mu 1/cm")
    return tmp_path / "act.nii.gz", tmp_path / "mu.nii.gz", act, mu, vox


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.suffix != ".json"}


def test_same_seed_gives_identical_files(tmp_path, tiny_config, phantom):
    act, mu = phantom[:2]
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert main(["simulate", "--activity", str(act), "--mu", str(mu), "--output", str(out),
                     "--config", str(tiny_config), "--seed", "5"]) == 0
        runs.append(_digest(out))
    assert runs[0] == runs[1]
    names = set(runs[0])
    assert {"spect_RR_n.nii.gz", "spect_RR_nf.nii.gz", "spect_noRR_n.nii.gz", "spect_noRR_nf.nii.gz", "truth.nii.gz"} <= names
    assert any(n.startswith("proj_n") for n in names) and any(n.startswith("proj_nf") for n in names)


def test_resampling_conserves_activity(phantom):
    _, _, act, _, vox = phantom
    img = Image(act, affine_from_voxel_size(vox, act.shape))
    out = resample_to_grid(img, (24, 24, 24), 9.6, conserve_total=True)
    assert out.sum() * 9.6**3 == pytest.approx(act.sum() * vox**3, rel=1e-6)


@pytest.mark.parametrize("problem, expect", [
    ("shape", "differs from activity shape"), ("negative", "negative"), ("nan", "NaN"),
    ("hu", "looks like CT numbers"), ("empty", "no activity"), ("missing", "not found")])
def test_bad_input_exit_2_and_no_output(tmp_path, tiny_config, phantom, capsys, problem, expect):
    act_path, mu_path, act, mu, vox = phantom
    bad = tmp_path / "bad.nii.gz"
    if problem == "shape":
        save_image(bad, mu[:-2], vox)
        args = ["--activity", str(act_path), "--mu", str(bad)]
    elif problem == "hu":
        save_image(bad, mu * 7000.0, vox)
        args = ["--activity", str(act_path), "--mu", str(bad)]
    elif problem == "missing":
        args = ["--activity", str(tmp_path / "nothere.nii.gz"), "--mu", str(mu_path)]
        bad = tmp_path / "nothere.nii.gz"
    else:
        a = act.copy()
        if problem == "negative":
            a[20, 20, 15] = -1.0
        elif problem == "nan":
            a[20, 20, 15] = np.nan
        else:
            a[:] = 0.0
        save_image(bad, a, vox)
        args = ["--activity", str(bad), "--mu", str(mu_path)]
    out = tmp_path / "out"
    assert main(["simulate", *args, "--output", str(out), "--config", str(tiny_config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expect in err[0] and bad.name in err[0]
    assert not out.exists()
    assert not list(tmp_path.glob(".dlpvc-simulate-*"))
