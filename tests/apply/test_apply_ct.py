"""CT (HU) -> mu at 208 keV on the model grid when the grid is oblique to the CT (an oblique SPECT):
the fast path (crop, exact average within the CT's own orientation, one oblique pass) against
known answers and against the direct oblique :func:`resample_mean`; the aligned path unchanged.
Known answers, seconds."""

from __future__ import annotations

import numpy as np
import pytest

import pvc_core.apply.ct as ct_module
from pvc_core.apply.ct import ct_mu_on_grid, hu_to_mu_208kev
from pvc_core.errors import InputError
from pvc_core.geometry.resample import is_axis_aligned, resample_labels, resample_mean
from pvc_core.io import Image
from pvc_core.phantom.materials import mu_208kev

VOXEL = 4.8


def _rotation_z(degrees: float) -> np.ndarray:
    t = np.deg2rad(degrees)
    c, s = np.cos(t), np.sin(t)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rotation_x(degrees: float) -> np.ndarray:
    t = np.deg2rad(degrees)
    c, s = np.cos(t), np.sin(t)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _ct_affine(shape, voxel, centre=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Axis-aligned RAS+ CT affine with its voxel centres centred on ``centre`` (mm)."""
    voxel = np.broadcast_to(np.asarray(voxel, float), (3,))
    a = np.diag([*voxel, 1.0])
    a[:3, 3] = np.asarray(centre, float) - (np.asarray(shape) - 1) / 2 * voxel
    return a


def _grid(shape, rotation: np.ndarray, centre=(0.0, 0.0, 0.0), voxel=VOXEL) -> np.ndarray:
    """Grid affine with axes ``rotation``'s columns, voxel centres centred on ``centre`` (mm)."""
    a = np.eye(4)
    a[:3, :3] = rotation * voxel
    a[:3, 3] = np.asarray(centre, float) - a[:3, :3] @ ((np.asarray(shape) - 1) / 2)
    return a


def _direct(ct: Image, shape, affine) -> tuple[np.ndarray, float]:
    """ct_mu_on_grid as it was: two direct resample_mean calls (oblique: supersampling of every CT voxel)."""
    coverage = resample_mean(np.ones(ct.data.shape, np.float32), ct.affine, shape, affine)
    return resample_mean(hu_to_mu_208kev(ct.data), ct.affine, shape, affine), float(np.mean(coverage > 0.5))


def _structured_ct(shape, voxel) -> tuple[np.ndarray, np.ndarray]:
    """A thorax-like CT (HU) in air: soft tissue, two lungs, a spine, a contrast-filled block; and the body mask."""
    axes = [(np.arange(n) - (n - 1) / 2) * voxel for n in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    half = shape[0] * voxel / 2
    hu = np.full(shape, -1000.0, np.float32)
    body = (x / (0.85 * half)) ** 2 + (y / (0.6 * half)) ** 2 <= 1
    hu[body] = 40.0
    for side in (-1, 1):
        lung = ((x - side * 0.36 * half) / (0.2 * half)) ** 2 + (y / (0.3 * half)) ** 2 <= 1
        hu[lung & (z > -0.2 * half)] = -800.0
    hu[(x / (0.08 * half)) ** 2 + ((y + 0.4 * half) / (0.08 * half)) ** 2 <= 1] = 1200.0
    hu[(np.abs(x - 0.1 * half) < 0.06 * half) & (np.abs(y) < 0.2 * half) & (np.abs(z) < 0.16 * half)] = 300.0
    return hu, body


@pytest.mark.parametrize("ct_voxel", [2.0, 1.2])
def test_water_cylinder_on_a_30_degree_oblique_grid_is_water_inside_air_outside_with_known_coverage(ct_voxel):
    # water cylinder (0 HU, radius 60 mm, axis z) in air; the CT covers the grid's whole rotated
    # footprint in-plane and, along z, exactly the grid's slices 0..9 of 16 (48 mm = 10 x 4.8 mm)
    n_xy = int(round(224.0 / ct_voxel))
    n_z = int(round(48.0 / ct_voxel))
    shape = (n_xy, n_xy, n_z)
    grid_shape = (32, 32, 16)
    rot = _rotation_z(30.0)
    grid = _grid(grid_shape, rot)
    ct_affine = _ct_affine(shape, ct_voxel, centre=(0.0, 0.0, grid[2, 3] - VOXEL / 2 + 24.0))
    axes = [(np.arange(n) - (n - 1) / 2) * ct_voxel for n in shape[:2]]
    x, y = np.meshgrid(*axes, indexing="ij")
    hu = np.where(x ** 2 + y ** 2 <= 60.0 ** 2, 0.0, -1000.0).astype(np.float32)
    ct = Image(np.repeat(hu[:, :, None], n_z, axis=2), ct_affine)
    assert not is_axis_aligned(ct.affine, grid)

    mu, covered = ct_mu_on_grid(ct, grid_shape, grid, "ct")

    # coverage: slices 0..9 inside the CT, slice 10 touched by the trilinear deposit of the CT's
    # top layer (as the direct path counts it), slices 11..15 not reached
    assert covered == pytest.approx(11 / 16, abs=1e-12)
    assert mu[:, :, 11:].max() == 0.0
    centres = grid[:3, :3] @ np.indices(grid_shape).reshape(3, -1) + grid[:3, 3:]
    radius = np.hypot(centres[0], centres[1]).reshape(grid_shape)
    inside = (radius < 60.0 - 2 * VOXEL)[:, :, :10]
    outside = (radius > 60.0 + 2 * VOXEL)[:, :, :10]
    assert inside.sum() > 300 and outside.sum() > 300
    np.testing.assert_allclose(mu[:, :, :10][inside], mu_208kev("water"), rtol=1e-2)
    assert np.abs(mu[:, :, :10][inside] / mu_208kev("water") - 1).max() < 1e-6  # a mean of water is water
    assert mu[:, :, :10][outside].max() == 0.0
    assert mu.dtype == np.float32 and mu.shape == grid_shape


def test_fast_oblique_path_agrees_with_the_direct_resampling_within_one_percent_over_the_body():
    # 1.2 mm CT onto a doubly oblique grid: the CT is averaged to coarser voxels before the oblique pass
    shape, voxel = (144, 144, 48), 1.2
    hu, body = _structured_ct(shape, voxel)
    ct = Image(hu, _ct_affine(shape, voxel))
    grid_shape = (32, 32, 12)
    grid = _grid(grid_shape, _rotation_z(30.0) @ _rotation_x(12.0), centre=(6.0, -4.0, 2.0))
    coarse = ct_module._coarsen_for(shape, np.linalg.solve(grid, ct.affine))
    assert np.prod(coarse) < np.prod(shape) / 3  # the coarsening is exercised

    fast, covered = ct_mu_on_grid(ct, grid_shape, grid, "ct")
    direct, covered_direct = _direct(ct, grid_shape, grid)

    in_body = resample_labels(body.astype(np.uint8), ct.affine, grid_shape, grid) > 0
    scale = direct[in_body].mean()
    assert in_body.sum() > 1000
    assert abs(fast[in_body].mean() / scale - 1) < 0.01
    assert np.abs(fast - direct)[in_body].mean() / scale < 0.01
    assert covered == pytest.approx(covered_direct, rel=0.02)  # the same box, sub-points differ only at its faces


def test_crop_and_single_pass_change_nothing_when_the_ct_is_not_coarsened():
    # 3 mm voxels are already more than half a 4.8 mm voxel: only the crop to the grid (a CT much
    # larger than the grid) and the coverage offset apply, both exact
    shape, voxel = (80, 80, 40), 3.0
    hu, _ = _structured_ct(shape, voxel)
    ct = Image(hu, _ct_affine(shape, voxel))
    grid_shape = (20, 20, 10)
    grid = _grid(grid_shape, _rotation_z(30.0) @ _rotation_x(10.0), centre=(30.0, 10.0, -5.0))
    m = np.linalg.solve(grid, ct.affine)
    assert ct_module._coarsen_for(shape, m) == shape
    assert ct_module._crop_to_grid(shape, m, grid_shape) != tuple(slice(0, n) for n in shape)

    fast, covered = ct_mu_on_grid(ct, grid_shape, grid, "ct")
    direct, covered_direct = _direct(ct, grid_shape, grid)
    np.testing.assert_allclose(fast, direct, rtol=0, atol=1e-6)
    assert covered == covered_direct


def test_ct_partly_outside_an_oblique_grid_and_not_at_all():
    shape, voxel = (40, 40, 20), 2.0
    ct = Image(np.zeros(shape, np.float32), _ct_affine(shape, voxel))  # water, 80 x 80 x 40 mm
    grid_shape = (16, 16, 16)
    rot = _rotation_z(30.0)
    # grid centred on a CT corner: about an eighth of it is covered
    mu, covered = ct_mu_on_grid(ct, grid_shape, _grid(grid_shape, rot, centre=(40.0, 40.0, 20.0)), "ct")
    assert 0.08 < covered < 0.25
    assert np.allclose(mu[mu > 0], mu_208kev("water"), rtol=1e-6)
    with pytest.raises(InputError, match="does not overlap"):
        ct_mu_on_grid(ct, grid_shape, _grid(grid_shape, rot, centre=(900.0, 0.0, 0.0)), "ct.nii.gz")
    bad = Image(np.full(shape, -3024, np.float32), ct.affine)
    with pytest.raises(InputError, match="outside -1024..4000 HU"):
        ct_mu_on_grid(bad, grid_shape, _grid(grid_shape, rot), "ct.nii.gz")


@pytest.mark.parametrize("flip", [False, True])
def test_aligned_ct_is_resampled_exactly_as_before(flip):
    shape, voxel = (50, 40, 30), 2.0
    hu, _ = _structured_ct(shape, voxel)
    affine = _ct_affine(shape, voxel)
    if flip:  # LPS-like storage: still axis-aligned with the grid
        hu = hu[::-1, ::-1].copy()
        affine = affine @ np.array([[-1, 0, 0, shape[0] - 1], [0, -1, 0, shape[1] - 1], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    ct = Image(hu, affine)
    grid_shape = (18, 14, 10)
    grid = _grid(grid_shape, np.eye(3), centre=(3.1, -2.2, 1.0))
    assert is_axis_aligned(ct.affine, grid)
    mu, covered = ct_mu_on_grid(ct, grid_shape, grid, "ct")
    direct, covered_direct = _direct(ct, grid_shape, grid)
    assert np.array_equal(mu, direct.astype(np.float32)) and covered == covered_direct
