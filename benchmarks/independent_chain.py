"""An acquisition chain for Lu-177 SPECT that shares no physics code with ``pvc_core.spect``.

It exists to test DL-PVC on images that our own simulator did not make
(``benchmarks/bench_robustness.py``). Everything physical is written here or taken from
PyTomography; nothing is imported from ``pvc_core`` (a test checks it).

* **Camera**: a medium-energy collimator from its published hole geometry, chosen by
  ``Protocol.collimator`` from :data:`COLLIMATORS`: Siemens MELP (the default; hexagonal holes
  2.94 mm across flats, 40.64 mm long, 1.14 mm septa) or GE MEGP (hexagonal holes 3.0 mm, 58 mm
  long, 1.05 mm septa). Geometric resolution ``R_g(d) = D (L_eff + d + B) / L_eff`` with
  ``L_eff = L - 2 / mu_Pb`` (mu of lead at 208.4 keV 10.33 1/cm: NIST XCOM 0.9985 and 0.4031
  cm^2/g at 200 and 300 keV, log-log, x 11.35 g/cm^3) and B the collimator's back face to the
  image plane (0 in the presets: the intrinsic term carries the crystal), intrinsic
  ``Protocol.intrinsic_fwhm_140kev_mm`` (default 3.9 mm) FWHM at 140 keV scaled by
  ``(140 / E)^(1/2)``, added in quadrature; this is PyTomography's ``SPECTPSFTransform`` with a
  Gaussian of that sigma per plane. Sensitivity ``K^2 (D / L_eff)^2 (D / (D + t))^2`` (K = 0.26,
  hexagonal holes) x the 208 keV yield 0.1038 x an assumed photopeak detection efficiency of 0.5:
  about 10 cps/MBq for MELP, about half that for MEGP (the geometric efficiencies' ratio).
* **Primaries**: PyTomography's ``SPECTSystemMatrix`` (rotate and sum) with
  ``SPECTAttenuationTransform`` and the PSF above, on the phantom's fine grid, rebinned (exact
  area overlap) to the detector pixel. **Septal penetration**: a fraction of the primaries
  (default 1 %) spread by a broad Gaussian halo (sigma 40 mm), not modelled in reconstruction.
* **Scatter** (a model of another form than ours): the attenuated primaries of each view, split
  into bands of optical depth tau towards the detector, weighted by ``1 - exp(-tau)`` and blurred
  in the detector plane by a Gaussian that widens with depth; scaled so that scatter holds
  ``scatter_fraction`` of the photopeak window (S / (P + S)); the lower window (10 %) holds
  ``lower_to_peak`` x that amount with a wider kernel, the upper window (10 %) ``upper_to_peak``
  with a narrower one. Poisson noise in each window.
* **Reconstruction**: PyTomography's OSEM with attenuation and a triple-energy-window additive
  term (written here), with (RR) or without (noRR) the PSF; counts per voxel are divided by
  sensitivity x time per view x voxel volume, then by a calibration factor measured with a
  uniform cylinder through this same chain (reconstructed / true activity in the cylinder
  enlarged by 40 mm).
"""

from __future__ import annotations

import contextlib
import io
import itertools
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from scipy import ndimage

with contextlib.redirect_stdout(io.StringIO()):  # PyTomography prints a banner without a GPU
    import pytomography
from pytomography.algorithms import OSEM
from pytomography.likelihoods import PoissonLogLikelihood
from pytomography.metadata.SPECT import SPECTObjectMeta, SPECTProjMeta, SPECTPSFMeta
from pytomography.projectors.SPECT import SPECTSystemMatrix
from pytomography.transforms import Transform
from pytomography.transforms.SPECT import SPECTAttenuationTransform, SPECTPSFTransform
from pytomography.utils import pad_object, rev_cumsum, rotate_detector_z

pytomography.device = torch.device("cpu")
pytomography.dtype = torch.float32

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
PHOTOPEAK_KEV = 208.4
LU177_YIELD_208 = 0.1038
#: Lead at 208.4 keV, 1/cm (NIST XCOM total with coherent, log-log between 200 and 300 keV).
MU_LEAD_PER_CM = 10.33
#: Water at 208 keV, 1/cm (NIST XCOM).
MU_WATER_PER_CM = 0.1350


@dataclass(frozen=True)
class Collimator:
    """A parallel-hole collimator from its hole geometry (mm) with the camera's intrinsic resolution."""

    name: str = "Siemens MELP (SY-ME), published hole geometry"
    hole_diameter_mm: float = 2.94
    hole_length_mm: float = 40.64
    septa_mm: float = 1.14
    intrinsic_fwhm_140kev_mm: float = 3.9
    shape_factor: float = 0.26          # K for hexagonal holes
    detection_efficiency: float = 0.5   # photopeak efficiency of the crystal at 208 keV (assumed)
    image_plane_mm: float = 0.0         # B: collimator back face to the image plane (in R_g)

    @property
    def effective_length_mm(self) -> float:
        """``L - 2 / mu_Pb`` (mm)."""
        return self.hole_length_mm - 2.0 / MU_LEAD_PER_CM * 10.0

    @property
    def intrinsic_fwhm_mm(self) -> float:
        return self.intrinsic_fwhm_140kev_mm * np.sqrt(140.0 / PHOTOPEAK_KEV)

    def geometric_fwhm_mm(self, distance_mm):
        """``R_g = D (L_eff + d + B) / L_eff`` (mm) at ``distance_mm`` from the collimator face."""
        d = np.asarray(distance_mm, float)
        leff = self.effective_length_mm
        return self.hole_diameter_mm * (leff + d + self.image_plane_mm) / leff

    def fwhm_mm(self, distance_mm):
        """System FWHM (mm) at ``distance_mm`` from the collimator face: geometric (+) intrinsic."""
        return np.sqrt(self.geometric_fwhm_mm(distance_mm) ** 2 + self.intrinsic_fwhm_mm**2)

    @property
    def geometric_efficiency(self) -> float:
        """``K^2 (D / L_eff)^2 (D / (D + t))^2``: the fraction of emitted photons passing the holes."""
        d, t = self.hole_diameter_mm, self.septa_mm
        return float(self.shape_factor**2 * (d / self.effective_length_mm) ** 2 * (d / (d + t)) ** 2)

    @property
    def sensitivity_cps_per_mbq(self) -> float:
        """Photopeak primaries per second per MBq in air."""
        return float(self.geometric_efficiency * LU177_YIELD_208 * self.detection_efficiency * 1e6)

    def psf_meta(self) -> SPECTPSFMeta:
        """PyTomography's PSF metadata: sigma (cm) of distance (cm), the formula of :meth:`fwhm_mm`."""
        a = self.hole_diameter_mm / self.effective_length_mm / FWHM_PER_SIGMA   # per cm of distance: dimensionless
        b = self.hole_diameter_mm / 10.0 / FWHM_PER_SIGMA * (1.0 + self.image_plane_mm / self.effective_length_mm)
        c = self.intrinsic_fwhm_mm / 10.0 / FWHM_PER_SIGMA
        return SPECTPSFMeta((a, b, c), sigma_fit=lambda r, a, b, c: np.sqrt((a * r + b) ** 2 + c**2))


#: Collimator presets (``Protocol.collimator``) from published hole geometry (mm, hexagonal holes:
#: diameter across flats, septa, length):
#:
#: * ``siemens_melp``: Siemens Symbia/Intevo MELP, 2.94 / 1.14 / 40.64 (SIMIND's collim.col entry
#:   SY-ME, 0.294 / 0.114 / 4.064 cm; the shipped model's training collimator).
#: * ``ge_megp``: GE Discovery NM/CT 670 MEGP, 3.0 / 1.05 / 58 (OpenGATE's GE NM670 head,
#:   ``opengate/contrib/spect/ge_discovery_nm670.py``: "megp: holes length 58 mm, diam 3 mm, septal
#:   thickness 1.05 mm"; SIMIND's collim.col, as shipped in PyTomography's data/collim.col,
#:   GV-MEGP and GI-MEGP (Millennium VG, Infinia): 0.300 / 0.105 / 5.800 cm, hexagonal).
#:
#: Same K, crystal efficiency and intrinsic resolution (the protocol's) for both: the sensitivity
#: scales with the geometric efficiency, the resolution with D / L_eff.
COLLIMATORS: dict[str, Collimator] = {
    "siemens_melp": Collimator(),
    "ge_megp": Collimator(name="GE MEGP (Discovery NM/CT 670), published hole geometry",
                          hole_diameter_mm=3.0, hole_length_mm=58.0, septa_mm=1.05),
}


@dataclass(frozen=True)
class Windows:
    """Photopeak 20 % and the adjacent lower and upper 10 % windows (keV widths)."""

    peak_kev: float = 0.20 * PHOTOPEAK_KEV
    lower_kev: float = 0.10 * PHOTOPEAK_KEV
    upper_kev: float = 0.10 * PHOTOPEAK_KEV


@dataclass(frozen=True)
class ScatterModel:
    """Scatter and penetration of this chain (see the module docstring)."""

    scatter_fraction: float = 0.35          # S / (P + S) in the photopeak window
    lower_to_peak: float = 0.90             # lower-window scatter counts / photopeak scatter counts
    upper_to_peak: float = 0.10
    sigma_base_mm: float = 15.0             # photopeak scatter kernel: sigma = base + per_tau * tau
    sigma_per_tau_mm: float = 25.0
    lower_sigma_factor: float = 1.6
    upper_sigma_factor: float = 0.8
    tau_edges: tuple[float, ...] = (0.0, 0.4, 0.9, 1.6, 1e9)
    penetration_fraction: float = 0.01      # halo counts / primary counts
    penetration_sigma_mm: float = 40.0


@dataclass(frozen=True)
class Protocol:
    """Acquisition and reconstruction settings."""

    n_views: int = 60
    time_per_view_s: float = 60.0
    orbit_clearance_mm: float = 30.0        # circular orbit: body radius + clearance
    voxel_mm: float = 4.8                   # reconstruction voxel = detector pixel
    matrix: int = 64
    rr: tuple[int, int] = (6, 6)            # iterations, subsets
    norr: tuple[int, int] = (10, 2)
    post_filter_fwhm_mm: float = 0.0
    collimator: str = "siemens_melp"        # a key of COLLIMATORS
    intrinsic_fwhm_140kev_mm: float = 3.9   # camera's intrinsic FWHM at 140 keV (scaled to 208 keV)

    def camera(self) -> Collimator:
        """The collimator preset with this protocol's intrinsic resolution."""
        if self.collimator not in COLLIMATORS:
            raise ValueError(f"unknown collimator {self.collimator!r}; known: {sorted(COLLIMATORS)}")
        return replace(COLLIMATORS[self.collimator], intrinsic_fwhm_140kev_mm=self.intrinsic_fwhm_140kev_mm)


@dataclass
class Projections:
    """Counts (views, r, z) on the detector pixel of a protocol, per window, and their parts."""

    peak: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    parts: dict = field(default_factory=dict)   # primary, penetration, scatter (noise-free)

    def scaled(self, factor: float) -> Projections:
        return Projections(self.peak * factor, self.lower * factor, self.upper * factor,
                           {k: v * factor for k, v in self.parts.items()})


# ---------------------------------------------------------------- grids

def overlap_matrix(n_in: int, pixel_in_mm: float, n_out: int, pixel_out_mm: float) -> np.ndarray:
    """W[o, i]: the fraction of centred input pixel i that lies in centred output pixel o."""
    e_in = (np.arange(n_in + 1) - n_in / 2.0) * pixel_in_mm
    e_out = (np.arange(n_out + 1) - n_out / 2.0) * pixel_out_mm
    lo = np.maximum(e_out[:-1, None], e_in[None, :-1])
    hi = np.minimum(e_out[1:, None], e_in[None, 1:])
    return np.clip(hi - lo, 0.0, None) / pixel_in_mm


def rebin_counts(proj: np.ndarray, pixel_in_mm: float, n_out: int, pixel_out_mm: float) -> np.ndarray:
    """Projections (views, r, z) onto another centred pixel grid, counts conserved inside it."""
    w = overlap_matrix(proj.shape[1], pixel_in_mm, n_out, pixel_out_mm)
    wz = overlap_matrix(proj.shape[2], pixel_in_mm, n_out, pixel_out_mm)
    return np.einsum("or,vrz,pz->vop", w, proj, wz, optimize=True)


def resample_concentration(image: np.ndarray, voxel_in_mm: float, n_out: int, voxel_out_mm: float) -> np.ndarray:
    """A concentration image (per mL) onto another centred cubic grid, activity conserved inside it."""
    out = image.astype(np.float64)
    for axis in range(3):
        w = overlap_matrix(out.shape[axis], voxel_in_mm, n_out, voxel_out_mm) * (voxel_in_mm / voxel_out_mm)
        out = np.moveaxis(np.tensordot(w, np.moveaxis(out, axis, 0), axes=(1, 0)), 0, axis)
    return out.astype(np.float32)


def _blur2d(proj: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Gaussian blur of (views, r, z) in the detector plane (zero outside), sum conserved inside."""
    if sigma_px <= 0:
        return proj
    radius = int(np.ceil(4 * sigma_px))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma_px) ** 2)
    k = (k / k.sum()).view(1, 1, -1)
    v, r, z = proj.shape
    out = torch.nn.functional.conv1d(proj.reshape(v * r, 1, z), k, padding=radius).reshape(v, r, z)
    out = torch.nn.functional.conv1d(out.permute(0, 2, 1).reshape(v * z, 1, r), k, padding=radius)
    return out.reshape(v, z, r).permute(0, 2, 1).contiguous()


# ---------------------------------------------------------------- projection

def _angles(n_views: int) -> np.ndarray:
    return np.linspace(0.0, 360.0, n_views, endpoint=False)


def orbit_radius_mm(mu_per_cm: np.ndarray, voxel_mm: float, clearance_mm: float) -> float:
    """Circular orbit: the farthest attenuating voxel from the rotation axis (axis 2) + clearance."""
    n = mu_per_cm.shape[0]
    c = (np.arange(n) - (n - 1) / 2.0) * voxel_mm
    r = np.hypot(c[:, None], c[None, :])
    inside = (mu_per_cm > 0.01).any(axis=2)
    return float(r[inside].max() + clearance_mm) if inside.any() else 150.0


def system_matrix(mu_per_cm: np.ndarray, voxel_mm: float, n_views: int, radius_mm: float,
                  collimator: Collimator | None, extra: list | None = None) -> SPECTSystemMatrix:
    """PyTomography's rotate-and-sum projector with attenuation and (collimator given) the PSF."""
    n = mu_per_cm.shape[0]
    dr = [voxel_mm / 10.0] * 3
    object_meta = SPECTObjectMeta(dr, (n, n, n))
    proj_meta = SPECTProjMeta((n, n), dr[:2], _angles(n_views), radii=np.full(n_views, radius_mm / 10.0))
    transforms = [SPECTAttenuationTransform(torch.tensor(mu_per_cm, dtype=torch.float32))]
    transforms += list(extra or [])
    if collimator is not None:
        transforms.append(SPECTPSFTransform(collimator.psf_meta()))
    return SPECTSystemMatrix(transforms, [], object_meta, proj_meta)


class _DepthBand(Transform):
    """obj2obj transform: keep the (attenuated) voxels whose optical depth to the detector lies in a
    band, weighted by the probability ``1 - exp(-tau)`` that they scatter on the way."""

    def __init__(self, mu_per_cm: np.ndarray, voxel_mm: float) -> None:
        super().__init__()
        self.mu = torch.tensor(mu_per_cm, dtype=torch.float32)
        self.voxel_cm = voxel_mm / 10.0
        self.band = (0.0, 1e9)

    @torch.no_grad()
    def forward(self, object_i, ang_idx):
        tau = rev_cumsum(rotate_detector_z(pad_object(self.mu), self.proj_meta.angles[ang_idx]) * self.voxel_cm)
        lo, hi = self.band
        keep = (tau >= lo) & (tau < hi)
        return object_i * (1.0 - torch.exp(-tau)) * keep

    backward = forward


def simulate(activity_mbq_ml: np.ndarray, mu_per_cm: np.ndarray, voxel_mm: float, *, coarse_factor: int,
             protocol: Protocol, collimator: Collimator | None = None, scatter: ScatterModel = ScatterModel(),
             radius_mm: float | None = None) -> Projections:
    """Expected counts in the three windows for a phantom on a fine grid (``voxel_mm``).

    Primaries are projected on the fine grid; scatter on the grid ``coarse_factor`` times coarser
    (it is smooth). Returns projections on the detector pixel of ``protocol`` (``protocol.matrix``
    pixels of ``protocol.voxel_mm``), for ``protocol.time_per_view_s``. The collimator is
    ``protocol.camera()`` unless given.
    """
    collimator = protocol.camera() if collimator is None else collimator
    n = activity_mbq_ml.shape[0]
    if radius_mm is None:
        radius_mm = orbit_radius_mm(mu_per_cm, voxel_mm, protocol.orbit_clearance_mm)
    counts_per_mbq = collimator.sensitivity_cps_per_mbq * protocol.time_per_view_s
    voxel_ml = voxel_mm**3 / 1000.0
    obj = torch.tensor(activity_mbq_ml * voxel_ml * counts_per_mbq, dtype=torch.float32)
    primary = system_matrix(mu_per_cm, voxel_mm, protocol.n_views, radius_mm, collimator).forward(obj).numpy()
    pen = _blur2d(torch.tensor(primary), scatter.penetration_sigma_mm / voxel_mm).numpy() * scatter.penetration_fraction
    # scatter on the coarse grid
    cvox = voxel_mm * coarse_factor
    nc = n // coarse_factor
    act_c = resample_concentration(activity_mbq_ml, voxel_mm, nc, cvox)
    mu_c = resample_concentration(mu_per_cm, voxel_mm, nc, cvox)
    band = _DepthBand(mu_c, cvox)
    h = system_matrix(mu_c, cvox, protocol.n_views, radius_mm, None, extra=[band])
    obj_c = torch.tensor(act_c * cvox**3 / 1000.0 * counts_per_mbq, dtype=torch.float32)
    shapes = {"peak": 0.0, "lower": 0.0, "upper": 0.0}
    factors = {"peak": 1.0, "lower": scatter.lower_sigma_factor, "upper": scatter.upper_sigma_factor}
    edges = scatter.tau_edges
    for lo, hi in itertools.pairwise(edges):
        band.band = (lo, hi)
        p = h.forward(obj_c)
        tau_mid = lo + 0.5 * (min(hi, 3.0) - lo)
        sigma_px = (scatter.sigma_base_mm + scatter.sigma_per_tau_mm * tau_mid) / cvox
        for w, acc in shapes.items():
            shapes[w] = acc + _blur2d(p, sigma_px * factors[w])
    # onto the fine detector pixel (area-conserving), then everything onto the protocol's pixel
    fine = {w: rebin_counts(s.numpy(), cvox, n, voxel_mm) for w, s in shapes.items()}
    photopeak_primary = primary + pen
    s_total = scatter.scatter_fraction / (1.0 - scatter.scatter_fraction) * photopeak_primary.sum()
    scale = {"peak": 1.0, "lower": scatter.lower_to_peak, "upper": scatter.upper_to_peak}
    sc = {w: fine[w] * (s_total * scale[w] / max(fine[w].sum(), 1e-30)) for w in fine}

    def out(p):
        return rebin_counts(p, voxel_mm, protocol.matrix, protocol.voxel_mm).astype(np.float32)

    parts = {"primary": out(primary), "penetration": out(pen), "scatter": out(sc["peak"])}
    return Projections(parts["primary"] + parts["penetration"] + parts["scatter"], out(sc["lower"]), out(sc["upper"]),
                       parts)


def add_noise(proj: Projections, rng: np.random.Generator) -> Projections:
    """Poisson counts in each window."""
    return Projections(*(rng.poisson(np.clip(p, 0, None)).astype(np.float32) for p in (proj.peak, proj.lower, proj.upper)))


def tew_scatter(proj: Projections, windows: Windows = Windows(), smooth_px: float = 1.0) -> np.ndarray:
    """Triple-energy-window scatter estimate of the photopeak, ``(C_l / w_l + C_u / w_u) w_p / 2``,
    smoothed in the detector plane (``smooth_px`` sigma) against noise."""
    est = (proj.lower / windows.lower_kev + proj.upper / windows.upper_kev) * windows.peak_kev / 2.0
    return _blur2d(torch.tensor(est, dtype=torch.float32), smooth_px).numpy()


def reconstruct(proj: Projections, mu_per_cm: np.ndarray, protocol: Protocol, *, rr: bool, radius_mm: float,
                collimator: Collimator | None = None, calibration: float = 1.0, tew_smooth_px: float = 1.0) -> np.ndarray:
    """OSEM (attenuation, TEW smoothed by ``tew_smooth_px`` sigma; PSF when ``rr``) -> MBq/mL on the
    protocol's grid, divided by ``calibration``. The collimator is ``protocol.camera()`` unless given."""
    collimator = protocol.camera() if collimator is None else collimator
    iterations, subsets = protocol.rr if rr else protocol.norr
    h = system_matrix(mu_per_cm, protocol.voxel_mm, protocol.n_views, radius_mm, collimator if rr else None)
    additive = torch.tensor(tew_scatter(proj, smooth_px=tew_smooth_px), dtype=torch.float32)
    likelihood = PoissonLogLikelihood(h, torch.tensor(proj.peak, dtype=torch.float32), additive_term=additive)
    counts = OSEM(likelihood)(iterations, subsets).numpy()
    voxel_ml = protocol.voxel_mm**3 / 1000.0
    image = counts / (collimator.sensitivity_cps_per_mbq * protocol.time_per_view_s * voxel_ml)
    if protocol.post_filter_fwhm_mm > 0:
        image = post_filter(image, protocol.post_filter_fwhm_mm, protocol.voxel_mm)
    return (image / calibration).astype(np.float32)


def post_filter(image: np.ndarray, fwhm_mm: float, voxel_mm: float) -> np.ndarray:
    """3-D Gaussian post-filter (total conserved away from the edges)."""
    return ndimage.gaussian_filter(image, fwhm_mm / FWHM_PER_SIGMA / voxel_mm, mode="constant").astype(np.float32)


# ---------------------------------------------------------------- calibration

def cylinder(n: int, voxel_mm: float, diameter_mm: float = 216.0, length_mm: float = 186.0,
             margin_mm: float = 0.0, supersample: int = 3) -> np.ndarray:
    """Fraction of each voxel inside a centred cylinder (axis along array axis 2)."""
    s = supersample
    c = ((np.arange(n * s) + 0.5) / s - n / 2.0) * voxel_mm
    disc = (np.hypot(c[:, None], c[None, :]) <= diameter_mm / 2.0 + margin_mm).reshape(n, s, n, s).mean(axis=(1, 3))
    axial = (np.abs(c) <= length_mm / 2.0 + margin_mm).reshape(n, s).mean(axis=1)
    return (disc[:, :, None] * axial[None, None, :]).astype(np.float32)


def calibration_factors(protocol: Protocol, *, fine_factor: int = 2, activity_mbq: float = 400.0,
                        margin_mm: float = 40.0, seed: int = 7, collimator: Collimator | None = None,
                        kinds: tuple[str, ...] = ("RR", "noRR")) -> dict:
    """Reconstructed / true activity of a uniform water cylinder (216 x 186 mm, ``activity_mbq``)
    in the cylinder enlarged by ``margin_mm``, per reconstruction kind, through this chain, with
    the protocol's collimator (``protocol.camera()`` unless given), orbit and reconstruction."""
    collimator = protocol.camera() if collimator is None else collimator
    fine_vox = protocol.voxel_mm / fine_factor
    nf = round(protocol.matrix * protocol.voxel_mm / fine_vox)
    frac = cylinder(nf, fine_vox)
    act = frac * (activity_mbq / (frac.sum() * fine_vox**3 / 1000.0))
    mu = frac * MU_WATER_PER_CM
    radius = orbit_radius_mm(mu, fine_vox, protocol.orbit_clearance_mm)
    proj = add_noise(simulate(act, mu, fine_vox, coarse_factor=fine_factor, protocol=protocol,
                              collimator=collimator, radius_mm=radius), np.random.default_rng(seed))
    mu_r = resample_concentration(mu, fine_vox, protocol.matrix, protocol.voxel_mm)
    voi = cylinder(protocol.matrix, protocol.voxel_mm, margin_mm=margin_mm) > 0.5
    out = {}
    for kind in kinds:
        img = reconstruct(proj, mu_r, protocol, rr=kind == "RR", radius_mm=radius, collimator=collimator)
        out[kind] = float(img[voi].sum() * protocol.voxel_mm**3 / 1000.0 / activity_mbq)
    return out
