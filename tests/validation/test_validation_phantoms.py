"""Validation phantoms: filled volumes and total activity match the paper's fabrication values."""

import numpy as np
import pytest

from pvc_core.validation import build_validation_phantom
from pvc_core.validation.phantoms import MU_WATER_208KEV_PER_CM

VOXEL_MM = 2.4
SHAPE = (112, 112, 96)
ML = VOXEL_MM**3 / 1000.0


@pytest.mark.parametrize("name, compartment", [("sphere", "sphere"), ("ellipsoid", "ellipsoid"),
                                               ("kidney_cortex", "kidney_cortex")])
def test_inserts_hold_100_ml_at_1_08_mbq_per_ml(name, compartment):
    p = build_validation_phantom(name, SHAPE, VOXEL_MM)
    assert p.compartments[compartment].sum() * ML == pytest.approx(100.0, rel=0.01)
    assert p.activity_mbq_ml.sum() * ML == pytest.approx(108.0, rel=0.01)
    assert p.activity_mbq_ml.max() == pytest.approx(1.08, rel=1e-6)


def test_icrp110_compartments():
    p = build_validation_phantom("icrp110", SHAPE, VOXEL_MM)
    vol = {k: v.sum() * ML for k, v in p.compartments.items()}
    assert vol["icrp110_spleen"] == pytest.approx(150.0, rel=0.01)
    kidney = vol["icrp110_kidney_cortex"] + vol["icrp110_kidney_medulla"]
    assert kidney == pytest.approx(4 / 3 * np.pi * 30 * 25 * 55 / 1000, rel=0.01)
    assert vol["icrp110_kidney_medulla"] / kidney == pytest.approx(0.3, rel=0.02)
    assert p.nominal_mbq_ml["icrp110_kidney_medulla"] == 0.47


def test_activity_inside_water_and_water_mu():
    p = build_validation_phantom("icrp110", SHAPE, VOXEL_MM)
    assert np.all(p.mu_per_cm[p.activity_mbq_ml > 0] == np.float32(MU_WATER_208KEV_PER_CM))
    assert set(np.unique(p.mu_per_cm)) == {0.0, np.float32(MU_WATER_208KEV_PER_CM)}


def test_unknown_name():
    with pytest.raises(ValueError, match="unknown validation phantom"):
        build_validation_phantom("cube", SHAPE, VOXEL_MM)


def test_trilinear_upsampling_keeps_constants_and_ramps():
    from pvc_core.validation.realism import upsample_trilinear

    const = np.full((4, 5, 6), 2.5, np.float32)
    assert np.allclose(upsample_trilinear(const, 3), 2.5)
    ramp = np.broadcast_to(np.arange(6, dtype=np.float32)[None, None, :], (4, 5, 6)).copy()
    up = upsample_trilinear(ramp, 2)
    # fine voxel k along axis 2 has its centre at coarse coordinate (k + 0.5) / 2 - 0.5, clipped to [0, 5]
    expect = np.clip((np.arange(12) + 0.5) / 2 - 0.5, 0, 5)
    assert np.allclose(up[0, 0], expect, atol=1e-6)


def test_nrmse_floor_at_rc_of_a_uniform_sphere():
    from pvc_core.validation.realism import nrmse_floor_at_rc

    p = build_validation_phantom("sphere", (40, 40, 40), 2.4)
    mask = p.compartments["sphere"] >= 0.5
    truth = np.where(mask, 1.08, 0.0)
    floor_mask, floor_box = nrmse_floor_at_rc(0.729, truth, mask)
    assert floor_mask == pytest.approx(27.1)  # 100 (1 - RC): uniform truth, range = its value
    assert floor_box == pytest.approx(27.1 * np.sqrt(mask.sum() / 24**3), rel=0.05)  # box ~ 2r = 57.6 mm = 24 voxels
    assert floor_box == pytest.approx(27.1 * np.sqrt(np.pi / 6), rel=0.05)  # sphere / its cube


def test_realism_rows_carry_recovery_nrmse_definitions_and_both_fwhm_criteria(repo, one_torch_thread):
    """The sphere on the test configuration's tiny grid (32^3 x 19.2 mm, 24 views)."""
    from pvc_core.config import load_config
    from pvc_core.specs import Settings
    from pvc_core.validation.realism import nrmse_definition_verdict, simulate_phantom

    settings = Settings.from_config(load_config(repo / "config" / "test.yaml"))
    rows = simulate_phantom("sphere", settings, eval_factor=2, log=lambda _m: None)
    (row,) = rows
    for key in ("total_recovery_RR_n", "total_recovery_noRR_n", "total_recovery_RR_nf", "total_recovery_noRR_nf",
                "rc_ratio_paper_to_ours", "nrmse_mask_pct",
                "nrmse_bbox_pct", "nrmse_mask_floor_at_paper_rc_pct", "nrmse_bbox_floor_at_paper_rc_pct",
                "fwhm_RR_free_scale_mm", "fwhm_RR_abs_scale_mm", "fwhm_noRR_free_scale_mm", "fwhm_noRR_abs_scale_mm"):
        assert np.isfinite(row[key]), key
    assert 0.5 < row["total_recovery_RR_n"] < 1.5
    assert row["rc_ratio_paper_to_ours"] == pytest.approx(0.729 / row["rc"])
    assert "definition is closer" in nrmse_definition_verdict(rows)
