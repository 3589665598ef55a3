"""generate_case: determinism, activity inside the body, volumes, organs per bed position, mu table."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from pvc_core.config import load_config
from pvc_core.errors import InputError
from pvc_core.geometry.blocks import downsample_activity
from pvc_core.phantom import PhantomCase, generate_case, montage
from pvc_core.phantom.anatomy import LABEL_MATERIALS, REQUIRED_LABELS, AnatomyDraw, SCALED_ORGANS, build_body
from pvc_core.phantom.materials import mu_208kev
from pvc_core.phantom.settings import Grid
from pvc_core.specs import phantom_specs

CONFIG = Path(__file__).resolve().parents[2] / "config" / "test.yaml"


@pytest.fixture(scope="module")
def cfg():
    return load_config(CONFIG)


@pytest.fixture(scope="module")
def cases(cfg):
    return [generate_case(i, cfg["seed"], *phantom_specs(cfg)) for i in range(6)]


def _with(cfg, **phantom):
    c = copy.deepcopy(cfg)
    c["phantom"].update(phantom)
    return c


def test_same_seed_and_case_give_identical_arrays(cfg, cases):
    again = generate_case(3, cfg["seed"], *phantom_specs(cfg))
    for name in ("activity_mbq_ml", "mu_per_cm", "labels", "body_mask", "activity_recon_mbq_ml", "mu_recon_per_cm"):
        a, b = getattr(cases[3], name), getattr(again, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert json.dumps(cases[3].meta, sort_keys=True) == json.dumps(again.meta, sort_keys=True)


def test_other_case_ids_and_seeds_differ(cfg, cases):
    assert not np.array_equal(cases[0].activity_mbq_ml, cases[1].activity_mbq_ml)
    other_seed = generate_case(0, cfg["seed"] + 1, *phantom_specs(cfg))
    assert not np.array_equal(cases[0].activity_mbq_ml, other_seed.activity_mbq_ml)


def test_arrays_grids_and_dtypes(cfg, cases):
    n, v, f = cfg["grid"]["recon_matrix"], cfg["grid"]["recon_voxel_mm"], cfg["grid"]["sim_factor"]
    pc = cases[0]
    assert isinstance(pc, PhantomCase)
    assert pc.activity_mbq_ml.shape == pc.mu_per_cm.shape == pc.labels.shape == pc.body_mask.shape == (n * f,) * 3
    assert pc.activity_recon_mbq_ml.shape == pc.mu_recon_per_cm.shape == (n,) * 3
    assert pc.activity_mbq_ml.dtype == pc.mu_per_cm.dtype == np.float32
    assert pc.labels.dtype == np.uint8 and pc.body_mask.dtype == bool
    assert pc.sim_voxel_mm == pytest.approx(v / f) and pc.recon_voxel_mm == pytest.approx(v)
    json.dumps(pc.meta)  # serialisable as is


def test_activity_only_inside_the_body_and_body_inside_the_fov(cases):
    for pc in cases:
        assert pc.activity_mbq_ml.min() >= 0
        assert not np.any(pc.activity_mbq_ml[~pc.body_mask])
        assert np.array_equal(pc.body_mask, pc.mu_per_cm > 0)
        m = pc.body_mask
        assert not (m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any()), "body touches the transaxial edge"


def test_total_activity_and_active_volume_match_the_draws(cfg, cases):
    tol = cfg["phantom"]["volume_tolerance"]
    for pc in cases:
        vml = pc.sim_voxel_mm**3 / 1000
        m = pc.meta
        total = pc.activity_mbq_ml.sum(dtype=np.float64) * vml
        assert total == pytest.approx(m["total_activity_mbq_target"], rel=1e-5)
        achieved = np.count_nonzero(pc.activity_mbq_ml) * vml
        assert achieved == pytest.approx(m["active_volume_ml"])
        target = m["active_volume_ml_target"]
        assert abs(achieved - target) <= max(tol * target, 0.5 * vml) + 1e-9


def test_volume_tolerance_over_many_targets_on_a_finer_grid(cfg):
    c = copy.deepcopy(cfg)
    c["grid"].update(recon_matrix=32, recon_voxel_mm=19.2, sim_factor=2)  # 64^3 of 9.6 mm
    c = _with(c, active_volume_ml={"distribution": "loguniform", "min": 5.0, "max": 3000.0}, volume_tolerance=0.01)
    for case in range(8):
        pc = generate_case(case, 11, *phantom_specs(c))
        target, got = pc.meta["active_volume_ml_target"], pc.meta["active_volume_ml"]
        assert abs(got - target) <= max(0.01 * target, 0.5 * 9.6**3 / 1000) + 1e-9
        assert pc.meta["fallback_fill_voxels"] == 0


def test_recon_grid_conserves_activity(cases):
    for pc in cases:
        fine = pc.activity_mbq_ml.sum(dtype=np.float64) * pc.sim_voxel_mm**3
        coarse = pc.activity_recon_mbq_ml.sum(dtype=np.float64) * pc.recon_voxel_mm**3
        assert coarse == pytest.approx(fine, rel=1e-6)


def test_mu_values_are_the_tables(cases):
    for pc in cases:
        for label in np.unique(pc.labels):
            values = np.unique(pc.mu_per_cm[pc.labels == label])
            assert values.size == 1
            assert values[0] == pytest.approx(mu_208kev(LABEL_MATERIALS[int(label)]), rel=1e-6)


@pytest.mark.parametrize("bed", ["head", "thorax", "abdomen"])
def test_every_organ_of_a_bed_position_is_present(bed):
    """Extremes of height, axial offset, BMI and organ size on a 64^3 grid of 9.6 mm."""
    grid = Grid(64, 9.6)
    for height in (0.92, 1.08):
        for offset in (-30.0, 30.0):
            for bmi in (18.6, 38.0):
                draw = AnatomyDraw(bed, offset, bmi, height, {o: 0.75 for o in SCALED_ORGANS})
                labels = build_body(grid, draw, 20.0).labels
                present = set(np.unique(labels).tolist())
                missing = set(REQUIRED_LABELS[bed]) - present
                assert not missing, f"{bed} height {height} offset {offset} bmi {bmi}: missing {missing}"


def test_bmi_widens_the_body_with_fat():
    grid = Grid(64, 9.6)
    scales = {o: 1.0 for o in SCALED_ORGANS}
    thin = build_body(grid, AnatomyDraw("abdomen", 0.0, 18.6, 1.0, scales), 20.0).labels
    heavy = build_body(grid, AnatomyDraw("abdomen", 0.0, 38.0, 1.0, scales), 20.0).labels
    assert (heavy > 0).sum() > 1.3 * (thin > 0).sum()
    assert (heavy == 2).sum() > 2 * (thin == 2).sum()  # subcutaneous fat
    assert (heavy == 8).sum() == (thin == 8).sum()  # the liver does not change with BMI


def test_bed_probabilities_choose_the_bed(cfg):
    c = _with(cfg, bed_positions={"head": 0.0, "thorax": 0.0, "abdomen": 1.0})
    assert {generate_case(i, 1, *phantom_specs(c)).meta["bed_position"] for i in range(4)} == {"abdomen"}


def test_downsample_conserves_activity_exactly():
    rng = np.random.default_rng(0)
    a = rng.gamma(0.5, 2.0, (16, 16, 16)).astype(np.float32)
    a[a < 1] = 0
    d = downsample_activity(a, 2)
    assert d.shape == (8, 8, 8) and d.dtype == np.float32
    assert d.sum(dtype=np.float64) * 8 == pytest.approx(a.sum(dtype=np.float64), rel=1e-6)
    assert d[0, 0, 0] == pytest.approx(a[:2, :2, :2].mean(dtype=np.float64), rel=1e-6)


def test_bad_settings_name_the_key(cfg):
    with pytest.raises(InputError, match=r"phantom\.active_volume_ml.*exceeds the body"):
        generate_case(0, 1, *phantom_specs(_with(cfg, active_volume_ml={"distribution": "uniform", "min": 1e6, "max": 1e6})))
    with pytest.raises(InputError, match=r"phantom\.bmi_range: minimum 30"):
        generate_case(0, 1, *phantom_specs(_with(cfg, bmi_range=[30.0, 20.0])))
    with pytest.raises(InputError, match=r"phantom\.voxel\.path"):
        generate_case(0, 1, *phantom_specs(_with(cfg, source="voxel")))
    with pytest.raises(InputError, match=r"phantom\.bed_positions"):
        generate_case(0, 1, *phantom_specs(_with(cfg, bed_positions={"head": 0, "thorax": 0, "abdomen": 0})))


def test_montage_writes_a_png_from_cases_and_from_dicts(tmp_path, cases):
    out = montage(cases[:2], tmp_path / "m.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dicts = [{"case_id": c.meta["case_id"], "mu_per_cm": c.mu_per_cm, "activity_mbq_ml": c.activity_mbq_ml,
              "meta": json.loads(json.dumps(c.meta))} for c in cases[:2]]
    assert montage(dicts, tmp_path / "d.png").stat().st_size > 1000
