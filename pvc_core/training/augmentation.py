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

__all__ = ["AXIAL_PLANE", "N_SYMMETRIES", "augment", "inverse_symmetry", "symmetries", "symmetry"]


def augment(rng: np.random.Generator, x: np.ndarray, *more: np.ndarray) -> tuple[np.ndarray, ...]:
    """Apply one random symmetry (flips of axes 0 and 2, quarter turns in the axial plane) to all.

    ``x`` and ``more`` (the target, the attenuation map) are 3-D volumes of one shape. Draws, in
    this order, the number of quarter turns and one flip decision per flippable axis from
    ``rng``, so that the same generator state gives the same symmetry. Returns C-contiguous
    arrays (the inputs themselves when the identity was drawn and they are contiguous).
    """
    k = int(rng.integers(4)) if x.shape[AXIAL_PLANE[0]] == x.shape[AXIAL_PLANE[1]] else 2 * int(rng.integers(2))
    flips = tuple(a for a in (0, 2) if rng.random() < 0.5)
    return tuple(np.ascontiguousarray(symmetry(a, k, flips)) for a in (x, *more))


def symmetry(volume: np.ndarray, quarter_turns: int, flips: tuple[int, ...]) -> np.ndarray:
    """``volume`` turned by ``quarter_turns`` x 90 degrees in the axial plane, then flipped along
    ``flips`` (a view; axes as :func:`augment`)."""
    if quarter_turns % 4:
        volume = np.rot90(volume, quarter_turns, AXIAL_PLANE)
    return np.flip(volume, flips) if flips else volume


def inverse_symmetry(volume: np.ndarray, quarter_turns: int, flips: tuple[int, ...]) -> np.ndarray:
    """Undo :func:`symmetry` (flip back, then turn back)."""
    if flips:
        volume = np.flip(volume, flips)
    return np.rot90(volume, -quarter_turns, AXIAL_PLANE) if quarter_turns % 4 else volume


def symmetries(shape: tuple[int, ...]) -> list[tuple[int, tuple[int, ...]]]:
    """Every ``(quarter_turns, flips)`` :func:`augment` can draw for a volume of ``shape``
    (16 for a square axial plane, 8 otherwise)."""
    turns = range(4) if shape[AXIAL_PLANE[0]] == shape[AXIAL_PLANE[1]] else (0, 2)
    flip_sets = [(), (0,), (2,), (0, 2)]
    return [(k, f) for k in turns for f in flip_sets]
