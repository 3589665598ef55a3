"""Same-grid checks: shape, orientation, voxel size and origin."""

import numpy as np
import pytest

from pvc_core.errors import InputError
from pvc_core.io import Image, affine_from_voxel_size, grid_mismatch, require_same_grid


def _image(shape=(8, 8, 8), voxel_mm=4.0, affine=None):
    return Image(np.zeros(shape, np.float32), affine_from_voxel_size(voxel_mm, shape) if affine is None else affine)


def test_identical_grids_match():
    assert grid_mismatch(_image(), _image()) is None
    require_same_grid(_image(), "a.nii.gz", _image(), "b.nii.gz")


def test_differences_within_tolerance_match():
    b = _image()
    a = _image(affine=b.affine + np.diag([5e-4, 0, 0, 0]))  # 0.5 um voxel edge
    a.affine[:3, 3] += 0.005 * 4.0  # 0.005 voxel
    assert grid_mismatch(a, b) is None


def test_half_voxel_shift():
    b = _image()
    a = _image()
    a.affine[0, 3] += 2.0  # half of a 4 mm voxel
    text = grid_mismatch(a, b)
    assert text is not None and "origin" in text and "0.5" in text


def test_five_versus_four_mm():
    text = grid_mismatch(_image(voxel_mm=5.0), _image(voxel_mm=4.0))
    assert text == "voxel size (5, 5, 5) mm differs from (4, 4, 4) mm"
    with pytest.raises(InputError) as err:
        require_same_grid(_image(voxel_mm=5.0), "image.nii.gz", _image(voxel_mm=4.0), "truth.nii.gz")
    assert str(err.value).startswith("image.nii.gz: voxel size (5, 5, 5) mm differs from (4, 4, 4) mm of truth.nii.gz")


def test_flipped_axis():
    b = _image()
    flipped = b.affine.copy()
    flipped[:, 0] *= -1  # axis 0 points the other way, same voxel size
    text = grid_mismatch(_image(affine=flipped), b)
    assert text is not None and "orientation" in text and "LAS" in text and "RAS" in text


def test_small_rotation_is_an_orientation_difference():
    b = _image()
    t = np.radians(2.0)
    rot = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    affine = b.affine.copy()
    affine[:3, :3] = rot @ affine[:3, :3]
    text = grid_mismatch(_image(affine=affine), b)
    assert text is not None and "rotated by 2 degrees" in text


def test_shape():
    assert grid_mismatch(_image(shape=(8, 8, 7)), _image()) == "shape (8, 8, 7) differs from (8, 8, 8)"
