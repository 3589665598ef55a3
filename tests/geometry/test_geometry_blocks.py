"""Downsampling to the reconstruction grid and nearest-neighbour sampling of label maps."""

import numpy as np
import pytest

from pvc_core.geometry.blocks import downsample_activity, downsample_mean
from pvc_core.geometry.blocks import sample_nearest


def test_activity_conserved_to_1e_6_for_factors_2_and_4():
    rng = np.random.default_rng(1)
    a = (rng.random((32, 32, 32)) ** 8 * 50).astype(np.float32)
    for f in (2, 4):
        d = downsample_activity(a, f)
        assert d.shape == (32 // f,) * 3 and d.dtype == np.float32
        assert d.sum(dtype=np.float64) * f**3 == pytest.approx(a.sum(dtype=np.float64), rel=1e-6)
    assert np.array_equal(downsample_activity(a, 1), a)


def test_mean_of_a_hand_made_block():
    mu = np.zeros((4, 4, 4), np.float32)
    mu[:2, :2, :2] = [[[0.1, 0.2], [0.3, 0.4]], [[0.0, 0.0], [0.0, 0.2]]]  # mean 0.15
    d = downsample_mean(mu, 2)
    assert d[0, 0, 0] == pytest.approx(0.15, rel=1e-6) and d.sum() == pytest.approx(0.15, rel=1e-6)


def test_not_divisible_is_a_value_error():
    with pytest.raises(ValueError, match="not divisible"):
        downsample_mean(np.zeros((5, 4, 4)), 2)


def test_sample_nearest_picks_the_closest_voxel_and_fills_outside():
    lab = np.arange(4 * 3 * 2, dtype=np.uint8).reshape(4, 3, 2)
    out = sample_nearest(lab, (10.0, 10.0, 10.0), (0.0, 0.0, 0.0), np.array([-20.0, 4.0, 26.0]),
                         np.array([0.0, 14.0]), np.array([9.0]), fill=99)
    assert out.shape == (3, 2, 1)
    assert out[:, :, 0].tolist() == [[99, 99], [lab[0, 0, 1], lab[0, 1, 1]], [lab[3, 0, 1], lab[3, 1, 1]]]
