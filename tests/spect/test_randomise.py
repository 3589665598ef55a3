"""Randomised acquisitions (config ``randomise``): the per-case draw, the case's chain
(:func:`pvc_core.spect.acquisition.chain_for_case`), the post-filter, and the configuration's checks."""

from __future__ import annotations


import numpy as np
import pytest

from helpers.randomised import randomised_settings
from pvc_core.errors import InputError
from pvc_core.pipeline.fingerprints import StageGraph
from pvc_core.seeding import rng_for
from pvc_core.specs import Settings
from pvc_core.spect.acquisition import AcquisitionChain, chain_for_case
from pvc_core.spect.post_filter import FWHM_PER_SIGMA, post_filter

RANDOMISE = {
    "time_per_view_s": {"range": [10, 45]},
    "intrinsic_fwhm_mm": {"range": [2.87, 3.61], "steps": 4},
    "reconstruction": {"RR": {"iterations_subsets": {"levels": [[4, 6], [6, 6], [8, 6], [10, 4]]},
                              "post_filter_fwhm_mm": {"range": [0, 5]},
                              "scatter_correction": {"levels": ["tew", "model"]}}},
}


def _settings(randomise: dict | None = RANDOMISE) -> Settings:
    return randomised_settings(randomise)


def _chain(s: Settings) -> AcquisitionChain:
    return AcquisitionChain(s.camera, s.grid, tuple(s.reconstructions.values()))


def test_draws_are_reproducible_per_case_and_differ_between_cases():
    spec = _settings().randomise
    first = [spec.draw(rng_for(spec.seed, case, "acquisition")) for case in range(20)]
    again = [spec.draw(rng_for(spec.seed, case, "acquisition")) for case in range(20)]
    assert first == again
    assert len({d["time_per_view_s"] for d in first}) == 20
    assert _chain_draw(_settings(), 3) == _chain_draw(_settings(), 3)


def _chain_draw(s: Settings, case: int) -> dict:
    return chain_for_case(_chain(s), s.randomise, case)[1]


def test_every_drawn_value_lies_in_its_level_set_or_range():
    spec = _settings().randomise
    intrinsic = {round(v, 9) for v in np.linspace(2.87, 3.61, 4)}
    seen_pairs, seen_scatter, seen_intrinsic = set(), set(), set()
    for case in range(400):
        d = spec.draw(rng_for(spec.seed, case, "acquisition"))
        assert 10 <= d["time_per_view_s"] <= 45
        assert d["intrinsic_fwhm_mm"] in intrinsic
        rr = d["reconstruction"]["RR"]
        assert (rr["iterations"], rr["subsets"]) in {(4, 6), (6, 6), (8, 6), (10, 4)}
        assert 0 <= rr["post_filter_fwhm_mm"] <= 5
        assert rr["scatter_correction"] in ("tew", "model")
        assert "noRR" not in d["reconstruction"]  # not randomised: not drawn, not recorded
        seen_pairs.add((rr["iterations"], rr["subsets"]))
        seen_scatter.add(rr["scatter_correction"])
        seen_intrinsic.add(d["intrinsic_fwhm_mm"])
    assert len(seen_pairs) == 4 and len(seen_scatter) == 2 and seen_intrinsic == intrinsic


def test_adding_an_axis_leaves_the_draws_of_the_others():
    only_time = _settings({"time_per_view_s": {"range": [10, 45]}}).randomise
    both = _settings().randomise
    for case in range(10):
        a = only_time.draw(rng_for(only_time.seed, case, "acquisition"))
        b = both.draw(rng_for(both.seed, case, "acquisition"))
        assert a["time_per_view_s"] == b["time_per_view_s"]


def test_the_case_chain_carries_the_draw():
    s = _settings()
    chain = _chain(s)
    case_chain, draw = chain_for_case(chain, s.randomise, 5)
    assert case_chain.camera.time_per_view_s == draw["time_per_view_s"]
    assert case_chain.camera.collimator.intrinsic_fwhm_mm == draw["intrinsic_fwhm_mm"]
    # the per-MBq work (scatter-model fit, calibration) keeps the protocol's time per view
    assert case_chain.fit_camera.time_per_view_s == s.camera.time_per_view_s
    assert case_chain.fit_camera.collimator == case_chain.camera.collimator
    no_rr, rr = case_chain.reconstructions
    assert no_rr == s.reconstructions["noRR"]
    assert (rr.iterations, rr.subsets, rr.scatter_correction, rr.post_filter_fwhm_mm) == tuple(
        draw["reconstruction"]["RR"][k] for k in ("iterations", "subsets", "scatter_correction", "post_filter_fwhm_mm"))
    assert case_chain.grid == chain.grid and chain.camera == s.camera  # the frozen specs are replaced, not changed


@pytest.mark.parametrize("randomise", [None, {}, {"reconstruction": {}}])
def test_no_randomise_section_is_todays_chain(randomise):
    s = _settings(randomise)
    assert not s.randomise.active
    chain = _chain(s)
    for case in (0, 7):
        case_chain, draw = chain_for_case(chain, s.randomise, case)
        assert case_chain is chain and draw == {}
    assert chain_for_case(chain, None, 0) == (chain, {})


def test_fingerprints_are_unchanged_without_randomise_and_follow_its_axes():
    stages = ("phantom", "simulate", "noise", "calibration_noRR", "calibration_RR", "recon_noRR", "recon_RR")
    plain = StageGraph(_settings(None))
    empty = StageGraph(_settings({}))
    assert {st: plain.fingerprint(st) for st in stages} == {st: empty.fingerprint(st) for st in stages}
    assert not any(k.startswith("randomise") or "post_filter" in k for k in plain.dependencies("recon_RR"))
    randomised = StageGraph(_settings())
    same = ("phantom", "calibration_noRR", "calibration_RR")
    assert all(plain.fingerprint(st) == randomised.fingerprint(st) for st in same)
    assert all(plain.fingerprint(st) != randomised.fingerprint(st) for st in ("simulate", "noise", "recon_RR"))
    # only RR's axes changed: noRR's reconstruction differs only through the simulation's camera axes
    rr_only = StageGraph(_settings({"reconstruction": RANDOMISE["reconstruction"]}))
    assert rr_only.fingerprint("simulate") == plain.fingerprint("simulate")
    assert rr_only.fingerprint("recon_noRR") == plain.fingerprint("recon_noRR")
    assert rr_only.fingerprint("recon_RR") != plain.fingerprint("recon_RR")
    assert rr_only.dependencies("recon_RR")["randomise.reconstruction.RR.iterations_subsets.levels"][0] == [4, 6]


def test_the_post_filter_conserves_activity_and_adds_its_width_in_quadrature():
    voxel_mm, a_mm, f_mm = 2.0, 8.0, 5.0
    c = (np.arange(64) - 31.5) * voxel_mm
    x, y, z = np.meshgrid(c, c, c, indexing="ij")
    sigma = a_mm / FWHM_PER_SIGMA
    point = np.exp(-(x**2 + y**2 + z**2) / (2 * sigma**2)).astype(np.float32)
    point[0, 0, 0] = 5.0  # a hot voxel at the corner: what would leave the field of view comes back
    image = point.copy()
    out = post_filter(image, voxel_mm, f_mm)
    assert np.array_equal(image, point)  # the input is not changed
    assert abs(out.sum(dtype=np.float64) / image.sum(dtype=np.float64) - 1) < 1e-6
    point[0, 0, 0] = 0.0
    blurred = post_filter(point, voxel_mm, f_mm).astype(np.float64)

    def fwhm(img):
        w = img.sum()
        return FWHM_PER_SIGMA * np.sqrt((img * x**2).sum() / w)

    assert fwhm(point.astype(np.float64)) == pytest.approx(a_mm, rel=0.01)
    assert fwhm(blurred) == pytest.approx(np.sqrt(a_mm**2 + f_mm**2), rel=0.01)
    assert post_filter(image, voxel_mm, 0.0) is image
    with pytest.raises(ValueError):
        post_filter(image, voxel_mm, -1.0)


@pytest.mark.parametrize("randomise, key", [
    ({"time_per_view_s": {"range": [45, 10]}}, "randomise.time_per_view_s.range"),
    ({"reconstruction": {"RR": {"scatter_correction": {"levels": ["tew", "simulated"]}}}},
     "randomise.reconstruction.RR.scatter_correction.levels"),
    ({"orbit_radius_mm": {"range": [200, 300]}}, "randomise.orbit_radius_mm"),
    ({"reconstruction": {"RR": {"iterations": {"levels": [4]}}}}, "randomise.reconstruction.RR.iterations"),
    ({"time_per_view_s": {"range": [10, 45], "levels": [10]}}, "randomise.time_per_view_s"),
    ({"intrinsic_fwhm_mm": {"range": [3.6, 2.9]}}, "randomise.intrinsic_fwhm_mm.range"),
])
def test_a_bad_randomise_section_is_refused_in_one_line_naming_the_key(randomise, key):
    with pytest.raises(InputError) as err:
        _settings(randomise)
    message = str(err.value)
    assert key in message and "\n" not in message
