"""Tiny synthetic (SPECT, truth) cases on disk for the training tests (tests/training/test_bf16.py,
test_init_from.py import the fixture; a conftest.py there would shadow tests/conftest.py for the
modules that import from it)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from pvc_core.io import save_image


def sphere_case(rng: np.random.Generator, n: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Three uniform spheres (truth, MBq/mL) and their Gaussian-blurred, noisy 'SPECT'."""
    z, y, x = np.mgrid[:n, :n, :n]
    truth = np.zeros((n, n, n), np.float32)
    for _ in range(3):
        c = rng.uniform(4, n - 4, 3)
        r = rng.uniform(2, 4)
        truth[(z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 < r * r] = rng.uniform(1, 5)
    spect = gaussian_filter(truth, 1.2) * rng.uniform(0.95, 1.05, truth.shape)
    return spect.astype(np.float32), truth


@pytest.fixture(scope="module")
def tiny_pairs(tmp_path_factory) -> list[tuple]:
    """Four cases of :func:`sphere_case` as NIfTI files: ``[(spect, truth), ...]``."""
    root = tmp_path_factory.mktemp("tiny_cases")
    rng = np.random.default_rng(11)
    out = []
    for i in range(4):
        spect, truth = sphere_case(rng)
        out.append((save_image(root / f"case_{i:04d}" / "spect_RR_n.nii.gz", spect, 9.6),
                    save_image(root / f"case_{i:04d}" / "truth.nii.gz", truth, 9.6)))
    return out
