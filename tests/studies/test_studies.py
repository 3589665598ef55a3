"""The studies' building blocks (known answers) and the report's tables; the DAG test runs them end to end."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.ndimage import gaussian_filter

from pvc_core.config import load_config
from pvc_core.geometry.blocks import downsample_activity, downsample_mean
from pvc_core.pipeline.dataset_stages import paired_wilcoxon_p, summarise
from pvc_core.pipeline.models import main_models, model_name
from pvc_core.report.differences import differences
from pvc_core.report.html import paper_table1, table1, wilcoxon_table
from pvc_core.specs import Settings
from pvc_core.studies.min_feature_size import central_cube, cube_recovery, insert_cube
from pvc_core.studies.validation_phantoms import region_mask, region_rows
from pvc_core.validation.phantoms import build_validation_phantom

REPO = Path(__file__).resolve().parents[2]


# ---- minimum feature size --------------------------------------------------------------------

@pytest.mark.parametrize("edge", [1, 2, 3, 10])
def test_central_cube_has_edge_cubed_voxels_at_the_centre(edge):
    cube = central_cube((32, 32, 32), edge)
    assert cube.sum() == edge**3
    idx = np.argwhere(cube)
    centre = (idx.min(0) + idx.max(0)) / 2
    assert np.all(np.abs(centre - 15.5) <= 0.5)


def test_a_cube_too_large_for_the_grid_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        central_cube((8, 8, 8), 9)


@pytest.mark.parametrize("edge", list(range(1, 11)))
def test_cube_without_blur_has_rc_one(edge):
    """Known answer: the truth itself (no blur) recovers every cube fully, through the 2x finer phantom grid."""
    rng = np.random.default_rng(0)
    activity = rng.uniform(0, 0.5, (64, 64, 64)).astype(np.float32)
    mu = np.zeros_like(activity)
    act, mu_out, cube = insert_cube(activity, mu, edge, 2, 3.0)
    truth = downsample_activity(act, 2)
    assert cube.shape == (32, 32, 32) and cube.sum() == edge**3
    assert cube_recovery(truth, cube, 3.0) == pytest.approx(1.0, abs=1e-6)
    assert np.all(mu_out[np.repeat(np.repeat(np.repeat(cube, 2, 0), 2, 1), 2, 2)] >= 0.135)
    # activity outside the cube is untouched
    outside = ~np.repeat(np.repeat(np.repeat(cube, 2, 0), 2, 1), 2, 2)
    assert np.array_equal(act[outside], activity[outside])


def test_blur_loses_more_of_a_small_cube_than_of_a_large_one():
    rcs = []
    for edge in (1, 3, 10):
        act, _, cube = insert_cube(np.zeros((32, 32, 32), np.float32), np.zeros((32, 32, 32), np.float32), edge, 1, 1.0)
        rcs.append(cube_recovery(gaussian_filter(act, 1.5), cube, 1.0))
    assert rcs[0] < rcs[1] < rcs[2] < 1.0
    # a one-voxel cube keeps the central weight of the sampled Gaussian (sigma 1.5, truncated at 4 sigma), cubed
    taps = np.exp(-np.arange(-6, 7) ** 2 / (2 * 1.5**2))
    assert rcs[0] == pytest.approx((taps[6] / taps.sum()) ** 3, rel=1e-5)


# ---- validation phantoms ---------------------------------------------------------------------

def test_region_mask_is_half_of_the_largest_fraction():
    frac = np.array([0.0, 0.2, 0.3, 0.6]).reshape(1, 1, 4)
    assert region_mask(frac).tolist() == [[[False, False, True, True]]]
    assert not region_mask(np.zeros((2, 2, 2))).any()


def test_the_truth_scores_perfectly_in_every_region():
    vp = build_validation_phantom("icrp110", (64, 64, 64), 4.8)
    truth = downsample_activity(vp.activity_mbq_ml, 2)
    for region, comps in (("icrp110_kidney", ("icrp110_kidney_cortex", "icrp110_kidney_medulla")),
                          ("icrp110_spleen", ("icrp110_spleen",))):
        mask = region_mask(sum(downsample_mean(vp.compartments[c], 2) for c in comps))
        rows = region_rows("icrp110", region, region, mask, truth, {"none": truth}, 0.05)
        assert rows[0]["ssim"] == pytest.approx(1.0) and rows[0]["nrmse_pct"] == pytest.approx(0.0)
        assert rows[0]["vaa_pct"] == pytest.approx(100.0) and rows[0]["rc"] == pytest.approx(1.0)
        assert rows[0]["paper_rc"] == {"icrp110_kidney": 0.583, "icrp110_spleen": 0.729}[region]


# ---- Table 1 for every dataset ------------------------------------------------------------------

def test_paired_wilcoxon_known_answers():
    a = pd.Series(np.arange(10.0) + 1.0, index=range(10))
    assert paired_wilcoxon_p(a, a) == 1.0
    # ten pairs, all differences positive: exact two-sided p = 2 / 2^10
    assert paired_wilcoxon_p(a + 1.0 + np.arange(10) * 0.1, a) == pytest.approx(2 / 2**10)
    assert np.isnan(paired_wilcoxon_p(a, pd.Series(dtype=float)))


def test_summary_tests_every_method_against_no_pvc_and_iterative_yang():
    rng = np.random.default_rng(1)
    rows = []
    for case in range(8):
        for method, shift in (("none", 0.0), ("iy_truth", 1.0), ("rl", 1.0), ("dl:m", 3.0)):
            rows.append({"case": case, "dataset": "RR_n", "method": method, "ssim": 0.5 + shift / 10 + rng.normal(0, 0.01),
                         "nrmse_pct": 10 - shift, "vaa_pct": 10 + shift * 5 + case, "ad_pct": 0.0})
    summary = summarise(pd.DataFrame(rows), 0.01).set_index("method")
    assert summary.loc["dl:m", "vaa_pct_p_vs_none"] == pytest.approx(2 / 2**8)
    assert summary.loc["dl:m", "vaa_pct_p_vs_iy_truth"] == pytest.approx(2 / 2**8)
    assert summary.loc["dl:m", "ad_pct_p_vs_none"] == 1.0  # identical values
    assert "vaa_pct_p_vs_iy_truth" in summary.columns and pd.isna(summary.loc["iy_truth", "vaa_pct_p_vs_iy_truth"])
    t1 = table1(summary.reset_index(), 0.01)
    cell = t1.set_index("PVC method").loc["DL-PVC (m)", "VAA (%)"]
    assert cell.endswith("*\u2020")  # 2/256 < 0.01 against both
    assert t1.set_index("PVC method").loc["no PVC", "VAA (%)"].endswith(")\u2020")  # no "*" against itself
    w = wilcoxon_table(summary.reset_index())
    assert list(w["against"]) == ["no PVC", "IY-PVC (true mask)"]


def test_the_papers_table1_has_both_rr_datasets_in_the_report_layout():
    paper = paper_table1().set_index(["SPECT reconstruction", "PVC method"])
    assert len(paper) == 6 and set(paper.columns) == {"SSIM", "NRMSE (%)", "VAA (%)", "AD (%)"}
    assert paper.loc[("RR_n", "IY-PVC (true mask)"), "AD (%)"] == "6.36 (4.36)"
    assert paper.loc[("RR_nf", "DL-PVC (R2U-Net)"), "VAA (%)"] == "43.30 (8.79)"


def test_main_models_train_the_default_on_every_dataset_default_first():
    cfg = load_config(REPO / "config" / "test.yaml")
    models = main_models(cfg["training"])
    assert next(iter(models)) == model_name(cfg["training"]["default"])
    assert sorted(s["dataset"] for s in models.values()) == ["RR_n", "RR_nf", "noRR_n", "noRR_nf"]
    assert len(main_models({**cfg["training"], "datasets": ["RR_n"]})) == 1


def test_differences_name_what_is_not_the_papers():
    test = differences(Settings.from_config(load_config(REPO / "config" / "test.yaml")),
                       load_config(REPO / "config" / "test.yaml")["training"]["default"] | {"channels": [4, 8, 16]},
                       3, 1, 2).set_index("aspect")
    assert test.loc["grid", "as in the paper"] == "no" and "32^3 voxels of 19.2 mm" in test.loc["grid", "this run"]
    assert test.loc["simulator", "as in the paper"] == "no"
    paper_cfg = load_config(REPO / "config" / "paper.yaml")
    paper = differences(Settings.from_config(paper_cfg), main_models(paper_cfg["training"])[
        model_name(paper_cfg["training"]["default"])], 9000, 500, 500).set_index("aspect")
    assert paper.loc["grid", "as in the paper"] == "yes" and paper.loc["acquisition", "as in the paper"] == "yes"
    assert paper.loc["network", "as in the paper"] == "yes" and paper.loc["cases", "as in the paper"] == "yes"
