"""Label maps for IY: from the truth (the paper's setting) and from the SPECT image alone."""

from __future__ import annotations

import numpy as np
import pytest

from pvc_core.errors import InputError
from pvc_core.pvc import itk_gaussian_blur, iterative_yang, threshold_labels, truth_labels


def _two_spheres() -> np.ndarray:
    """Truth: a hot sphere (8) and a faint sphere (1.5), background 0, 32^3."""
    g = np.indices((32, 32, 32))
    truth = np.zeros((32, 32, 32), np.float32)
    truth[((g - np.array([9, 16, 16])[:, None, None, None]) ** 2).sum(0) <= 16] = 8.0
    truth[((g - np.array([23, 16, 16])[:, None, None, None]) ** 2).sum(0) <= 16] = 1.5
    return truth


def test_truth_labels_default_is_the_binary_activity_mask():
    truth = _two_spheres()
    lab = truth_labels(truth)
    assert lab.dtype == np.int32
    np.testing.assert_array_equal(lab, (truth > 0).astype(np.int32))


def test_truth_labels_by_component_and_by_level():
    truth = _two_spheres()
    comp = truth_labels(truth, split="component")
    assert set(np.unique(comp)) == {0, 1, 2}
    assert np.all(comp[truth == 0] == 0)
    level = truth_labels(truth, split="level")
    assert np.all(level[truth == 1.5] == 1) and np.all(level[truth == 8.0] == 2)


def test_truth_labels_errors():
    with pytest.raises(InputError, match="no voxel above"):
        truth_labels(np.zeros((4, 4, 4)))
    with pytest.raises(InputError, match="max_regions"):
        truth_labels(np.arange(64, dtype=float).reshape(4, 4, 4) + 1, split="level", max_regions=10)
    with pytest.raises(InputError, match="split"):
        truth_labels(_two_spheres(), split="organ")


def test_threshold_global_misses_the_faint_sphere_and_local_finds_it():
    image = itk_gaussian_blur(_two_spheres(), 10.0, (4.0, 4.0, 4.0))
    glob = threshold_labels(image, 0.4)
    assert glob[9, 16, 16] == 1 and glob[23, 16, 16] == 0
    local = threshold_labels(image, 0.4, local=True, floor_fraction=0.05, separate=True)
    assert set(np.unique(local)) == {0, 1, 2}
    assert local[9, 16, 16] != local[23, 16, 16] and local[23, 16, 16] > 0


def test_threshold_min_voxels_drops_specks_and_mask_feeds_iy():
    image = itk_gaussian_blur(_two_spheres(), 10.0, (4.0, 4.0, 4.0))
    image[0, 0, 0] = image.max()  # a one-voxel hot speck
    lab = threshold_labels(image, 0.4, min_voxels=5)
    assert lab[0, 0, 0] == 0 and lab[9, 16, 16] == 1
    out = iterative_yang(image, lab, 10.0, (4.0, 4.0, 4.0))
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("kwargs, words", [({"fraction": 0.0}, "fraction"), ({"fraction": 1.5}, "fraction"),
                                           ({"local": True, "floor_fraction": 0.6}, "floor_fraction"),
                                           ({"min_voxels": 0}, "min_voxels")])
def test_threshold_bad_parameters(kwargs, words):
    with pytest.raises(InputError, match=words):
        threshold_labels(_two_spheres(), **kwargs)


def test_threshold_of_an_empty_image_is_input_error():
    with pytest.raises(InputError, match="no positive voxel"):
        threshold_labels(np.zeros((5, 5, 5)))
