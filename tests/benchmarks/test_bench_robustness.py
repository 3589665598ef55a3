"""The robustness benchmark's rows: protocols, image tags and calibration cache names
(benchmarks/bench_robustness.py), its 100 mL sphere, per-region RC checks, spread-error correlation
and goals. No simulation: each test runs in well under a second."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_robustness as br

OLD_ROWS = ("a_bodies", "b_validation", "c_patient", "d_time_10s", "d_filter_5mm", "d_voxel_3.9mm")


def test_existing_rows_keep_their_cache_names():
    """Protocols, tags and calibration names of the rows cached before the new rows (unchanged)."""
    expected = {"a_bodies": ("base", "cal_64_4.8mm_60v_0pf"), "b_validation": ("base", "cal_64_4.8mm_60v_0pf"),
                "c_patient": ("base", "cal_64_4.8mm_60v_0pf"), "d_filter_5mm": ("base", "cal_64_4.8mm_60v_0pf"),
                "d_time_10s": ("t10", "cal_64_4.8mm_60v_0pf"), "d_voxel_3.9mm": ("v39", "cal_79_3.9mm_60v_0pf")}
    for row in OLD_ROWS:
        protocol, tag = br.row_protocol(row, 64)
        cal_protocol = br.replace(protocol, time_per_view_s=br.ic.Protocol().time_per_view_s)
        assert (tag, br.calibration_key(cal_protocol)) == expected[row], row
    assert br.row_protocol("d_time_10s", 64)[0].time_per_view_s == 20.0
    assert br.row_protocol("d_voxel_3.9mm", 64)[0].matrix == 79


@pytest.mark.parametrize(("row", "field", "value", "tag", "key"), [
    ("d_collimator_megp", "collimator", "ge_megp", "megp", "cal_64_4.8mm_60v_0pf_ge_megp"),
    ("d_intrinsic_5mm", "intrinsic_fwhm_140kev_mm", 5.0, "int50", "cal_64_4.8mm_60v_0pf_int5mm"),
    ("d_iter_12x6", "rr", (12, 6), "rr12x6", "cal_64_4.8mm_60v_0pf_rr12x6"),
    ("d_orbit_far", "orbit_clearance_mm", 100.0, "clr100", "cal_64_4.8mm_60v_0pf_clr100mm"),
    ("d_voxel_5.3mm", "voxel_mm", 5.3, "v53", "cal_58_5.3mm_60v_0pf"),
])
def test_new_rows_change_one_axis_and_calibrate_with_it(row, field, value, tag, key):
    assert row in br.ROWS
    protocol, t = br.row_protocol(row, 64)
    assert getattr(protocol, field) == value and t == tag
    base = br.ic.Protocol(matrix=64)
    changed = [f for f in br.asdict(base) if getattr(protocol, f) != getattr(base, f)]
    assert set(changed) <= {field, "matrix"}
    assert br.calibration_key(protocol) == key


def test_tags_and_calibration_names_are_unique():
    tags = {br.row_protocol(r, 64)[1] for r in br.ROWS if r in br.ROW_PROTOCOLS}
    assert len(tags) == len(br.ROW_PROTOCOLS)
    keys = {br.calibration_key(br.row_protocol(r, 64)[0]) for r in br.ROW_PROTOCOLS if r != "d_time_10s"}
    assert len(keys) == len(br.ROW_PROTOCOLS) - 1


# ---------------------------------------------------------------- [3.4]: per-region RC, spread, goals

def test_sphere_100ml_row_is_a_row_with_its_own_phantom_kind():
    assert "b_sphere_100ml" in br.ROWS and "b_sphere_100ml" not in br.ROW_PROTOCOLS
    assert br.row_protocol("b_sphere_100ml", 64)[1] == "base"


def test_sphere_100ml_phantom_holds_100_ml_at_10_to_1():
    """Volume of the 100 mL sphere within the discretisation tolerance ``A h / 2`` (its surface
    ``A`` times half a sampling step ``h``: the fractions are sampled on voxel / 3, the mask on the
    voxel), its diameter 57.6 mm, hot 10:1 over warm water, centred."""
    n, voxel_mm = 48, 2.4            # 115 mm: the sphere fits (the cylinder is cut, as it may be)
    ph = br.sphere_100ml_phantom(n, voxel_mm)
    r_mm = (3 * 100_000 / (4 * np.pi)) ** (1 / 3)
    assert 2 * r_mm == pytest.approx(57.6, abs=0.05)
    area_mm2, v_ml = 4 * np.pi * r_mm**2, voxel_mm**3 / 1000
    act, mask = ph["activity"], ph["regions"]["sphere_100mL"]
    c, bg = br.C_INSERT, br.C_INSERT / 10
    frac_ml = float(((act - bg) / (c - bg)).clip(0, 1).sum()) * v_ml   # the sphere's partial-volume fractions
    assert frac_ml == pytest.approx(100.0, abs=area_mm2 * voxel_mm / 3 / 2 / 1000)
    assert float(mask.sum()) * v_ml == pytest.approx(100.0, abs=area_mm2 * voxel_mm / 2 / 1000)
    assert act.max() == pytest.approx(c) and act[0, n // 2, n // 2] == pytest.approx(bg)
    assert act[mask].min() > 0.5 * c and (ph["mu"] > 0).all()    # the whole 115 mm cube lies in the water
    centre = np.argwhere(mask).mean(axis=0)
    assert np.allclose(centre, (n - 1) / 2, atol=1e-6)
    # on the recon grid (FINE x coarser) the region keeps its volume within a recon voxel's tolerance
    coarse = br.named_region_masks(br._block_mean(act, br.FINE), ph["regions"])["sphere_100mL"]
    assert float(coarse.sum()) * (voxel_mm * br.FINE) ** 3 / 1000 == pytest.approx(
        100.0, abs=area_mm2 * voxel_mm * br.FINE / 2 / 1000)


def _toy_case():
    """Truth with two hot cubes (a 'lesion' and an 'organ') in a warm background on 12^3."""
    truth = np.full((12, 12, 12), 1.0, np.float32)
    lesion = np.zeros(truth.shape, bool)
    lesion[2:5, 2:5, 2:5] = True
    organ = np.zeros(truth.shape, bool)
    organ[6:11, 6:11, 6:11] = True
    truth[lesion], truth[organ] = 8.0, 4.0
    return truth, {"lesion0_liver": lesion, "kidney": organ}


def test_region_rcs_and_rc_drops_count_lesions_whose_rc_drops():
    truth, masks = _toy_case()
    none = truth * 0.7
    dl = truth.copy()
    dl[masks["lesion0_liver"]] *= 0.6      # DL lowers the lesion below no PVC (0.7): a drop of 0.1
    dl[masks["kidney"]] *= 0.5             # an organ drop is not a lesion's: not counted
    rcs = br.region_rcs({"none": none, "dl": dl}, truth, masks)
    assert rcs["lesion0_liver"] == pytest.approx({"none": 0.7, "dl": 0.6})
    assert rcs["kidney"] == pytest.approx({"none": 0.7, "dl": 0.5})
    regions = [{"name": k, "rc": v} for k, v in rcs.items()]
    d = br.rc_drops(regions)
    assert (d["rc_lower"], d["rc_checked"]) == (1, 1) and d["rc_worst_drop"] == pytest.approx(-0.1)
    regions.append({"name": "sphere_10mm", "rc": {"none": 0.5, "dl": 0.9}})
    regions.append({"name": "sphere_13mm", "rc": {"none": 0.5, "dl": 0.5}})     # equal: not lower
    d = br.rc_drops(regions)
    assert (d["rc_lower"], d["rc_checked"]) == (1, 3) and d["rc_worst_drop"] == pytest.approx(-0.1)
    empty = br.rc_drops([{"name": "component0", "rc": {"none": 1.0, "dl": 0.5}}])
    assert (empty["rc_lower"], empty["rc_checked"]) == (0, 0) and np.isnan(empty["rc_worst_drop"])


def test_region_spreads_take_overlapping_regions_and_give_apply_cv():
    """Overlapping masks go to separate layers; each region's spread is the CV of the symmetries'
    region totals (what apply writes to _regions.csv), and identical corrections give 0."""
    truth, masks = _toy_case()
    masks = dict(masks, lesion1_kidney=masks["kidney"] & (np.indices(truth.shape)[0] < 8))  # inside the organ
    spreads = br.RegionSpreads(masks, 0.1)
    for scale in (0.9, 1.1):
        spreads.add(truth * scale)
    out = spreads.regions(truth)
    assert set(out) == set(masks)
    for name in masks:     # totals 0.9 T and 1.1 T: population SD 0.1 T over mean T
        assert out[name]["spread"] == pytest.approx(0.1, rel=1e-6)
        assert out[name]["voxel_sd_rel"] == pytest.approx(0.1, rel=1e-6)
        assert out[name]["n_symmetries"] == 2
    same = br.RegionSpreads(masks, 0.1)
    for _ in range(3):
        same.add(truth)
    assert all(v["spread"] == pytest.approx(0.0, abs=1e-12) and v["voxel_sd_rel"] == 0.0
               for v in same.regions(truth).values())


def test_spread_error_correlation_is_spearman_over_finite_regions():
    c = br.spread_error_correlation([0.01, 0.02, 0.03, 0.04, None, 0.05], [0.1, 0.3, 0.2, 0.5, 0.9, float("nan")])
    assert c["n"] == 4 and c["rho"] == pytest.approx(0.8) and 0 < c["p"] < 1
    assert br.spread_error_correlation([1, 2, 3], [3, 2, 1])["rho"] == pytest.approx(-1.0)
    assert np.isnan(br.spread_error_correlation([1, 2], [1, 2])["rho"])
    assert np.isnan(br.spread_error_correlation([1, 1, 1], [1, 2, 3])["rho"])


def _summary_row(row, nrmse=(10.0, 5.0), vaa=(10.0, 20.0), hollow=0, lower=0, checked=2, drop=0.05):
    s = {"row": row, "rc_lower": lower, "rc_checked": checked, "rc_worst_drop": drop, "dl_hollow": hollow}
    for m in br.METHODS:
        s[f"{m}_nrmse_pct"], s[f"{m}_vaa_pct"] = nrmse[0], vaa[0]
    s["dl_nrmse_pct"], s["dl_vaa_pct"] = nrmse[1], vaa[1]
    return s


def test_goals_name_the_rows_that_miss_them():
    sphere = {"row": "b_sphere_100ml", "cases": [
        {"regions": [{"name": "sphere_100mL", "rc": {m: 0.97 for m in br.METHODS}}]},
        {"regions": [{"name": "sphere_100mL", "rc": {m: 1.02 for m in br.METHODS}}]}]}
    good = [_summary_row("c_patient"), _summary_row("b_sphere_100ml", checked=1)]
    lines = br.goals(good, [sphere], {"rho": 0.6, "p": 0.01, "n": 20})
    assert len(lines) == 5 and all(": met" in line for line in lines), lines
    bad = [_summary_row("c_patient", nrmse=(10.0, 12.0), hollow=2, lower=1, drop=-0.04),
           _summary_row("d_orbit_far", vaa=(20.0, 15.0))]
    sphere["cases"][1]["regions"][0]["rc"]["dl"] = 0.9
    lines = br.goals(bad, [sphere], {"rho": 0.3, "p": 0.2, "n": 20})
    assert all("NOT met" in line for line in lines), lines
    assert "NRMSE not lower in c_patient" in lines[0] and "VAA not higher in d_orbit_far" in lines[0]
    assert "1 of 4" in lines[3] and "-0.040 in c_patient" in lines[3]
    lines = br.goals(good, [], None)
    assert "not run" in lines[2] and "not computed" in lines[4]


def test_saved_rows_serve_only_runs_they_answer():
    args = br.argparse.Namespace(reconstruction="RR", uncertainty=False)
    row = {"evaluation_version": br.EVALUATION_VERSION, "reconstruction": "RR", "uncertainty": False}
    assert br._reusable(row, args)
    assert not br._reusable(dict(row, evaluation_version=br.EVALUATION_VERSION - 1), args)
    assert not br._reusable(row, br.argparse.Namespace(reconstruction="noRR", uncertainty=False))
    assert not br._reusable(row, br.argparse.Namespace(reconstruction="RR", uncertainty=True))
    assert br._reusable(dict(row, uncertainty=True), args)
