"""The collimator, orbit and reconstruction-voxel axes of ``randomise`` ([3.3] item 2): their
physics against hand-computed answers, their draws and their fingerprints."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from helpers.randomised import randomised_settings
from helpers.small_case import small_chain
from pvc_core.errors import InputError
from pvc_core.pipeline.fingerprints import StageGraph
from pvc_core.pipeline.models import trained_for
from pvc_core.seeding import rng_for
from pvc_core.specs import COLLIMATORS
from pvc_core.spect.acquisition import AcquisitionChain, NoiseSeed, chain_for_case, with_collimator
from pvc_core.spect.collimator import Collimator
from pvc_core.spect.orbit import orbit_radii_mm, view_angles_deg
from pvc_core.spect.projections import Projections
from pvc_core.spect.voxel_size import rebin_projections, resample_mu, resample_to_grid, voxel_grid

CAMERA_AXES = {
    "collimator": {"levels": ["siemens_melp", "ge_megp"]},
    "orbit": {"levels": ["contour", "circular"]},
    "orbit_clearance_mm": {"range": [10, 50]},
    "reconstruction": {"RR": {"voxel_mm": {"range": [3.9, 5.3]}}},
}


def test_ge_megp_geometry_efficiency_and_resolution_by_hand():
    camera = randomised_settings(None).camera
    megp = with_collimator(camera, "ge_megp")
    assert megp.collimator_name.startswith("GE MEGP")
    c = megp.collimator
    assert (c.hole_diameter_mm, c.septal_thickness_mm, c.hole_length_mm) == (3.0, 1.05, 58.0)
    assert c.intrinsic_fwhm_mm == camera.collimator.intrinsic_fwhm_mm  # the crystal stays
    mu_pb = Collimator.from_spec(c).mu_lead_per_mm

    def efficiency(d, t, length):  # Sorenson & Phelps 14-7, hexagonal K = 0.26, L_eff = L - 2/mu
        leff = length - 2.0 / mu_pb
        return 0.26**2 * (d / leff) ** 2 * d**2 / (d + t) ** 2

    ratio = efficiency(3.0, 1.05, 58.0) / efficiency(2.94, 1.14, 40.64)
    assert megp.sensitivity_cps_per_mbq == pytest.approx(camera.sensitivity_cps_per_mbq * ratio, rel=1e-12)
    assert 0.5 < ratio < 0.75  # the longer holes pass fewer photons
    leff = 58.0 - 2.0 / mu_pb
    r_g = 3.0 * (leff + 100.0 + c.image_plane_gap_mm) / leff  # geometric FWHM at 100 mm
    assert Collimator.from_spec(c).geometric_fwhm_mm(100.0) == pytest.approx(r_g, rel=1e-12)
    assert r_g < Collimator.from_spec(camera.collimator).geometric_fwhm_mm(100.0)  # sharper than MELP
    assert with_collimator(camera, "siemens_melp") is camera  # the configured collimator: unchanged
    assert set(COLLIMATORS) == {"siemens_melp", "ge_megp"}


def test_a_circular_orbit_is_the_largest_contour_radius_in_every_view():
    n, voxel = 32, 9.6
    c = (np.arange(n) - (n - 1) / 2) * voxel
    x, y = np.meshgrid(c, c, indexing="ij")
    mu = np.repeat(((x / 150.0) ** 2 + (y / 90.0) ** 2 <= 1.0)[:, :, None] * np.float32(0.15), 4, axis=2)
    angles = view_angles_deg(24)
    contour = orbit_radii_mm(mu, voxel, angles, 20.0)
    circular = orbit_radii_mm(mu, voxel, angles, 20.0, shape="circular")
    assert np.all(circular == contour.max()) and np.all(circular >= contour)
    assert contour.max() - contour.min() > 40.0  # an ellipse: the contour follows it
    with pytest.raises(ValueError, match="orbit shape"):
        orbit_radii_mm(mu, voxel, angles, 20.0, shape="square")


def test_rebinning_keeps_every_count_and_a_one_pixel_source_where_it_was():
    rng = np.random.default_rng(3)
    windows = {w: rng.poisson(5.0, (6, 20, 20)).astype(np.float32) for w in ("photopeak", "lower", "upper")}
    proj = Projections(windows, view_angles_deg(6), np.full(6, 250.0), 4.8, 30.0)
    n = voxel_grid(20, 4.8, 3.9)
    assert n == 25 and n * 3.9 >= 20 * 4.8
    out = rebin_projections(proj, 3.9, n)
    assert out.shape == (6, n, n) and out.pixel_mm == 3.9
    for w in proj.windows:
        assert out.windows[w].sum(dtype=np.float64) == pytest.approx(proj.windows[w].sum(dtype=np.float64), rel=1e-6)
    u = (np.arange(n) - (n - 1) / 2) * 3.9
    point = Projections({w: np.zeros((6, 20, 20), np.float32) for w in proj.windows}, proj.angles_deg, proj.radii_mm,
                        4.8, 30.0)
    point.windows["photopeak"][:, 13, 7] = 1000.0
    hot = rebin_projections(point, 3.9, n).windows["photopeak"][0]
    assert hot.sum() == pytest.approx(1000.0, rel=1e-6)
    assert float((hot.sum(axis=1) * u).sum() / hot.sum()) == pytest.approx((13 - 9.5) * 4.8, abs=1.0)
    assert float((hot.sum(axis=0) * u).sum() / hot.sum()) == pytest.approx((7 - 9.5) * 4.8, abs=1.0)
    assert np.array_equal(out.radii_mm, proj.radii_mm) and np.array_equal(out.angles_deg, proj.angles_deg)


def test_resampling_back_to_the_grid_conserves_activity_and_mu_stays_intensive():
    image = np.zeros((25, 25, 25), np.float32)
    image[12, 12, 12] = 7.0  # a one-voxel lesion at 3.9 mm
    back = resample_to_grid(image, 3.9, 4.8, 20)
    assert back.sum(dtype=np.float64) * 4.8**3 == pytest.approx(7.0 * 3.9**3, rel=1e-6)
    mu = np.full((20, 20, 20), 0.15, np.float32)
    assert np.allclose(resample_mu(mu, 4.8, 3.9, 24)[2:-2, 2:-2, 2:-2], 0.15, atol=1e-6)


def test_a_reconstruction_at_another_voxel_keeps_the_total_activity():
    chain, act, mu = small_chain()
    recon = replace(chain.reconstructions[0], iterations=4, subsets=2)
    proj = chain.project(act, mu)
    mu_recon = chain.mu_recon(mu)
    at_grid = chain.reconstruct({"nf": proj}, mu_recon, recon)["nf"]
    other = chain.reconstruct({"nf": proj}, mu_recon, replace(recon, voxel_mm=15.0))["nf"]
    assert other.shape == at_grid.shape
    assert other.sum(dtype=np.float64) == pytest.approx(at_grid.sum(dtype=np.float64), rel=0.03)
    same = chain.reconstruct({"nf": proj}, mu_recon, replace(recon, voxel_mm=chain.grid.recon_voxel_mm))["nf"]
    assert np.array_equal(same, at_grid)  # the grid's own voxel: today's reconstruction, bit for bit


def test_a_case_chain_takes_the_drawn_collimator_orbit_and_voxel():
    s = randomised_settings(CAMERA_AXES)
    chain = AcquisitionChain(s.camera, s.grid, tuple(s.reconstructions.values()))
    seen = set()
    for case in range(40):
        case_chain, draw = chain_for_case(chain, s.randomise, case)
        cam = case_chain.camera
        assert cam.collimator_name == COLLIMATORS[draw["collimator"]][0]
        assert cam.orbit.shape == draw["orbit"] and cam.orbit.clearance_mm == draw["orbit_clearance_mm"]
        assert draw["orbit_clearance_mm"] in {round(v, 9) for v in np.linspace(10, 50, 4)}
        no_rr, rr = case_chain.reconstructions
        assert no_rr.voxel_mm == 0.0 and rr.voxel_mm == draw["reconstruction"]["RR"]["voxel_mm"]
        seen.add((draw["collimator"], draw["orbit"]))
    assert len(seen) == 4


def test_the_new_axes_leave_the_earlier_axes_draws_alone():
    before = {"time_per_view_s": {"range": [10, 45]},
              "reconstruction": {"RR": {"iterations_subsets": {"levels": [[4, 6], [6, 6], [8, 6]]}}}}
    after = {**before, **{k: v for k, v in CAMERA_AXES.items() if k != "reconstruction"},
             "reconstruction": {"RR": {**before["reconstruction"]["RR"], **CAMERA_AXES["reconstruction"]["RR"]}}}
    a, b = randomised_settings(before).randomise, randomised_settings(after).randomise
    for case in range(10):
        da, db = (r.draw(rng_for(r.seed, case, "acquisition")) for r in (a, b))
        assert da["time_per_view_s"] == db["time_per_view_s"]
        assert da["reconstruction"]["RR"]["iterations"] == db["reconstruction"]["RR"]["iterations"]


def test_fingerprints_keep_todays_values_and_follow_the_new_axes():
    plain = StageGraph(randomised_settings(None))
    assert not any("orbit.shape" in k or "voxel_mm" in k.split(".")[-1] and k.startswith("reconstruction")
                   for k in plain.dependencies("recon_RR"))
    randomised = StageGraph(randomised_settings(CAMERA_AXES))
    assert randomised.fingerprint("phantom") == plain.fingerprint("phantom")
    assert randomised.fingerprint("simulate") != plain.fingerprint("simulate")
    assert randomised.dependencies("recon_RR")["randomise.reconstruction.RR.voxel_mm.range"] == [3.9, 5.3]


def test_the_model_card_states_the_collimators_orbits_and_voxels_trained_on():
    card = trained_for(randomised_settings(CAMERA_AXES), "RR_n")
    assert card["collimator"] == "Siemens MELP (SY-ME) or GE MEGP (Discovery 670/870)"
    assert card["acquisition"]["orbit"] == ["contour", "circular"]
    assert card["acquisition"]["orbit_clearance_mm"] == [10.0, 50.0]
    assert card["reconstruction"]["reconstructed_voxel_mm"] == [3.9, 5.3]
    assert card["voxel_mm"] == [randomised_settings(None).grid.recon_voxel_mm] * 3  # the model's grid


@pytest.mark.parametrize("randomise, key", [
    ({"collimator": {"levels": ["ge_lehr"]}}, "randomise.collimator.levels"),
    ({"orbit": {"levels": ["elliptic"]}}, "randomise.orbit.levels"),
    ({"orbit_clearance_mm": {"range": [50, 10]}}, "randomise.orbit_clearance_mm.range"),
    ({"reconstruction": {"RR": {"voxel_mm": {"range": [0.2, 5.3]}}}}, "randomise.reconstruction.RR.voxel_mm.range"),
])
def test_a_bad_new_axis_is_refused_in_one_line_naming_the_key(randomise, key):
    with pytest.raises(InputError) as err:
        randomised_settings(randomise)
    assert key in str(err.value) and "\n" not in str(err.value)


def test_a_randomised_case_acquires_end_to_end_with_megp_circular_and_its_own_voxel():
    chain, act, mu = small_chain()
    camera = with_collimator(chain.camera, "ge_megp")
    camera = replace(camera, orbit=replace(camera.orbit, shape="circular"))
    rr = replace(chain.reconstructions[1], iterations=2, subsets=2, voxel_mm=15.0)
    case = AcquisitionChain(camera, chain.grid, (rr,))
    acquired = case.acquire(act, mu, NoiseSeed(1, 0), calibration={"RR": 1.0}, noise_levels=("nf",))
    proj = acquired.projections["nf"]
    assert np.ptp(proj.radii_mm) == 0.0 and proj.meta["collimator"].startswith("GE MEGP")
    melp = AcquisitionChain(chain.camera, chain.grid, (rr,)).project(act, mu)
    ratio = proj.windows["photopeak"].sum() / melp.windows["photopeak"].sum()
    assert ratio == pytest.approx(camera.sensitivity_cps_per_mbq / chain.camera.sensitivity_cps_per_mbq, rel=0.05)
    assert acquired.images["RR_nf"].shape == (chain.grid.recon_matrix,) * 3


def test_apply_accepts_the_voxels_a_model_was_reconstructed_at():
    from pvc_core.apply.domain import domain_from_trained_for

    plain = domain_from_trained_for(trained_for(randomised_settings(None), "RR_n"))
    randomised = domain_from_trained_for(trained_for(randomised_settings(CAMERA_AXES), "RR_n"))
    grid_voxel = randomised_settings(None).grid.recon_voxel_mm
    assert plain["voxel_mm"][0] < grid_voxel < plain["voxel_mm"][1] and plain["voxel_mm"][0] > 5.3
    assert randomised["voxel_mm"][0] <= 3.9 and randomised["voxel_mm"][1] >= 5.3
