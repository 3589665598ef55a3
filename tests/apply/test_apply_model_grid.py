"""The model grid follows the input's own orientation (closest RAS+, then its residual rotation):
an oblique input is resampled exactly (aligned index maps) and corrected like the same array stored
axis-aligned; axis-aligned, flipped and permuted inputs keep their grid. Known answers, seconds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from pvc_core.apply.model_grid import closest_ras_orientation, model_grid, reorient_affine, world_bounding_box
from pvc_core.geometry.resample import is_axis_aligned, resample_activity

VOXEL = 4.8

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny networks on one thread


def _affine(voxel=VOXEL, origin=(-40.0, -30.0, 10.0)) -> np.ndarray:
    a = np.diag([voxel, voxel, voxel, 1.0])
    a[:3, 3] = origin
    return a


def _rotation(axis: str, degrees: float) -> np.ndarray:
    """4x4 rotation about a world axis through the origin."""
    t = np.deg2rad(degrees)
    c, s = np.cos(t), np.sin(t)
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    r = np.eye(4)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def _float32(a: np.ndarray) -> np.ndarray:
    """An affine as read back from NIfTI (stored as float32)."""
    return np.asarray(a, np.float32).astype(float)


def _box_in_grid(shape, affine, grid_shape, grid_affine) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest grid index (continuous) of the corners of the input's voxel boxes."""
    corners = np.array([[i - 0.5 for i in c] for c in itertools.product(*[(0, n) for n in shape])], float)
    world = corners @ affine[:3, :3].T + affine[:3, 3]
    idx = np.linalg.solve(grid_affine[:3, :3], (world - grid_affine[:3, 3]).T).T
    return idx.min(axis=0), idx.max(axis=0)


def _covers(shape, affine, grid_shape, grid_affine) -> bool:
    lo, hi = _box_in_grid(shape, affine, grid_shape, grid_affine)
    return bool(np.all(lo >= -0.5 - 1e-6) and np.all(hi <= np.asarray(grid_shape) - 0.5 + 1e-6))


OBLIQUE = {"z30": _rotation("z", 30.0), "x20_z30": _rotation("x", 20.0) @ _rotation("z", 30.0),
           "y-10_x25_z-35": _rotation("y", -10.0) @ _rotation("x", 25.0) @ _rotation("z", -35.0)}


# ---- closest RAS+ orientation -------------------------------------------------------------------

def test_closest_ras_orientation_known_answers():
    assert closest_ras_orientation(_affine()) == ((0, 1, 2), (1, 1, 1))
    assert closest_ras_orientation(np.diag([-2.0, -2.0, 3.0, 1.0])) == ((0, 1, 2), (-1, -1, 1))  # LPS
    swap = np.array([[0, 0, -4, 0], [4, 0, 0, 0], [0, 4, 0, 0], [0, 0, 0, 1]], float)  # axis 0 = +y, 1 = +z, 2 = -x
    assert closest_ras_orientation(swap) == ((1, 2, 0), (1, 1, -1))
    assert closest_ras_orientation(_rotation("z", 30) @ _affine()) == ((0, 1, 2), (1, 1, 1))
    assert closest_ras_orientation(_rotation("z", 60) @ _affine()) == ((1, 0, 2), (1, -1, 1))
    assert closest_ras_orientation(_rotation("x", 60) @ _affine()) == ((0, 2, 1), (1, 1, -1))
    assert closest_ras_orientation(_rotation("z", 45) @ _affine()) == ((0, 1, 2), (1, 1, 1))  # tie: stored order


def test_reorienting_is_exact_and_keeps_the_voxel_boxes():
    data = np.random.default_rng(0).random((5, 6, 7))
    stored = np.transpose(data, (2, 0, 1))[::-1, :, ::-1].copy()
    # stored[a, b, c] == data[b, 5 - c, 6 - a]: its affine is _affine() @ (stored index -> data index)
    to_data = np.array([[0, 1, 0, 0], [0, 0, -1, 5], [-1, 0, 0, 6], [0, 0, 0, 1]], float)
    shape, aff = reorient_affine(stored.shape, _affine() @ to_data)
    assert shape == (5, 6, 7)
    np.testing.assert_allclose(aff, _affine(), atol=1e-12)
    assert np.array_equal(resample_activity(stored, _affine() @ to_data, shape, aff), data)


# ---- oblique inputs -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(OBLIQUE))
def test_oblique_input_on_the_model_voxels_is_its_own_model_grid_voxel_for_voxel(name):
    shape = (16, 12, 10)
    affine = _float32(OBLIQUE[name] @ _affine())
    grid_shape, grid = model_grid(shape, affine, (VOXEL,) * 3)
    assert grid_shape == shape
    np.testing.assert_allclose(grid, affine, atol=1e-9)  # the input's direction cosines and origin
    assert is_axis_aligned(affine, grid)
    data = np.random.default_rng(1).random(shape).astype(np.float32)
    # voxel for voxel: no neighbour mixed in (the index map's diagonal is 1 to ~1e-16, from solve)
    np.testing.assert_allclose(resample_activity(data, affine, grid_shape, grid), data, rtol=1e-12, atol=0)
    np.testing.assert_allclose(resample_activity(data, grid, shape, affine), data, rtol=1e-12, atol=0)


@pytest.mark.parametrize("axis, order, signs", [("z", (1, 0, 2), (1, -1, 1)), ("x", (0, 2, 1), (1, 1, -1))])
def test_a_rotation_above_45_degrees_reorders_the_axes_exactly(axis, order, signs):
    """60 degrees about z (x): array axis 1 (2) is then closest to +x (+y); the grid is the
    reoriented input (a residual rotation of -30 degrees) and resampling only transposes and flips."""
    shape = (16, 12, 10)
    affine = _float32(_rotation(axis, 60) @ _affine())
    assert closest_ras_orientation(affine) == (order, signs)
    grid_shape, grid = model_grid(shape, affine, (VOXEL,) * 3)
    assert grid_shape == tuple(shape[order.index(b)] for b in range(3))
    np.testing.assert_allclose(grid[:3, :3], (_rotation(axis, -30) @ _affine())[:3, :3], atol=1e-5)
    data = np.random.default_rng(2).random(shape)
    expected = np.transpose(data, np.argsort(order))
    for a in range(3):
        if signs[a] < 0:
            expected = np.flip(expected, order[a])
    assert np.array_equal(resample_activity(data, affine, grid_shape, grid), expected)


@pytest.mark.parametrize("name", list(OBLIQUE))
@pytest.mark.parametrize("voxel_in", [4.0, (2.4, 2.4, 3.3)])
def test_oblique_input_of_other_voxels_is_resampled_along_its_own_axes(name, voxel_in):
    """Another voxel size: the model grid's axes are the input's (aligned, exact overlap
    integration, activity conserved), it covers the input box by less than a model voxel more."""
    shape = (20, 15, 12)
    affine = _affine() @ np.diag(list(np.broadcast_to(np.asarray(voxel_in) / VOXEL, 3)) + [1.0])
    affine = _float32(OBLIQUE[name] @ affine)
    grid_shape, grid = model_grid(shape, affine, (VOXEL,) * 3)
    voxel = np.linalg.norm(grid[:3, :3], axis=0)
    np.testing.assert_allclose(voxel, VOXEL, rtol=1e-9)
    np.testing.assert_allclose(grid[:3, :3] / voxel, affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0),
                               atol=1e-12)
    assert is_axis_aligned(affine, grid) and _covers(shape, affine, grid_shape, grid)
    extent = np.asarray(shape) * np.broadcast_to(np.asarray(voxel_in), 3)
    assert np.all(np.asarray(grid_shape) * VOXEL - extent < VOXEL) and np.all(np.asarray(grid_shape) * VOXEL >= extent)
    data = np.random.default_rng(3).random(shape)
    out = resample_activity(data, affine, grid_shape, grid)
    vol_in, vol_out = abs(np.linalg.det(affine[:3, :3])), abs(np.linalg.det(grid[:3, :3]))
    assert abs(out.sum() * vol_out / (data.sum() * vol_in) - 1) < 1e-12


def test_a_sheared_input_gets_the_nearest_rotation_and_a_degenerate_one_the_world_grid():
    shape = (10, 10, 10)
    shear = np.eye(4)
    shear[0, 1] = 0.2  # axis 1 leans 11 degrees towards x
    affine = _rotation("z", 30) @ _affine() @ shear
    grid_shape, grid = model_grid(shape, affine, (VOXEL,) * 3)
    rot = grid[:3, :3] / VOXEL
    np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) > 0 and _covers(shape, affine, grid_shape, grid)


# ---- axis-aligned inputs: as before -------------------------------------------------------------

@pytest.mark.parametrize("voxel_in, expected", [(VOXEL, (16, 12, 10)), (2.0, (7, 5, 5)), (6.0, (20, 15, 13))])
def test_axis_aligned_flipped_and_permuted_inputs_keep_the_world_bounding_box_grid(voxel_in, expected):
    shape = (16, 12, 10)
    base = _affine(voxel_in)
    lower, _ = world_bounding_box(shape, base)
    want = np.diag([VOXEL, VOXEL, VOXEL, 1.0])
    want[:3, 3] = lower + VOXEL / 2  # RAS+, starting at the box's lower corner
    data = np.random.default_rng(4).random(shape)
    reference = None
    for perm in itertools.permutations(range(3)):
        for flips in itertools.product((False, True), repeat=3):
            # stored[new] = data[old]; t maps the stored index to the data index
            t = np.zeros((4, 4))
            t[3, 3] = 1
            for a, f in enumerate(flips):
                t[a, 3] = shape[a] - 1 if f else 0
            stored = np.flip(data, [a for a in range(3) if flips[a]]) if any(flips) else data
            for new, old in enumerate(perm):
                t[old, new] = -1.0 if flips[old] else 1.0
            stored = np.transpose(stored, perm)
            affine = _float32(base @ t)
            grid_shape, grid = model_grid(stored.shape, affine, (VOXEL,) * 3)
            assert grid_shape == expected
            np.testing.assert_allclose(grid, want, atol=1e-4)
            out = resample_activity(stored, affine, grid_shape, grid)
            if reference is None:
                reference = out
            np.testing.assert_allclose(out, reference, rtol=1e-9, atol=1e-12)
            if voxel_in == VOXEL:
                np.testing.assert_allclose(out, data, rtol=1e-6)  # voxel for voxel


def test_an_axis_aligned_float32_affine_on_the_model_voxels_maps_exactly():
    """4.8 mm read back from NIfTI is 4.8000002 mm: the model grid takes the input's own spacing
    (within 1e-5), so the values pass unchanged (a 4.8 mm grid scaled them by 1 + 4e-8)."""
    shape = (16, 12, 10)
    affine = _float32(_affine() @ np.array([[-1, 0, 0, 15], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], float))
    grid_shape, grid = model_grid(shape, affine, (VOXEL,) * 3)
    np.testing.assert_allclose(np.linalg.norm(grid[:3, :3], axis=0), np.float32(VOXEL), rtol=1e-12)
    data = np.random.default_rng(5).random(shape)
    assert np.array_equal(resample_activity(data, affine, grid_shape, grid), data[::-1])


# ---- end to end: correct_image ------------------------------------------------------------------

def _tiny_model(gain: float):
    from pathlib import Path

    from pvc_core.apply.model import ApplyModel
    from pvc_core.networks import build_network

    torch.manual_seed(0)
    module = build_network("unet", [4, 8]).eval()
    with torch.no_grad():
        module.gain.fill_(gain)  # 0: the identity (residual head); otherwise a fixed random operator
    cfg = {"architecture": "unet", "channels": [4, 8], "input": "full", "normalisation": "sum", "tta": False}
    return ApplyModel(module, cfg, {"trained_for": {"voxel_mm": [VOXEL] * 3}}, Path("tiny/model.pt"), "0" * 64,
                      torch.device("cpu"))


def _object(n: int = 32, voxel: float = VOXEL):
    """A blurred hot sphere and a warm ellipsoid on ``n^3`` voxels centred on the world origin; the
    regions (sphere, ellipsoid) as functions of object coordinates (mm)."""
    i, j, k = np.mgrid[:n, :n, :n].astype(float)
    c = (n - 1) / 2
    affine = np.diag([voxel, voxel, voxel, 1.0])
    affine[:3, 3] = -voxel * c
    obj = np.stack([i, j, k], -1) @ affine[:3, :3].T + affine[:3, 3]

    def sphere(p):
        return np.sum((p - np.array([-12.0, 10.0, 5.0])) ** 2, axis=-1) < 15.0 ** 2

    def ellipsoid(p):
        return np.sum(((p - np.array([20.0, -15.0, -10.0])) / np.array([30.0, 18.0, 22.0])) ** 2, axis=-1) < 1

    truth = np.where(sphere(obj), 8.0, 0.0) + np.where(ellipsoid(obj), 1.0, 0.0) + 0.05
    return gaussian_filter(truth, 1.5).astype(np.float32), affine, (sphere, ellipsoid)


def _regions(shape, affine, placement, regions) -> list[np.ndarray]:
    """Voxel masks of world regions: a voxel is in a region when its centre, in world mm through
    ``affine`` and back to the object's coordinates through ``inv(placement)``, lies in it."""
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).astype(float)
    world = idx @ affine[:3, :3].T + affine[:3, 3]
    obj = (world - placement[:3, 3]) @ np.linalg.inv(placement[:3, :3]).T
    return [region(obj) for region in regions]


@pytest.mark.parametrize("name", ["z30", "x20_z30"])
@pytest.mark.parametrize("voxel_in", [VOXEL, 4.0])
def test_oblique_storage_is_corrected_like_axis_aligned_storage(name, voxel_in):
    from pvc_core.apply.correct import correct_image
    from pvc_core.io import Image

    data, aligned, regions = _object(voxel=voxel_in)
    placement = OBLIQUE[name]
    oblique = _float32(placement @ aligned)
    model = _tiny_model(gain=0.5)
    results = {}
    for key, affine, place in (("aligned", aligned, np.eye(4)), ("oblique", oblique, placement)):
        out, facts = correct_image(model, Image(data, affine))
        masks = _regions(data.shape, affine, place, regions)
        assert all(m.sum() > 50 for m in masks)
        results[key] = (np.array([out[m].max() for m in masks]), np.array([out[m].mean() for m in masks]))
        assert abs(out.sum(dtype=np.float64) / data.sum(dtype=np.float64) - 1) < 1e-5
    for a, b in zip(results["aligned"], results["oblique"]):
        np.testing.assert_allclose(b, a, rtol=0.02)


def test_an_identity_network_returns_an_oblique_input_unchanged():
    """Gain 0 (output = input): resampled onto the model grid and back, an oblique input on the
    model's voxels comes back voxel for voxel (two trilinear deposits used to blur its peak)."""
    from pvc_core.apply.correct import correct_image
    from pvc_core.io import Image

    data, aligned, _ = _object()
    out, facts = correct_image(_tiny_model(gain=0.0), Image(data, _float32(OBLIQUE["x20_z30"] @ aligned)))
    assert facts["model_grid"]["shape"] == list(data.shape)
    np.testing.assert_allclose(out, data, rtol=1e-6, atol=1e-7 * data.max())
