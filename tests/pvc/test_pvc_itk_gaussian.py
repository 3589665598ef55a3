"""PETPVC's PSF model: ITK's discrete Gaussian kernel, its variance rounding and the blur."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage, special

from pvc_core.errors import InputError
from pvc_core.pvc import ItkGaussianBlur, itk_gaussian_blur, itk_gaussian_kernel, petpvc_variance_vox2
from pvc_core.pvc.itk_gaussian import _itk_bessel_i0, _itk_bessel_i1, _itk_bessel_in, petpvc_kernels

# tests/data/petpvc_iy/README.md (PETPVC reference case): FWHM 10 mm, voxel 4.0 x 4.0 x 4.4 mm
README_AXIS01 = [0.010490, 0.057299, 0.213838, 0.436745, 0.213838, 0.057299, 0.010490]
README_AXIS2 = [0.007014, 0.045986, 0.204484, 0.485033, 0.204484, 0.045986, 0.007014]


def test_variance_matches_petpvc_readme():
    t = petpvc_variance_vox2(10.0, (4.0, 4.0, 4.4))
    assert t == pytest.approx((1.1271, 1.1271, 0.9315), abs=5e-5)


def test_kernel_taps_equal_readme_values():
    k0, k1, k2 = petpvc_kernels(10.0, (4.0, 4.0, 4.4))
    np.testing.assert_allclose(k0, README_AXIS01, atol=1e-6)
    np.testing.assert_allclose(k1, README_AXIS01, atol=1e-6)
    np.testing.assert_allclose(k2, README_AXIS2, atol=1e-6)


@pytest.mark.parametrize("t", [0.05, 0.9315, 1.1271, 3.6, 12.0, 40.0])
def test_kernel_is_normalised_symmetric_and_truncated_at_0_99(t):
    k = itk_gaussian_kernel(t)
    r = k.size // 2
    assert k.size % 2 == 1
    assert k.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_array_equal(k, k[::-1])
    # un-normalised mass reaches 0.99 at radius r and not before
    mass = [math.exp(-t) * special.iv(0, t) + 2 * sum(math.exp(-t) * special.iv(n, t) for n in range(1, m + 1))
            for m in range(r + 1)]
    assert mass[-1] >= 0.99 - 1e-6
    assert r == 1 or mass[-2] < 0.99 + 1e-6


def test_zero_variance_is_identity_kernel():
    np.testing.assert_array_equal(itk_gaussian_kernel(0.0), [0.0, 1.0, 0.0])


@pytest.mark.parametrize("y", [0.1, 1.0, 3.0, 3.75, 5.0, 20.0])
def test_itk_bessel_approximations_agree_with_scipy(y):
    # ITK's polynomials are good to ~1e-7 relative; the module reproduces them, not scipy
    assert _itk_bessel_i0(y) == pytest.approx(special.iv(0, y), rel=3e-7)
    assert _itk_bessel_i1(y) == pytest.approx(special.iv(1, y), rel=3e-7)
    for n in (2, 3, 7):
        assert _itk_bessel_in(n, y) == pytest.approx(special.iv(n, y), rel=3e-7)


def test_blur_equals_float64_correlation_with_edge_replication():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 5, (9, 11, 13)).astype(np.float32)
    kernels = petpvc_kernels((10.0, 6.0, 14.0), (4.0, 3.0, 4.4))
    ref = x.astype(np.float64)
    for axis in (2, 1, 0):
        ref = ndimage.correlate1d(ref, kernels[axis], axis=axis, mode="nearest")
    np.testing.assert_allclose(itk_gaussian_blur(x, (10.0, 6.0, 14.0), (4.0, 3.0, 4.4)), ref, rtol=1e-6, atol=1e-6)


def test_blur_keeps_a_constant_image_constant():
    out = ItkGaussianBlur(20.0, (4.0, 4.0, 4.0))(torch.full((6, 7, 8), 3.5))
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), 3.5, rtol=1e-6)


@pytest.mark.parametrize("fwhm, voxel", [(-1.0, (4, 4, 4)), (10.0, (4, 4)), (10.0, (4, 0, 4)), ("x", (4, 4, 4)),
                                         (float("nan"), (4, 4, 4)), (5000.0, (1, 1, 1))])
def test_bad_fwhm_or_voxel_size_is_input_error(fwhm, voxel):
    with pytest.raises(InputError) as err:
        petpvc_kernels(fwhm, voxel)
    assert "\n" not in str(err.value)


def test_kernel_cut_by_the_width_limit_warns_like_itk_truncates():
    with pytest.warns(RuntimeWarning, match="32 taps a side"):
        k = itk_gaussian_kernel(200.0)
    assert k.size == 65 and k.sum() == pytest.approx(1.0)
