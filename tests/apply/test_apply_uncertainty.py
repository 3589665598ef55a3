"""``dlpvc apply --uncertainty`` ([3.4] item 3): the spread of the 16 orbit symmetries, known answers.

An exactly equivariant network (the untrained U-Net: output = input) gives SD 0 and CV 0; a
network that is not (a fixed random operator) gives SD > 0; the corrected image is the one written
without ``--uncertainty``, byte for byte; the SD image has the input's affine; the regions' totals
are the corrected image's region sums; existing files and bad labels are refused in one line, exit
2, nothing written. Tiny networks, seconds.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from pvc_core.apply.domain import domain_from_trained_for
from pvc_core.apply.fov import blend_windows, predict_fov_invariant
from pvc_core.apply.plan import uncertainty_paths
from pvc_core.apply.uncertainty import REGION_COLUMNS, SymmetrySpread, predict_symmetries
from pvc_core.cli import main
from pvc_core.io import load_image, save_image
from pvc_core.networks import build_network
from pvc_core.training.predict import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, predict_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")
VOXEL = 4.8


def _affine(voxel: float = VOXEL) -> np.ndarray:
    a = np.diag([voxel, voxel, voxel, 1.0])
    a[:3, 3] = (-60.0, -50.0, 20.0)
    return a


def _body() -> np.ndarray:
    """A warm box and a hot box, blurred, on 36 x 30 x 26 voxels (MBq/mL)."""
    a = np.zeros((36, 30, 26), np.float32)
    a[8:24, 6:20, 5:19] = 1.0
    a[25:31, 20:27, 10:16] = 5.0
    return gaussian_filter(a, 1.5).astype(np.float32)


def _labels() -> np.ndarray:
    lab = np.zeros((36, 30, 26), np.int16)
    lab[8:24, 6:20, 5:19] = 1
    lab[25:31, 20:27, 10:16] = 7
    return lab


def _model(folder: Path, gain: float, tta: bool) -> Path:
    """A dlpvc model.pt with a card: the untrained U-Net with ``gain`` 0 is the identity (exactly
    equivariant), any other gain a fixed random operator (not equivariant)."""
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    cfg = {"architecture": "unet", "channels": [4, 8], "input": "full", "normalisation": "sum", "tta": tta,
           "attenuation_channel": False}
    net = build_network("unet", cfg["channels"])
    with torch.no_grad():
        net.gain.fill_(gain)
    torch.save({"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, "model_cfg": cfg,
                "network_kwargs": {}, "state_dict": net.state_dict()}, folder / "model.pt")
    trained_for = {"voxel_mm": [VOXEL] * 3, "matrix": [32] * 3, "isotope": "Lu-177",
                   "reconstruction": {"name": "RR", "method": "OSEM", "iterations": 6, "subsets": 6},
                   "count_level": {"total_activity_mbq": [1.0, 5000.0]}}
    card = {"model_cfg": cfg, "trained_for": trained_for, "domain": domain_from_trained_for(trained_for)}
    (folder / "model_card.json").write_text(json.dumps(card))
    return folder / "model.pt"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("uncertainty_models")
    return {"identity": _model(root / "identity", 0.0, False), "plain": _model(root / "plain", 0.5, False),
            "tta": _model(root / "tta", 0.5, True)}


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    (tmp_path / "out").mkdir()
    return {"spect": save_image(tmp_path / "in" / "spect.nii.gz", _body(), _affine(), "activity MBq/mL"),
            "labels": save_image(tmp_path / "in" / "labels.nii.gz", _labels(), _affine(), dtype=np.int16),
            "out": tmp_path / "out" / "corrected.nii.gz"}


def _apply(capsys, *argv) -> tuple[int, str, list[str]]:
    code = main(["apply", "--reconstruction", "RR", "--device", "cpu", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()


def _regions_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0].keys()) == REGION_COLUMNS
    return rows


# ---- known answers ------------------------------------------------------------------------------

def test_an_equivariant_model_has_sd_0_everywhere_and_cv_0(models, files, capsys):
    code, out, err = _apply(capsys, "--input", files["spect"], "--output", files["out"], "--model", models["identity"],
                            "--uncertainty", "--labels", files["labels"])
    assert code == 0, err
    paths = uncertainty_paths(files["out"], "nifti", regions=True)
    assert paths.sd.name == "corrected_sd.nii.gz" and paths.sd_sidecar.name == "corrected_sd.json"
    assert paths.regions.name == "corrected_regions.csv"
    sd = load_image(paths.sd)
    assert sd.data.dtype == np.float32 and np.all(sd.data == 0)
    np.testing.assert_array_equal(sd.affine, load_image(files["spect"]).affine)
    rows = _regions_csv(paths.regions)
    assert [int(r["label"]) for r in rows] == [1, 7]
    assert all(float(r["sd_mbq"]) == 0 and float(r["cv"]) == 0 for r in rows)
    assert "SD of 16 symmetries" in out and any("16x the network time" in line for line in err)


@pytest.mark.parametrize("which", ["plain", "tta"])
def test_a_model_that_is_not_equivariant_has_sd_above_0_and_the_same_corrected_image(which, models, files,
                                                                                     tmp_path, capsys):
    plain_out = tmp_path / "out" / "without.nii.gz"
    assert _apply(capsys, "--input", files["spect"], "--output", plain_out, "--model", models[which])[0] == 0
    code, _, err = _apply(capsys, "--input", files["spect"], "--output", files["out"], "--model", models[which],
                          "--uncertainty", "--labels", files["labels"])
    assert code == 0, err
    assert files["out"].read_bytes() == plain_out.read_bytes()  # the corrected image is unchanged
    paths = uncertainty_paths(files["out"], "nifti", regions=True)
    sd = load_image(paths.sd)
    assert float(sd.data.max()) > 1e-3 * float(_body().max())
    assert all(float(r["cv"]) > 0 for r in _regions_csv(paths.regions))
    side = json.loads(paths.sd_sidecar.read_text())
    assert side["derived"] is True and side["unit"] == "MBq/mL" and side["n_symmetries"] == 16
    assert len(side["symmetries"]) == 16 and side["derived_from"]["corrected_image"] == str(files["out"])
    assert side["model"]["sha256"] and "lower bound" in side["reading"]
    assert side["cost"]["time_factor_of_the_network"] == (1.0 if which == "tta" else 16.0)
    main_side = json.loads(files["out"].with_name("corrected.json").read_text())
    assert main_side["uncertainty"]["sd"] == str(paths.sd)
    assert abs(main_side["output_total_mbq"] / main_side["input_total_mbq"] - 1) < 1e-6


def test_region_totals_are_the_corrected_images_region_sums(models, files, capsys):
    code, _, err = _apply(capsys, "--input", files["spect"], "--output", files["out"], "--model", models["plain"],
                          "--uncertainty", "--labels", files["labels"])
    assert code == 0, err
    corrected = load_image(files["out"])
    voxel_ml = corrected.voxel_volume_ml
    rows = _regions_csv(uncertainty_paths(files["out"], "nifti", regions=True).regions)
    side = json.loads(files["out"].with_name("corrected.json").read_text())["uncertainty"]["regions"]
    for row, entry in zip(rows, side):
        mask = _labels() == int(row["label"])
        expected = float(corrected.data[mask].sum(dtype=np.float64)) * voxel_ml
        assert float(row["activity_mbq"]) == pytest.approx(expected, rel=1e-6)
        assert int(row["voxels"]) == int(mask.sum())
        assert float(row["volume_ml"]) == pytest.approx(mask.sum() * voxel_ml, rel=1e-12)
        assert float(row["cv"]) == pytest.approx(entry["sd_mbq"] / entry["mean_mbq"], rel=1e-12)


def test_symmetry_spread_is_the_population_sd_and_the_region_totals():
    rng = np.random.default_rng(3)
    images = rng.random((5, 4, 4, 4))
    labels = np.zeros((4, 4, 4), np.int32)
    labels[:2] = 3
    labels[3, 3, 3] = 9
    spread = SymmetrySpread((4, 4, 4), 0.5, labels)
    for image in images:
        spread.add(image)
    np.testing.assert_allclose(spread.sd(), images.std(axis=0), rtol=1e-6)
    rows = spread.regions(images[0])
    assert [r.label for r in rows] == [3, 9]
    totals = images[:, :2].sum(axis=(1, 2, 3)) * 0.5
    assert rows[0].sd_mbq == pytest.approx(totals.std()) and rows[0].mean_mbq == pytest.approx(totals.mean())
    assert rows[0].activity_mbq == pytest.approx(images[0, :2].sum() * 0.5) and rows[0].volume_ml == 16.0


@pytest.mark.parametrize("tta", [False, True])
def test_the_first_channel_is_predict_image_and_the_windows_blend_as_before(tta):
    torch.manual_seed(1)
    net = build_network("unet", [4, 8]).eval()
    with torch.no_grad():
        net.gain.fill_(0.3)
    cfg = {"architecture": "unet", "channels": [4, 8], "input": "full", "normalisation": "sum", "tta": tta}
    x = _body()[:16, :16, :16] + 0.01
    both = predict_symmetries(net, cfg, x)
    assert both.shape == (17, 16, 16, 16)
    np.testing.assert_array_equal(both[0], predict_image(net, cfg, x))
    blended = blend_windows(lambda v, m: predict_symmetries(net, cfg, v, mu_cm=m), 17, cfg, _body(), (16, 16, 16))
    np.testing.assert_array_equal(blended[0], predict_fov_invariant(net, cfg, _body(), (16, 16, 16)))
    assert np.abs(blended[1:] - blended[1]).max() > 0


# ---- nothing changes without it; refusals -------------------------------------------------------

def test_without_uncertainty_nothing_else_is_written_and_the_sidecar_has_no_uncertainty(models, files, capsys):
    code, out, err = _apply(capsys, "--input", files["spect"], "--output", files["out"], "--model", models["plain"])
    assert code == 0, err
    assert sorted(p.name for p in files["out"].parent.iterdir()) == ["corrected.json", "corrected.nii.gz"]
    assert "uncertainty" not in json.loads(files["out"].with_name("corrected.json").read_text())
    assert "SD of" not in out


@pytest.mark.parametrize("existing", ["sd", "sd_sidecar", "regions"])
def test_an_existing_uncertainty_file_is_refused_without_overwrite(existing, models, files, capsys):
    paths = uncertainty_paths(files["out"], "nifti", regions=True)
    target = getattr(paths, existing)
    target.write_bytes(b"the user's file")
    argv = ["--input", files["spect"], "--output", files["out"], "--model", models["identity"], "--uncertainty",
            "--labels", files["labels"]]
    code, _, err = _apply(capsys, *argv)
    assert code == 2 and len(err) == 1 and str(target) in err[0] and "--overwrite" in err[0], err
    assert sorted(p.name for p in files["out"].parent.iterdir()) == [target.name]
    assert target.read_bytes() == b"the user's file"
    code, _, err = _apply(capsys, *argv, "--overwrite")
    assert code == 0, err
    assert all(p.exists() for p in paths.all) and target.read_bytes() != b"the user's file"


def _other_grid(tmp: Path) -> list[str]:
    return ["--labels", str(save_image(tmp / "lab_grid.nii.gz", _labels()[:, :, :20], _affine(), dtype=np.int16))]


def _shifted(tmp: Path) -> list[str]:
    a = _affine()
    a[:3, 3] += 2.0
    return ["--labels", str(save_image(tmp / "lab_shift.nii.gz", _labels(), a, dtype=np.int16))]


def _background_only(tmp: Path) -> list[str]:
    return ["--labels", str(save_image(tmp / "lab_zero.nii.gz", np.zeros((36, 30, 26), np.int16), _affine(),
                                       dtype=np.int16))]


def _not_whole(tmp: Path) -> list[str]:
    return ["--labels", str(save_image(tmp / "lab_float.nii.gz", _labels() + 0.4, _affine()))]


BAD_LABELS = {
    "on another grid (shape)": (_other_grid, "shape"),
    "on another grid (origin)": (_shifted, "origin"),
    "only the background": (_background_only, "no label > 0"),
    "not whole numbers": (_not_whole, "not whole numbers"),
    "missing": (lambda t: ["--labels", str(t / "none.nii.gz")], "not found"),
    "not NIfTI": (lambda t: ["--labels", str(t / "in")], "NIfTI"),
    "without --uncertainty": (lambda t: ["--labels", str(t / "in" / "labels.nii.gz")], "--uncertainty"),
    "two for one input": (lambda t: ["--labels", str(t / "in" / "labels.nii.gz")] * 2, "one --labels per --input"),
}


@pytest.mark.parametrize("kind", list(BAD_LABELS))
def test_bad_labels_are_one_line_exit_2_nothing_written(kind, models, files, tmp_path, capsys):
    make, expected = BAD_LABELS[kind]
    extra = make(tmp_path)
    flags = [] if kind == "without --uncertainty" else ["--uncertainty"]
    code, _, err = _apply(capsys, "--input", files["spect"], "--output", files["out"], "--model", models["identity"],
                          *flags, *extra)
    assert code == 2 and len(err) == 1 and err[0].startswith("dlpvc apply: ") and expected in err[0], (kind, err)
    assert "--labels" in err[0] or Path(extra[1]).name in err[0], err
    assert list(files["out"].parent.iterdir()) == []


def test_a_folder_of_inputs_gets_an_sd_per_image_and_refuses_labels(models, tmp_path, capsys):
    folder = tmp_path / "patients"
    for name in ("a", "b"):
        save_image(folder / f"{name}.nii.gz", _body() * (2 if name == "b" else 1), _affine(), "activity MBq/mL")
    out = tmp_path / "corrected"
    code, _, err = _apply(capsys, "--input", folder, "--output", out, "--model", models["plain"], "--uncertainty")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["a_dlpvc.json", "a_dlpvc.nii.gz", "a_dlpvc_sd.json",
                                                     "a_dlpvc_sd.nii.gz", "b_dlpvc.json", "b_dlpvc.nii.gz",
                                                     "b_dlpvc_sd.json", "b_dlpvc_sd.nii.gz"]
    assert float(load_image(out / "a_dlpvc_sd.nii.gz").data.max()) > 0
    # the SD images are dlpvc's own outputs: a folder call over the outputs leaves them out
    code, _, err = _apply(capsys, "--input", out, "--output", tmp_path / "again", "--model", models["plain"])
    assert code == 2 and "left out 4 image(s)" in " ".join(err), err
    code, _, err = _apply(capsys, "--input", folder, "--output", tmp_path / "o2", "--model", models["plain"],
                          "--uncertainty", "--labels", tmp_path / "x.nii.gz")
    assert code == 2 and len(err) == 1 and "--labels" in err[0] and "folder" in err[0], err
    assert not (tmp_path / "o2").exists()


def test_skip_existing_refuses_an_output_written_without_uncertainty(models, files, capsys):
    argv = ["--input", files["spect"], "--output", files["out"], "--model", models["identity"]]
    assert _apply(capsys, *argv)[0] == 0
    before = files["out"].read_bytes()
    code, _, err = _apply(capsys, *argv, "--uncertainty", "--skip-existing")
    assert code == 2 and len(err) == 1 and "without" in err[0] and "--overwrite" in err[0], err
    assert files["out"].read_bytes() == before
    assert not uncertainty_paths(files["out"], "nifti").sd.exists()
    assert _apply(capsys, *argv, "--uncertainty")[0] == 2  # exists, no --overwrite
    assert _apply(capsys, *argv, "--uncertainty", "--overwrite")[0] == 0
    code, out, err = _apply(capsys, *argv, "--uncertainty", "--skip-existing")
    assert code == 0 and "skipped" in out, err


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS:UserWarning")
def test_a_dicom_series_gets_its_sd_as_nifti_beside_the_output_folder(models, tmp_path, capsys):
    from helpers.dicom_series import write_slices

    from pvc_core.io.dicom import read_spect_dicom

    vol = np.transpose(_body(), (1, 0, 2)).astype(np.float64) * 1e6  # MBq/mL -> Bq/mL, vol[c, r, k]
    src = write_slices(tmp_path / "pt", vol, spacing=(VOXEL, VOXEL), step=(0.0, 0.0, VOXEL))
    series = read_spect_dicom(src)
    out = tmp_path / "corrected_series"
    wrong = save_image(tmp_path / "lab_wrong.nii.gz", _labels(), _affine(), dtype=np.int16)  # NIfTI grid, not the DICOM's
    code, _, err = _apply(capsys, "--input", src, "--output", out, "--model", models["plain"], "--uncertainty",
                          "--labels", wrong)
    assert code == 2 and len(err) == 1 and "lab_wrong.nii.gz" in err[0], err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["lab_wrong.nii.gz", "pt"]
    labels = (series.image.data > 0.5 * series.image.data.max()).astype(np.int16)
    right = save_image(tmp_path / "lab.nii.gz", labels, series.image.affine, dtype=np.int16)
    code, _, err = _apply(capsys, "--input", src, "--output", out, "--model", models["plain"], "--uncertainty",
                          "--labels", right)
    assert code == 0, err
    paths = uncertainty_paths(out, "dicom", regions=True)
    assert paths.sd == tmp_path / "corrected_series_sd.nii.gz" and paths.regions.exists()
    sd = load_image(paths.sd)
    np.testing.assert_allclose(sd.affine, series.image.affine, atol=1e-6)
    assert sd.data.shape == series.image.data.shape and float(sd.data.max()) > 0
