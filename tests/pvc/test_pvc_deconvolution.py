"""Richardson-Lucy and reblurred Van Cittert with PETPVC's definitions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from pvc_core.errors import InputError
from pvc_core.pvc import itk_gaussian_blur, richardson_lucy, van_cittert
from pvc_core.pvc.itk_gaussian import petpvc_kernels

VOXEL = (4.0, 4.0, 4.0)


@pytest.fixture(scope="module")
def sphere():
    n = 28
    g = np.indices((n, n, n)) - (n - 1) / 2
    inside = np.sqrt((g**2).sum(0)) <= 4
    truth = np.where(inside, 4.0, 0.5).astype(np.float32)
    return inside, truth, itk_gaussian_blur(truth, 12.0, VOXEL)


def _g(x, fwhm=12.0):
    kernels = petpvc_kernels(fwhm, VOXEL)
    for axis in (2, 1, 0):
        x = ndimage.correlate1d(x, kernels[axis], axis=axis, mode="nearest")
    return x


def _profile_fwhm_vox(line: np.ndarray, baseline: float) -> float:
    """FWHM (voxels) of a 1-D peak above ``baseline``, by linear interpolation."""
    y = line - baseline
    half = y.max() / 2
    above = np.flatnonzero(y >= half)
    lo, hi = above[0], above[-1]
    left = lo - 1 + (half - y[lo - 1]) / (y[lo] - y[lo - 1])
    right = hi + (y[hi] - half) / (y[hi] - y[hi + 1])
    return right - left


@pytest.mark.parametrize("method", ["rl", "vc"])
def test_deconvolution_sharpens_a_blurred_sphere(sphere, method):
    inside, truth, image = sphere
    out = (richardson_lucy(image, 12.0, VOXEL, iterations=10) if method == "rl"
           else van_cittert(image, 12.0, VOXEL, iterations=10, alpha=1.5, stop=None))
    c = image.shape[0] // 2
    assert out.max() > 1.05 * image.max()
    assert out[inside].mean() > image[inside].mean() + 0.1 * (truth[inside].mean() - image[inside].mean())
    assert np.sum((out - truth) ** 2) < np.sum((image - truth) ** 2)
    assert np.abs(np.diff(out[:, c, c])).max() > np.abs(np.diff(image[:, c, c])).max()  # steeper edge
    assert out.min() >= 0


def test_deconvolution_narrows_a_point_source():
    truth = np.full((21, 21, 21), 0.1, np.float32)
    truth[10, 10, 10] = 100.0
    image = itk_gaussian_blur(truth, 12.0, VOXEL)
    width = _profile_fwhm_vox(image[:, 10, 10], 0.1)
    rl = richardson_lucy(image, 12.0, VOXEL, iterations=10)
    assert _profile_fwhm_vox(rl[:, 10, 10], 0.1) < 0.6 * width
    # reblurred Van Cittert (Landweber) restores high frequencies slowly: the peak doubles in 10
    # iterations, the width shrinks visibly by 30
    vc10 = van_cittert(image, 12.0, VOXEL, iterations=10, stop=None)
    vc30 = van_cittert(image, 12.0, VOXEL, iterations=30, stop=None)
    assert vc10.max() > 1.5 * image.max()
    assert _profile_fwhm_vox(vc30[:, 10, 10], 0.1) < 0.95 * width


def test_richardson_lucy_follows_petpvc_update():
    rng = np.random.default_rng(2)
    image = rng.uniform(-0.2, 3.0, (12, 13, 14)).astype(np.float32)
    p = np.maximum(image.astype(np.float64), 0.0)
    f = p.copy()
    for _ in range(3):
        f = f * p / _g(f)  # PETPVC: ratio, no back-projection
    np.testing.assert_allclose(richardson_lucy(image, 12.0, VOXEL, iterations=3), f, rtol=1e-5, atol=1e-6)


def test_van_cittert_follows_petpvc_update_and_stops():
    rng = np.random.default_rng(4)
    image = rng.uniform(0.0, 3.0, (12, 13, 14)).astype(np.float32)
    p = image.astype(np.float64)
    f = p.copy()
    for _ in range(3):
        f = np.maximum(f + 1.2 * _g(p - _g(f)), 0.0)
    np.testing.assert_allclose(van_cittert(image, 12.0, VOXEL, iterations=3, alpha=1.2, stop=None), f,
                               rtol=1e-5, atol=1e-5)
    # a loose stopping threshold stops after the first update, which is kept
    np.testing.assert_array_equal(van_cittert(image, 12.0, VOXEL, iterations=10, stop=0.9),
                                  van_cittert(image, 12.0, VOXEL, iterations=1, stop=None))


def test_richardson_lucy_keeps_zero_regions_zero_and_finite():
    image = np.zeros((16, 16, 16), np.float32)
    image[6:9, 6:9, 6:9] = 2.0
    out = richardson_lucy(image, 8.0, VOXEL, iterations=5)
    assert np.all(np.isfinite(out))
    assert np.all(out[:3] == 0)


@pytest.mark.parametrize("call", [
    lambda im: richardson_lucy(im[0], 10.0, VOXEL),
    lambda im: richardson_lucy(np.where(im > 0, np.nan, im), 10.0, VOXEL),
    lambda im: van_cittert(im, 10.0, VOXEL, alpha=0.0),
    lambda im: van_cittert(im, 10.0, VOXEL, stop=-1.0),
    lambda im: van_cittert(im, 10.0, VOXEL, iterations=-2),
])
def test_bad_input_is_input_error(call):
    with pytest.raises(InputError) as err:
        call(np.ones((6, 6, 6), np.float32))
    assert "\n" not in str(err.value)
