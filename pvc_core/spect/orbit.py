"""Acquisition orbit: equally spaced view angles and a non-circular body-contour orbit.

Clinical body-contour orbits keep the collimator a small clearance away from the patient's
outline in every view (e.g. the MRTDosimetry Lu-177 protocol, EJNMMI Phys 2021,
doi:10.1186/s40658-021-00397-0, table 2: "SPECT movement: body contour"). Here the radius of view ``theta`` is the
extent of the body outline (mu above a threshold, projected over all slices) along the
detector direction ``e(theta)``, plus the clearance, and at least a mechanical minimum:

    R(theta) = max( max_{body voxels} (p . e(theta)) + h(theta) + clearance, R_min )

where ``h(theta) = v/2 (|sin| + |cos|)`` is the reach of a voxel's corner along ``e(theta)``.
"""

from __future__ import annotations

import numpy as np

from pvc_core.spect.geometry import detector_directions


def view_angles_deg(n_views: int, start_deg: float = 0.0) -> np.ndarray:
    """``n_views`` angles over 360 degrees, starting at ``start_deg``."""
    return start_deg + np.arange(n_views) * (360.0 / n_views)


def orbit_radii_mm(mu_per_cm: np.ndarray, voxel_mm: float, angles_deg: np.ndarray, clearance_mm: float,
                   body_threshold_per_cm: float = 0.01, min_radius_mm: float = 100.0,
                   shape: str = "contour") -> np.ndarray:
    """Body-contour orbit: collimator-face distance from the rotation axis for each view (mm).
    ``shape='circular'``: every view at the largest of the contour's radii (the circle that
    clears the body by at least ``clearance_mm`` in every view).

    Parameters
    ----------
    mu_per_cm:
        Attenuation map (n, n, n_z), 1/cm; the body is ``mu > body_threshold_per_cm``.
    voxel_mm:
        Voxel edge (mm).
    angles_deg:
        View angles.
    clearance_mm:
        Gap between body outline and collimator face.
    body_threshold_per_cm, min_radius_mm:
        Body threshold and the mechanical minimum radius (used alone when there is no body).
    """
    mu = np.asarray(mu_per_cm)
    if mu.ndim != 3 or mu.shape[0] != mu.shape[1]:
        raise ValueError(f"attenuation map must be (n, n, n_z), got {mu.shape}")
    angles = np.asarray(angles_deg, dtype=float)
    body = (mu > body_threshold_per_cm).any(axis=2)
    if not body.any():
        return np.full(angles.shape, float(min_radius_mm))
    n = mu.shape[0]
    c = (np.arange(n) - (n - 1) / 2.0) * voxel_mm
    ii, jj = np.nonzero(body)
    pts = np.stack([c[ii], c[jj]], axis=1)
    e, _ = detector_directions(angles)
    reach = pts @ e.T  # (n_points, n_views)
    corner = 0.5 * voxel_mm * (np.abs(e[:, 0]) + np.abs(e[:, 1]))
    radius = np.maximum(reach.max(axis=0) + corner + clearance_mm, float(min_radius_mm))
    if shape == "circular":
        return np.full(angles.shape, float(radius.max()))
    if shape != "contour":
        raise ValueError(f"orbit shape must be 'contour' or 'circular', got {shape!r}")
    return radius
