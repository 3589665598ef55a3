"""Augmentation by the symmetries of a SPECT acquisition with a 360-degree body-contour orbit.

Flipping the patient left-right (array axis 0) or head-feet (axis 2) or turning it by a multiple
of 90 degrees in the axial plane (axes 0 and 1) turns the reconstruction and the truth alike, so
each augmented pair is again a physically valid pair. The 16 combinations (4 turns x 4 flip
sets) multiply the variety of a small training set without a single new simulation. A volume
whose axial plane is not square only admits the half turn, which leaves 8.
"""

from __future__ import annotations

import numpy as np

#: Axes of the axial (transverse) plane in array order; axis 2 runs head-feet (NIfTI RAS).
AXIAL_PLANE = (0, 1)

#: Number of distinct symmetries :func:`augment` draws from for a square axial plane.
N_SYMMETRIES = 16

__all__ = ["AXIAL_PLANE", "N_SYMMETRIES", "augment"]


def augment(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply one random symmetry (flips of axes 0 and 2, quarter turns in the axial plane) to both.

    Draws, in this order, the number of quarter turns and one flip decision per flippable axis
    from ``rng``, so that the same generator state gives the same symmetry. Returns C-contiguous
    arrays (the inputs themselves when the identity was drawn and they are contiguous).
    """
    k = int(rng.integers(4)) if x.shape[AXIAL_PLANE[0]] == x.shape[AXIAL_PLANE[1]] else 2 * int(rng.integers(2))
    flips = tuple(a for a in (0, 2) if rng.random() < 0.5)
    if k:
        x, y = np.rot90(x, k, AXIAL_PLANE), np.rot90(y, k, AXIAL_PLANE)
    if flips:
        x, y = np.flip(x, flips), np.flip(y, flips)
    return np.ascontiguousarray(x), np.ascontiguousarray(y)
