"""The hollow guard of ``dlpvc apply`` (:mod:`pvc_core.apply.hollow`): known answers on small
synthetic spheres (48^3, milliseconds)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from pvc_core.apply.hollow import HollowRegion, _core_to_shell_means, _hot_regions, hollow_regions
from pvc_core.errors import InputError

SHAPE = (48, 48, 48)
VOXEL_MM = 4.8


def _affine() -> np.ndarray:
    """4.8 mm voxels, array axis 0 stored right to left (x flipped), an origin offset."""
    a = np.diag([-VOXEL_MM, VOXEL_MM, VOXEL_MM, 1.0])
    a[:3, 3] = (110.0, -80.0, 30.0)
    return a


def _world(affine: np.ndarray, voxel) -> np.ndarray:
    return affine[:3, :3] @ np.asarray(voxel, float) + affine[:3, 3]


def _radius(centre, shape=SHAPE) -> np.ndarray:
    grid = np.indices(shape, dtype=float)
    return np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, centre)))


def _blurred_sphere(centre, radius=6.0, sigma=2.0, mbq_ml=1.0) -> np.ndarray:
    return gaussian_filter((_radius(centre) <= radius) * mbq_ml, sigma).astype(np.float32)


def _hollow_sphere(centre, radius=6.0, inner=3.5, mbq_ml=1.0) -> np.ndarray:
    """Sharp sphere whose rim (inner..radius) is twice its centre (< inner)."""
    r = _radius(centre)
    return (np.where(r < inner, 1.0, 2.0) * (r <= radius) * mbq_ml).astype(np.float32)


CENTRE = (24, 22, 25)


def test_hollow_output_of_solid_sphere_is_flagged():
    affine = _affine()
    inp = _blurred_sphere(CENTRE)
    out = _hollow_sphere(CENTRE)
    found = hollow_regions(inp, out, affine)
    assert len(found) == 1
    region = found[0]
    assert isinstance(region, HollowRegion)
    assert region.centre_voxel == CENTRE  # the peak of a blurred sphere centred on a voxel
    np.testing.assert_allclose(region.centre_mm, _world(affine, CENTRE), atol=1e-9)
    assert region.centre_mm == pytest.approx((110.0 - 24 * 4.8, -80.0 + 22 * 4.8, 30.0 + 25 * 4.8))
    # a single smooth sphere: the region is exactly its voxels at or above half its maximum
    assert region.voxels == int(np.count_nonzero(inp >= 0.5 * inp.max()))
    # input: centre brighter than rim; output: the core (eroded half-maximum region, radius ~5.5)
    # lies inside r < 3.5 (all 1), the shell in the rim (all 2)
    assert region.input_core_to_shell > 1.05
    assert region.output_core_to_shell == pytest.approx(0.5)
    line = region.describe()
    assert "core/shell" in line and f"{region.voxels} voxels" in line and "voxel 24, 22, 25" in line
    d = json.loads(json.dumps(region.as_dict()))
    assert d["centre_voxel"] == list(CENTRE) and d["voxels"] == region.voxels
    assert d["output_core_to_shell"] == pytest.approx(region.output_core_to_shell)
    with pytest.raises(AttributeError):
        region.voxels = 1  # frozen


def test_sharpened_solid_sphere_is_not_flagged():
    inp = _blurred_sphere(CENTRE)
    out = ((_radius(CENTRE) <= 6.0) * 1.7).astype(np.float32)
    assert hollow_regions(inp, out, _affine()) == []
    assert hollow_regions(inp, inp, _affine()) == []  # identity network


def test_input_already_hollow_is_never_flagged():
    # a necrotic lesion: outer radius 8, cold centre of radius 5.5. (With a centre of radius 4 the
    # core, r < ~5.7, is mostly wall: input core/shell 1.0, not hollow by this measure.)
    r = _radius(CENTRE)
    necrotic = ((r >= 5.5) & (r <= 8.0)).astype(float)
    inp = gaussian_filter(necrotic, 1.0).astype(np.float32)
    out = necrotic.astype(np.float32)  # the network sharpens the shell: still hollow
    # premise: one region (its cold centre filled in), hollow in the input (0.49) and in the output (0.27)
    regions = _hot_regions(inp, min_voxels=27, core_depth_voxels=2)
    assert len(regions) == 1
    in_core, in_shell = _core_to_shell_means(inp, regions[0])
    out_core, out_shell = _core_to_shell_means(out, regions[0])
    assert in_core < 0.8 * in_shell
    assert out_core < 0.8 * out_shell
    assert hollow_regions(inp, out, _affine()) == []


def test_region_under_min_voxels_is_never_judged():
    # a blurred tiny hot spot, made hollow-looking (zero at its peak) by the "network"
    inp = gaussian_filter((_radius(CENTRE) <= 1.0) * 1.0, 0.7).astype(np.float32)
    assert np.count_nonzero(inp >= 0.5 * inp.max()) < 27
    out = inp.copy()
    out[CENTRE] = 0.0
    assert hollow_regions(inp, out, _affine()) == []
    # the bound itself: a 3x3x3 cube (27 voxels, core = its centre at depth 1) is judged,
    # the same cube less one corner (26 voxels, same core) is not
    cube = np.zeros(SHAPE, np.float32)
    cube[10:13, 10:13, 10:13] = 1.0
    out = cube.copy()
    out[11, 11, 11] = 0.0
    found = hollow_regions(cube, out, _affine(), core_depth_voxels=1)
    assert len(found) == 1 and found[0].voxels == 27 and found[0].output_core_to_shell == 0.0
    assert found[0].input_core_to_shell == pytest.approx(1.0)
    cube[12, 12, 12] = 0.0
    out[12, 12, 12] = 0.0
    assert hollow_regions(cube, out, _affine(), core_depth_voxels=1) == []


def test_only_the_sphere_made_hollow_is_flagged():
    affine = _affine()
    a, b = (14, 15, 16), (33, 32, 30)
    inp = _blurred_sphere(a, mbq_ml=2.0) + _blurred_sphere(b, mbq_ml=1.0)
    out = ((_radius(a) <= 6.0) * 2.5).astype(np.float32) + _hollow_sphere(b)
    found = hollow_regions(inp, out, affine)
    assert [f.centre_voxel for f in found] == [b]
    np.testing.assert_allclose(found[0].centre_mm, _world(affine, b), atol=1e-9)
    # and the other way round
    out = _hollow_sphere(a, mbq_ml=2.0) + ((_radius(b) <= 6.0) * 1.2).astype(np.float32)
    assert [f.centre_voxel for f in hollow_regions(inp, out, affine)] == [a]


def test_bad_inputs_are_refused():
    inp = _blurred_sphere(CENTRE)
    with pytest.raises(InputError, match="shape"):
        hollow_regions(inp, inp[:-1], _affine())
    with pytest.raises(InputError, match="3-D"):
        hollow_regions(inp[0], inp[0], _affine())
    bad = inp.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="finite"):
        hollow_regions(inp, bad, _affine())
    with pytest.raises(InputError, match="affine"):
        hollow_regions(inp, inp, np.eye(3))


def test_all_zero_input_has_no_regions():
    zero = np.zeros(SHAPE, np.float32)
    assert hollow_regions(zero, zero, _affine()) == []


def test_hot_voxel_on_the_shoulder_does_not_hide_the_sphere():
    # a single voxel 3x the sphere's maximum (its neighbours under half of it) on the sphere's
    # shoulder: its own region (1 voxel) is not judged and does not absorb the sphere's peak
    inp = _blurred_sphere(CENTRE)
    spike = (CENTRE[0] + 5, CENTRE[1], CENTRE[2])
    inp[spike] = 3 * inp.max()
    out = _hollow_sphere(CENTRE)
    out[spike] = inp[spike]
    found = hollow_regions(inp, out, _affine())
    assert [f.centre_voxel for f in found] == [CENTRE]
