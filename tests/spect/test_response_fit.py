"""Known answers of RR's fitted collimator-detector response (pvc_core.spect.response_fit)."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pvc_core.config import load_config
from pvc_core.spect import simulate_projections
from pvc_core.spect.collimator import Collimator
from pvc_core.spect.response_fit import (FIT_DISTANCES_MM, FittedResponse, fit_pixel_mm, fit_response,
                                         gaussian_fwhm_mm)
from pvc_core.spect.system_cache import clear_system_cache, get_system
from pvc_core.specs import CameraSpec, GridSpec, recon_spec

CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def base_config() -> dict:
    return load_config(CONFIG)


def _camera(base_config: dict, tail_fraction: float) -> CameraSpec:
    cam = CameraSpec.from_config(base_config)
    return dataclasses.replace(cam, collimator=dataclasses.replace(cam.collimator, tail_fraction=tail_fraction))


@pytest.mark.parametrize("pixel_mm", [4.8, 9.6])
def test_without_pedestal_the_fit_reproduces_the_collimator_formula(base_config, pixel_mm):
    """tail_fraction 0: the simulator's core is the 3-tap ladder, exact in variance, so the
    measured and the fitted FWHM(d) equal sqrt(R_g(d)^2 + R_i^2) within 3 % at every distance
    (measured: +0.2 to +1.1 %, the ladder's mixture of neighbouring nodes is slightly non-Gaussian)."""
    cam = _camera(base_config, 0.0)
    fitted = fit_response(cam, pixel_mm)
    d = np.asarray(FIT_DISTANCES_MM)
    formula = Collimator.from_spec(cam.collimator).system_fwhm_mm(d)
    assert fitted.distances_mm == FIT_DISTANCES_MM
    assert fitted.detector_pixel_mm == pytest.approx(2.4)
    np.testing.assert_allclose(fitted.measured_fwhm_mm, formula, rtol=0.03)
    np.testing.assert_allclose(fitted.fwhm_mm(d), formula, rtol=0.03)
    assert not np.allclose(fitted.fwhm_mm(d), formula, rtol=1e-4)  # fitted, not copied


def test_pedestal_widens_the_fit_slightly_and_in_proportion(base_config):
    """A faint broad pedestal barely moves a Gaussian fit of the central region: with the default
    0.001 the FWHM grows by 0.010-0.016 %, with 0.01 by 0.10-0.17 % (measured), i.e. linearly in
    the fraction; both stay within 3 % of the core's formula."""
    d = np.asarray(FIT_DISTANCES_MM)
    ref = np.asarray(fit_response(_camera(base_config, 0.0), 4.8).measured_fwhm_mm)
    growth = {}
    for f in (0.001, 0.01):
        cam = _camera(base_config, f)
        fitted = fit_response(cam, 4.8)
        assert fitted.tail_fraction == f
        np.testing.assert_allclose(fitted.fwhm_mm(d), Collimator.from_spec(cam.collimator).system_fwhm_mm(d), rtol=0.03)
        growth[f] = np.asarray(fitted.measured_fwhm_mm) / ref - 1.0
    assert np.all(growth[0.001] > 5e-5) and np.all(growth[0.001] < 5e-4)
    assert np.all(growth[0.01] > 5e-4) and np.all(growth[0.01] < 5e-3)
    np.testing.assert_allclose(growth[0.01] / growth[0.001], 10.0, rtol=0.1)


def test_fitted_model_predicts_a_simulated_point_source_at_an_unfitted_distance(base_config):
    """A point source in air simulated by simulate_projections (default pedestal, 4.8 mm pixels,
    four views at 175 mm, a distance not among the fitted ones): its 2-D Gaussian FWHM equals the
    fitted model's FWHM(175 mm) within 5 %."""
    cfg = copy.deepcopy(base_config)
    n, v, distance = 41, 4.8, 175.0
    cfg["grid"].update(recon_matrix=n, recon_voxel_mm=v, sim_factor=1)
    cfg["camera"].update(n_views=4, project_at="recon")
    cfg["camera"]["scatter"]["model"] = "none"
    cfg["camera"]["orbit"]["min_radius_mm"] = distance  # no body: every view at the minimum radius
    cam = CameraSpec.from_config(cfg)
    assert distance not in FIT_DISTANCES_MM and cam.collimator.tail_fraction > 0
    act = np.zeros((n, n, n), np.float32)
    act[n // 2, n // 2, n // 2] = 1.0  # the rotation axis: depth 0 in every view
    proj = simulate_projections(act, np.zeros_like(act), v, cam, GridSpec.from_config(cfg))
    assert np.allclose(proj.radii_mm, distance)
    predicted = float(fit_response(cam, v).fwhm_mm(distance))
    for view in proj.windows["photopeak"]:
        for measured in gaussian_fwhm_mm(view, v):
            assert measured == pytest.approx(predicted, rel=0.05)


def test_rr_reconstruction_does_not_read_the_simulators_response(base_config, monkeypatch):
    """osem.py (the reconstruction) names neither Collimator nor camera.collimator, and an RR reconstruction runs
    with every Collimator response method raising."""
    recon_module = importlib.import_module("pvc_core.spect.osem")
    source = inspect.getsource(recon_module)
    assert "Collimator" not in source and ".collimator" not in source
    cfg = copy.deepcopy(base_config)
    n, v = 16, 9.6
    cfg["grid"].update(recon_matrix=n, recon_voxel_mm=v, sim_factor=1)
    cfg["camera"].update(n_views=8, project_at="recon")
    cfg["camera"]["scatter"]["model"] = "none"
    cfg["reconstruction"]["RR"] = {"iterations": 1, "subsets": 2}
    cam = CameraSpec.from_config(cfg)
    c = (np.arange(n) - (n - 1) / 2.0) * v
    inside = np.repeat((np.hypot(c[:, None], c[None, :]) <= 50.0)[:, :, None], n, axis=2)
    act, mu = (inside * 0.3).astype(np.float32), (inside * 0.135).astype(np.float32)
    proj = simulate_projections(act, mu, v, cam, GridSpec.from_config(cfg))
    response = recon_module.rr_response(cam, v)  # the point-source measurements use the simulator
    assert isinstance(response, FittedResponse)

    def forbidden(*args, **kwargs):
        raise AssertionError("the RR reconstruction read the simulator's collimator response")

    for name in ("variance_mm2", "sigma_mm", "system_fwhm_mm", "geometric_fwhm_mm", "tail_sigma_mm"):
        monkeypatch.setattr(Collimator, name, forbidden)
    img = recon_module.reconstruct(proj, mu, recon_spec(cfg, "RR"), cam)
    assert np.isfinite(img).all() and img.sum() > 0


def test_fitted_response_record_and_cache(base_config):
    """Hashable and cached per (collimator, pixel, distances); clipped at d < 0; JSON record."""
    cam = CameraSpec.from_config(base_config)
    a = fit_response(cam, 4.8)
    assert fit_response(cam, 4.8) is a and fit_response(cam, 4.8, list(FIT_DISTANCES_MM)) is a
    assert hash(a) == hash(dataclasses.replace(a))
    b = fit_response(cam, 4.8, (50.0, 150.0, 250.0))
    assert b is not a and b.distances_mm == (50.0, 150.0, 250.0)
    assert float(a.variance_mm2(-10.0)) == pytest.approx(a.c0_mm2)
    assert a.sigma_mm(np.array([0.0, 100.0])).shape == (2,)
    assert float(a.system_fwhm_mm(100.0)) == float(a.fwhm_mm(100.0))
    record = json.loads(json.dumps(a.as_dict()))
    assert record["c2"] == a.c2 and len(record["measured_fwhm_mm"]) == len(FIT_DISTANCES_MM)
    assert fit_pixel_mm(4.8) == 2.4 and fit_pixel_mm(2.0) == 2.0 and fit_pixel_mm(9.6) == 2.4
    with pytest.raises(ValueError):
        fit_response(cam, 4.8, (100.0, 200.0))


def test_simulator_and_rr_share_one_cached_system(base_config):
    """The system cache is keyed without the response: the collimator formula and the fitted
    response share the geometry of one system but keep their own CDR ladders."""
    cam = CameraSpec.from_config(base_config)
    fitted = fit_response(cam, 9.6)
    clear_system_cache()
    n = 12
    mu = np.full((n, n, n), 0.1, np.float32)
    angles, radii = np.arange(6) * 60.0, np.full(6, 150.0)
    col = Collimator.from_spec(cam.collimator)
    sim = get_system(mu, 9.6, angles, radii, col, 2.0, (1, 2))
    rr = get_system(mu, 9.6, angles, radii, fitted, 2.0, (1, 2))
    no_rr = get_system(mu, 9.6, angles, radii, None, 2.0, (1, 2))
    assert sim.collimator is col and rr.collimator is fitted and no_rr.collimator is None
    f = torch.rand(n, n, n, generator=torch.Generator().manual_seed(0))
    p_sim, p_rr = sim.forward(f, psf=True), rr.forward(f, psf=True)
    assert sim.block(0).splat is rr.block(0).splat is no_rr.block(0).splat
    assert set(sim.block(0).ladders) == {col, fitted}
    assert torch.allclose(sim.forward(f), no_rr.forward(f))
    rel = float((p_sim - p_rr).abs().max() / p_sim.abs().max())
    assert 1e-5 < rel < 0.05  # nearly the same response, yet not the same one
    assert not torch.equal(sim.normalization(2, 0, psf=True), rr.normalization(2, 0, psf=True))
    with pytest.raises(ValueError):
        no_rr.forward(f, psf=True)
    clear_system_cache()
