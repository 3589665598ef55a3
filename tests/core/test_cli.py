"""dlpvc command line: evaluate's known answers and exit code 2 with one line for bad input.

Every bad input gives exit code 2, exactly one line on stderr naming the option or file, and no
output file; warnings and notes give exit code 0 and one line on stderr each.
"""

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from pvc_core.cli import main
from pvc_core.io import save_image


@pytest.fixture
def volumes(tmp_path):
    truth = np.zeros((12, 12, 12), np.float32)
    truth[3:9, 3:9, 3:9] = 2.0
    save_image(tmp_path / "truth.nii.gz", truth, 4.8, "activity MBq/mL")
    save_image(tmp_path / "same.nii.gz", truth, 4.8, "activity MBq/mL")
    save_image(tmp_path / "plus4.nii.gz", truth * 1.04, 4.8, "activity MBq/mL")
    return tmp_path


def test_evaluate_identical_volumes_json(volumes, capsys):
    assert main(["evaluate", "--image", str(volumes / "same.nii.gz"), "--truth", str(volumes / "truth.nii.gz"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"ssim", "nrmse_pct", "vaa_pct", "ad_pct"}
    assert out["ssim"] == pytest.approx(1.0) and out["nrmse_pct"] == pytest.approx(0.0)
    assert out["vaa_pct"] == pytest.approx(100.0) and out["ad_pct"] == pytest.approx(0.0)


def test_evaluate_four_percent_high(volumes, capsys):
    assert main(["evaluate", "--image", str(volumes / "plus4.nii.gz"), "--truth", str(volumes / "truth.nii.gz"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["vaa_pct"] == pytest.approx(100.0)
    assert out["ad_pct"] == pytest.approx(4.0, rel=1e-5)
    # NRMSE: 0.08 MBq/mL everywhere in the mask over a truth range of 2 -> 4 %
    assert out["nrmse_pct"] == pytest.approx(4.0, rel=1e-5)


def _one_line_error(capsys, argv, expected):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.endswith("\n"), err
    assert expected in err
    return err.strip()


def _one_stderr_line(capsys, argv, code, *expected):
    """Run ``argv``; check the exit code, exactly one line on stderr holding every ``expected``."""
    assert main(argv) == code
    cap = capsys.readouterr()
    lines = cap.err.splitlines()
    assert len(lines) == 1, cap.err
    for text in expected:
        assert text in lines[0], lines[0]
    assert "Traceback" not in cap.err
    return lines[0], cap.out


def test_evaluate_nan_names_file(volumes, capsys):
    bad = np.ones((12, 12, 12), np.float32)
    bad[1, 1, 1] = np.nan
    nib.save(nib.Nifti1Image(bad, np.eye(4)), volumes / "nan.nii.gz")
    err = _one_line_error(capsys, ["evaluate", "--image", str(volumes / "nan.nii.gz"), "--truth", str(volumes / "truth.nii.gz")], "NaN")
    assert "nan.nii.gz" in err


def test_evaluate_wrong_dimensionality_names_file(volumes, capsys):
    nib.save(nib.Nifti1Image(np.ones((12, 12), np.float32), np.eye(4)), volumes / "flat.nii.gz")
    err = _one_line_error(capsys, ["evaluate", "--image", str(volumes / "flat.nii.gz"), "--truth", str(volumes / "truth.nii.gz")], "3-D")
    assert "flat.nii.gz" in err


def test_evaluate_missing_file_and_empty_mask(volumes, capsys):
    _one_line_error(capsys, ["evaluate", "--image", str(volumes / "none.nii.gz"), "--truth", str(volumes / "truth.nii.gz")], "not found")
    save_image(volumes / "empty.nii.gz", np.zeros((12, 12, 12)), 4.8)
    _one_line_error(capsys, ["evaluate", "--image", str(volumes / "same.nii.gz"), "--truth", str(volumes / "truth.nii.gz"),
                             "--mask", str(volumes / "empty.nii.gz")], "mask is empty")


def test_evaluate_shape_mismatch(volumes, capsys):
    save_image(volumes / "small.nii.gz", np.ones((10, 12, 12)), 4.8)
    _one_line_error(capsys, ["evaluate", "--image", str(volumes / "small.nii.gz"), "--truth", str(volumes / "truth.nii.gz")], "differs")


def test_iy_command_restores_a_blurred_cube(tmp_path, capsys):
    from scipy.ndimage import gaussian_filter

    truth = np.full((24, 24, 24), 1.0, np.float32)
    truth[8:16, 8:16, 8:16] = 5.0
    labels = (truth > 1).astype(np.int16)
    blurred = gaussian_filter(truth, 10.0 / 4.0 / 2.3548, mode="nearest")
    save_image(tmp_path / "img.nii.gz", blurred, 4.0)
    save_image(tmp_path / "lab.nii.gz", labels, 4.0, dtype=np.int16)
    assert main(["iy", "--input", str(tmp_path / "img.nii.gz"), "--labels", str(tmp_path / "lab.nii.gz"),
                 "--fwhm-mm", "10", "--output", str(tmp_path / "out.nii.gz")]) == 0
    out = np.asarray(nib.load(tmp_path / "out.nii.gz").dataobj)
    assert out[8:16, 8:16, 8:16].mean() == pytest.approx(5.0, rel=0.03)


# ----------------------------------------------------------------------------- grids (evaluate, iy)

def test_evaluate_refuses_another_voxel_size_naming_both_files(volumes, capsys):
    save_image(volumes / "vox5.nii.gz", np.ones((12, 12, 12)), 5.0)
    err, _ = _one_stderr_line(capsys, ["evaluate", "--image", str(volumes / "vox5.nii.gz"), "--truth", str(volumes / "truth.nii.gz")],
                              2, "vox5.nii.gz", "truth.nii.gz", "voxel size (5, 5, 5) mm differs from (4.8, 4.8, 4.8) mm")
    assert err.startswith("dlpvc evaluate: ")


def test_evaluate_refuses_a_half_voxel_shift(volumes, capsys):
    affine = nib.load(volumes / "truth.nii.gz").affine.copy()
    affine[2, 3] += 2.4
    save_image(volumes / "shifted.nii.gz", np.ones((12, 12, 12)), affine)
    _one_stderr_line(capsys, ["evaluate", "--image", str(volumes / "shifted.nii.gz"), "--truth", str(volumes / "truth.nii.gz")],
                     2, "shifted.nii.gz", "truth.nii.gz", "origin", "0.5")


def test_evaluate_refuses_a_mask_with_a_flipped_axis(volumes, capsys):
    affine = nib.load(volumes / "truth.nii.gz").affine.copy()
    affine[:, 1] *= -1
    save_image(volumes / "flipped.nii.gz", np.ones((12, 12, 12)), affine)
    _one_stderr_line(capsys, ["evaluate", "--image", str(volumes / "same.nii.gz"), "--truth", str(volumes / "truth.nii.gz"),
                              "--mask", str(volumes / "flipped.nii.gz")], 2, "flipped.nii.gz", "truth.nii.gz", "orientation")


def test_evaluate_accepts_a_micron_header_on_the_same_grid(volumes, capsys):
    truth = nib.load(volumes / "truth.nii.gz")
    affine = truth.affine.copy()
    affine[:3, :] *= 1000.0  # the same grid in microns
    img = nib.Nifti1Image(np.asarray(truth.dataobj), affine)
    img.header.set_xyzt_units("micron")
    nib.save(img, volumes / "micron.nii.gz")
    assert main(["evaluate", "--image", str(volumes / "micron.nii.gz"), "--truth", str(volumes / "truth.nii.gz"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nrmse_pct"] == pytest.approx(0.0)


@pytest.fixture
def cube(tmp_path):
    """A blurred 24^3 cube (4 mm voxels) with its labels, as iy's inputs."""
    from scipy.ndimage import gaussian_filter

    truth = np.full((24, 24, 24), 1.0, np.float32)
    truth[8:16, 8:16, 8:16] = 5.0
    save_image(tmp_path / "img.nii.gz", gaussian_filter(truth, 10.0 / 4.0 / 2.3548, mode="nearest"), 4.0)
    save_image(tmp_path / "lab.nii.gz", (truth > 1).astype(np.int16), 4.0, dtype=np.int16)
    return tmp_path


def _iy(cube, *extra, labels="lab.nii.gz", image="img.nii.gz", output="out.nii.gz", fwhm=("10",)):
    return ["iy", "--input", str(cube / image), "--labels", str(cube / labels), "--fwhm-mm", *fwhm,
            "--output", str(cube / output), *extra]


def test_iy_refuses_labels_on_another_grid(cube, capsys):
    save_image(cube / "lab5.nii.gz", np.ones((24, 24, 24)), 5.0, dtype=np.int16)
    _one_stderr_line(capsys, _iy(cube, labels="lab5.nii.gz"), 2, "lab5.nii.gz", "img.nii.gz", "voxel size")
    assert not (cube / "out.nii.gz").exists()


# ----------------------------------------------------------------------------- labels

def test_iy_keeps_labels_above_2_to_the_24_apart(cube, capsys):
    labels = np.zeros((24, 24, 24), np.int32)
    labels[8:16, 8:16, 8:12] = 2**24
    labels[8:16, 8:16, 12:16] = 2**24 + 1  # equal to 2**24 in float32
    save_image(cube / "big.nii.gz", labels, 4.0, dtype=np.int32)
    assert main(_iy(cube, labels="big.nii.gz")) == 0
    assert "3 regions (background 0 and 2 labels)" in capsys.readouterr().out


def test_iy_rounds_float_labels(cube, capsys):
    labels = np.asarray(nib.load(cube / "lab.nii.gz").dataobj).astype(np.float32) * 0.999998
    save_image(cube / "flab.nii.gz", labels, 4.0)
    assert main(_iy(cube, labels="flab.nii.gz")) == 0
    assert "2 regions (background 0 and 1 label)" in capsys.readouterr().out
    out = np.asarray(nib.load(cube / "out.nii.gz").dataobj)
    assert out[8:16, 8:16, 8:16].mean() == pytest.approx(5.0, rel=0.03)


def test_iy_refuses_fractional_and_negative_labels(cube, capsys):
    labels = np.asarray(nib.load(cube / "lab.nii.gz").dataobj).astype(np.float32)
    labels[0, 0, 0] = 0.5
    save_image(cube / "half.nii.gz", labels, 4.0)
    _one_stderr_line(capsys, _iy(cube, labels="half.nii.gz"), 2, "half.nii.gz", "whole numbers")
    labels[0, 0, 0] = -1
    save_image(cube / "neg.nii.gz", labels, 4.0, dtype=np.int16)
    _one_stderr_line(capsys, _iy(cube, labels="neg.nii.gz"), 2, "neg.nii.gz", "negative")
    assert not (cube / "out.nii.gz").exists()


def test_iy_warns_when_the_labels_hold_only_the_background(cube, capsys):
    save_image(cube / "bg.nii.gz", np.zeros((24, 24, 24)), 4.0, dtype=np.int16)
    err, out = _one_stderr_line(capsys, _iy(cube, labels="bg.nii.gz"), 0, "WARNING", "bg.nii.gz", "only the background")
    assert "1 region (background 0 only)" in out and (cube / "out.nii.gz").exists()


# ----------------------------------------------------------------------------- --fwhm-mm, --iterations

def test_iy_fwhm_zero_warns_and_copies_the_input(cube, capsys):
    _one_stderr_line(capsys, _iy(cube, fwhm=("0",)), 0, "WARNING", "--fwhm-mm", "no correction")
    out = np.asarray(nib.load(cube / "out.nii.gz").dataobj)
    assert np.array_equal(out, np.asarray(nib.load(cube / "img.nii.gz").dataobj))


@pytest.mark.parametrize("fwhm", [("-1",), ("10", "-2", "10"), ("nan",), ("ten",), ("10", "10"), ("1e300",)])
def test_iy_refuses_bad_fwhm(cube, capsys, fwhm):
    err, _ = _one_stderr_line(capsys, _iy(cube, fwhm=fwhm), 2, "dlpvc iy: --fwhm-mm: ")
    assert not (cube / "out.nii.gz").exists()


@pytest.mark.parametrize("iterations", ["0", "-3", "2.5", "100000000000000000000"])
def test_iy_refuses_bad_iterations(cube, capsys, iterations):
    _one_stderr_line(capsys, _iy(cube, "--iterations", iterations), 2, "dlpvc iy: --iterations: ", iterations)
    assert not (cube / "out.nii.gz").exists()


# ----------------------------------------------------------------------------- output paths

@pytest.mark.parametrize("output", ["out", "out.txt", "out.nii.gz.bak", "missing/out.nii.gz"])
def test_iy_refuses_bad_output_names_before_computing(cube, capsys, output):
    _one_stderr_line(capsys, _iy(cube, output=output), 2, "dlpvc iy: --output: ", output)
    assert sorted(p.name for p in cube.iterdir()) == ["img.nii.gz", "lab.nii.gz"]


def test_iy_refuses_an_output_that_is_a_folder_or_an_input(cube, capsys):
    (cube / "res.nii.gz").mkdir()
    _one_stderr_line(capsys, _iy(cube, output="res.nii.gz"), 2, "--output", "existing folder")
    before = (cube / "img.nii.gz").read_bytes()
    _one_stderr_line(capsys, _iy(cube, output="img.nii.gz"), 2, "--output", "also an input")
    assert (cube / "img.nii.gz").read_bytes() == before


def test_iy_refuses_an_unwritable_output_folder(cube, capsys, monkeypatch):
    import pvc_core.io.outputs as outputs

    monkeypatch.setattr(outputs.os, "access", lambda path, mode: False)  # root could write anywhere
    _one_stderr_line(capsys, _iy(cube), 2, "--output", "not writable")
    assert not (cube / "out.nii.gz").exists()


# ----------------------------------------------------------------------------- tiny negatives

def test_tiny_negatives_are_clipped_with_a_note(cube, volumes, capsys):
    img = np.asarray(nib.load(cube / "img.nii.gz").dataobj).copy()
    img[0, 0, :4] = -1e-7
    save_image(cube / "neg.nii.gz", img, 4.0)
    _one_stderr_line(capsys, _iy(cube, image="neg.nii.gz"), 0, "note", "neg.nii.gz", "4 voxels")
    assert (cube / "out.nii.gz").exists()
    truth = np.asarray(nib.load(volumes / "truth.nii.gz").dataobj).copy()
    truth[0, 0, 0] = -1e-7
    save_image(volumes / "tiny.nii.gz", truth, 4.8)
    _one_stderr_line(capsys, ["evaluate", "--image", str(volumes / "tiny.nii.gz"), "--truth", str(volumes / "truth.nii.gz")],
                     0, "note", "tiny.nii.gz", "1 voxels")


def test_evaluate_still_refuses_a_truth_with_real_negatives(volumes, capsys):
    truth = np.asarray(nib.load(volumes / "truth.nii.gz").dataobj).copy()
    truth[0, 0, 0] = -0.01
    save_image(volumes / "negtruth.nii.gz", truth, 4.8)
    _one_stderr_line(capsys, ["evaluate", "--image", str(volumes / "same.nii.gz"), "--truth", str(volumes / "negtruth.nii.gz")],
                     2, "negtruth.nii.gz", "negative")


# ----------------------------------------------------------------------------- simulate (checks only)

def _simulate(tmp_path, *extra, output="sim"):
    return ["simulate", "--activity", str(tmp_path / "act.nii.gz"), "--mu", str(tmp_path / "mu.nii.gz"),
            "--output", str(tmp_path / output), *extra]


@pytest.fixture
def phantom(tmp_path):
    save_image(tmp_path / "act.nii.gz", np.ones((8, 8, 8)), 4.0)
    save_image(tmp_path / "mu.nii.gz", np.full((8, 8, 8), 0.1), 4.0)
    return tmp_path


def test_simulate_refuses_a_negative_seed(phantom, capsys):
    _one_stderr_line(capsys, _simulate(phantom, "--seed", "-1"), 2, "dlpvc simulate: --seed: ", "-1")
    assert not (phantom / "sim").exists()


def test_simulate_refuses_an_output_that_is_a_file(phantom, capsys):
    (phantom / "sim").write_text("keep me")
    _one_stderr_line(capsys, _simulate(phantom), 2, "dlpvc simulate: --output: ", "existing file")
    assert (phantom / "sim").read_text() == "keep me"
    (phantom / "full").mkdir()
    (phantom / "full" / "x").write_text("")
    _one_stderr_line(capsys, _simulate(phantom, output="full"), 2, "--output", "not empty")


def test_simulate_refuses_a_missing_config_or_phantom(phantom, capsys):
    _one_stderr_line(capsys, _simulate(phantom, "--config", str(phantom / "none.yaml")), 2, "none.yaml", "not found")
    (phantom / "mu.nii.gz").unlink()
    _one_stderr_line(capsys, _simulate(phantom), 2, "--mu", "mu.nii.gz", "not found")
    assert not (phantom / "sim").exists()


# ----------------------------------------------------------------------------- --version, python -m, usage

def test_version(capsys):
    from pvc_core.cli import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"dlpvc {version()}\n"
    assert version().count(".") >= 1


def test_python_dash_m_runs_the_same_command(tmp_path):
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", "pvc_core", "--version"], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("dlpvc ")
    done = subprocess.run([sys.executable, "-m", "pvc_core", "evaluate", "--image", str(tmp_path / "none.nii.gz"),
                           "--truth", str(tmp_path / "none.nii.gz")], cwd=root, capture_output=True, text=True)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1 and "none.nii.gz" in done.stderr


@pytest.mark.parametrize("argv, expected", [
    ([], "COMMAND"),
    (["frobnicate"], "invalid choice"),
    (["evaluate"], "--image, --truth"),
    (["evaluate", "--image", "a.nii.gz", "--truth", "b.nii.gz", "--alpha", "5"], "--alpha"),
    (["evaluate", "--image", "a.nii.gz", "--truth", "b.nii.gz", "--colour"], "--colour"),
    (["iy", "--input", "a.nii.gz"], "--labels"),
])
def test_usage_errors_are_one_line(capsys, argv, expected):
    _one_stderr_line(capsys, argv, 2, "dlpvc", expected)


# ----------------------------------------------------------------------------- other bad files

def test_bad_files_are_one_line(volumes, cube, capsys):
    (volumes / "text.nii.gz").write_text("this is not an image\n")
    _one_stderr_line(capsys, ["evaluate", "--image", str(volumes / "text.nii.gz"), "--truth", str(volumes / "truth.nii.gz")],
                     2, "text.nii.gz", "cannot read")
    _one_stderr_line(capsys, ["evaluate", "--image", str(volumes), "--truth", str(volumes / "truth.nii.gz")], 2, "folder")
    _one_stderr_line(capsys, ["evaluate", "--image", "", "--truth", str(volumes / "truth.nii.gz")], 2, "image", "empty path")
    _one_stderr_line(capsys, _iy(cube)[:-1] + [""], 2, "--output", "empty path")
    _one_stderr_line(capsys, _iy(cube, labels="none.nii.gz"), 2, "none.nii.gz", "not found")
    nib.save(nib.Nifti1Image(np.ones((24, 24), np.int16), np.eye(4)), cube / "flat.nii.gz")
    _one_stderr_line(capsys, _iy(cube, labels="flat.nii.gz"), 2, "flat.nii.gz", "3-D")
    img = np.asarray(nib.load(cube / "img.nii.gz").dataobj).copy()
    img[3, 3, 3] = np.nan
    save_image(cube / "nan.nii.gz", img, 4.0)
    _one_stderr_line(capsys, _iy(cube, image="nan.nii.gz"), 2, "nan.nii.gz", "NaN")
    save_image(volumes / "const.nii.gz", np.ones((12, 12, 12)), 4.8)
    _one_stderr_line(capsys, ["evaluate", "--image", str(volumes / "same.nii.gz"), "--truth", str(volumes / "const.nii.gz")],
                     2, "const.nii.gz", "constant")
    assert not (cube / "out.nii.gz").exists()
