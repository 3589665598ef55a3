"""Known answers of the SPECT physics: collimator response vs distance, attenuation, counts, scatter."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import curve_fit

from pvc_core.config import load_config
from pvc_core.spect import simulate_projections
from pvc_core.spect.collimator import Collimator
from pvc_core.spect.energy_windows import EnergyWindows
from pvc_core.spect.scatter import primary_window_fractions, scatter_tables
from pvc_core.spect.system_model import SPECTSystem
from pvc_core.specs import CameraSpec, GridSpec

CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def base_config() -> dict:
    return load_config(CONFIG)


def small_config(base: dict, matrix: int, voxel_mm: float, sim_factor: int, n_views: int, **camera) -> dict:
    cfg = copy.deepcopy(base)
    cfg["grid"].update(recon_matrix=matrix, recon_voxel_mm=voxel_mm, sim_factor=sim_factor)
    cfg["camera"]["n_views"] = n_views
    for key, value in camera.items():  # nested sections are merged, as validation would fill them
        if isinstance(value, dict):
            cfg["camera"][key] = {**cfg["camera"][key], **value}
        else:
            cfg["camera"][key] = value
    return cfg


def _gauss(x, a, mu, sigma):
    return a * np.exp(-0.5 * ((x - mu) / sigma) ** 2)


def _fitted_fwhm_mm(profile: np.ndarray, pixel_mm: float) -> float:
    x = np.arange(len(profile)) * pixel_mm
    p0 = (profile.max(), float((x * profile).sum() / profile.sum()), 3 * pixel_mm)
    (_, _, sigma), _ = curve_fit(_gauss, x, profile, p0=p0)
    return 2.0 * np.sqrt(2.0 * np.log(2.0)) * abs(sigma)


@pytest.mark.parametrize("angle_deg", [0.0, 30.0])
def test_point_source_fwhm_follows_collimator_formula(base_config, angle_deg):
    """Projected FWHM of a point source in air within 5 % of sqrt(R_g(d)^2 + R_i^2) at 3 distances."""
    col = Collimator.from_spec(CameraSpec.from_config(base_config).collimator)
    n, v = 48, 2.0
    mu = np.zeros((n, n, n), np.float32)
    point = torch.zeros(n, n, n)
    point[n // 2, n // 2, n // 2] = 1.0  # centre (+1 mm, +1 mm): depth along the view computed below
    centre = (np.array([n // 2, n // 2]) - (n - 1) / 2.0) * v
    th = np.deg2rad(angle_deg)
    depth = centre @ np.array([np.sin(th), -np.cos(th)])
    for distance in (50.0, 150.0, 250.0):
        system = SPECTSystem(mu, v, np.array([angle_deg]), np.array([distance + depth]), col)
        proj = system.forward(point, psf=True)[0].numpy()
        expected = float(col.system_fwhm_mm(distance))
        for axis in (0, 1):
            measured = _fitted_fwhm_mm(proj.sum(axis=1 - axis), v)
            assert measured == pytest.approx(expected, rel=0.05), (distance, axis, measured, expected)
    # and the noRR model is a pure (bilinear) projection: no blur beyond a pixel
    system = SPECTSystem(mu, v, np.array([angle_deg]), np.array([150.0]), col)
    assert system.forward(point)[0].numpy().max() > 0.2


def test_attenuation_through_slab_is_exp_minus_mu_l(base_config):
    """A source behind a 6 cm slab of mu = 0.15/cm: counts x exp(-0.9) when the slab faces the detector."""
    col = Collimator.from_spec(CameraSpec.from_config(base_config).collimator)
    n, v = 16, 10.0
    mu = np.zeros((n, n, n), np.float32)
    mu[:, 0:6, :] = 0.15  # low-index side of axis 1 faces the detector at 0 degrees
    src = torch.zeros(n, n, n)
    src[8, 12, 8] = 2.0
    system = SPECTSystem(mu, v, np.array([0.0, 180.0]), np.array([200.0, 200.0]), col, counts_per_mbq=3.0)
    counts = system.forward(src).sum(dim=(1, 2)).numpy()
    assert counts[0] == pytest.approx(6.0 * np.exp(-0.15 * 6.0), rel=1e-5)
    assert counts[1] == pytest.approx(6.0, rel=1e-6)


def test_system_matrix_adjoint_and_subsets(base_config):
    col = Collimator.from_spec(CameraSpec.from_config(base_config).collimator)
    n = 12
    rng = np.random.default_rng(0)
    mu = (rng.random((n, n, n)) * 0.2).astype(np.float32)
    angles = np.arange(12) * 30.0 + 7.0
    system = SPECTSystem(mu, 9.6, angles, np.linspace(120, 180, 12), col, 2.5, subset_counts=(2, 3))
    f = torch.from_numpy(rng.random((n, n, n)).astype(np.float32))
    q = torch.from_numpy(rng.random((12, n, n)).astype(np.float32))
    for psf in (False, True):
        lhs = float((system.forward(f, psf=psf) * q).sum())
        rhs = float((f * system.backward(q, psf=psf)).sum())
        assert lhs == pytest.approx(rhs, rel=1e-5)
        full = system.forward(f, psf=psf)
        assert torch.allclose(system.forward(f, 3, 1, psf=psf), full[1::3])
        assert torch.allclose(system.forward(f, 2, 0, psf=psf), full[0::2])


@pytest.mark.parametrize("project_at", ["sim", "recon"])
def test_photopeak_counts_in_air_equal_sensitivity_activity_time(base_config, project_at):
    cfg = small_config(base_config, 16, 9.6, 2, 8, project_at=project_at, time_per_view_s=25.0)
    cfg["camera"]["collimator"]["tail"].update(penetration_fraction=0.0)  # its pedestal leaves the small detector
    v = 4.8
    act = np.zeros((32, 32, 32), np.float32)
    act[12:20, 10:18, 14:19] = 0.7  # MBq/mL
    mu = np.zeros_like(act)
    proj = simulate_projections(act, mu, v, CameraSpec.from_config(cfg), GridSpec.from_config(cfg))
    activity_mbq = act.sum(dtype=np.float64) * (v / 10.0) ** 3
    expected = cfg["camera"]["sensitivity_cps_per_mbq"] * activity_mbq * 25.0 * 8
    totals = proj.total_counts()
    assert totals["photopeak"] == pytest.approx(expected, rel=1e-5)
    kappa = primary_window_fractions(CameraSpec.from_config(cfg).windows)
    for w in ("lower", "upper"):
        assert totals[w] == pytest.approx(kappa[w] * expected, rel=1e-5)
    assert proj.meta["scatter_fraction"] == pytest.approx(0.0, abs=1e-6)
    assert proj.windows["photopeak"].shape == (8, 16, 16)


def test_collimator_tail_fraction_and_width_for_point_source_in_air(base_config):
    """The simulator's pedestal holds the configured fraction with the configured width; counts are kept."""
    n, v, f = 32, 4.8, 0.05
    act = np.zeros((n, n, n), np.float32)
    act[n // 2, n // 2, n // 2] = 1.0
    mu = np.zeros_like(act)
    projs = {}
    for frac in (0.0, f):
        cfg = small_config(base_config, n, v, 1, 4, scatter={"model": "none"})
        cfg["camera"]["collimator"]["tail"].update(penetration_fraction=frac, extra_fraction=0.0)
        projs[frac] = simulate_projections(act, mu, v, CameraSpec.from_config(cfg), GridSpec.from_config(cfg)).windows["photopeak"].astype(np.float64)
    col = Collimator.from_spec(CameraSpec.from_config(cfg).collimator)
    assert col.tail_fraction == f
    core, full = projs[0.0], projs[f]
    assert full.sum() == pytest.approx(core.sum(), rel=1e-3)  # counts conserved (detector wide enough)
    tail = (full - (1.0 - f) * core) / f  # unit-weight pedestal
    assert tail.sum() == pytest.approx(core.sum(), rel=2e-3)
    radius = float(cfg["camera"]["orbit"]["min_radius_mm"])  # no body: every view at the minimum radius
    c = (np.arange(n) - (n - 1) / 2.0) * v
    for k in range(full.shape[0]):
        cu = (core[k].sum(axis=1) * c).sum() / core[k].sum()
        cz = (core[k].sum(axis=0) * c).sum() / core[k].sum()
        var_u = (tail[k].sum(axis=1) * (c - cu) ** 2).sum() / tail[k].sum()
        d = radius  # the source sits 2.4 mm off the axis: well inside the tolerances below
        assert np.sqrt(var_u) == pytest.approx(float(col.tail_sigma_mm(d)), rel=0.08)
        r = np.hypot(c[:, None] - cu, c[None, :] - cz)
        r0 = 3.0 * float(col.system_fwhm_mm(d))
        beyond = full[k][r > r0].sum() / full[k].sum()
        expected = f * np.exp(-r0 ** 2 / (2.0 * float(col.tail_sigma_mm(d)) ** 2))
        assert beyond == pytest.approx(expected, rel=0.2), (beyond, expected)
        assert core[k][r > r0].sum() / core[k].sum() < 1e-3  # the Gaussian core has no such tail


def test_septal_penetration_default_matches_ray_trace(base_config):
    """The configured pedestal of SY-ME at 208 keV is what a ray trace of its hexagonal lattice gives."""
    col = Collimator.from_spec(CameraSpec.from_config(base_config).collimator)
    fraction, rms_tan = col.septal_penetration_tail(n_theta=32, n_rays=1500, n_steps=120)
    default = base_config["camera"]["collimator"]["tail"]
    assert 0.5 * default["penetration_fraction"] < fraction < 2.0 * default["penetration_fraction"]
    assert rms_tan == pytest.approx(default["rms_tan"], rel=0.25)
    assert fraction < 0.01  # whole-septum penetration is a per-mille effect for MELP at 208 keV
    assert col.septal_transmission() < 2e-3


def test_scatter_tables_depth_dependence(base_config):
    windows = CameraSpec.from_config(base_config).windows
    tables = scatter_tables(windows)
    spr = tables.spr["photopeak"].sum(axis=0)
    assert tables.n_orders == 2 and spr[0] == 0.0 and np.all(np.diff(spr) > 0)
    sf_10cm = tables.spr_at("photopeak", 10.0) / (1 + tables.spr_at("photopeak", 10.0))
    assert 0.2 < sf_10cm < 0.35
    # second order matters more in the lower window than in the photopeak window
    share = {w: tables.spr[w][1, 7] / tables.spr[w][:, 7].sum() for w in ("photopeak", "lower")}
    assert share["lower"] > 2 * share["photopeak"]
    # lower-window scatter is wider (larger angles) than photopeak scatter at the same depth
    assert np.all(tables.variance_mm2["lower"][0, 1:] > tables.variance_mm2["photopeak"][0, 1:])


def test_second_order_estimator_reproduces_analytic_first_order(base_config):
    """The Monte Carlo estimator, cut to one scatter, matches the numerical first-order integral."""
    from pvc_core.spect.physics_data import LU177_PHOTOPEAK_KEV, linear_attenuation_per_cm
    from pvc_core.spect.scatter import compton_energy_kev, klein_nishina_per_cm_sr

    windows = EnergyWindows.from_spec(CameraSpec.from_config(base_config).windows)
    tables = scatter_tables(windows, orders=1)
    e0, t = LU177_PHOTOPEAK_KEV, 9.0
    mu0 = linear_attenuation_per_cm("water", e0)
    rng = np.random.default_rng(3)
    w0 = rng.normal(size=(400_000, 3))
    w0 /= np.linalg.norm(w0, axis=1, keepdims=True)
    r1 = rng.exponential(1 / mu0, len(w0))
    z1 = -t + r1 * w0[:, 2]
    cos = np.clip(w0[:, 2], -1, 1)
    e1 = compton_energy_kev(e0, np.arccos(cos))
    weight = (z1 < 0) * klein_nishina_per_cm_sr(e0, np.arccos(cos)) / mu0 * np.exp(
        -linear_attenuation_per_cm("water", e1) * np.maximum(-z1, 0))
    prim = np.exp(-mu0 * t) / (4 * np.pi) * windows.acceptance("photopeak", e0)
    for w in ("photopeak", "lower"):
        mc = float((weight * windows.acceptance(w, e1)).mean() / prim)
        assert mc == pytest.approx(float(np.interp(t, tables.depth_cm, tables.spr[w][0])), rel=0.02)


def water_cylinder(n: int, voxel_mm: float, radius_mm: float, concentration: float = 0.3):
    c = (np.arange(n) - (n - 1) / 2.0) * voxel_mm
    r = np.hypot(c[:, None], c[None, :])
    inside = np.repeat((r <= radius_mm)[:, :, None], n, axis=2)
    return (inside * concentration).astype(np.float32), (inside * 0.135).astype(np.float32), r


def test_water_cylinder_scatter_fraction_and_tew(base_config):
    cfg = small_config(base_config, 32, 9.6, 1, 8, project_at="recon")
    act, mu, _ = water_cylinder(32, 9.6, 100.0)
    proj = simulate_projections(act, mu, 9.6, CameraSpec.from_config(cfg), GridSpec.from_config(cfg))
    lo, hi = cfg["camera"]["scatter"]["acceptance_range"]
    assert lo <= proj.meta["scatter_fraction"] <= hi
    ratio = proj.meta["tew_estimate_over_true_scatter"]
    assert 0.6 < ratio < 1.3 and abs(ratio - 1.0) > 0.01  # TEW estimates, it does not know
    assert proj.total_counts()["lower"] > 0.1 * proj.total_counts()["photopeak"]
