"""Matched-filter resolution: the Gaussian FWHM that turns the truth into the reconstruction."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from pvc_core.errors import InputError
from pvc_core.pvc import itk_gaussian_blur, iterative_yang
from pvc_core.resolution import matched_filter_fwhm, matched_filter_profile

VOXEL = (4.0, 4.0, 4.0)
SIGMA_PER_FWHM = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def _phantom(n: int = 32) -> np.ndarray:
    """Spheres of 2.5, 4 and 6 voxels radius (activity 6, 3, 1.5) in a background of 0.3."""
    g = np.indices((n, n, n))
    truth = np.full((n, n, n), 0.3, np.float32)
    for centre, radius, value in (((9, 10, 16), 2.5, 6.0), ((22, 10, 16), 4.0, 3.0), ((16, 22, 16), 6.0, 1.5)):
        truth[((g - np.array(centre)[:, None, None, None]) ** 2).sum(0) <= radius**2] = value
    return truth


@pytest.fixture(scope="module")
def truth():
    return _phantom()


def _blur(truth, fwhm_mm, voxel=VOXEL):
    return ndimage.gaussian_filter(truth.astype(np.float64), [fwhm_mm * SIGMA_PER_FWHM / v for v in voxel],
                                   mode="nearest")


@pytest.mark.parametrize("fwhm", [8.75, 14.0, 21.35])
def test_recovers_a_known_fwhm_within_half_a_millimetre(truth, fwhm):
    assert matched_filter_fwhm(_blur(truth, fwhm), truth, VOXEL) == pytest.approx(fwhm, abs=0.5)


def test_recovers_fwhm_despite_noise_and_a_calibration_error(truth):
    rng = np.random.default_rng(7)
    recon = 0.85 * _blur(truth, 12.0) + rng.normal(0.0, 0.1, truth.shape)
    assert matched_filter_fwhm(recon, truth, VOXEL) == pytest.approx(12.0, abs=0.5)
    # without the scale factor the calibration error biases the FWHM
    assert abs(matched_filter_fwhm(recon, truth, VOXEL, fit_scale=False) - 12.0) > 0.5


def test_continuous_blur_on_a_coarse_grid_adds_the_voxelisation():
    # truth and reconstruction made on a 1 mm grid and averaged into 4 mm voxels (activity
    # conserving, as the pipeline's truth is): the coarse reconstruction is the continuous PSF
    # convolved with two 4 mm boxes (variance 2 * 4^2 / 12 mm^2) relative to the coarse truth, and
    # that is the FWHM the matched filter must report
    fine = np.kron(_phantom(24), np.ones((4, 4, 4), np.float32))
    recon_fine = ndimage.gaussian_filter(fine.astype(np.float64), 12.0 * SIGMA_PER_FWHM, mode="nearest")

    def coarse(x):
        return x.reshape(24, 4, 24, 4, 24, 4).mean(axis=(1, 3, 5))

    expected = np.sqrt(12.0**2 + 2 * 4.0**2 / 12 / SIGMA_PER_FWHM**2)  # 12.60 mm
    assert matched_filter_fwhm(coarse(recon_fine), coarse(fine), VOXEL) == pytest.approx(expected, abs=0.1)


def test_anisotropic_voxels_and_mask(truth):
    voxel = (4.0, 4.0, 5.0)
    recon = _blur(truth, 10.0, voxel)
    mask = np.zeros(truth.shape, bool)
    mask[4:28, 4:28, 8:24] = True
    assert matched_filter_fwhm(recon, truth, voxel, mask=mask) == pytest.approx(10.0, abs=0.5)


def test_itk_kernel_gives_the_fwhm_that_makes_petpvc_restore_the_mean(truth):
    # a true Gaussian is wider than ITK's kernel of the same nominal FWHM; the matched filter with
    # kernel="itk" finds the nominal FWHM for which PETPVC's PSF model fits best
    recon = _blur(truth, 12.0).astype(np.float32)
    fwhm_itk = matched_filter_fwhm(recon, truth, VOXEL, kernel="itk")
    assert 12.0 < fwhm_itk < 13.5
    assert matched_filter_fwhm(itk_gaussian_blur(truth, 12.0, VOXEL), truth, VOXEL, kernel="itk") == \
        pytest.approx(12.0, abs=0.05)
    labels = np.searchsorted([0.3, 1.5, 3.0, 6.0], truth).astype(np.int32)
    big = labels == 2  # the 4-voxel sphere
    out = iterative_yang(recon, labels, fwhm_itk, VOXEL)
    assert out[big].mean() == pytest.approx(3.0, rel=0.01)


def test_profile_is_lowest_near_the_true_fwhm(truth):
    recon = _blur(truth, 12.0)
    sse = matched_filter_profile(recon, truth, VOXEL, [6.0, 9.0, 12.0, 15.0, 18.0])
    assert int(np.argmin(sse)) == 2
    assert np.all(np.diff(sse[:3]) < 0) and np.all(np.diff(sse[2:]) > 0)


def test_optimum_at_the_bracket_end_warns(truth):
    with pytest.warns(RuntimeWarning, match="end of bracket"):
        matched_filter_fwhm(_blur(truth, 20.0), truth, VOXEL, bracket_mm=(2.0, 10.0))


@pytest.mark.parametrize("kwargs, words", [
    ({"recon": np.ones((8, 8, 7))}, "differs from truth shape"),
    ({"truth": np.zeros((8, 8, 8))}, "zero everywhere"),
    ({"bracket_mm": (10.0, 5.0)}, "bracket_mm"),
    ({"bracket_mm": (0.0, 5.0)}, "bracket_mm"),
    ({"mask": np.zeros((8, 8, 8), bool)}, "no voxel"),
    ({"mask": np.ones((8, 8, 9), bool)}, "mask shape"),
    ({"recon": np.full((8, 8, 8), np.nan)}, "NaN"),
    ({"kernel": "box"}, "kernel"),
])
def test_bad_input_is_input_error(kwargs, words):
    args = {"recon": np.ones((8, 8, 8)), "truth": np.ones((8, 8, 8)), "voxel_size_mm": VOXEL}
    args.update(kwargs)
    with pytest.raises(InputError, match=words) as err:
        matched_filter_fwhm(**args)
    assert "\n" not in str(err.value)
