"""``dlpvc apply``: grids, CT conversion, activity conservation, orientation and every kind of bad
input (exit 2, one line naming the file or option, nothing left behind). Tiny models, seconds."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from pvc_core.apply.ct import HU_CORTICAL_BONE, ct_mu_on_grid, hu_to_mu_208kev
from pvc_core.apply.model_grid import model_grid, world_bounding_box
from pvc_core.cli import main
from pvc_core.errors import InputError
from pvc_core.io import Image, load_image, save_image
from pvc_core.phantom.materials import mu_208kev
from pvc_core.training import train_model

VOXEL = 4.8


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny networks on one thread


def _affine(voxel=VOXEL, origin=(-40.0, -30.0, 10.0)) -> np.ndarray:
    a = np.diag([voxel, voxel, voxel, 1.0])
    a[:3, 3] = origin
    return a


def _spect(seed: int = 0, shape=(16, 16, 16)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = np.zeros(shape, np.float32)
    truth[4:9, 5:11, 6:12] = rng.uniform(1, 3)
    truth[10:13, 9:12, 3:6] = rng.uniform(2, 4)
    return gaussian_filter(truth, 1.0).astype(np.float32), truth


def _train(root: Path, ct: bool) -> Path:
    pairs = []
    for i in range(3):
        spect, truth = _spect(i)
        files = [save_image(root / f"c{i}" / "spect.nii.gz", spect, _affine()),
                 save_image(root / f"c{i}" / "truth.nii.gz", truth, _affine())]
        if ct:
            files.append(save_image(root / f"c{i}" / "mu.nii.gz", np.full(spect.shape, 0.13, np.float32), _affine()))
        pairs.append((f"c{i}", *map(str, files)))
    cfg = {"architecture": "unet", "channels": [4, 8], "epochs": 1, "batch_size": 1, "attenuation_channel": ct}
    trained_for = {"voxel_mm": [VOXEL] * 3, "matrix": [16] * 3,
                   "reconstruction": {"name": "RR", "method": "OSEM", "iterations": 6, "subsets": 6}}
    out = root / ("model_ct" if ct else "model")
    train_model(pairs[:2], pairs[2:], cfg, out, seed=0, log=lambda s: None, device="cpu", cache_dir=root / "cache",
                trained_for=trained_for)
    return out / "model.pt"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return _train(tmp_path_factory.mktemp("apply_model"), ct=False)


@pytest.fixture(scope="module")
def ct_model(tmp_path_factory) -> Path:
    return _train(tmp_path_factory.mktemp("apply_ct_model"), ct=True)


@pytest.fixture
def spect_file(tmp_path) -> Path:
    return save_image(tmp_path / "in" / "spect.nii.gz", _spect(5)[0], _affine())


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["apply", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


# ---- known answers ------------------------------------------------------------------------------

def test_model_grid_of_an_input_on_the_model_voxels_is_the_input_grid_and_flips_change_nothing():
    shape, aff = model_grid((16, 12, 10), _affine(), (VOXEL,) * 3)
    assert shape == (16, 12, 10)
    np.testing.assert_allclose(aff, _affine(), atol=1e-9)
    flipped = _affine() @ np.array([[-1, 0, 0, 15], [0, 1, 0, 0], [0, 0, -1, 9], [0, 0, 0, 1]], float)
    shape_f, aff_f = model_grid((16, 12, 10), flipped, (VOXEL,) * 3)
    assert shape_f == shape and np.allclose(aff_f, aff)
    lower, upper = world_bounding_box((16, 12, 10), _affine())
    np.testing.assert_allclose(lower, np.array([-40, -30, 10]) - VOXEL / 2)
    np.testing.assert_allclose(upper - lower, np.array([16, 12, 10]) * VOXEL)
    # 2 mm voxels, 50 x 50 x 50: 100 mm -> 21 voxels of 4.8 mm (100.8 mm)
    assert model_grid((50, 50, 50), _affine(2.0), (VOXEL,) * 3)[0] == (21, 21, 21)


def test_hu_to_mu_bilinear_known_points():
    mu = hu_to_mu_208kev(np.array([-1000.0, -500.0, 0.0, HU_CORTICAL_BONE, -1024.0]))
    w, b = mu_208kev("water"), mu_208kev("cortical_bone")
    np.testing.assert_allclose(mu, [0.0, w / 2, w, b, 0.0], rtol=1e-6)


def test_ct_on_another_grid_is_averaged_and_refused_outside_range_or_without_overlap():
    ct = Image(np.zeros((10, 10, 10), np.float32), _affine(2.4))  # water, 24 mm cube
    mu, covered = ct_mu_on_grid(ct, (5, 5, 5), _affine(4.8, origin=(-41.2, -31.2, 8.8)), "ct.nii.gz")
    assert covered > 0 and np.allclose(mu[mu > 0], mu_208kev("water"), rtol=1e-5)
    with pytest.raises(InputError, match="outside -1024..4000 HU"):
        ct_mu_on_grid(Image(np.full((4, 4, 4), -3024, np.float32), _affine()), (4, 4, 4), _affine(), "ct")
    with pytest.raises(InputError, match="does not overlap"):
        ct_mu_on_grid(ct, (4, 4, 4), _affine(origin=(900.0, 0.0, 0.0)), "ct")


def test_apply_conserves_total_keeps_the_affine_and_writes_a_sidecar(model, spect_file, tmp_path, capsys):
    out = tmp_path / "out" / "corrected.nii.gz"
    out.parent.mkdir()
    code, stdout, err = _run(capsys, "--input", spect_file, "--output", out, "--model", model, "--device", "cpu",
                             "--reconstruction", "RR")
    assert code == 0, err
    src, res = load_image(spect_file), load_image(out)
    np.testing.assert_allclose(res.affine, src.affine, atol=1e-5)
    assert abs(res.data.sum(dtype=np.float64) / src.data.sum(dtype=np.float64) - 1) < 1e-6
    side = json.loads((tmp_path / "out" / "corrected.json").read_text())
    assert side["format"] == "dlpvc-apply" and side["device"] == "cpu"
    assert abs(side["output_total_mbq"] / side["input_total_mbq"] - 1) < 1e-6
    assert len(side["model"]["sha256"]) == 64 and side["model"]["trained_for"]["voxel_mm"] == [VOXEL] * 3
    assert side["input_voxel_mm"] == pytest.approx([VOXEL] * 3) and side["warnings"] == []
    assert "MBq in" in stdout


def test_flipped_and_permuted_storage_gives_the_same_corrected_image_in_world_coordinates(model, tmp_path, capsys):
    data = _spect(7)[0]
    a = save_image(tmp_path / "a.nii.gz", data, _affine())
    # the same image stored with axis 0 and 2 reversed and axes 0/1 swapped
    stored = np.transpose(data[::-1, :, ::-1], (1, 0, 2)).copy()
    index = np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], float)  # new (j, i, k) -> old (i, j, k)
    flip = np.array([[-1, 0, 0, 15], [0, 1, 0, 0], [0, 0, -1, 15], [0, 0, 0, 1]], float)
    b = save_image(tmp_path / "b.nii.gz", stored, _affine() @ flip @ index)
    for src, dst in ((a, tmp_path / "a_out.nii.gz"), (b, tmp_path / "b_out.nii.gz")):
        assert _run(capsys, "--input", src, "--output", dst, "--model", model)[0] == 0
    ra, rb = load_image(tmp_path / "a_out.nii.gz").data, load_image(tmp_path / "b_out.nii.gz").data
    np.testing.assert_allclose(np.transpose(rb, (1, 0, 2))[::-1, :, ::-1], ra, rtol=1e-5, atol=1e-6 * ra.max())


def test_an_untrained_network_is_the_identity_through_both_resamplings(tmp_path, spect_file, capsys):
    from pvc_core.apply.correct import correct_image
    from pvc_core.apply.model import ApplyModel
    from pvc_core.networks import build_network
    from pvc_core.training.train import complete_model_cfg

    module = build_network("unet", [4, 8]).eval()  # residual head, zero gain: output = input
    cfg = complete_model_cfg({"architecture": "unet", "channels": [4, 8]})
    m = ApplyModel(module, cfg, {"trained_for": {"voxel_mm": [VOXEL] * 3}}, tmp_path / "m" / "model.pt", "0" * 64,
                   torch.device("cpu"))
    src = load_image(spect_file)
    out, facts = correct_image(m, src)
    np.testing.assert_allclose(out, src.data, rtol=1e-5, atol=1e-7)
    # 2.4 mm input: resampled to 4.8 mm and back; the one-voxel lesion keeps its activity
    fine = np.zeros((20, 20, 20), np.float32)
    fine[9, 10, 11] = 100.0
    out_fine, facts = correct_image(m, Image(fine, _affine(2.4)))
    assert facts["model_grid"]["shape"] == [10, 10, 10]
    assert abs(out_fine.sum(dtype=np.float64) / 100.0 - 1) < 1e-6


def test_tiny_negatives_are_clipped_with_a_note(model, tmp_path, capsys):
    data = _spect(3)[0]
    data[0, 0, 0] = -1e-8 * data.max()
    src = save_image(tmp_path / "neg.nii.gz", data, _affine())
    code, _, err = _run(capsys, "--input", src, "--output", tmp_path / "neg_out.nii.gz", "--model", model)
    assert code == 0 and "tiny negative" in err


def test_several_inputs_and_a_folder_of_inputs(model, tmp_path, capsys):
    folder = tmp_path / "batch"
    for i in range(2):
        save_image(folder / f"p{i}.nii.gz", _spect(i)[0], _affine())
    code, stdout, err = _run(capsys, "--input", folder, "--output", tmp_path / "batch_out", "--model", model)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "batch_out").iterdir()) == [
        "p0_dlpvc.json", "p0_dlpvc.nii.gz", "p1_dlpvc.json", "p1_dlpvc.nii.gz"]
    # a folder holding one image gets its output folder too
    single = tmp_path / "single"
    save_image(single / "only.nii.gz", _spect(3)[0], _affine())
    code, _, err = _run(capsys, "--input", single, "--output", tmp_path / "single_out" / "sub", "--model", model)
    assert code == 0, err
    assert (tmp_path / "single_out" / "sub" / "only_dlpvc.nii.gz").is_file()
    # one bad input among good ones: the others are written, exit 2, the bad one named
    code, _, err = _run(capsys, "--input", folder / "p0.nii.gz", "--output", tmp_path / "x0.nii.gz",
                        "--input", tmp_path / "missing.nii.gz", "--output", tmp_path / "x1.nii.gz", "--model", model)
    assert code == 2 and (tmp_path / "x0.nii.gz").exists() and not (tmp_path / "x1.nii.gz").exists()
    assert "missing.nii.gz" in err


def test_ct_model_uses_the_ct_on_any_grid(ct_model, spect_file, tmp_path, capsys):
    ct = save_image(tmp_path / "ct.nii.gz", np.zeros((40, 40, 40), np.float32), _affine(2.4, origin=(-43.0, -33.0, 6.0)))
    out = tmp_path / "ct_out.nii.gz"
    code, _, err = _run(capsys, "--input", spect_file, "--output", out, "--model", ct_model, "--ct", ct)
    assert code == 0, err
    side = json.loads((tmp_path / "ct_out.json").read_text())
    assert side["ct"] == str(ct) and side["ct_coverage_fraction"] > 0.5


# ---- bad input: exit 2, one line naming the file or option, nothing left behind ------------------

def _text_nifti(tmp: Path) -> Path:
    p = tmp / "text.nii.gz"
    p.write_text("not an image\n")
    return p


def _truncated(tmp: Path) -> Path:
    p = save_image(tmp / "full.nii.gz", _spect(1)[0], _affine())
    raw = gzip.decompress(p.read_bytes())
    q = tmp / "truncated.nii.gz"
    q.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    return q


def _nifti(tmp: Path, name: str, data: np.ndarray) -> Path:
    p = tmp / name
    nib.save(nib.Nifti1Image(data, _affine()), str(p))
    return p


def _spect_with(tmp: Path, name: str, change) -> Path:
    data = _spect(2)[0]
    change(data)
    return save_image(tmp / name, data, _affine())


def _bad_checkpoint(tmp: Path, model: Path, version: int | None) -> Path:
    p = tmp / "bad_model" / "model.pt"
    p.parent.mkdir()
    if version is None:
        p.write_bytes(b"not a torch file")
    else:
        ckpt = torch.load(model, weights_only=True)
        ckpt["format_version"] = version
        torch.save(ckpt, p)
    return p


def _mostly_negative(d: np.ndarray) -> None:
    np.negative(d, out=d)
    d[0, 0, 0] = 1.0


BAD_SPECT = {
    "missing file": (lambda t: t / "nope.nii.gz", "not found"),
    "directory without DICOM": (lambda t: (t / "empty_dir").mkdir() or (t / "empty_dir"), "no NIfTI files"),
    "text file named .nii.gz": (_text_nifti, "cannot read"),
    "truncated file": (_truncated, "cannot read"),
    "2-D": (lambda t: _nifti(t, "flat.nii.gz", np.ones((8, 8), np.float32)), "3-D"),
    "4-D with more than one frame": (lambda t: _nifti(t, "4d.nii.gz", np.ones((8, 8, 8, 2), np.float32)), "3-D"),
    "NaN voxels": (lambda t: _spect_with(t, "nan.nii.gz", lambda d: d.__setitem__((1, 1, 1), np.nan)), "NaN"),
    "infinite voxels": (lambda t: _spect_with(t, "inf.nii.gz", lambda d: d.__setitem__((1, 1, 1), np.inf)), "NaN or infinite"),
    "all zero": (lambda t: _spect_with(t, "zero.nii.gz", lambda d: d.__setitem__(..., 0)), "no positive value"),
    "mostly negative": (lambda t: _spect_with(t, "negative.nii.gz", _mostly_negative), "negative values"),
    "neither NIfTI nor DICOM": (lambda t: (t / "notes.txt").write_text("hello") and (t / "notes.txt"), "neither NIfTI"),
}


@pytest.mark.parametrize("kind", list(BAD_SPECT))
def test_bad_spect_input_is_one_line_exit_2_nothing_written(kind, model, tmp_path, capsys):
    make, expected = BAD_SPECT[kind]
    src = make(tmp_path)
    out = tmp_path / "out.nii.gz"
    code, _, err = _run(capsys, "--input", src, "--output", out, "--model", model)
    assert code == 2, (kind, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlpvc apply: ") and expected in lines[0], (kind, err)
    assert str(Path(src).name) in lines[0], (kind, err)
    assert not out.exists() and not (tmp_path / "out.json").exists()


def _ct_bad_range(t: Path) -> Path:
    return save_image(t / "ct_range.nii.gz", np.full((10, 10, 10), 5000, np.float32), _affine())


def _ct_far(t: Path) -> Path:
    return save_image(t / "ct_far.nii.gz", np.zeros((10, 10, 10), np.float32), _affine(origin=(2000.0, 0.0, 0.0)))


@pytest.mark.parametrize("kind", ["CT values outside -1024..4000 HU", "CT not overlapping the SPECT",
                                  "model takes the CT and no --ct", "CT for a model without the CT channel"])
def test_bad_ct_is_one_line_exit_2(kind, model, ct_model, spect_file, tmp_path, capsys):
    out = tmp_path / "out.nii.gz"
    args = ["--input", spect_file, "--output", out]
    if kind.startswith("CT values"):
        args += ["--model", ct_model, "--ct", _ct_bad_range(tmp_path)]
        expected = "outside"
    elif kind.startswith("CT not"):
        args += ["--model", ct_model, "--ct", _ct_far(tmp_path)]
        expected = "does not overlap"
    elif kind.startswith("model takes"):
        args += ["--model", ct_model]
        expected = "--ct"
    else:
        args += ["--model", model, "--ct", _ct_bad_range(tmp_path)]
        expected = "without the CT channel"
    code, _, err = _run(capsys, *args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err, err
    assert not out.exists()


@pytest.mark.parametrize("kind", ["model missing", "model not a checkpoint", "model of an incompatible version",
                                  "output folder not writable", "output equal to the input", "cuda without a GPU",
                                  "output not NIfTI for a NIfTI input", "unequal --input and --output counts"])
def test_bad_model_output_or_device_is_one_line_exit_2(kind, model, spect_file, tmp_path, capsys):
    out = tmp_path / "out.nii.gz"
    args = ["--input", spect_file, "--output", out, "--model", model]
    expected = {"model missing": "--model", "model not a checkpoint": "--model",
                "model of an incompatible version": "newer", "output folder not writable": "--output",
                "output equal to the input": "is an input", "cuda without a GPU": "--device",
                "output not NIfTI for a NIfTI input": "--output", "unequal --input and --output counts": "--output"}[kind]
    if kind == "model missing":
        args[-1] = tmp_path / "none" / "model.pt"
    elif kind == "model not a checkpoint":
        args[-1] = _bad_checkpoint(tmp_path, model, None)
    elif kind == "model of an incompatible version":
        args[-1] = _bad_checkpoint(tmp_path, model, 99)
    elif kind == "output folder not writable":
        blocker = tmp_path / "a_file"
        blocker.write_text("x")
        args[3] = out = blocker / "out.nii.gz"
    elif kind == "output equal to the input":
        args[3] = out = spect_file
    elif kind == "cuda without a GPU":
        if torch.cuda.is_available():
            pytest.skip("a GPU is present")
        args += ["--device", "cuda"]
    elif kind == "output not NIfTI for a NIfTI input":
        args[3] = out = tmp_path / "out_folder"
    else:
        args += ["--input", spect_file]
    before = spect_file.read_bytes()
    code, _, err = _run(capsys, *args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err, (kind, err)
    assert spect_file.read_bytes() == before
    if kind != "output equal to the input":
        assert not Path(out).exists()


# ---- DICOM in, DICOM or NIfTI out ---------------------------------------------------------------

def _pt_folder(tmp: Path, name: str = "pt", **kw) -> Path:
    from helpers.dicom_series import write_slices

    vol = np.transpose(_spect(9)[0], (1, 0, 2)).astype(np.float64) * 1e6  # MBq/mL -> Bq/mL, vol[c, r, k]
    return write_slices(tmp / name, vol, spacing=(VOXEL, VOXEL), step=(0.0, 0.0, VOXEL), **kw)


pytestmark_dicom = pytest.mark.filterwarnings("ignore:Invalid value for VR CS:UserWarning")


@pytestmark_dicom
def test_dicom_series_in_dicom_series_out_same_geometry_and_total(model, tmp_path, capsys):
    from pvc_core.io.dicom import read_spect_dicom

    src = _pt_folder(tmp_path)
    out = tmp_path / "corrected_series"
    code, _, err = _run(capsys, "--input", src, "--output", out, "--model", model)
    assert code == 0, err
    a, b = read_spect_dicom(src), read_spect_dicom(out)
    np.testing.assert_allclose(b.image.affine, a.image.affine, atol=1e-6)
    assert b.datasets[0].SeriesInstanceUID != a.datasets[0].SeriesInstanceUID
    assert b.datasets[0].FrameOfReferenceUID == a.datasets[0].FrameOfReferenceUID and b.unit == "BQML"
    total_in, total_out = a.image.data.sum(dtype=np.float64), b.image.data.sum(dtype=np.float64)
    assert abs(total_out / total_in - 1) < 1e-4  # 16-bit storage of the output
    side = json.loads((tmp_path / "corrected_series.json").read_text())
    assert side["input_kind"] == "dicom" and side["output_kind"] == "dicom"
    assert abs(side["output_total_mbq"] / side["input_total_mbq"] - 1) < 1e-6  # before 16-bit storage
    # the same image as NIfTI gives the same correction
    nifti = save_image(tmp_path / "same.nii.gz", a.image.data, a.image.affine)
    assert _run(capsys, "--input", nifti, "--output", tmp_path / "same_out.nii.gz", "--model", model)[0] == 0
    ref = load_image(tmp_path / "same_out.nii.gz").data
    np.testing.assert_allclose(b.image.data, ref, atol=2e-4 * ref.max())


@pytestmark_dicom
def test_nm_multiframe_in_nifti_out(model, tmp_path, capsys):
    from helpers.dicom_series import write_nm

    vol = np.transpose(_spect(4)[0], (1, 0, 2)).astype(np.float64) * 1e6
    src = write_nm(tmp_path / "nm.dcm", vol, spacing=(VOXEL, VOXEL), spacing_between=VOXEL)
    out = tmp_path / "nm_out.nii.gz"
    code, _, err = _run(capsys, "--input", src, "--output", out, "--model", model)
    assert code == 0, err
    res = load_image(out).data
    assert abs(res.sum(dtype=np.float64) / vol.sum() * 1e6 - 1) < 1e-4


def _bad_dicom(kind: str, tmp: Path) -> Path:
    if kind == "DICOM in counts":
        return _pt_folder(tmp, units="CNTS")
    if kind == "DICOM without units":
        return _pt_folder(tmp, units=None)
    if kind == "DICOM slices with inconsistent spacing":
        positions = [(0.0, 0.0, z) for z in (0, 4.8, 9.6, 16.0, 20.8, 25.6, 30.4, 35.2, 40.0, 44.8, 49.6, 54.4,
                                              59.2, 64.0, 68.8, 73.6)]
        return _pt_folder(tmp, positions=positions)

    def tilt(ds, k):
        if k == 3:
            ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 0.98, 0.199]
    return _pt_folder(tmp, edit=tilt)


@pytestmark_dicom
@pytest.mark.parametrize("kind", ["DICOM in counts", "DICOM without units", "DICOM slices with inconsistent spacing",
                                  "DICOM slices with inconsistent orientation"])
def test_bad_dicom_is_one_line_exit_2(kind, model, tmp_path, capsys):
    src = _bad_dicom(kind, tmp_path)
    out = tmp_path / "out_series"
    code, _, err = _run(capsys, "--input", src, "--output", out, "--model", model)
    expected = {"DICOM in counts": "calibrat", "DICOM without units": "calibrat",
                "DICOM slices with inconsistent spacing": "spacing",
                "DICOM slices with inconsistent orientation": "orientation"}[kind]
    assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err and "pt" in err, (kind, err)
    assert not out.exists() and not (tmp_path / "out_series.json").exists()
