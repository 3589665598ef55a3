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
