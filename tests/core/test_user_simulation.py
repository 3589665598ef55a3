"""dlpvc simulate: bad input gives exit 2 and no output folder; the same seed gives identical files;
the phantom is simulated where its affine puts it in the world (RAS+ mm), activity conserved."""

import hashlib
import os

import nibabel as nib
import numpy as np
import pytest
import yaml

from pvc_core.cli import main
from pvc_core.errors import InputError
from pvc_core.geometry import fov_centre_mm, total_activity_mbq
from pvc_core.io import save_image
from pvc_core.specs import GridSpec
from pvc_core.user_simulation import prepare_user_phantom

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
    act_path, mu_path, act, _, vox = phantom
    grid = GridSpec.from_config({"grid": {"recon_matrix": 12, "recon_voxel_mm": 19.2, "sim_factor": 2}})
    p = prepare_user_phantom(act_path, mu_path, grid)
    assert p.activity_sim.shape == (24, 24, 24) and p.truth.shape == (12, 12, 12)
    assert total_activity_mbq(p.activity_sim, p.sim_affine) == pytest.approx(act.sum() * vox**3 / 1000, rel=1e-6)
    assert total_activity_mbq(p.truth, p.recon_affine) == pytest.approx(act.sum() * vox**3 / 1000, rel=1e-6)


@pytest.fixture
def no_projection(monkeypatch):
    """Bad input must be refused before any projection is computed."""
    import pvc_core.spect

    def refuse(*args, **kwargs):
        raise AssertionError("a projection was computed for bad input")

    monkeypatch.setattr(pvc_core.spect, "simulate_projections", refuse)


@pytest.mark.parametrize("problem, expect", [
    ("shape", "differs from activity shape"), ("negative", "negative"), ("nan", "NaN"),
    ("hu", "looks like CT numbers"), ("hu_negative", "looks like CT numbers (HU)"), ("empty", "no activity"),
    ("missing", "not found"), ("outside", "outside the camera's field of view"), ("output_file", "is an existing file")])
def test_bad_input_exit_2_and_no_output(tmp_path, tiny_config, phantom, capsys, no_projection, problem, expect):
    act_path, mu_path, act, mu, vox = phantom
    bad = tmp_path / "bad.nii.gz"
    out = tmp_path / "out"
    args = ["--activity", str(act_path), "--mu", str(mu_path)]
    if problem == "shape":
        save_image(bad, mu[:-2], vox)
        args = ["--activity", str(act_path), "--mu", str(bad)]
    elif problem in ("hu", "hu_negative"):
        hu = mu * 7000.0 if problem == "hu" else np.where(mu > 0, 0.0, -1000.0).astype(np.float32)  # water 0, air -1000
        save_image(bad, hu, vox)
        args = ["--activity", str(act_path), "--mu", str(bad)]
    elif problem == "missing":
        args = ["--activity", str(tmp_path / "nothere.nii.gz"), "--mu", str(mu_path)]
        bad = tmp_path / "nothere.nii.gz"
    elif problem == "outside":  # 54 x 6 mm = 324 mm of activity, the field of view is 16 x 19.2 = 307.2 mm
        save_image(bad, np.ones((54, 40, 30), np.float32), vox)
        save_image(tmp_path / "mu54.nii.gz", np.full((54, 40, 30), 0.1, np.float32), vox)
        args = ["--activity", str(bad), "--mu", str(tmp_path / "mu54.nii.gz")]
    elif problem == "output_file":
        out = bad
        out.write_text("not a folder")
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
    assert main(["simulate", *args, "--output", str(out), "--config", str(tiny_config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expect in err[0] and bad.name in err[0]
    if problem == "output_file":
        assert out.read_text() == "not a folder"
    else:
        assert not out.exists()
    assert not list(tmp_path.glob(".dlpvc-tmp-*")) and not list(tmp_path.glob(".dlpvc-simulate-*"))


def _stored(tmp_path, name, act_ras, mu_ras, affine_ras, lps):
    """Write a phantom given in RAS order either as is or stored LPS (x and y reversed), same world content."""
    act, mu, aff = act_ras, mu_ras, affine_ras.copy()
    if lps:
        n = np.asarray(act_ras.shape)
        act, mu = act_ras[::-1, ::-1, :], mu_ras[::-1, ::-1, :]
        aff = affine_ras @ np.array([[-1, 0, 0, n[0] - 1], [0, -1, 0, n[1] - 1], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    save_image(tmp_path / f"{name}_act.nii.gz", act, aff)
    save_image(tmp_path / f"{name}_mu.nii.gz", mu, aff)
    return tmp_path / f"{name}_act.nii.gz", tmp_path / f"{name}_mu.nii.gz"


def _centroid_mm(data, affine):
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in data.shape], indexing="ij"), axis=-1).reshape(-1, 3)
    w = np.asarray(data, np.float64).ravel()
    return ((idx @ affine[:3, :3].T + affine[:3, 3]) * w[:, None]).sum(0) / w.sum()


@pytest.fixture
def off_centre_phantom():
    """40 x 40 x 30 voxels of 6 mm far from the world origin; a hot sphere 40 mm right, 30 mm posterior, 20 mm up."""
    shape, vox = (40, 40, 30), 6.0
    affine = np.diag([vox, vox, vox, 1.0])
    affine[:3, 3] = [-250.0, 80.0, 900.0]
    centre = fov_centre_mm(shape, affine)
    x, y, z = (g + c for g, c in zip(np.meshgrid(*[(np.arange(n) - (n - 1) / 2) * vox for n in shape], indexing="ij"),
                                        centre))
    dx, dy, dz = x - centre[0], y - centre[1], z - centre[2]
    mu = np.where(dx**2 + dy**2 < 100**2, 0.135, 0.0).astype(np.float32)
    act = np.where(dx**2 + dy**2 < 100**2, 0.01, 0.0).astype(np.float32)
    act[(dx - 40) ** 2 + (dy + 30) ** 2 + (dz - 20) ** 2 < 25**2] = 1.0
    return act, mu, affine


def test_lps_stored_phantom_lines_up_with_the_input_in_world_space(tmp_path, tiny_config, off_centre_phantom):
    act, mu, affine = off_centre_phantom
    act_path, mu_path = _stored(tmp_path, "lps", act, mu, affine, lps=True)
    stored = nib.load(str(act_path))
    assert nib.aff2axcodes(stored.affine) == ("L", "P", "S")
    out = tmp_path / "out"
    assert main(["simulate", "--activity", str(act_path), "--mu", str(mu_path), "--output", str(out),
                 "--config", str(tiny_config)]) == 0
    truth = nib.load(str(out / "truth.nii.gz"))
    assert nib.aff2axcodes(truth.affine) == ("R", "A", "S")
    for name in ("mu.nii.gz", "spect_RR_n.nii.gz", "spect_noRR_nf.nii.gz"):
        assert np.allclose(nib.load(str(out / name)).affine, truth.affine)
    truth_data = np.asarray(truth.dataobj, np.float64)
    hot_in = _centroid_mm(np.where(act > 0.5, act, 0), affine)
    hot_out = _centroid_mm(np.where(truth_data > 0.05, truth_data, 0), truth.affine)  # background 0.01 left out
    assert np.abs(hot_out - hot_in).max() < 19.2  # one reconstruction voxel; mirrored it would be 80 mm off in x
    assert np.allclose(fov_centre_mm(truth.shape, truth.affine), fov_centre_mm(act.shape, affine))
    assert total_activity_mbq(truth_data, truth.affine) == pytest.approx(total_activity_mbq(act, affine), rel=1e-5)


def test_ras_and_lps_storage_give_the_same_truth(tmp_path, off_centre_phantom):
    act, mu, affine = off_centre_phantom
    grid = GridSpec.from_config({"grid": {"recon_matrix": 16, "recon_voxel_mm": 19.2, "sim_factor": 2}})
    ras = prepare_user_phantom(*_stored(tmp_path, "ras", act, mu, affine, lps=False), grid)
    lps = prepare_user_phantom(*_stored(tmp_path, "lps", act, mu, affine, lps=True), grid)
    assert np.array_equal(ras.recon_affine, lps.recon_affine) and np.array_equal(ras.sim_affine, lps.sim_affine)
    assert np.allclose(ras.truth, lps.truth, rtol=1e-6, atol=1e-9)
    assert np.allclose(ras.mu_sim, lps.mu_sim, rtol=1e-6, atol=1e-9)
    total = total_activity_mbq(act, affine)
    for p in (ras, lps):
        assert total_activity_mbq(p.truth, p.recon_affine) == pytest.approx(total, rel=1e-5)
        assert p.outside_fraction < 1e-12


def test_phantom_exactly_the_field_of_view_is_accepted(tmp_path):
    """64 x 9.6 mm = 128 x 4.8 mm = 614.4 mm, activity up to the edges: nothing falls outside."""
    grid = GridSpec.from_config({"grid": {"recon_matrix": 128, "recon_voxel_mm": 4.8, "sim_factor": 1}})
    ones = np.ones((64, 64, 64), np.float32)
    affine = np.diag([9.6, 9.6, 9.6, 1.0])
    affine[:3, 3] = [-300.0, 12.3, 45.6]
    act_path, mu_path = _stored(tmp_path, "fov", ones, ones * 0.1, affine, lps=True)
    p = prepare_user_phantom(act_path, mu_path, grid)
    assert p.outside_fraction < 1e-12
    assert total_activity_mbq(p.truth, p.recon_affine) == pytest.approx(614.4**3 / 1000, rel=1e-6)
    bigger = np.ones((65, 64, 64), np.float32)
    act_path, mu_path = _stored(tmp_path, "big", bigger, bigger * 0.1, affine, lps=False)
    with pytest.raises(InputError, match="outside the camera's field of view") as err:
        prepare_user_phantom(act_path, mu_path, grid)
    assert "big_act.nii.gz" in str(err.value)


def test_mu_in_per_mm_is_a_warning_not_an_error(phantom, tmp_path):
    act_path, _, _, mu, vox = phantom
    save_image(tmp_path / "mu_mm.nii.gz", mu / 10.0, vox)  # 0.0135 1/mm
    warnings = []
    grid = GridSpec.from_config({"grid": {"recon_matrix": 16, "recon_voxel_mm": 19.2, "sim_factor": 1}})
    p = prepare_user_phantom(act_path, tmp_path / "mu_mm.nii.gz", grid, warn=warnings.append)
    assert len(warnings) == 1 and "1/mm" in warnings[0] and "mu_mm.nii.gz" in warnings[0]
    assert p.mu_recon.max() > 0


def test_output_folder_mode_follows_the_umask(tmp_path, tiny_config, phantom):
    act, mu = phantom[:2]
    old = os.umask(0o022)
    try:
        out = tmp_path / "out"
        assert main(["simulate", "--activity", str(act), "--mu", str(mu), "--output", str(out),
                     "--config", str(tiny_config)]) == 0
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o755
