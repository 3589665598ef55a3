"""The one acquisition chain (pvc_core.spect.acquisition): its whole run equals the DAG's steps,
the calibration divides exactly, the noise comes from its named stream, bad calls are refused."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.small_case import small_chain
from pvc_core.spect.acquisition import AcquisitionChain, NoiseSeed, recon_grid_mu
from pvc_core.seeding import rng_for


@pytest.fixture(scope="module")
def small(one_torch_thread):
    """A 16^3 x 19.2 mm body with a hot sphere, 12 views: (chain, activity, mu)."""
    return small_chain()


def test_acquire_equals_the_dag_steps(small):
    """acquire() = project (simulate stage) -> add_noise (noise stage) -> reconstruct, byte for
    byte. A reconstruct stage's chain holds only its own reconstruction, so its cached system
    serves other subset counts: the image then agrees to float rounding (1e-6), not bytes."""
    chain, act, mu = small
    cal = {"noRR": 0.97, "RR": 1.02}
    whole = chain.acquire(act, mu, NoiseSeed(7, 3), calibration=cal)
    nf = AcquisitionChain(chain.camera, chain.grid).project(act, mu)
    n = AcquisitionChain.add_noise(nf, NoiseSeed(7, 3))
    for level, proj in (("nf", nf), ("n", n)):
        for w, counts in proj.windows.items():
            assert np.array_equal(counts, whole.projections[level].windows[w]), (level, w)
    mu_recon = recon_grid_mu(mu, chain.grid)
    assert np.array_equal(mu_recon, whole.mu_recon_per_cm)
    for recon in chain.reconstructions:
        images = chain.reconstruct({"n": n, "nf": nf}, mu_recon, recon, cal[recon.name])
        alone = AcquisitionChain(chain.camera, chain.grid, (recon,)).reconstruct({"n": n, "nf": nf}, mu_recon, recon,
                                                                                  cal[recon.name])
        for level, image in images.items():
            expected = whole.images[f"{recon.name}_{level}"]
            assert np.array_equal(image, expected), (recon.name, level)
            assert np.abs(alone[level] - expected).max() <= 1e-6 * expected.max(), (recon.name, level)


def test_calibration_factor_divides_the_image(small):
    chain, act, mu = small
    one = chain.acquire(act, mu, NoiseSeed(7, 3), calibration={"noRR": 1.0, "RR": 1.0}, noise_levels=("nf",))
    two = chain.acquire(act, mu, NoiseSeed(7, 3), calibration={"noRR": 2.0, "RR": 0.5}, noise_levels=("nf",))
    assert np.array_equal(two.images["noRR_nf"], one.images["noRR_nf"] / np.float32(2.0))
    assert np.array_equal(two.images["RR_nf"], one.images["RR_nf"] / np.float32(0.5))
    assert sorted(two.images) == ["RR_nf", "noRR_nf"] and list(two.projections) == ["nf"]


def test_noise_comes_from_its_named_stream(small):
    chain, act, mu = small
    nf = AcquisitionChain(chain.camera, chain.grid).project(act, mu)
    case = AcquisitionChain.add_noise(nf, NoiseSeed(7, 3))
    again = AcquisitionChain.add_noise(nf, NoiseSeed(7, 3, "noise"))
    study = AcquisitionChain.add_noise(nf, NoiseSeed(7, 3, "min_feature_size"))
    other_case = AcquisitionChain.add_noise(nf, NoiseSeed(7, 4))
    peak = "photopeak"
    assert np.array_equal(case.windows[peak], again.windows[peak])
    assert not np.array_equal(case.windows[peak], study.windows[peak])
    assert not np.array_equal(case.windows[peak], other_case.windows[peak])
    # the stream is rng_for's: the first photopeak counts are that generator's Poisson draws
    expected = rng_for(7, 3, "noise").poisson(np.clip(nf.windows[peak].astype(np.float64), 0.0, None)).astype(np.float32)
    assert np.array_equal(case.windows[peak], expected)
    # Poisson: the total stays within 5 sigma of the expectation
    total, mean = float(case.windows[peak].sum()), float(nf.windows[peak].sum())
    assert abs(total - mean) < 5 * np.sqrt(mean)


def test_bad_calls_are_refused(small):
    chain, act, mu = small
    with pytest.raises(ValueError, match="no calibration factor for \\['RR'\\]"):
        chain.acquire(act, mu, NoiseSeed(7, 3), calibration={"noRR": 1.0})
    with pytest.raises(ValueError, match="unknown noise level"):
        chain.acquire(act, mu, NoiseSeed(7, 3), calibration={"noRR": 1.0, "RR": 1.0}, noise_levels=("low",))
    nf = chain.project(act, mu)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive and finite"):
            chain.reconstruct({"nf": nf}, recon_grid_mu(mu, chain.grid), chain.reconstructions[0], bad)
