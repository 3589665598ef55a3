"""Collimator-detector response (CDR) of a parallel-hole collimator: resolution vs distance.

The geometric resolution of a parallel-hole collimator (Anger 1964; Sorenson & Phelps,
*Physics in Nuclear Medicine*, 3rd ed., ch. 14, eq. 14-6) for a source at distance ``d`` from the
collimator face is

    R_g(d) = D * (L_eff + d + B) / L_eff,      L_eff = L - 2 / mu_Pb(E)

with hole diameter ``D``, hole length ``L``, ``B`` the distance from the collimator's back face to
the image plane in the crystal (entrance window, air gap and mean depth of interaction), and
``mu_Pb`` lead's linear attenuation coefficient at the photon energy. The effective length is the
standard way to account for *septal penetration at the hole edges* (which stays inside the core
of the response). Penetration through whole septa is estimated by the minimum-path
transmission ``exp(-mu_Pb * w)``, ``w = t * L / (2 D + t)`` (Sorenson & Phelps eq. 14-1), about
1e-3 for the Siemens MELP collimator at 208 keV (see :meth:`Collimator.septal_transmission`).

Long-range tail (simulator only)
--------------------------------
Photons arriving at angles beyond the largest lead-free angle ``atan(D_corner / L)`` of a hole
have crossed at least one whole septum. :func:`septal_penetration_tail` ray-traces the hexagonal
hole lattice (lead path of each ray, transmission ``exp(-mu_Pb l)``, NIST XCOM ``mu_Pb``) and
gives (a) the fraction of the collimator's total transmitted intensity carried by such rays and
(b) their root-mean-square ``tan(theta)``. For SY-ME at 208 keV the fraction is about 1e-3 and
the RMS ``tan(theta)`` about 0.3: a faint pedestal several cm wide. The simulator
(:func:`pvc_core.spect.simulate.simulate_collimator_tail`) adds it as a distance-dependent
isotropic Gaussian with ``sigma(d) = (d + L + B) * rms_tan / sqrt(2)`` per axis, holding
``tail_fraction`` of the primary counts (the core keeps ``1 - tail_fraction``; counts are
conserved, so the configured sensitivity, which is measured with the tail included, stays
valid). ``tail_fraction`` also carries any configured extra pedestal (collimator scatter,
down-scatter of the 249.7/321.3 keV lines) that the user sets from a measured PSF. The
reconstructions never read this model: like STIR or CASToR resolution modelling, RR models a
distance-dependent Gaussian fitted to simulated point sources
(:mod:`pvc_core.spect.response_fit`), which barely sees the faint pedestal.

The system response adds the intrinsic resolution ``R_i`` in quadrature:
``FWHM(d) = sqrt(R_g(d)^2 + R_i^2)``; it is modelled as a 2-D Gaussian with
``sigma = FWHM / (2 sqrt(2 ln 2))``.

The geometric efficiency (fraction of emitted photons passing the holes) is
``g = K^2 (D / L_eff)^2 D^2 / (D + t)^2`` with ``K = 0.26`` for hexagonal holes (Sorenson &
Phelps eq. 14-7); it is reported as a plausibility check of the configured sensitivity.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from pvc_core.specs import CollimatorSpec
from pvc_core.spect.physics_data import LU177_PHOTOPEAK_KEV, linear_attenuation_per_cm

#: FWHM = FWHM_TO_SIGMA * sigma for a Gaussian.
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))

#: Shape constant K of the geometric efficiency (Sorenson & Phelps, table 14-1).
_EFFICIENCY_K = {"hexagonal": 0.26, "round": 0.24, "square": 0.28}


@dataclass(frozen=True)
class Collimator(CollimatorSpec):
    """The physics of a parallel-hole collimator plus the camera's intrinsic resolution.

    The fields (all lengths in mm) are those of the settings' :class:`~pvc_core.specs.CollimatorSpec`,
    in the same order; build one from the camera's spec with :meth:`from_spec`. Constructed
    directly, the last four fields have defaults: hexagonal holes, the Lu-177 photopeak, no
    pedestal (``tail_fraction`` 0, ``tail_rms_tan`` 0.3).
    """

    hole_shape: str = "hexagonal"
    energy_kev: float = LU177_PHOTOPEAK_KEV
    tail_fraction: float = 0.0
    tail_rms_tan: float = 0.3

    @classmethod
    def from_spec(cls, spec: CollimatorSpec) -> "Collimator":
        """The collimator of ``spec`` (``spec`` itself when it already is one)."""
        if isinstance(spec, cls):
            return spec
        return cls(**{f.name: getattr(spec, f.name) for f in fields(CollimatorSpec)})

    @property
    def mu_lead_per_mm(self) -> float:
        """Linear attenuation of lead at ``energy_kev`` in 1/mm (NIST XCOM)."""
        return linear_attenuation_per_cm("lead", self.energy_kev) / 10.0

    @property
    def effective_length_mm(self) -> float:
        """L_eff = L - 2/mu_Pb (mm): penetration at the hole edges."""
        return self.hole_length_mm - 2.0 / self.mu_lead_per_mm

    def geometric_fwhm_mm(self, distance_mm: np.ndarray | float) -> np.ndarray:
        """Geometric resolution R_g (FWHM, mm) at ``distance_mm`` from the collimator face (clipped at 0)."""
        d = np.maximum(np.asarray(distance_mm, dtype=float), 0.0)
        leff = self.effective_length_mm
        return self.hole_diameter_mm * (leff + d + self.image_plane_gap_mm) / leff

    def system_fwhm_mm(self, distance_mm: np.ndarray | float) -> np.ndarray:
        """System resolution FWHM (mm): geometric and intrinsic in quadrature."""
        return np.sqrt(self.geometric_fwhm_mm(distance_mm) ** 2 + self.intrinsic_fwhm_mm ** 2)

    def sigma_mm(self, distance_mm: np.ndarray | float) -> np.ndarray:
        """Gaussian sigma (mm) of the system response at ``distance_mm``."""
        return self.system_fwhm_mm(distance_mm) / FWHM_PER_SIGMA

    def variance_mm2(self, distance_mm: np.ndarray | float) -> np.ndarray:
        """Gaussian variance (mm^2) per detector axis of the system response at ``distance_mm``."""
        return self.sigma_mm(distance_mm) ** 2

    def geometric_efficiency(self) -> float:
        """Fraction of isotropically emitted photons that pass the holes (Sorenson & Phelps 14-7)."""
        d, t, leff = self.hole_diameter_mm, self.septal_thickness_mm, self.effective_length_mm
        k = _EFFICIENCY_K.get(self.hole_shape, 0.26)
        return float(k ** 2 * (d / leff) ** 2 * d ** 2 / (d + t) ** 2)

    def septal_transmission(self) -> float:
        """Minimum-path transmission through one septum, exp(-mu_Pb w), w = t L / (2 D + t)."""
        d, t, length = self.hole_diameter_mm, self.septal_thickness_mm, self.hole_length_mm
        w = t * length / (2.0 * d + t)
        return float(np.exp(-self.mu_lead_per_mm * w))

    def tail_sigma_mm(self, distance_mm: np.ndarray | float) -> np.ndarray:
        """Per-axis sigma (mm) of the long-range pedestal at ``distance_mm`` from the collimator face.

        Penetrating photons leave the source at angle theta and reach the image plane at
        ``(d + L + B) tan(theta)``; a 2-D isotropic Gaussian with the same second moment has
        per-axis ``sigma = (d + L + B) * rms_tan / sqrt(2)``.
        """
        d = np.maximum(np.asarray(distance_mm, dtype=float), 0.0)
        return (d + self.hole_length_mm + self.image_plane_gap_mm) * self.tail_rms_tan / np.sqrt(2.0)

    def septal_penetration_tail(self, n_theta: int = 48, n_rays: int = 3000, n_steps: int = 200,
                                seed: int = 0) -> tuple[float, float]:
        """(fraction, rms tan(theta)) of the transmitted intensity that crossed whole septa (ray trace)."""
        return septal_penetration_tail(self.hole_diameter_mm, self.septal_thickness_mm, self.hole_length_mm,
                                       self.mu_lead_per_mm, n_theta=n_theta, n_rays=n_rays, n_steps=n_steps,
                                       seed=seed)


def _hex_lattice_lead(points: np.ndarray, hole_mm: float, pitch_mm: float) -> np.ndarray:
    """True where ``points`` (..., 2) lie in lead of a hexagonal hole lattice (flat-to-flat ``hole_mm``).

    Hole centres form a triangular lattice of pitch ``pitch_mm`` (= D + t); a point is in a hole
    when its hexagonal norm (largest projection onto the three flat normals) about the nearest
    centre is at most D / 2. The Voronoi cell of the lattice is the hexagon of the same
    orientation, so the nearest centre is the one of smallest hexagonal norm.
    """
    a1 = np.array([pitch_mm, 0.0])
    a2 = np.array([pitch_mm / 2.0, pitch_mm * np.sqrt(3.0) / 2.0])
    inv = np.linalg.inv(np.stack([a1, a2], axis=1))
    normals = np.array([[1.0, 0.0], [0.5, np.sqrt(3.0) / 2.0], [-0.5, np.sqrt(3.0) / 2.0]])
    c = np.floor(points @ inv.T)
    best = np.full(points.shape[:-1], np.inf)
    for di in (0.0, 1.0):
        for dj in (0.0, 1.0):
            r = points - (c[..., 0:1] + di) * a1 - (c[..., 1:2] + dj) * a2
            best = np.minimum(best, np.abs(r @ normals.T).max(axis=-1))
    return best > hole_mm / 2.0


def septal_penetration_tail(hole_mm: float, septum_mm: float, length_mm: float, mu_lead_per_mm: float,
                            n_theta: int = 48, n_rays: int = 3000, n_steps: int = 200,
                            seed: int = 0, theta_max: float = 1.0) -> tuple[float, float]:
    """Ray trace of a hexagonal parallel-hole collimator: long-range penetration fraction and width.

    For polar angles theta on a grid (0 to ``theta_max`` rad), rays enter the front face at
    uniform random positions and azimuths (fixed seed: deterministic); the lead path of each ray
    is accumulated over ``n_steps`` steps along the hole length and the ray is transmitted with
    ``exp(-mu_Pb * path)``. The transmitted intensity per solid angle, ``T(theta)``, is integrated
    with ``2 pi sin(theta) cos(theta) dtheta`` (solid angle times projected entrance area).
    Rays beyond the largest lead-free angle ``atan(2 D / (sqrt(3) L))`` (corner-to-corner width
    of the hexagon over the hole length) have crossed whole septa: their share of the integral
    is the *tail fraction*, and ``sqrt(<tan^2 theta>)`` over them its width. Returns both.
    """
    rng = np.random.default_rng(seed)
    pitch = hole_mm + septum_mm
    lattice = np.stack([[pitch, 0.0], [pitch / 2.0, pitch * np.sqrt(3.0) / 2.0]])
    theta_geo = np.arctan(2.0 * hole_mm / (np.sqrt(3.0) * length_mm))
    # fine grid inside the geometric acceptance, coarser (log-spaced) outside
    inner = np.linspace(0.0, theta_geo, n_theta // 2 + 1)[1:]
    outer = np.geomspace(theta_geo * 1.02, theta_max, n_theta - n_theta // 2)
    thetas = np.concatenate([inner, outer])
    z = (np.arange(n_steps) + 0.5) / n_steps * length_mm
    trans = np.empty(len(thetas))
    for i, th in enumerate(thetas):
        start = rng.uniform(0.0, 1.0, (n_rays, 2)) @ lattice
        phi = rng.uniform(0.0, 2.0 * np.pi, n_rays)
        step = np.tan(th) * np.stack([np.cos(phi), np.sin(phi)], axis=1)
        pts = start[:, None, :] + z[None, :, None] * step[:, None, :]
        path = _hex_lattice_lead(pts, hole_mm, pitch).sum(axis=1) * (length_mm / n_steps) / np.cos(th)
        trans[i] = np.exp(-mu_lead_per_mm * path).mean()
    edges = np.concatenate([[0.0], (thetas[1:] + thetas[:-1]) / 2.0, [thetas[-1]]])
    weight = trans * 2.0 * np.pi * (np.cos(edges[:-1]) ** 2 - np.cos(edges[1:]) ** 2) / 2.0
    tail = thetas > theta_geo
    total = weight.sum()
    fraction = float(weight[tail].sum() / total)
    rms_tan = float(np.sqrt((weight[tail] * np.tan(thetas[tail]) ** 2).sum() / max(weight[tail].sum(), 1e-300)))
    return fraction, rms_tan
