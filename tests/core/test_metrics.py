"""Metrics against hand-computed answers (definitions in DESIGN.md)."""

from __future__ import annotations

import numpy as np
import pytest

from pvc_core import metrics
from pvc_core.errors import InputError


def _block(shape=(12, 12, 12), value=10.0) -> np.ndarray:
    """Zero volume with a 4x4x4 block of ``value`` at [4:8]^3 (64 active voxels)."""
    t = np.zeros(shape)
    t[4:8, 4:8, 4:8] = value
    return t


def test_ssim_identical_volumes_is_one():
    rng = np.random.default_rng(0)
    truth = _block() + rng.uniform(0, 1, (12, 12, 12)) * (_block() > 0)
    assert metrics.ssim(truth, truth) == pytest.approx(1.0, abs=1e-12)


def test_ssim_degraded_is_below_one_and_mask_changes_it():
    truth = _block(shape=(16, 16, 16))
    image = truth + 0.5 * (truth > 0)
    s = metrics.ssim(image, truth)
    assert 0.0 < s < 1.0
    # more than a 7-voxel window away from the block the volumes agree: SSIM there is 1
    corner = np.zeros(truth.shape, bool)
    corner[12:, 12:, 12:] = True
    assert metrics.ssim(image, truth, corner) == pytest.approx(1.0)


def test_ssim_map_has_volume_shape():
    truth = _block()
    assert metrics.ssim_map(truth, truth).shape == truth.shape


def test_nrmse_of_known_offset():
    # truth range = 20 - 0 = 20; the image is off by 0.5 MBq/mL in every masked voxel
    truth = _block()
    truth[5, 5, 5] = 20.0
    image = truth + 0.5 * (truth > 0)
    assert metrics.nrmse(image, truth) == pytest.approx(100 * 0.5 / 20.0)  # 2.5 %
    # outside the mask errors do not count
    image[0, 0, 0] = 100.0
    assert metrics.nrmse(image, truth) == pytest.approx(2.5)


def test_nrmse_uniform_object_is_finite():
    truth = _block(value=4.0)  # range over the mask alone would be 0
    assert metrics.nrmse(truth * 0.5, truth) == pytest.approx(100 * 2.0 / 4.0)


def test_vaa_4_percent_off_is_100():
    truth = _block()
    assert metrics.vaa(truth * 1.04, truth) == pytest.approx(100.0)
    assert metrics.vaa(truth * 0.96, truth) == pytest.approx(100.0)


def test_vaa_6_percent_off_is_0():
    truth = _block()
    assert metrics.vaa(truth * 1.06, truth) == 0.0
    assert metrics.vaa(truth * 0.94, truth) == 0.0


def test_vaa_mixed_and_alpha():
    truth = _block()
    image = truth.copy()
    image[4:6] *= 1.04  # 32 of 64 voxels within 5 %
    image[6:8] *= 1.06  # 32 voxels outside
    assert metrics.vaa(image, truth) == pytest.approx(50.0)
    assert metrics.vaa(image, truth, alpha=0.10) == pytest.approx(100.0)
    vmap = metrics.vaa_map(image, truth)
    assert vmap.dtype == bool and vmap.sum() == 32 and vmap[4:6, 4:8, 4:8].all()


def test_vaa_voxels_with_zero_truth_in_given_mask_are_inaccurate():
    truth = _block()
    mask = np.zeros(truth.shape, bool)
    mask[3:8, 4:8, 4:8] = True  # 16 zero-truth voxels + 64 active voxels
    assert metrics.vaa(truth, truth, mask) == pytest.approx(100 * 64 / 80)


def test_activity_deviation_plus_10_percent():
    truth = _block()
    assert metrics.activity_deviation(truth * 1.1, truth) == pytest.approx(10.0)
    assert metrics.activity_deviation(truth, truth) == 0.0


def test_recovery_coefficient_of_blurred_slab():
    # slab of 5 voxels along axis 0, blurred with a 3-tap moving average along axis 0:
    # the two edge voxels keep 2/3, the three inner ones 1 -> RC = (2 * 2/3 + 3) / 5 = 13/15
    truth = np.zeros((16, 8, 8))
    truth[5:10] = 1.0
    image = (np.roll(truth, 1, 0) + truth + np.roll(truth, -1, 0)) / 3.0
    region = truth > 0
    assert metrics.recovery_coefficient(image, truth, region) == pytest.approx(13 / 15)


def test_compute_all_keys():
    truth = _block()
    out = metrics.compute_all(truth * 1.04, truth)
    assert set(out) == {"ssim", "nrmse_pct", "vaa_pct", "ad_pct"}
    assert out["vaa_pct"] == pytest.approx(100.0) and out["ad_pct"] == pytest.approx(4.0)
    assert all(isinstance(v, float) for v in out.values())


@pytest.mark.parametrize("call", [
    lambda t: metrics.ssim(t, t, np.zeros(t.shape, bool)),
    lambda t: metrics.nrmse(t, t, np.zeros(t.shape, bool)),
    lambda t: metrics.vaa(t, t, np.zeros(t.shape, bool)),
    lambda t: metrics.recovery_coefficient(t, t, np.zeros(t.shape, bool)),
    lambda t: metrics.vaa(t * 0, t * 0),  # default mask of an all-zero truth is empty
])
def test_empty_mask_is_input_error(call):
    with pytest.raises(InputError, match="empty"):
        call(_block())


def test_shape_mismatch_and_nan_are_input_errors():
    truth = _block()
    with pytest.raises(InputError, match="shape"):
        metrics.nrmse(truth[:-1], truth)
    with pytest.raises(InputError, match="shape"):
        metrics.vaa(truth, truth, np.ones((3, 3, 3), bool))
    bad = truth.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        metrics.ssim(bad, truth)
    with pytest.raises(InputError, match="NaN"):
        metrics.activity_deviation(truth, bad)


def test_messages_are_one_line():
    with pytest.raises(InputError) as err:
        metrics.nrmse(_block()[:-1], _block())
    assert "\n" not in str(err.value)


def test_bounding_box_of_two_voxels():
    m = np.zeros((6, 7, 8), bool)
    m[1, 2, 3] = m[3, 5, 4] = True
    box = metrics.bounding_box(m)
    assert box.sum() == 3 * 4 * 2
    assert box[1:4, 2:6, 3:5].all()
    with pytest.raises(InputError, match="empty"):
        metrics.bounding_box(np.zeros((3, 3, 3)))


def test_nrmse_bounding_box_counts_spill_out_around_the_object():
    # truth: the 4^3 block of 10 at [4:8]^3; image: the block at 8 (error 2 on 64 voxels) and a
    # spill-out of 1 on the 8 x 8 x 8 box [2:10]^3 outside it (448 voxels), 0 beyond it.
    truth = _block()
    image = np.where(truth > 0, 8.0, 0.0)
    image[2:10, 2:10, 2:10][truth[2:10, 2:10, 2:10] == 0] = 1.0
    # over the mask: only the block's error
    assert metrics.nrmse(image, truth) == pytest.approx(100 * 2.0 / 10.0)
    # over the mask's bounding box ([4:8]^3 = the block itself) the same
    assert metrics.nrmse_bounding_box(image, truth) == pytest.approx(20.0)
    # a mask of the block plus one corner voxel of [2:10]^3: the box is [2:8]^3, 216 voxels,
    # 64 of them with error 2, the other 152 with error 1
    mask = truth > 0
    mask[2, 2, 2] = True
    expected = 100 * np.sqrt((64 * 4.0 + 152 * 1.0) / 216) / 10.0
    assert metrics.nrmse_bounding_box(image, truth, mask) == pytest.approx(expected)
