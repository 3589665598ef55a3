"""Patient-like uptake (pvc_core.phantom.uptake, phantom.uptake): known answers.

Lesion volumes, lesion-to-host and organ-to-background ratios, necrotic cores, the two-compartment
kidney, the total activity, activity only inside the body, reproducibility from (seed, case id),
and the default configuration's phantoms and fingerprints unchanged.
"""

import copy
import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from pvc_core.config import load_config
from pvc_core.errors import InputError
from pvc_core.phantom import generate_case
from pvc_core.phantom.anatomy import (
    AIR,
    BODY,
    KIDNEY_LEFT,
    KIDNEY_RIGHT,
    LIVER,
    SCALED_ORGANS,
    SPLEEN,
    AnatomyDraw,
    build_body,
)
from pvc_core.phantom.uptake import (
    HOST_LABELS,
    KIDNEY_CORTEX,
    KIDNEY_MEDULLA,
    LESION_RIM,
    NECROTIC_CORE,
    patient_uptake,
)
from pvc_core.specs import (
    Distribution,
    Grid,
    PhantomSettings,
    UptakeSettings,
    phantom_specs,
)

REPO = Path(__file__).resolve().parents[2]
GRID = Grid(128, 4.8)  # the demo's phantom grid (config.yaml: 64^3 of 9.6 mm, sim_factor 2)
TOTAL = Distribution("loguniform", 100.0, 3000.0)


@pytest.fixture(scope="module")
def demo():
    return load_config(REPO / "config.yaml")


@pytest.fixture(scope="module")
def abdomen():
    """An abdomen body on the demo's phantom grid: labels and body mask."""
    draw = AnatomyDraw("abdomen", 0.0, 24.0, 1.0, {o: 1.0 for o in SCALED_ORGANS})
    labels = build_body(GRID, draw, 20.0).labels
    return labels, labels != 0


def _uptake(**keys) -> UptakeSettings:
    return replace(UptakeSettings.from_section({"patient_probability": 1.0}), **keys)


def _patient_cfg(cfg, **uptake):
    c = copy.deepcopy(cfg)
    c["phantom"]["uptake"].update(patient_probability=1.0, **uptake)
    return c


@pytest.fixture(scope="module")
def patient_cases(demo):
    cfg = _patient_cfg(demo)
    return [generate_case(i, cfg["seed"], *phantom_specs(cfg)) for i in range(4)]


# ---------------------------------------------------------------- the default is today's phantoms

def test_default_settings_give_todays_phantoms(demo):
    """The default (patient_probability 0) goes through the random shapes exactly as without uptake
    settings: same arrays, same metadata (no key added)."""
    settings, grid = phantom_specs(demo)
    assert settings.uptake is not None and not settings.uptake.patient_like
    for case in range(3):
        new = generate_case(case, demo["seed"], settings, grid)
        old = generate_case(case, demo["seed"], replace(settings, uptake=None), grid)
        for name in ("activity_mbq_ml", "mu_per_cm", "labels", "activity_recon_mbq_ml"):
            assert np.array_equal(getattr(new, name), getattr(old, name)), name
        assert new.meta == old.meta and "uptake_model" not in new.meta


def test_a_mixture_keeps_the_shapes_cases_of_the_default(demo):
    """With patient_probability 0.5, cases that draw the random shapes are the default's cases."""
    settings, grid = phantom_specs(demo)
    mixed = replace(settings, uptake=replace(settings.uptake, patient_probability=0.5))
    models = []
    for case in range(6):
        pc = generate_case(case, demo["seed"], mixed, grid)
        models.append(pc.meta["uptake_model"])
        if pc.meta["uptake_model"] == "shapes":
            ref = generate_case(case, demo["seed"], settings, grid)
            assert np.array_equal(pc.activity_mbq_ml, ref.activity_mbq_ml)
            assert {k: v for k, v in pc.meta.items() if k != "uptake_model"} == ref.meta
    assert set(models) == {"shapes", "patient"}


def test_default_fingerprints_ignore_the_uptake_keys(demo):
    """Uptake keys reach the phantom fingerprint only when a case can be patient-like."""
    from pvc_core.pipeline.fingerprints import StageGraph
    from pvc_core.specs import Settings

    def fp(cfg):
        return StageGraph(Settings.from_config(cfg)).fingerprint("phantom")

    other_ratios = copy.deepcopy(demo)
    other_ratios["phantom"]["uptake"]["organ_ratio"]["liver"] = [5.0, 6.0]
    assert fp(other_ratios) == fp(demo)
    assert fp(_patient_cfg(demo)) != fp(demo)


# ---------------------------------------------------------------- settings

def test_settings_fill_defaults_and_name_bad_keys():
    u = UptakeSettings.from_section({"organ_ratio": {"liver": [5.0, 6.0]}})
    assert u.organ_ratio["liver"] == (5.0, 6.0) and u.organ_ratio["spleen"] == (4.0, 30.0)
    assert u.lesion_hosts["liver"] == 0.4 and not u.patient_like
    with pytest.raises(InputError, match="phantom.uptake.lesion_volume_ml"):
        UptakeSettings.from_section({"lesion_volume_ml": [30.0, 1.0]})
    with pytest.raises(InputError, match="phantom.uptake.lesion_hosts"):
        UptakeSettings.from_section({"lesion_hosts": {h: 0.0 for h in HOST_LABELS}})


def test_voxel_phantoms_refuse_patient_like_uptake(demo):
    cfg = copy.deepcopy(demo)
    cfg["phantom"].update(source="voxel", voxel={"path": "x.h33", "labels": {0: "outside", 1: "soft_tissue"},
                                                 "bed_centres_mm": {"head": 1.0, "thorax": 2.0, "abdomen": 3.0}})
    PhantomSettings.from_config(cfg)  # the default is fine
    cfg["phantom"]["uptake"] = {"patient_probability": 0.2}
    with pytest.raises(InputError, match="phantom.uptake.patient_probability"):
        PhantomSettings.from_config(cfg)


# ---------------------------------------------------------------- generate_case with patient-like uptake

def test_total_activity_is_the_drawn_total_and_all_of_it_is_in_the_body(patient_cases):
    for pc in patient_cases:
        m = pc.meta
        assert m["uptake_model"] == "patient"
        vml = pc.sim_voxel_mm**3 / 1000.0
        total = float(pc.activity_mbq_ml.sum(dtype=np.float64) * vml)
        assert total == pytest.approx(m["total_activity_mbq_target"], rel=1e-6)
        assert m["total_activity_mbq"] == pytest.approx(m["total_activity_mbq_target"], rel=1e-6)
        assert pc.activity_mbq_ml.min() >= 0
        assert not pc.activity_mbq_ml[~pc.body_mask].any()
        assert not pc.activity_mbq_ml[pc.labels == AIR].any()
        # warm everywhere else: the background is continuous
        assert (pc.activity_mbq_ml[pc.labels == BODY] > 0).all()
        recon_total = float(pc.activity_recon_mbq_ml.sum(dtype=np.float64) * pc.recon_voxel_mm**3 / 1000.0)
        assert recon_total == pytest.approx(total, rel=1e-5)


def test_patient_cases_are_reproducible_and_differ_across_cases(demo, patient_cases):
    cfg = _patient_cfg(demo)
    again = generate_case(2, cfg["seed"], *phantom_specs(cfg))
    assert np.array_equal(again.activity_mbq_ml, patient_cases[2].activity_mbq_ml)
    assert json.dumps(again.meta, sort_keys=True) == json.dumps(patient_cases[2].meta, sort_keys=True)
    for a, b in itertools.pairwise(patient_cases):
        assert not np.array_equal(a.activity_mbq_ml, b.activity_mbq_ml)
        assert a.meta["organ_ratio"] != b.meta["organ_ratio"]
    other_seed = generate_case(2, cfg["seed"] + 1, *phantom_specs(cfg))
    assert not np.array_equal(other_seed.activity_mbq_ml, patient_cases[2].activity_mbq_ml)


def test_lesion_volumes_are_the_drawn_ones(patient_cases):
    n = 0
    for pc in patient_cases:
        vml = pc.sim_voxel_mm**3 / 1000.0
        for les in pc.meta["lesions"]:
            n += 1
            assert les["volume_ml"] == pytest.approx(les["volume_ml_target"], abs=max(0.5 * vml, 1e-9) + 1e-9)
            assert 1.0 - vml / 2 <= les["volume_ml"] <= 30.0 + vml / 2
    assert n >= 8


# ---------------------------------------------------------------- known answers on one body

def test_lesion_and_organ_ratios_are_the_drawn_ones(abdomen):
    labels, body = abdomen
    u = _uptake(organ_heterogeneity=(0.0, 0.0), necrotic_probability=0.0, lesion_count=(8, 8))
    res = patient_uptake(labels, body, GRID, np.random.default_rng(7), u, TOTAL)
    conc = res.activity_mbq_ml / res.background_mbq_ml
    free = res.lesion_ids == 0
    assert np.allclose(conc[(labels == BODY) & free], 1.0, rtol=1e-5)
    assert np.allclose(conc[(labels == LIVER) & free], res.organ_ratio["liver"], rtol=1e-5)
    assert np.allclose(conc[(labels == SPLEEN) & free], res.organ_ratio["spleen"], rtol=1e-5)
    assert len(res.lesions) == 8
    for k, les in enumerate(res.lesions, start=1):
        key = HOST_LABELS[les.host][1]
        host = 1.0 if key is None else res.organ_ratio[key]
        values = conc[res.lesion_ids == k]
        assert values.size == les.n_voxels
        assert np.allclose(values / host, les.contrast, rtol=1e-5)
        assert 3.0 <= les.contrast <= 20.0


def test_necrotic_cores_are_colder_than_their_rims(abdomen):
    labels, body = abdomen
    u = _uptake(organ_heterogeneity=(0.0, 0.0), necrotic_probability=1.0, lesion_count=(8, 8),
                lesion_volume_ml=(10.0, 30.0))
    res = patient_uptake(labels, body, GRID, np.random.default_rng(11), u, TOTAL)
    checked = 0
    for k, les in enumerate(res.lesions, start=1):
        lesion = res.lesion_ids == k
        core = lesion & (res.compartments == NECROTIC_CORE)
        rim = lesion & (res.compartments == LESION_RIM)
        assert les.necrotic and core.sum() == les.n_core_voxels and rim.any()
        if not core.any():
            continue
        checked += 1
        assert res.activity_mbq_ml[core].mean() < res.activity_mbq_ml[rim].mean()
        assert res.activity_mbq_ml[core].mean() / res.activity_mbq_ml[rim].mean() == pytest.approx(
            les.core_activity_fraction, rel=1e-5, abs=1e-7)
        assert 0.0 <= les.core_activity_fraction <= 0.2 and 0.2 <= les.core_fraction <= 0.6
        # the core lies inside: none of its voxels touches a voxel outside the lesion
        assert not (ndimage.binary_dilation(core) & ~lesion).any() or les.core_fraction > 0.5
        if les.n_voxels >= 100:  # the core's volume is about (core diameter / lesion diameter)^3 of the lesion's
            assert 0.25 * les.core_fraction**3 <= core.sum() / les.n_voxels <= 4.0 * les.core_fraction**3
    assert checked >= 3


def test_kidneys_have_a_hot_cortex_shell_around_a_colder_medulla(abdomen):
    labels, body = abdomen
    u = _uptake(organ_heterogeneity=(0.0, 0.0), lesion_count=(0, 0), kidney_cortex_mm=(5.0, 5.0))
    res = patient_uptake(labels, body, GRID, np.random.default_rng(3), u, TOTAL)
    ratio = res.info["kidney_cortex_medulla_ratio"]
    assert 2.0 <= ratio <= 6.0
    for lab in (KIDNEY_RIGHT, KIDNEY_LEFT):
        kidney = labels == lab
        cortex = kidney & (res.compartments == KIDNEY_CORTEX)
        medulla = kidney & (res.compartments == KIDNEY_MEDULLA)
        assert (cortex | medulla).sum() == kidney.sum() and cortex.any() and medulla.any()
        mean_c, mean_m = res.activity_mbq_ml[cortex].mean(), res.activity_mbq_ml[medulla].mean()
        assert mean_c / mean_m == pytest.approx(ratio, rel=1e-5)
        assert mean_c / res.background_mbq_ml == pytest.approx(res.organ_ratio["kidney_cortex"], rel=1e-5)
        # a shell one voxel thick at 4.8 mm voxels and 5 mm cortex: the medulla shares no face with the
        # outside, and every cortex voxel touches it (by a face, an edge or a corner)
        outside = ~kidney
        assert not (ndimage.binary_dilation(medulla) & outside).any()
        touching = ndimage.binary_dilation(outside, structure=np.ones((3, 3, 3), bool))
        assert (touching & cortex).sum() == cortex.sum()
        # the border between them is a sharp step
        assert np.unique(res.activity_mbq_ml[kidney]).size == 2


def test_a_thicker_cortex_holds_more_of_the_kidney(abdomen):
    labels, body = abdomen
    share = []
    for mm in (3.0, 12.0):
        u = _uptake(organ_heterogeneity=(0.0, 0.0), lesion_count=(0, 0), kidney_cortex_mm=(mm, mm))
        res = patient_uptake(labels, body, GRID, np.random.default_rng(3), u, TOTAL)
        share.append(res.info["kidney_cortex_ml"] / (res.info["kidney_cortex_ml"] + res.info["kidney_medulla_ml"]))
    assert 0.2 < share[0] < share[1] < 1.0


def test_heterogeneity_makes_organs_nonuniform_but_keeps_lesions_uniform(abdomen):
    labels, body = abdomen
    u = _uptake(organ_heterogeneity=(0.15, 0.15), necrotic_probability=0.0, lesion_count=(3, 3))
    res = patient_uptake(labels, body, GRID, np.random.default_rng(5), u, TOTAL)
    liver = res.activity_mbq_ml[(labels == LIVER) & (res.lesion_ids == 0)]
    assert 0.01 < liver.std() / liver.mean() < 0.4
    for k in range(1, len(res.lesions) + 1):
        assert np.unique(res.activity_mbq_ml[res.lesion_ids == k]).size == 1
    assert res.activity_mbq_ml.sum(dtype=np.float64) * GRID.voxel_ml == pytest.approx(
        res.info["total_activity_mbq_target"], rel=1e-6)
