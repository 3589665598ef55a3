"""Case figures of the report (pvc_core.report.slices): known answers for the helpers, PNGs that open."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from scipy.ndimage import gaussian_filter

from pvc_core.report import slices

VOXEL_MM = 4.0


def _phantom(n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """(truth in MBq/mL, mu in 1/cm): a 2.0 MBq/mL sphere (radius 4 voxels) off-centre inside a
    water cylinder (mu 0.135 /cm, radius 8 voxels, axis along z) of an n^3 grid."""
    x, y, z = np.meshgrid(*(np.arange(n),) * 3, indexing="ij")
    c = (n - 1) / 2
    mu = np.where((x - c) ** 2 + (y - c) ** 2 <= 8.0**2, 0.135, 0.0)
    truth = np.where((x - c - 2) ** 2 + (y - c) ** 2 + (z - c) ** 2 <= 4.0**2, 2.0, 0.0)
    return truth, mu


def _assert_png(path: str) -> None:
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    assert img.shape[0] > 0 and img.shape[1] > 0


def test_profile_points_single_hot_voxel():
    t = np.zeros((12, 14, 16))
    t[5, 7, 9] = 3.0
    assert slices.profile_points(t) == (7, 9)


def test_profile_points_hot_cube_and_hottest_row():
    t = np.zeros((16, 16, 16))
    t[2:6, 9:13, 10:14] = 1.0  # most activity in slices 10..13 (equal): argmax takes the first
    t[4, 11, 10] = 5.0  # hottest voxel, also makes slice 10 the hottest
    assert slices.profile_points(t) == (11, 10)


def test_profile_points_uniform_cube_takes_middle_row():
    t = np.zeros((16, 16, 16))
    t[2:6, 8:11, 3:6] = 2.0  # rows 8, 9, 10 tie; slices 3, 4, 5 tie
    assert slices.profile_points(t) == (9, 3)


def test_profile_points_uniform_sphere_crosses_centre_row():
    truth, _ = _phantom()  # sphere centre at y = 11.5: rows 11 and 12 hold its widest chord
    y, z = slices.profile_points(truth)
    assert y in (11, 12)
    assert (truth[:, y, z] > 0).sum() == (truth[..., z] > 0).sum(axis=0).max()


def test_profile_points_rejects_2d():
    with pytest.raises(ValueError, match="truth"):
        slices.profile_points(np.ones((4, 4)))


def test_body_crop_cylinder_with_margin_and_empty_slice():
    mu = np.zeros((20, 30))
    mu[5:10, 8:20] = 0.135
    assert slices.body_crop(mu) == (slice(3, 12), slice(6, 22))
    mu_edge = np.zeros((20, 30))
    mu_edge[0:3, 27:30] = 0.1  # margin clipped at the edges
    assert slices.body_crop(mu_edge) == (slice(0, 5), slice(25, 30))
    assert slices.body_crop(np.zeros((20, 30))) == (slice(0, 20), slice(0, 30))


def test_body_crop_keeps_activity_outside_the_body():
    mu = np.zeros((20, 30))
    mu[5:10, 8:20] = 0.135
    truth = np.zeros((20, 30))
    truth[15, 25] = 1.0
    assert slices.body_crop(mu, truth) == (slice(3, 18), slice(6, 28))


def test_slice_figure_writes_png(tmp_path):
    truth, mu = _phantom()
    blurred = gaussian_filter(truth, 1.5)
    panels = [("truth", truth), ("no PVC", blurred), ("perfect", truth.copy())]
    out = slices.slice_figure(panels, truth, mu, VOXEL_MM, str(tmp_path / "slices.png"), title="sphere phantom")
    assert out == str(tmp_path / "slices.png")
    _assert_png(out)


def test_slice_figure_without_truth_panel(tmp_path):
    truth, mu = _phantom()
    out = slices.slice_figure([("no PVC", gaussian_filter(truth, 1.5))], truth, mu, VOXEL_MM,
                              str(tmp_path / "one.png"), alpha=0.1)
    _assert_png(out)


def test_slice_figure_names_panel_of_wrong_shape(tmp_path):
    truth, mu = _phantom()
    panels = [("truth", truth), ("DL-PVC", truth[:-1])]
    with pytest.raises(ValueError, match="DL-PVC"):
        slices.slice_figure(panels, truth, mu, VOXEL_MM, str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match="flat"):
        slices.slice_figure([("flat", truth[..., 0])], truth, mu, VOXEL_MM, str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match="mu_per_cm"):
        slices.slice_figure([("truth", truth)], truth, mu[..., :-1], VOXEL_MM, str(tmp_path / "x.png"))
    assert not (tmp_path / "x.png").exists()


def _metrics_table() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for dataset in ("RR_nf", "noRR_n"):
        for method in ("none", "iy_truth", "dl:unet"):
            for case in range(5):
                rows.append({"case": case, "dataset": dataset, "method": method, "ssim": rng.uniform(0.5, 1.0),
                             "nrmse_pct": rng.uniform(5, 40), "vaa_pct": rng.uniform(0, 80),
                             "ad_pct": rng.normal(0, 5)})
    rows.append({"case": 0, "dataset": "RR_nf", "method": "rl", "ssim": 0.8, "nrmse_pct": 20.0, "vaa_pct": 30.0,
                 "ad_pct": 1.0})  # a group with a single case
    rows.append({"case": 0, "dataset": "noRR_n", "method": "rl", "ssim": np.nan, "nrmse_pct": 10.0,
                 "vaa_pct": 12.0, "ad_pct": np.nan})  # a group with a NaN
    rows.append({"case": 1, "dataset": "noRR_n", "method": "rl", "ssim": 0.7, "nrmse_pct": 10.0,
                 "vaa_pct": 12.0, "ad_pct": -2.0})  # ... and no spread in NRMSE and VAA
    return pd.DataFrame(rows)


def test_metric_violins_writes_png(tmp_path):
    out = slices.metric_violins(_metrics_table(), str(tmp_path / "violins.png"))
    _assert_png(out)


def test_metric_violins_names_missing_columns(tmp_path):
    with pytest.raises(ValueError, match="vaa_pct"):
        slices.metric_violins(_metrics_table().drop(columns="vaa_pct"), str(tmp_path / "v.png"))


def test_voxel_histogram_percent_sums_to_100_in_range():
    truth, _ = _phantom(16)
    image = truth * np.random.default_rng(2).uniform(0.1, 1.2, truth.shape)
    h = slices.voxel_histogram_percent(image, truth, slices.HISTOGRAM_BINS_REL)
    assert h.shape == (len(slices.HISTOGRAM_BINS_REL) - 1,)
    assert h.sum() == pytest.approx(100.0)


def test_voxel_histogram_percent_uniform_truth_in_bin_of_one():
    truth = np.zeros((8, 8, 8))
    truth[2:6, 2:6, 2:6] = 1.0
    bins = slices.HISTOGRAM_BINS_REL
    h = slices.voxel_histogram_percent(truth, truth, bins)
    one = int(np.searchsorted(bins, 1.0, side="right")) - 1
    assert h[one] == pytest.approx(100.0)
    assert h.sum() == pytest.approx(100.0)


def test_voxel_histogram_percent_counts_out_of_range_in_denominator():
    truth = np.zeros((4, 4, 4))
    truth[:2] = 1.0  # 32 mask voxels
    image = truth.copy()
    image[0] = 2.0  # 16 of them at twice the true maximum, beyond 1.3
    h = slices.voxel_histogram_percent(image, truth, np.array([0.0, 0.5, 1.3]))
    np.testing.assert_allclose(h, [0.0, 50.0])


def test_voxel_histogram_writes_png(tmp_path):
    truth, _ = _phantom(16)
    images = [("no PVC", gaussian_filter(truth, 1.0)), ("over", 1.5 * truth)]
    out = slices.voxel_histogram(images, truth, str(tmp_path / "hist.png"), title="sphere")
    _assert_png(out)
    with pytest.raises(ValueError, match="no PVC"):
        slices.voxel_histogram([("no PVC", truth[:-1])], truth, str(tmp_path / "h2.png"))
