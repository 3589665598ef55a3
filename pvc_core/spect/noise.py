"""Poisson noise: one realisation of every energy window, reproducible from a seeded generator."""

from __future__ import annotations

import numpy as np

from pvc_core.spect.energy_windows import WINDOW_NAMES
from pvc_core.spect.projections import SIMULATED_SCATTER, Projections


def add_poisson_noise(projections: Projections, rng: np.random.Generator) -> Projections:
    """A Poisson realisation of ``projections`` (expected counts) drawn from ``rng``.

    Windows are drawn in the fixed order photopeak, lower, upper, so the same generator state
    always gives the same counts. The input is not modified.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator (e.g. pvc_core.seeding.rng_for(seed, case, 'noise'))")
    noisy = {}
    for w in WINDOW_NAMES:
        lam = np.clip(projections.windows[w].astype(np.float64), 0.0, None)
        noisy[w] = rng.poisson(lam).astype(np.float32)
    totals = {w: float(noisy[w].sum(dtype=np.float64)) for w in WINDOW_NAMES}
    if projections.simulated_scatter is not None:  # the expectation stays an expectation
        noisy[SIMULATED_SCATTER] = projections.simulated_scatter
    return projections.replace_windows(noisy, noise="poisson", total_counts=totals,
                                       expected_total_counts=projections.total_counts())
