"""NIfTI reading: spatial units of the header, tiny negatives, integer labels, unreadable files."""

import nibabel as nib
import numpy as np
import pytest

from pvc_core.errors import InputError
from pvc_core.io import load_image, load_labels, save_image


def _write(path, data, voxel, unit):
    img = nib.Nifti1Image(np.asarray(data), np.diag([voxel, voxel, voxel, 1.0]))
    img.header.set_xyzt_units(unit, "sec")
    nib.save(img, path)
    return path


@pytest.mark.parametrize("unit, stored, expected_mm", [("mm", 4.8, 4.8), ("unknown", 4.8, 4.8),
                                                       ("meter", 0.0048, 4.8), ("micron", 4800.0, 4.8)])
def test_spatial_unit_of_the_header_is_converted_to_mm(tmp_path, unit, stored, expected_mm):
    path = _write(tmp_path / f"{unit}.nii.gz", np.ones((4, 4, 4), np.float32), stored, unit)
    img = load_image(path)
    assert img.voxel_size_mm == pytest.approx((expected_mm,) * 3, rel=1e-6)
    assert img.voxel_volume_ml == pytest.approx(expected_mm**3 / 1000, rel=1e-5)


def test_translation_is_converted_with_the_voxel_size(tmp_path):
    affine = np.diag([0.004, 0.004, 0.004, 1.0])
    affine[:3, 3] = [0.1, -0.2, 0.03]  # m
    img = nib.Nifti1Image(np.ones((4, 4, 4), np.float32), affine)
    img.header.set_xyzt_units("meter")
    nib.save(img, tmp_path / "m.nii.gz")
    assert load_image(tmp_path / "m.nii.gz").affine[:3, 3] == pytest.approx([100.0, -200.0, 30.0], rel=1e-6)


def test_tiny_negatives_are_clipped_with_a_note(tmp_path):
    data = np.full((4, 4, 4), 2.0, np.float32)
    data[0, 0, :3] = -1e-7  # >= -1e-6 x 2
    save_image(tmp_path / "r.nii.gz", data, 4.0)
    notes = []
    img = load_image(tmp_path / "r.nii.gz", allow_negative=False, clip_tiny_negatives=True, note=notes.append)
    assert float(img.data.min()) == 0.0 and len(notes) == 1 and "3 voxels" in notes[0]
    with pytest.warns(UserWarning, match="3 voxels"):
        load_image(tmp_path / "r.nii.gz", clip_tiny_negatives=True)
    with pytest.raises(InputError, match="negative"):
        load_image(tmp_path / "r.nii.gz", allow_negative=False)  # without the option: refused as before


def test_larger_negatives_are_kept_or_refused(tmp_path):
    data = np.full((4, 4, 4), 2.0, np.float32)
    data[1, 1, 1] = -1e-3
    save_image(tmp_path / "n.nii.gz", data, 4.0)
    notes = []
    kept = load_image(tmp_path / "n.nii.gz", clip_tiny_negatives=True, note=notes.append)
    assert float(kept.data.min()) == pytest.approx(-1e-3) and notes == []
    with pytest.raises(InputError, match="negative"):
        load_image(tmp_path / "n.nii.gz", allow_negative=False, clip_tiny_negatives=True, note=notes.append)


def test_integer_labels_above_2_to_the_24_stay_distinct(tmp_path):
    labels = np.zeros((4, 4, 4), np.int32)
    labels[0] = 2**24
    labels[1] = 2**24 + 1  # the same number in float32
    save_image(tmp_path / "l.nii.gz", labels, 4.0, dtype=np.int32)
    lab = load_labels(tmp_path / "l.nii.gz")
    assert np.issubdtype(lab.data.dtype, np.integer)
    assert sorted(np.unique(lab.data).tolist()) == [0, 2**24, 2**24 + 1]


def test_float_labels_are_rounded_within_tolerance(tmp_path):
    labels = np.zeros((4, 4, 4), np.float32)
    labels[0] = 0.999998
    labels[1] = 2.0004
    save_image(tmp_path / "f.nii.gz", labels, 4.0)
    lab = load_labels(tmp_path / "f.nii.gz")
    assert lab.data.dtype == np.int32 and sorted(np.unique(lab.data).tolist()) == [0, 1, 2]
    labels[2, 0, 0] = 1.5
    save_image(tmp_path / "half.nii.gz", labels, 4.0)
    with pytest.raises(InputError, match="whole numbers"):
        load_labels(tmp_path / "half.nii.gz")


@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_negative_labels_are_refused(tmp_path, dtype):
    labels = np.zeros((4, 4, 4), dtype)
    labels[0, 0, 0] = -1
    save_image(tmp_path / "neg.nii.gz", labels, 4.0, dtype=dtype)
    with pytest.raises(InputError, match="negative labels"):
        load_labels(tmp_path / "neg.nii.gz")


def test_unreadable_files_name_the_file(tmp_path):
    (tmp_path / "text.nii.gz").write_text("not an image\n")
    with pytest.raises(InputError, match="text.nii.gz.*cannot read"):
        load_image(tmp_path / "text.nii.gz")
    with pytest.raises(InputError, match="folder"):
        load_image(tmp_path)
    with pytest.raises(InputError, match="empty path"):
        load_labels("")
    nib.save(nib.Nifti1Image(np.ones((0, 4, 4), np.float32), np.eye(4)), tmp_path / "empty.nii.gz")
    with pytest.raises(InputError, match="empty"):
        load_image(tmp_path / "empty.nii.gz")
    img = nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4))
    img.set_qform(None, code=0)
    nib.save(img, tmp_path / "zero.nii")
    raw = bytearray((tmp_path / "zero.nii").read_bytes())
    raw[280:296] = np.zeros(4, "<f4").tobytes()  # srow_x = 0: a zero voxel edge, as broken converters write
    (tmp_path / "zero.nii").write_bytes(bytes(raw))
    with pytest.raises(InputError, match="voxel size"):
        load_image(tmp_path / "zero.nii")


def test_save_image_leaves_no_temporary_file_when_writing_fails(tmp_path):
    with pytest.raises(Exception):
        save_image(tmp_path / "out.txt", np.ones((4, 4, 4)), 4.0)  # nibabel cannot name a format
    assert list(tmp_path.iterdir()) == []
