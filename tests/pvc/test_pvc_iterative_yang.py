"""Iterative Yang: PETPVC's own output, known answers on phantoms, masks of every kind, bad input."""

from __future__ import annotations

import platform

import numpy as np
import pytest
import torch
from scipy import ndimage

from conftest import PETPVC_CASE as CASE
from pvc_core.errors import InputError
from pvc_core.pvc import itk_gaussian_blur, iterative_yang
from pvc_core.pvc.itk_gaussian import petpvc_kernels

VOXEL = (4.0, 4.0, 4.0)


def _sphere(n: int, radius_vox: float, centre=None) -> np.ndarray:
    c = np.full(3, (n - 1) / 2) if centre is None else np.asarray(centre, dtype=float)
    g = np.indices((n, n, n)) - c[:, None, None, None]
    return np.sqrt((g**2).sum(0)) <= radius_vox


def _iy_reference(p, weights, fwhm, voxel, iterations):
    """The algorithm as PETPVC's README states it, in float64 numpy/scipy (an independent check)."""
    kernels = petpvc_kernels(fwhm, voxel)

    def g(y):
        for axis in (2, 1, 0):
            y = ndimage.correlate1d(y, kernels[axis], axis=axis, mode="nearest")
        return y

    w = weights.reshape(-1, weights.shape[-1]).T.astype(np.float64)  # (K, N)
    size = w.sum(1)
    mixing = (w @ w.T) / size[:, None]
    p64 = p.astype(np.float64)
    f = p64
    for _ in range(iterations):
        m = np.maximum((w @ f.ravel()) / size, 0.0)
        y = (np.linalg.solve(mixing, m) @ w).reshape(p.shape)
        gy = g(y)
        f = p64 * np.divide(y, gy, out=np.zeros_like(y), where=gy != 0)
    return f


# --- PETPVC itself -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def petpvc_case():
    """PETPVC v1.2.12's input, masks and iterative Yang outputs (tests/data/petpvc_iy, always present)."""
    import nibabel as nib

    img = nib.load(str(CASE / "input.nii.gz"))
    return {
        "input": np.asarray(img.dataobj, dtype=np.float32),
        "voxel": tuple(float(v) for v in img.header.get_zooms()[:3]),
        "labels": np.asarray(nib.load(str(CASE / "labels.nii.gz")).dataobj),
        "mask4d": np.asarray(nib.load(str(CASE / "mask4d.nii.gz")).dataobj),
        10: np.asarray(nib.load(str(CASE / "iy_10it.nii.gz")).dataobj, dtype=np.float32),
        5: np.asarray(nib.load(str(CASE / "iy_5it.nii.gz")).dataobj, dtype=np.float32),
    }


@pytest.mark.parametrize("iterations", [10, 5])
@pytest.mark.parametrize("mask", ["labels", "mask4d"])
def test_matches_petpvc_output(petpvc_case, iterations, mask):
    ref = petpvc_case[iterations].astype(np.float64)
    out = iterative_yang(petpvc_case["input"], petpvc_case[mask], 10.0, petpvc_case["voxel"], iterations=iterations)
    assert out.dtype == np.float32 and out.shape == ref.shape
    diff = np.abs(out - ref)
    assert np.count_nonzero(diff > 1e-4 + 1e-4 * np.abs(ref)) == 0  # the contract
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert diff.max() == 0  # what it achieves: PETPVC's float32 output bit for bit
    else:
        assert diff.max() <= 1e-6  # other CPUs may round a fused multiply-add differently


def test_petpvc_case_through_the_probabilistic_path(petpvc_case):
    # a 0.999 scaling of the 4-D mask forces the dense (probabilistic) code path; F stays diagonal
    # and the result must stay PETPVC's up to float32 rounding
    mask = petpvc_case["mask4d"].astype(np.float32) * np.float32(0.999)
    out = iterative_yang(petpvc_case["input"], mask, 10.0, petpvc_case["voxel"], iterations=10)
    ref = petpvc_case[10].astype(np.float64)
    assert np.abs(out - ref).max() <= 1e-5 + 1e-5 * np.abs(ref).max()


# --- known answers -----------------------------------------------------------------------------

def test_uniform_sphere_mean_restored_with_right_mask_and_fwhm():
    lab = _sphere(32, 5).astype(np.int32)
    truth = np.where(lab == 1, 4.0, 0.5).astype(np.float32)
    image = itk_gaussian_blur(truth, 12.0, VOXEL)
    assert image[lab == 1].mean() < 0.8 * 4.0  # the partial-volume loss is real
    out = iterative_yang(image, lab, 12.0, VOXEL, iterations=10)
    assert out[lab == 1].mean() == pytest.approx(4.0, rel=0.02)
    assert out[lab == 0].mean() == pytest.approx(0.5, rel=0.02)


def test_sphere_blurred_with_a_true_gaussian_is_restored_within_3_percent():
    # a sampled Gaussian is wider than ITK's discrete kernel of the same FWHM, so IY with the
    # nominal FWHM under-recovers slightly (PETPVC does the same)
    lab = _sphere(32, 5).astype(np.int32)
    truth = np.where(lab == 1, 4.0, 0.5)
    image = ndimage.gaussian_filter(truth, 12.0 / 2.3548 / 4.0, mode="nearest").astype(np.float32)
    out = iterative_yang(image, lab, 12.0, VOXEL)
    assert out[lab == 1].mean() == pytest.approx(4.0, rel=0.03)


def test_two_touching_regions_of_different_concentration():
    lab = np.zeros((24, 24, 24), dtype=np.int32)
    lab[6:18, 6:12, 6:18] = 1
    lab[6:18, 12:18, 6:18] = 2  # shares a face with region 1
    truth = np.choose(lab, [0.2, 5.0, 1.0]).astype(np.float32)
    image = itk_gaussian_blur(truth, 10.0, VOXEL)
    out = iterative_yang(image, lab, 10.0, VOXEL)
    for k, value in enumerate([0.2, 5.0, 1.0]):
        assert out[lab == k].mean() == pytest.approx(value, rel=0.02)


def test_region_with_zero_activity_stays_near_zero_and_finite():
    lab = np.zeros((24, 24, 24), dtype=np.int32)
    lab[4:20, 4:20, 4:20] = 1
    lab[9:15, 9:15, 9:15] = 2  # cold insert inside a hot body
    truth = np.choose(lab, [0.0, 3.0, 0.0]).astype(np.float32)
    image = itk_gaussian_blur(truth, 10.0, VOXEL)
    out = iterative_yang(image, lab, 10.0, VOXEL)
    assert np.all(np.isfinite(out))
    # IY's fixed point has the cold region at 0; it gets there geometrically (slowly for cold inserts)
    early = iterative_yang(image, lab, 10.0, VOXEL, iterations=2)
    assert out[lab == 2].mean() < 0.5 * early[lab == 2].mean()
    assert out[lab == 2].mean() < 0.1 * image[lab == 2].mean()
    assert out[lab == 1].mean() == pytest.approx(3.0, rel=0.02)
    assert out[lab == 0].mean() < 0.1 * image[lab == 0].mean()  # spill-out removed from the cold background


def test_probabilistic_mask_with_overlap_recovers_region_values():
    n = 24
    hot = ndimage.gaussian_filter(_sphere(n, 5).astype(np.float64), 0.7)  # soft edge, weights in [0, 1]
    hot = np.clip(hot / hot.max(), 0.0, 1.0)
    mask = np.stack([1.0 - hot, hot], axis=-1)  # overlapping fractions: F is not the identity
    truth = (mask @ np.array([0.5, 4.0])).astype(np.float32)
    image = itk_gaussian_blur(truth, 12.0, VOXEL)
    out = iterative_yang(image, mask, 12.0, VOXEL, iterations=10)
    core = hot > 0.99
    assert out[core].mean() == pytest.approx(4.0, rel=0.02)
    np.testing.assert_allclose(out, _iy_reference(image, mask, 12.0, VOXEL, 10), rtol=1e-5, atol=1e-5)


def test_overlapping_binary_volumes_follow_petpvc_mixing():
    n = 20
    a = np.zeros((n, n, n)); a[3:12, 3:15, 3:15] = 1
    b = np.zeros((n, n, n)); b[9:17, 3:15, 3:15] = 1  # overlaps a on 3 slices
    c = 1.0 - np.maximum(a, b)
    mask = np.stack([c, a, b], axis=-1).astype(np.int16)
    rng = np.random.default_rng(3)
    image = rng.uniform(0.5, 3.0, (n, n, n)).astype(np.float32)
    out = iterative_yang(image, mask, (8.0, 10.0, 12.0), (4.0, 4.0, 4.4), iterations=4)
    ref = _iy_reference(image, mask, (8.0, 10.0, 12.0), (4.0, 4.0, 4.4), 4)
    np.testing.assert_allclose(out, ref, rtol=2e-5, atol=2e-5)


def test_zero_blurred_pseudo_image_gives_finite_zero_output():
    # one small region in a corner of a 4-D mask; voxels far away belong to no region, so
    # G(Y) = 0 there (PETPVC writes FLT_MAX-scaled values, then NaN everywhere)
    n = 24
    region = np.zeros((n, n, n, 1), dtype=np.float32)
    region[:3, :3, :3, 0] = 1
    image = np.full((n, n, n), 2.0, dtype=np.float32)
    out = iterative_yang(image, region, 8.0, VOXEL, iterations=3)
    assert np.all(np.isfinite(out))
    assert np.all(out[10:, 10:, 10:] == 0)
    assert out[:3, :3, :3].min() > 0


def test_all_zero_image_gives_zero_output():
    lab = _sphere(16, 4).astype(np.int32)
    out = iterative_yang(np.zeros((16, 16, 16), np.float32), lab, 10.0, VOXEL)
    assert np.all(out == 0)


def test_zero_iterations_return_the_image_and_labels_of_any_integer_form():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (10, 10, 10)).astype(np.float32)
    lab = _sphere(10, 3)
    np.testing.assert_array_equal(iterative_yang(image, lab, 8.0, VOXEL, iterations=0), image)
    as_int = iterative_yang(image, lab.astype(np.int16), 8.0, VOXEL, iterations=2)
    np.testing.assert_array_equal(iterative_yang(image, lab, 8.0, VOXEL, iterations=2), as_int)  # bool
    np.testing.assert_array_equal(iterative_yang(image, lab.astype(np.float32) * 7, 8.0, VOXEL, iterations=2), as_int)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_agrees_with_cpu():
    lab = _sphere(32, 5).astype(np.int32)
    image = itk_gaussian_blur(np.where(lab == 1, 4.0, 0.5).astype(np.float32), 12.0, VOXEL)
    cpu = iterative_yang(image, lab, 12.0, VOXEL)
    gpu = iterative_yang(image, lab, 12.0, VOXEL, device="cuda")
    np.testing.assert_allclose(gpu, cpu, rtol=1e-5, atol=1e-6)


# --- bad input ---------------------------------------------------------------------------------

def _bad_cases():
    good = np.ones((8, 8, 8), np.float32)
    lab = np.zeros((8, 8, 8), np.int32)
    lab[2:5, 2:5, 2:5] = 1
    nan = good.copy()
    nan[1, 1, 1] = np.nan
    empty4d = np.zeros((8, 8, 8, 2), np.float32)
    empty4d[..., 0] = 1
    return [
        ("shape", (good, lab[:7]), "differs from image shape"),
        ("shape4d", (good, np.ones((8, 8, 7, 2))), "does not match image shape"),
        ("nan", (nan, lab), "NaN"),
        ("empty region", (good, empty4d), "mask volume 1"),
        ("fractional labels", (good, lab * 0.5), "whole numbers"),
        ("negative labels", (good, lab - 1), ">= 0"),
        ("weights > 1", (good, np.stack([lab, lab * 2], -1).astype(np.float32)), "[0, 1]"),
        ("2-D image", (good[0], lab[0]), "3-D"),
        ("5-D labels", (good, lab[..., None, None]), "3-D label map or a 4-D mask"),
    ]


@pytest.mark.parametrize("name, args, words", _bad_cases(), ids=[c[0] for c in _bad_cases()])
def test_bad_input_is_one_line_input_error(name, args, words):
    with pytest.raises(InputError) as err:
        iterative_yang(*args, 10.0, VOXEL)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kwargs", [{"iterations": -1}, {"iterations": 2.5}, {"fwhm_mm": -3.0},
                                    {"voxel_size_mm": (4.0, 4.0)}])
def test_bad_parameters_are_input_errors(kwargs):
    lab = np.zeros((8, 8, 8), np.int32)
    lab[2:5, 2:5, 2:5] = 1
    args = {"image": np.ones((8, 8, 8), np.float32), "labels": lab, "fwhm_mm": 10.0, "voxel_size_mm": VOXEL}
    args.update(kwargs)
    with pytest.raises(InputError):
        iterative_yang(**args)
