"""The RR reconstruction's collimator-detector response, fitted to simulated point sources in air.

Why: reconstructing with the very response the simulator used (the collimator formula of
:mod:`pvc_core.spect.collimator`) is an *inverse crime*; RR then looks sharper and recovers more
than any real reconstruction. The paper simulated with SIMIND and reconstructed with STIR's own
Gaussian model, which users derive from measured point sources. This module does what such a
user does, with the simulator as the camera:

1. **Measure.** A point source in air is "acquired" at each distance ``d`` from the collimator
   face (:data:`FIT_DISTANCES_MM`) with the simulator's own primary response, built exactly as
   :func:`~pvc_core.spect.simulate.simulate_projections` builds primaries: the Gaussian core of
   :class:`~pvc_core.spect.system_model.SPECTSystem` (``forward(psf=True)``: splat, 3-tap
   variance ladder) holding ``1 - tail_fraction`` of the counts plus the long-range pedestal of
   :func:`~pvc_core.spect.simulate.simulate_collimator_tail` holding ``tail_fraction``. One view
   per distance (all at 0 deg, one system), on a detector of pixel :func:`fit_pixel_mm` (the
   reconstruction's pixel refined by an integer factor until it is at most
   :data:`FIT_PIXEL_MAX_MM`, as a NEMA-style resolution measurement uses a fine matrix) and
   :data:`FIT_FIELD_MM` wide, with the point at the centre of the central pixel.
2. **Fit each image.** A 2-D Gaussian ``A exp(-(u-u0)^2 / 2 s_u^2 - (z-z0)^2 / 2 s_z^2)`` (free
   amplitude, centre and one sigma per detector axis; *no constant*) is least-squares fitted
   to the pixel values of the central region, the pixels at or above :data:`FIT_LEVEL` of the
   peak (:func:`gaussian_fwhm_mm`). The per-axis variance is the mean of ``s_u^2`` and ``s_z^2``
   (equal within 1e-6 by symmetry; the projector's model is isotropic).
3. **Fit the model.** ``sigma^2(d) = c0 + c1 d + c2 d^2`` (mm^2 per detector axis, ``d`` in mm,
   clipped at 0) is least-squares fitted to the measured ``sigma^2(d_i)`` with relative weights
   (each residual divided by its ``sigma^2(d_i)``, so that near and far distances count alike).
   This is the form of the collimator formula (``R_g`` is linear in ``d``, ``R_i`` adds in
   quadrature), as STIR's and CASToR's distance-dependent Gaussian models are.

The fitted model therefore absorbs the pedestal (a broad, faint plateau under the core), the
pixel sampling of the measurement and the 3-tap ladder's discretisation; it is not the
simulator's formula, and the reconstruction never sees the formula. A user with measured
point-source FWHMs would put them through step 3 alone.

Results are cached per (collimator, pixel, distances) for the process (:func:`fit_response`):
the fit takes about a second and every RR reconstruction of the process asks for it.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy.optimize import curve_fit

from pvc_core.specs import CameraSpec, CollimatorSpec
from pvc_core.spect.collimator import FWHM_PER_SIGMA, Collimator
from pvc_core.spect.simulate import simulate_collimator_tail
from pvc_core.spect.system_model import SPECTSystem

#: Distances (mm) from the collimator face of the simulated point-source measurements. A module
#: constant, not a configuration key: 25-300 mm spans the clinical body-contour orbits (the
#: paper's patients: radii ~150-300 mm from the axis, sources 0-300 mm from the face).
FIT_DISTANCES_MM: tuple[float, ...] = (25.0, 50.0, 100.0, 150.0, 200.0, 250.0, 300.0)

#: Largest detector pixel (mm) of the measurements: the reconstruction's pixel is divided by the
#: smallest integer that brings it to or below this (4.8 -> 2.4 mm, 9.6 -> 2.4 mm). 2.4 mm keeps
#: the narrowest response (FWHM ~6 mm at the face) above 1 pixel sigma, where a Gaussian fit of
#: the ladder's kernel is meaningful.
FIT_PIXEL_MAX_MM = 2.4

#: Width (mm) of the simulated detector (both axes); +-150 mm holds the core at every distance
#: and the pedestal to ~3.4 of its sigmas at 300 mm.
FIT_FIELD_MM = 300.0

#: The fitted central region: pixels at or above this fraction of the peak (the core to ~3 sigma).
FIT_LEVEL = 0.01


@dataclass(frozen=True)
class FittedResponse:
    """Gaussian distance-dependent response ``sigma^2(d) = c0 + c1 d + c2 d^2`` per detector axis.

    Drop-in for :class:`~pvc_core.spect.collimator.Collimator` where the projector uses it
    (:meth:`variance_mm2`); frozen and hashable, so it keys the system cache and its ladders.

    Attributes
    ----------
    c0_mm2, c1_mm, c2:
        Coefficients (mm^2, mm, unitless) of the variance in mm^2 at distance ``d`` in mm.
    distances_mm:
        Distances of the point-source measurements the model was fitted to.
    measured_fwhm_mm:
        FWHM (mm) fitted to the point-source image at each of ``distances_mm``.
    detector_pixel_mm:
        Detector pixel of the measurements (mm).
    tail_fraction:
        Pedestal fraction of the simulated camera at the time of the measurement (for the record).
    """

    c0_mm2: float
    c1_mm: float
    c2: float
    distances_mm: tuple[float, ...]
    measured_fwhm_mm: tuple[float, ...]
    detector_pixel_mm: float
    tail_fraction: float

    def variance_mm2(self, distance_mm: np.ndarray | float) -> np.ndarray:
        """Gaussian variance (mm^2) per detector axis at ``distance_mm`` from the face (clipped at 0)."""
        d = np.maximum(np.asarray(distance_mm, dtype=float), 0.0)
        return np.maximum(self.c0_mm2 + self.c1_mm * d + self.c2 * d * d, 0.0)

    def sigma_mm(self, distance_mm: np.ndarray | float) -> np.ndarray:
        """Gaussian sigma (mm) per detector axis at ``distance_mm``."""
        return np.sqrt(self.variance_mm2(distance_mm))

    def fwhm_mm(self, distance_mm: np.ndarray | float) -> np.ndarray:
        """FWHM (mm) at ``distance_mm``: ``2 sqrt(2 ln 2) sigma``."""
        return FWHM_PER_SIGMA * self.sigma_mm(distance_mm)

    #: The name :class:`~pvc_core.spect.collimator.Collimator` uses for the same quantity.
    system_fwhm_mm = fwhm_mm

    def as_dict(self) -> dict:
        """Plain JSON-serialisable record (coefficients, distances, measured FWHMs), for sidecars."""
        out = asdict(self)
        out["distances_mm"] = list(self.distances_mm)
        out["measured_fwhm_mm"] = list(self.measured_fwhm_mm)
        out["model"] = "sigma^2(d) = c0_mm2 + c1_mm * d + c2 * d^2 (mm^2 per detector axis, d in mm from the collimator face)"
        return out


def fit_pixel_mm(pixel_mm: float) -> float:
    """Detector pixel (mm) of the point-source measurements: ``pixel_mm / k``, the smallest
    integer ``k`` giving at most :data:`FIT_PIXEL_MAX_MM`."""
    if pixel_mm <= 0:
        raise ValueError(f"pixel size must be positive, got {pixel_mm} mm")
    return float(pixel_mm) / max(1, int(np.ceil(float(pixel_mm) / FIT_PIXEL_MAX_MM - 1e-9)))


def point_source_projections(collimator: CollimatorSpec, detector_pixel_mm: float,
                             distances_mm: tuple[float, ...] | np.ndarray,
                             field_mm: float = FIT_FIELD_MM) -> np.ndarray:
    """Simulated images (n_distances, n, n) of a unit point source in air, one per distance (mm).

    The primary response of :func:`~pvc_core.spect.simulate.simulate_projections`: core
    (``SPECTSystem.forward(psf=True)``) times ``1 - tail_fraction`` plus the pedestal
    (:func:`~pvc_core.spect.simulate.simulate_collimator_tail`) times ``tail_fraction``. The
    grid is ``n`` (odd, ``~field_mm / detector_pixel_mm``) cubic voxels of ``detector_pixel_mm``;
    the source is its central voxel, which projects onto the central pixel of every view; view
    ``i`` looks at 0 deg from radius ``distances_mm[i]``. Counts per unit activity (float64).
    """
    d = np.asarray(distances_mm, dtype=float)
    if d.ndim != 1 or len(d) == 0 or (d < 0).any():
        raise ValueError(f"distances must be a non-empty list of non-negative mm, got {distances_mm}")
    n = int(np.ceil(field_mm / detector_pixel_mm)) | 1
    mu = np.zeros((n, n, n), np.float32)
    point = torch.zeros(n, n, n)
    point[n // 2, n // 2, n // 2] = 1.0  # at the origin: depth 0, so the distance is the radius
    support = np.zeros((n, n), bool)
    support[n // 2, n // 2] = True
    collimator = Collimator.from_spec(collimator)
    with torch.no_grad():
        system = SPECTSystem(mu, detector_pixel_mm, np.zeros(len(d)), d, collimator, activity_support=support)
        primary = system.forward(point, psf=True).double()
        f = collimator.tail_fraction
        if f > 0:
            primary = primary.mul(1.0 - f).add_(simulate_collimator_tail(system, point).double(), alpha=f)
    return primary.numpy()


def _gauss2d(uz: tuple[np.ndarray, np.ndarray], a: float, u0: float, z0: float, su: float, sz: float) -> np.ndarray:
    u, z = uz
    return a * np.exp(-0.5 * ((u - u0) / su) ** 2 - 0.5 * ((z - z0) / sz) ** 2)


def gaussian_fwhm_mm(image: np.ndarray, pixel_mm: float, level: float = FIT_LEVEL) -> tuple[float, float]:
    """(FWHM_u, FWHM_z) in mm of a 2-D Gaussian least-squares fitted to a point-source image.

    ``image`` is (n_u, n_z) with pixels of ``pixel_mm``; the model has a free amplitude, centre
    and one sigma per axis and no constant; only the pixels at or above ``level`` times the peak
    enter the fit (the central region).
    """
    img = np.asarray(image, dtype=float)
    peak = img.max()
    if img.ndim != 2 or not peak > 0:
        raise ValueError("expected a 2-D image with a positive peak")
    iu, iz = np.nonzero(img >= level * peak)
    u, z, y = iu * pixel_mm, iz * pixel_mm, img[iu, iz]
    w = y.sum()
    cu, cz = (u * y).sum() / w, (z * y).sum() / w
    s0 = max(np.sqrt(((u - cu) ** 2 * y).sum() / w), 0.3 * pixel_mm)
    (_, _, _, su, sz), _ = curve_fit(_gauss2d, (u, z), y, p0=(peak, cu, cz, s0, s0))
    return float(FWHM_PER_SIGMA * abs(su)), float(FWHM_PER_SIGMA * abs(sz))


def fit_variance_model(distances_mm: np.ndarray, variance_mm2: np.ndarray) -> tuple[float, float, float]:
    """(c0, c1, c2) of ``sigma^2(d) = c0 + c1 d + c2 d^2`` by least squares with relative weights."""
    d = np.asarray(distances_mm, dtype=float)
    var = np.asarray(variance_mm2, dtype=float)
    if len(d) < 3:
        raise ValueError(f"the quadratic variance model needs at least 3 distances, got {len(d)}")
    design = np.stack([np.ones_like(d), d, d * d], axis=1) / var[:, None]
    coef, *_ = np.linalg.lstsq(design, np.ones_like(d), rcond=None)
    return float(coef[0]), float(coef[1]), float(coef[2])


@functools.lru_cache(maxsize=8)
def _fit(collimator: Collimator, pixel_mm: float, distances_mm: tuple[float, ...]) -> FittedResponse:
    det_px = fit_pixel_mm(pixel_mm)
    images = point_source_projections(collimator, det_px, distances_mm)
    fwhm = np.array([gaussian_fwhm_mm(img, det_px) for img in images])  # (n_d, 2)
    var = np.mean((fwhm / FWHM_PER_SIGMA) ** 2, axis=1)
    c0, c1, c2 = fit_variance_model(np.asarray(distances_mm), var)
    return FittedResponse(c0_mm2=c0, c1_mm=c1, c2=c2, distances_mm=distances_mm,
                          measured_fwhm_mm=tuple(float(x) for x in FWHM_PER_SIGMA * np.sqrt(var)),
                          detector_pixel_mm=det_px, tail_fraction=float(collimator.tail_fraction))


def fit_response(camera: CameraSpec, pixel_mm: float,
                 distances_mm: tuple[float, ...] | list[float] = FIT_DISTANCES_MM) -> FittedResponse:
    """The Gaussian response a user would fit to point sources measured with ``camera``.

    Parameters
    ----------
    camera:
        The simulated camera (only its collimator, with intrinsic resolution and pedestal, is used).
    pixel_mm:
        Detector pixel of the reconstruction (mm); the measurements use :func:`fit_pixel_mm`.
    distances_mm:
        Point-source distances from the collimator face (mm), at least three.

    Cached per (collimator, pixel, distances) with :func:`functools.lru_cache`; the result is
    frozen, so callers share it safely.
    """
    distances = tuple(float(x) for x in distances_mm)
    return _fit(Collimator.from_spec(camera.collimator), round(float(pixel_mm), 9), distances)
