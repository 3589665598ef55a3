"""benchmarks/independent_adapter.py: the independent chain's projections in our geometry.

Known answers on a tiny grid (24^3 x 4.8 mm, 24 views): an off-centre blob with an attenuating slab
on one side, projected by the independent chain's PyTomography projector, converted by
``to_projections``, equals our projector's projection of the same blob view by view (centroid and
attenuated total), and our OSEM puts the blob where the independent chain's OSEM and the truth
put it; the adapter camera's fitted RR response is the independent collimator's resolution.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytomography")
torch = pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import independent_adapter as ad
import independent_chain as ic

N, VOX, VIEWS, RADIUS = 24, 4.8, 24, 120.0
TRUE_MM = np.array([28.8, -19.2, 9.6])  # off-centre in x, y and z


def _coords() -> np.ndarray:
    return (np.arange(N) - (N - 1) / 2.0) * VOX


def _blob() -> np.ndarray:
    c = _coords()
    g = [np.exp(-0.5 * ((c - t) / (1.5 * VOX)) ** 2) for t in TRUE_MM]
    act = (g[0][:, None, None] * g[1][None, :, None] * g[2][None, None, :]).astype(np.float32)
    return act / act.sum()


def _slab() -> np.ndarray:
    mu = np.zeros((N, N, N), np.float32)
    mu[:, :9, :] = 0.15   # low-y side only: attenuates the views that look from there
    mu[17:, :, :] = 0.10  # and the high-x side
    return mu


def _protocol() -> ic.Protocol:
    return ic.Protocol(n_views=VIEWS, matrix=N, voxel_mm=VOX, norr=(10, 2))


def _ic_projections(act: np.ndarray, mu: np.ndarray) -> ic.Projections:
    counts = 1000.0 * ic.Collimator().sensitivity_cps_per_mbq * _protocol().time_per_view_s
    peak = ic.system_matrix(mu, VOX, VIEWS, RADIUS, None).forward(torch.tensor(act * counts)).numpy()
    zero = np.zeros_like(peak)
    return ic.Projections(peak, zero, zero)


def _centroid(img: np.ndarray) -> np.ndarray:
    c = _coords()
    w = img / img.sum()
    return np.array([(w.sum(axis=tuple(a for a in range(3) if a != k)) * c).sum() for k in range(3)])


def test_converted_projections_match_our_projector():
    from pvc_core.spect.system_cache import get_system

    act, mu = _blob(), _slab()
    theirs = ad.to_projections(_ic_projections(act, mu), _protocol(), RADIUS)
    system = get_system(mu, VOX, theirs.angles_deg, theirs.radii_mm, None, 1.0, (1,))
    with torch.no_grad():
        ours = system.forward(torch.from_numpy(act * 1000.0 * _protocol().time_per_view_s
                                               * ic.Collimator().sensitivity_cps_per_mbq), 1, None, False).numpy()
    mine, yours = ours, theirs.windows["photopeak"]
    u = _coords()
    cu = lambda p: (p.sum(axis=2) * u).sum(axis=1) / p.sum(axis=(1, 2))
    cz = lambda p: (p.sum(axis=1) * u).sum(axis=1) / p.sum(axis=(1, 2))
    assert np.abs(cu(mine) - cu(yours)).max() < 0.25 * VOX
    assert np.abs(cz(mine) - cz(yours)).max() < 0.25 * VOX
    ratio = mine.sum(axis=(1, 2)) / yours.sum(axis=(1, 2))
    assert np.abs(ratio - 1.0).max() < 0.03, ratio            # attenuation on the same side in every view
    assert mine.sum(axis=(1, 2)).min() < 0.6 * mine.sum(axis=(1, 2)).max()  # and it matters
    assert np.corrcoef(mine.ravel(), yours.ravel())[0, 1] > 0.995


def test_our_osem_puts_the_source_where_theirs_does():
    from pvc_core.specs import ReconSpec

    torch.set_num_threads(1)
    act, mu = _blob(), _slab()
    proj = _ic_projections(act, mu)
    prot = _protocol()
    theirs = ic.reconstruct(proj, mu, prot, rr=False, radius_mm=RADIUS)
    base = _base_camera()
    camera = ad.independent_camera(base, prot)
    ours = ad.reconstruct(ad.to_projections(proj, prot, RADIUS), mu, camera, ReconSpec("noRR", 10, 2, "tew"), "tew")
    true_mbq = 1000.0
    voxel_ml = VOX ** 3 / 1000.0
    assert abs(ours.sum() * voxel_ml / true_mbq - 1.0) < 0.03
    assert abs(ours.sum() / theirs.sum() - 1.0) < 0.02
    assert np.abs(_centroid(ours) - TRUE_MM).max() < VOX
    assert np.abs(_centroid(ours) - _centroid(theirs)).max() < 0.5 * VOX
    assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.98


def _base_camera():
    from pvc_core.config import load_config
    from pvc_core.specs import Settings

    return Settings.from_config(load_config(REPO / "config" / "paper.yaml")).camera


def test_adapter_camera_response_is_the_independent_collimators():
    from pvc_core.spect.response_fit import fit_response

    camera = ad.independent_camera(_base_camera(), ic.Protocol())
    d = np.array([25.0, 100.0, 200.0, 300.0])
    fitted = fit_response(camera, 4.8).fwhm_mm(d)
    np.testing.assert_allclose(fitted, ic.Collimator().fwhm_mm(d), rtol=0.02)
    assert camera.sensitivity_cps_per_mbq == pytest.approx(ic.Collimator().sensitivity_cps_per_mbq)
    np.testing.assert_allclose(ad.our_angles_deg(4), [0.0, 270.0, 180.0, 90.0])
