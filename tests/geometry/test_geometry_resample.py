"""Known answers of the activity-conserving resampling between grids given by their affines."""

import numpy as np
import pytest

from pvc_core.geometry import (centred_affine, fov_centre_mm, is_axis_aligned, lost_activity_fraction,
                               resample_activity, resample_labels, resample_mean, simulation_frame,
                               total_activity_mbq)


def _rotation_z(deg: float) -> np.ndarray:
    th = np.deg2rad(deg)
    r = np.eye(4)
    r[:2, :2] = [[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]]
    return r


def _grid(voxel_mm, shape, centre_mm=(0.0, 0.0, 0.0), rotation=None, flips=(1, 1, 1), perm=(0, 1, 2)):
    """Affine with the given voxel size, axis permutation/flips/rotation and field-of-view centre."""
    lin = np.zeros((3, 3))
    for a, w in enumerate(perm):
        lin[w, a] = flips[a] * voxel_mm
    if rotation is not None:
        lin = rotation[:3, :3] @ lin
    aff = np.eye(4)
    aff[:3, :3] = lin
    aff[:3, 3] = np.asarray(centre_mm, float) - lin @ ((np.asarray(shape, float) - 1) / 2)
    return aff


def _centroid_mm(data, affine):
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in data.shape], indexing="ij"), axis=-1).reshape(-1, 3)
    world = idx @ affine[:3, :3].T + affine[:3, 3]
    w = data.ravel().astype(np.float64)
    return (world * w[:, None]).sum(0) / w.sum()


def _random_activity(shape, pad, seed=0):
    rng = np.random.default_rng(seed)
    a = np.zeros(shape)
    inner = tuple(slice(pad, n - pad) for n in shape)
    a[inner] = rng.random(tuple(n - 2 * pad for n in shape)) ** 4 * 50
    return a


DST_SHAPE = (16, 16, 16)
DST = centred_affine(np.array([3.0, -7.0, 11.0]), DST_SHAPE, 4.8)


@pytest.mark.parametrize("case", ["scale", "flip", "permute", "oblique30"])
def test_total_activity_conserved(case):
    shape = (24, 20, 22)
    src = {"scale": _grid(2.4, shape, (3.0, -7.0, 11.0)),
           "flip": _grid(2.4, shape, (5.0, -3.0, 9.0), flips=(-1, -1, 1)),
           "permute": _grid(2.4, shape, (1.0, -8.0, 12.0), perm=(2, 0, 1), flips=(1, -1, 1)),
           "oblique30": _grid(2.4, shape, (3.0, -7.0, 11.0), rotation=_rotation_z(30.0))}[case]
    assert is_axis_aligned(src, DST) == (case != "oblique30")
    a = _random_activity(shape, pad=2)
    out = resample_activity(a, src, DST_SHAPE, DST)
    assert out.shape == DST_SHAPE and out.dtype == np.float64
    assert total_activity_mbq(out, DST) == pytest.approx(total_activity_mbq(a, src), rel=1e-6)
    assert abs(lost_activity_fraction(a, src, out, DST)) < 1e-6


def test_aligned_conservation_is_exact_to_rounding_and_loss_is_reported():
    shape = (30, 30, 30)
    a = _random_activity(shape, pad=0, seed=2)
    src = _grid(2.4, shape, (3.7, -8.3, 13.1))  # 72 mm inside the 76.8 mm target, off-grid
    out = resample_activity(a, src, DST_SHAPE, DST)
    assert total_activity_mbq(out, DST) == pytest.approx(total_activity_mbq(a, src), rel=1e-12)
    # shift the source by half its extent along x: the part outside the target is lost, and measured
    src_off = _grid(2.4, shape, (3.0 + 36.0, -7.0, 11.0))
    out = resample_activity(np.ones(shape), src_off, DST_SHAPE, DST)
    # target spans x in [3 - 38.4, 3 + 38.4], source [3, 75]: 38.4 of 72 mm inside
    assert lost_activity_fraction(np.ones(shape), src_off, out, DST) == pytest.approx(1 - 38.4 / 72.0, rel=1e-12)


@pytest.mark.parametrize("rotation_deg", [0.0, 30.0])
@pytest.mark.parametrize("background", [0.0, 1.0])
def test_one_voxel_lesion_keeps_its_activity_at_any_offset(rotation_deg, background):
    rng = np.random.default_rng(11)
    n, lesion = 20, 10.0  # 2.4 mm source voxels; the lesion is 2^3 of them = one 4.8 mm target voxel
    dst_shape = (12, 12, 12)
    dst = centred_affine(np.zeros(3), dst_shape, 4.8)
    worst = 0.0
    for _ in range(10):
        offset = rng.uniform(-0.5, 0.5, 3) * 4.8
        src = _grid(2.4, (n,) * 3, offset, rotation=_rotation_z(rotation_deg) if rotation_deg else None)
        a = np.full((n,) * 3, background)
        a[9:11, 9:11, 9:11] += lesion
        centre = src[:3, :3] @ np.full(3, 9.5) + src[:3, 3]
        c = np.rint(np.linalg.solve(dst, np.r_[centre, 1.0])[:3]).astype(int)
        out = resample_activity(a, src, dst_shape, dst)
        box = out[c[0] - 1:c[0] + 2, c[1] - 1:c[1] + 2, c[2] - 1:c[2] + 2].sum() - 27 * background
        worst = max(worst, abs(box / lesion - 1.0))
    assert worst < (1e-12 if rotation_deg == 0 else 0.01)


def test_flipped_round_trip_is_exact():
    shape = (12, 10, 8)
    a = _random_activity(shape, pad=0, seed=4)
    ras = _grid(2.0, shape, (10.0, -20.0, 30.0))
    lps = _grid(2.0, shape, (10.0, -20.0, 30.0), flips=(-1, -1, 1))  # diag(-2, -2, 2), same field of view
    assert np.allclose(lps[:3, :3], np.diag([-2.0, -2.0, 2.0]))
    stored_lps = a[::-1, ::-1, :]
    to_ras = resample_activity(stored_lps, lps, shape, ras)
    assert np.array_equal(to_ras, a)
    assert np.array_equal(resample_activity(to_ras, ras, shape, lps), stored_lps)
    assert np.array_equal(resample_mean(stored_lps, lps, shape, ras), a)


def test_oblique_round_trip_keeps_total_and_centroid():
    shape = (24, 24, 24)
    a = _random_activity(shape, pad=6, seed=5)
    oblique = _grid(2.4, shape, (3.0, -7.0, 11.0), rotation=_rotation_z(30.0))
    there = resample_activity(a, oblique, DST_SHAPE, DST)
    back = resample_activity(there, DST, shape, oblique)
    assert total_activity_mbq(back, oblique) == pytest.approx(total_activity_mbq(a, oblique), rel=1e-6)
    drift_mm = np.abs(_centroid_mm(back, oblique) - _centroid_mm(a, oblique)).max()
    assert drift_mm < 0.1 * 2.4


def test_mean_of_uniform_mu_is_uniform_where_covered_and_zero_outside():
    shape = (20, 20, 20)
    src = _grid(2.4, shape, (3.0, -7.0, 11.0))  # covers 48 mm of the 76.8 mm target
    mu = np.full(shape, 0.135)
    out = resample_mean(mu, src, DST_SHAPE, DST)
    covered = out > 0
    assert np.allclose(out[covered], 0.135, rtol=1e-12)
    assert covered.sum() == 10**3 and not covered[0].any()
    oblique = resample_mean(mu, _grid(2.4, shape, (3.0, -7.0, 11.0), rotation=_rotation_z(30.0)), DST_SHAPE, DST)
    assert np.allclose(oblique[oblique > 0], 0.135, rtol=1e-9) and oblique[:, :, :2].max() == 0


def test_labels_nearest_neighbour_keeps_dtype_and_values():
    shape = (8, 8, 8)
    lab = np.zeros(shape, np.uint8)
    lab[2:6, 2:6, 2:6] = 7
    lab[3, 3, 3] = 200
    lps = _grid(2.0, shape, (1.0, 2.0, 3.0), flips=(-1, -1, 1))
    ras = _grid(2.0, shape, (1.0, 2.0, 3.0))
    out = resample_labels(lab, lps, shape, ras)
    assert out.dtype == np.uint8 and np.array_equal(out, lab[::-1, ::-1, :])
    fine = resample_labels(lab, ras, (16, 16, 16), centred_affine(np.array([1.0, 2.0, 3.0]), (16,) * 3, 1.0))
    assert fine.dtype == np.uint8 and set(np.unique(fine)) == {0, 7, 200} and (fine == 200).sum() == 8
    outside = resample_labels(lab, ras, (4, 4, 4), centred_affine(np.array([500.0, 0, 0]), (4,) * 3, 2.0))
    assert not outside.any()
    rotated = resample_labels(lab.astype(np.int32), _grid(2.0, shape, (1.0, 2.0, 3.0), rotation=_rotation_z(30.0)),
                              shape, ras)
    assert rotated.dtype == np.int32 and set(np.unique(rotated)) <= {0, 7, 200}


def test_simulation_frame_is_centred_on_the_input_field_of_view():
    shape = (40, 30, 20)
    lps = _grid(2.0, shape, (12.0, -30.0, 100.0), flips=(-1, -1, 1))
    assert np.allclose(fov_centre_mm(shape, lps), [12.0, -30.0, 100.0])
    frame = simulation_frame(shape, lps, 16, 4.8)
    assert np.allclose(frame[:3, :3], np.diag([4.8] * 3))
    assert np.allclose(fov_centre_mm((16,) * 3, frame), [12.0, -30.0, 100.0])
    # a simulation grid refined by 2 and its reconstruction grid share the centre: blocks of 2^3
    fine = simulation_frame(shape, lps, 32, 2.4)
    assert np.allclose(fine[:3, :3] @ np.full(3, 0.5) + fine[:3, 3], frame[:3, 3])


def test_integer_factor_is_the_phantom_stage_block_mean():
    from pvc_core.geometry.blocks import downsample_activity

    a = (np.random.default_rng(1).random((16, 16, 16)) ** 8 * 50).astype(np.float32)
    fine = simulation_frame(a.shape, centred_affine(np.zeros(3), a.shape, 2.4), 16, 2.4)
    coarse = simulation_frame(a.shape, fine, 8, 4.8)
    out = resample_activity(a, fine, (8, 8, 8), coarse)
    assert np.allclose(out, downsample_activity(a, 2), rtol=1e-6, atol=0)
