"""dlpvc command line: evaluate's known answers and exit code 2 with one line for bad input."""

import json

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
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and expected in err
    return err


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
