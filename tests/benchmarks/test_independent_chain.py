"""Known answers of the independent acquisition chain (benchmarks/independent_chain.py).

Tiny grids only: each test runs in about a second.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import independent_chain as ic

torch.set_num_threads(1)


def test_shares_no_code_with_pvc_core():
    tree = ast.parse((REPO / "benchmarks" / "independent_chain.py").read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in names if m.startswith("pvc_core")]


def _second_moment_fwhm(img: np.ndarray, pixel_mm: float) -> float:
    """FWHM (mm) of a 1-D profile from its variance, less the pixel's own variance (pixel^2 / 12)."""
    x = np.arange(img.size) * pixel_mm
    w = img / img.sum()
    var = (w * (x - (w * x).sum()) ** 2).sum() - pixel_mm**2 / 12.0
    return float(np.sqrt(var) * ic.FWHM_PER_SIGMA)


@pytest.mark.parametrize("collimator", ["siemens_melp", "ge_megp"])
@pytest.mark.parametrize("radius_mm", [100.0, 250.0])
def test_point_source_fwhm_follows_collimator_formula(radius_mm, collimator):
    n, vox = 33, 2.4
    col = ic.COLLIMATORS[collimator]
    obj = np.zeros((n, n, n), np.float32)
    obj[n // 2, n // 2, n // 2] = 1.0
    h = ic.system_matrix(np.zeros_like(obj), vox, 4, radius_mm, col)
    proj = h.forward(torch.tensor(obj))[0].numpy()           # view 0: point at the orbit radius
    fwhm_z = _second_moment_fwhm(proj.sum(axis=0), vox)       # axial profile
    fwhm_r = _second_moment_fwhm(proj.sum(axis=1), vox)
    expected = float(col.fwhm_mm(radius_mm))
    assert fwhm_z == pytest.approx(expected, rel=0.03)
    assert fwhm_r == pytest.approx(expected, rel=0.05)


def test_fwhm_grows_with_distance():
    col = ic.Collimator()
    f = col.fwhm_mm([0.0, 100.0, 200.0])
    assert np.all(np.diff(f) > 0)
    assert 5.0 < col.sensitivity_cps_per_mbq < 20.0   # about 10 cps/MBq


def test_uniform_cylinder_counts_without_attenuation():
    n, vox = 32, 4.8
    prot = ic.Protocol(n_views=8, time_per_view_s=30.0, matrix=n, voxel_mm=vox)
    frac = ic.cylinder(n, vox, diameter_mm=80.0, length_mm=60.0)
    act_mbq = 50.0
    conc = frac * act_mbq / (frac.sum() * vox**3 / 1000.0)
    col = ic.Collimator()
    obj = conc * vox**3 / 1000.0 * col.sensitivity_cps_per_mbq * prot.time_per_view_s
    h = ic.system_matrix(np.zeros_like(conc), vox, prot.n_views, 150.0, col)
    total = float(h.forward(torch.tensor(obj)).sum())
    expected = act_mbq * col.sensitivity_cps_per_mbq * prot.time_per_view_s * prot.n_views
    assert total == pytest.approx(expected, rel=0.01)


def test_poisson_noise_mean_and_variance():
    lam = np.full((4, 16, 16), 20.0, np.float32)
    p = ic.Projections(lam, lam * 0.5, lam * 0.1)
    rng = np.random.default_rng(0)
    draws = np.stack([ic.add_noise(p, rng).peak for _ in range(50)])
    assert draws.mean() == pytest.approx(20.0, rel=0.01)
    assert draws.var() == pytest.approx(20.0, rel=0.05)
    assert np.all(draws == np.round(draws))


@pytest.fixture(scope="module")
def water_cylinder_projections():
    n_fine, vox_fine = 48, 2.4
    prot = ic.Protocol(n_views=8, time_per_view_s=30.0, matrix=24, voxel_mm=4.8)
    frac = ic.cylinder(n_fine, vox_fine, diameter_mm=90.0, length_mm=80.0)
    act = frac * 1.0
    # a narrow halo so that it stays on this small detector (the default's 40 mm sigma leaves it)
    scatter = ic.ScatterModel(penetration_sigma_mm=6.0)
    return ic.simulate(act, frac * ic.MU_WATER_PER_CM, vox_fine, coarse_factor=2, protocol=prot,
                       scatter=scatter), prot


def test_scatter_fraction_is_what_the_photopeak_holds(water_cylinder_projections):
    proj, _ = water_cylinder_projections
    sm = ic.ScatterModel()
    assert proj.parts["scatter"].sum() / proj.peak.sum() == pytest.approx(sm.scatter_fraction, abs=2e-3)
    pen = proj.parts["penetration"].sum() / proj.parts["primary"].sum()
    assert pen == pytest.approx(sm.penetration_fraction, rel=0.03)
    assert proj.lower.sum() / proj.parts["scatter"].sum() == pytest.approx(sm.lower_to_peak, rel=0.01)
    # TEW's total is the photopeak scatter's total (windows of half the photopeak's width)
    tew = ic.tew_scatter(proj, smooth_px=0.0)
    assert tew.sum() / proj.parts["scatter"].sum() == pytest.approx(1.0, rel=0.01)
    # but wider: the lower window's kernel is broader than the photopeak's
    assert tew.max() < proj.parts["scatter"].max()


def test_rebinning_conserves_counts():
    rng = np.random.default_rng(1)
    p = rng.random((3, 40, 40)).astype(np.float32)
    out = ic.rebin_counts(p, 2.4, 25, 3.84)     # same field of view (96 mm)
    assert out.sum() == pytest.approx(p.sum(), rel=1e-6)
    img = rng.random((20, 20, 20)).astype(np.float32)
    r = ic.resample_concentration(img, 4.8, 24, 4.0)
    assert (r.sum() * 4.0**3) == pytest.approx(img.sum() * 4.8**3, rel=1e-5)


# ---------------------------------------------------------------- collimator presets

def test_megp_preset_geometric_fwhm_by_hand():
    """GE MEGP: D = 3.0, t = 1.05, L = 58 mm; L_eff = L - 2 / mu_Pb (mu 10.33 1/cm = 1.033 1/mm)."""
    col = ic.Protocol(collimator="ge_megp").camera()
    assert (col.hole_diameter_mm, col.septa_mm, col.hole_length_mm) == (3.0, 1.05, 58.0)
    l_eff = 58.0 - 2.0 / 1.033                                # 56.0639 mm
    r_100 = 3.0 * (l_eff + 100.0 + 0.0) / l_eff               # B = 0: 8.3510 mm
    assert col.effective_length_mm == pytest.approx(l_eff, rel=1e-9)
    assert float(col.geometric_fwhm_mm(100.0)) == pytest.approx(r_100, rel=1e-9)
    assert float(col.geometric_fwhm_mm(100.0)) == pytest.approx(8.351, abs=1e-3)
    intrinsic = 3.9 * np.sqrt(140.0 / 208.4)                  # 3.1966 mm at 208 keV
    assert float(col.fwhm_mm(100.0)) == pytest.approx(np.hypot(r_100, intrinsic), rel=1e-9)
    # MELP at 10 cm, by hand: 2.94 (38.7039 + 100) / 38.7039 = 10.5363 mm; MEGP is sharper far out
    melp = ic.Protocol().camera()
    assert float(melp.geometric_fwhm_mm(100.0)) == pytest.approx(2.94 * (40.64 - 2 / 1.033 + 100) / (40.64 - 2 / 1.033))
    assert float(melp.geometric_fwhm_mm(100.0)) == pytest.approx(10.536, abs=1e-3)


def test_image_plane_distance_enters_the_formula_and_the_psf():
    from dataclasses import replace
    col = replace(ic.COLLIMATORS["ge_megp"], image_plane_mm=10.0)
    l_eff = 58.0 - 2.0 / 1.033
    assert float(col.geometric_fwhm_mm(100.0)) == pytest.approx(3.0 * (l_eff + 110.0) / l_eff, rel=1e-9)
    meta = col.psf_meta()                                     # sigma(r cm) in cm
    sigma_cm = meta.sigma_fit(10.0, *meta.sigma_fit_params)
    assert sigma_cm * 10.0 * ic.FWHM_PER_SIGMA == pytest.approx(float(col.fwhm_mm(100.0)), rel=1e-9)


def test_megp_over_melp_sensitivity_is_the_efficiency_ratio():
    """K^2 D^4 / (L_eff^2 (D + t)^2) by hand for both; K, yield and crystal efficiency cancel."""
    def eff(d, t, length):
        l_eff = length - 2.0 / 1.033
        return 0.26**2 * d**4 / (l_eff**2 * (d + t) ** 2)
    ratio = eff(3.0, 1.05, 58.0) / eff(2.94, 1.14, 40.64)     # 0.5245
    megp, melp = ic.Protocol(collimator="ge_megp").camera(), ic.Protocol().camera()
    assert megp.sensitivity_cps_per_mbq / melp.sensitivity_cps_per_mbq == pytest.approx(ratio, rel=1e-9)
    assert ratio == pytest.approx(0.5245, abs=5e-4)
    assert melp.geometric_efficiency == pytest.approx(eff(2.94, 1.14, 40.64), rel=1e-9)
    assert melp.sensitivity_cps_per_mbq == pytest.approx(eff(2.94, 1.14, 40.64) * 0.1038 * 0.5 * 1e6, rel=1e-9)


def test_protocol_camera_defaults_to_the_old_collimator():
    """The default protocol's camera is Collimator() bit for bit (cached rows stay valid)."""
    assert ic.Protocol().camera() == ic.Collimator()
    cam = ic.Protocol(intrinsic_fwhm_140kev_mm=5.0).camera()
    assert cam.intrinsic_fwhm_mm == pytest.approx(5.0 * np.sqrt(140.0 / 208.4))
    assert cam.hole_diameter_mm == ic.Collimator().hole_diameter_mm
    with pytest.raises(ValueError):
        ic.Protocol(collimator="nope").camera()


def test_simulate_and_reconstruct_use_the_protocols_collimator():
    """Primaries in air scale with the protocol's sensitivity; reconstruction divides it out."""
    n_fine, vox_fine = 32, 4.8
    frac = ic.cylinder(n_fine, vox_fine, diameter_mm=60.0, length_mm=40.0)
    act = frac * 1.0
    mu = np.zeros_like(frac)
    totals = {}
    for name in ("siemens_melp", "ge_megp"):
        prot = ic.Protocol(n_views=4, time_per_view_s=30.0, matrix=16, voxel_mm=9.6, collimator=name)
        proj = ic.simulate(act, mu, vox_fine, coarse_factor=2, protocol=prot, radius_mm=150.0,
                           scatter=ic.ScatterModel(penetration_sigma_mm=6.0))
        totals[name] = proj.parts["primary"].sum()
    ratio = ic.COLLIMATORS["ge_megp"].sensitivity_cps_per_mbq / ic.COLLIMATORS["siemens_melp"].sensitivity_cps_per_mbq
    assert totals["ge_megp"] / totals["siemens_melp"] == pytest.approx(ratio, rel=1e-3)
