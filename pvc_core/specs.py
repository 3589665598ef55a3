"""Typed settings: the validated configuration parsed once into frozen, documented specs.

The configuration dict stops at :meth:`Settings.from_config`; every core function takes the specs
it uses (a grid, a camera, one reconstruction, ...) and images, never the whole configuration.
A rule passes only the specs of its stage, so what a stage depends on is visible in its
signature, and :mod:`pvc_core.pipeline.fingerprints` hashes exactly those specs.

=======================  ===================================================================
spec                     configuration section (documented key by key in config/schema.yaml)
=======================  ===================================================================
:class:`GridSpec`        ``grid``: reconstruction grid and the finer phantom grid (two :class:`Grid`)
:class:`PhantomSettings` ``phantom``: what the phantom generator draws from
:class:`CameraSpec`      ``camera``: collimator + intrinsic resolution (:class:`CollimatorSpec`),
                         energy windows (:class:`EnergyWindowsSpec`), orbit, sensitivity, views
                         and time per view, scatter model, TEW smoothing
:class:`ReconSpec`       ``reconstruction.<noRR|RR>``: one OSEM reconstruction
:class:`CalibrationSpec` ``calibration``: the calibration cylinder
:class:`SplitSpec`       ``split``
:class:`ResolutionSpec`  ``resolution``: matched-filter calibration
:class:`PvcSpec`         ``pvc``: iterative Yang
:class:`EvaluationSpec`  ``evaluation``
:class:`StorageSpec`     ``storage``
:class:`ReportSpec`      ``report``
:class:`StudiesSpec`     ``studies`` (:mod:`pvc_core.studies`)
:class:`RandomiseSpec`   ``randomise``: the acquisition axes drawn per case (:class:`AxisSpec` each)
=======================  ===================================================================

Specs are plain data: numbers, strings and other specs. The physics that uses them lives with the
physics (:class:`pvc_core.spect.collimator.Collimator` and
:class:`pvc_core.spect.energy_windows.EnergyWindows` extend :class:`CollimatorSpec` and
:class:`EnergyWindowsSpec` with resolution vs distance, efficiency, window bounds, ...), so this
module imports nothing above the configuration.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Mapping

import numpy as np

from pvc_core.config import load_schema
from pvc_core.domain import RECONSTRUCTIONS
from pvc_core.errors import InputError

#: Bed positions of the phantoms, in the order their probabilities are drawn.
BED_POSITIONS = ("head", "thorax", "abdomen")


@dataclass(frozen=True)
class Grid:
    """A cubic grid of ``matrix`` voxels per axis, ``voxel_mm`` each, centred on the origin.

    Voxel ``i`` of an axis has its centre at ``(i - (matrix - 1) / 2) * voxel_mm`` (as
    :func:`pvc_core.io.affine_from_voxel_size`). Arrays are indexed (x, y, z) in RAS order: axis 0
    increases towards the patient's right, axis 1 towards anterior, axis 2 towards superior.
    """

    matrix: int
    voxel_mm: float

    @property
    def fov_mm(self) -> float:
        """Edge of the field of view in mm."""
        return self.matrix * self.voxel_mm

    @property
    def voxel_ml(self) -> float:
        """Volume of one voxel in mL."""
        return self.voxel_mm**3 / 1000.0

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.matrix,) * 3

    def centres_mm(self) -> np.ndarray:
        """Voxel-centre coordinates (mm) along one axis, float64."""
        return (np.arange(self.matrix) - (self.matrix - 1) / 2.0) * self.voxel_mm


@dataclass(frozen=True)
class GridSpec:
    """The reconstruction grid (also the detector: ``recon_matrix`` pixels of ``recon_voxel_mm``)
    and the phantom/simulation grid, ``sim_factor`` times finer over the same field of view.

    Both grids are cubic, centred on the same point and axis-aligned; this is the one place
    that derives them.
    """

    recon_matrix: int
    recon_voxel_mm: float
    sim_factor: int

    @property
    def recon(self) -> Grid:
        """Reconstruction grid: ``recon_matrix``^3 voxels of ``recon_voxel_mm`` mm."""
        return Grid(self.recon_matrix, self.recon_voxel_mm)

    @property
    def sim(self) -> Grid:
        """Phantom grid: ``(recon_matrix * sim_factor)``^3 voxels of ``recon_voxel_mm / sim_factor`` mm."""
        return Grid(self.recon_matrix * self.sim_factor, self.recon_voxel_mm / self.sim_factor)

    @classmethod
    def from_config(cls, config: Mapping) -> "GridSpec":
        g = config.get("grid", {})
        return cls(int(g.get("recon_matrix", 128)), float(g.get("recon_voxel_mm", 4.8)), int(g.get("sim_factor", 2)))


@dataclass(frozen=True)
class Distribution:
    """A scalar drawn uniformly or log-uniformly in [low, high]."""

    kind: str
    low: float
    high: float

    def draw(self, rng: np.random.Generator) -> float:
        u = float(rng.random())
        if self.kind == "loguniform":
            return float(np.exp(np.log(self.low) + u * (np.log(self.high) - np.log(self.low))))
        return self.low + u * (self.high - self.low)


@dataclass(frozen=True)
class VoxelSettings:
    """Settings of a labelled voxel phantom (``phantom.voxel``)."""

    path: str | None
    labels: dict[int, str]
    orientation: str
    bed_centres_mm: dict[str, float]
    scale_range: tuple[float, float]
    fit: str


@dataclass(frozen=True)
class UptakeSettings:
    """How activity is distributed (``phantom.uptake``): the paper's random shapes or, with
    ``patient_probability``, patient-like uptake (:mod:`pvc_core.phantom.uptake`).

    Pairs are ``(min, max)`` ranges drawn per case (see the schema for which are log-uniform);
    ``organ_ratio`` maps a tissue to its concentration range relative to the soft-tissue
    background; ``lesion_hosts`` maps a host tissue to its relative probability.
    """

    patient_probability: float
    organ_ratio: dict[str, tuple[float, float]]
    kidney_cortex_medulla_ratio: tuple[float, float]
    kidney_cortex_mm: tuple[float, float]
    organ_heterogeneity: tuple[float, float]
    lesion_count: tuple[int, int]
    lesion_volume_ml: tuple[float, float]
    lesion_contrast: tuple[float, float]
    lesion_roughness: tuple[float, float]
    lesion_hosts: dict[str, float]
    necrotic_probability: float
    necrotic_core_fraction: tuple[float, float]
    necrotic_activity_fraction: tuple[float, float]

    @property
    def patient_like(self) -> bool:
        """Whether any case can have patient-like uptake (else every case is today's random shapes)."""
        return self.patient_probability > 0

    @classmethod
    def from_section(cls, section: Mapping) -> "UptakeSettings":
        """Parse ``phantom.uptake`` (keys and map entries left out take the schema's defaults).

        Raises :class:`InputError` naming the key for a range whose minimum exceeds its maximum
        or lesion hosts whose probabilities are all zero while lesions are asked for.
        """
        schema = _phantom_schema()["uptake"]["properties"]
        u = {k: copy.deepcopy(v["default"]) for k, v in schema.items()}
        u.update({k: v for k, v in section.items() if k not in ("organ_ratio", "lesion_hosts")})
        for key in ("organ_ratio", "lesion_hosts"):
            u[key] = {**{k: v["default"] for k, v in schema[key]["properties"].items()}, **(section.get(key) or {})}

        def pair(key: str, value, kind=float) -> tuple:
            lo, hi = value
            if lo > hi:
                raise InputError(f"minimum {lo} exceeds maximum {hi}", f"phantom.uptake.{key}")
            return kind(lo), kind(hi)

        hosts = {k: float(v) for k, v in u["lesion_hosts"].items()}
        if u["lesion_count"][1] > 0 and sum(hosts.values()) <= 0:
            raise InputError("lesion host probabilities must not all be zero", "phantom.uptake.lesion_hosts")
        names = ("kidney_cortex_medulla_ratio", "kidney_cortex_mm", "organ_heterogeneity", "lesion_volume_ml",
                 "lesion_contrast", "lesion_roughness", "necrotic_core_fraction", "necrotic_activity_fraction")
        return cls(
            patient_probability=float(u["patient_probability"]),
            organ_ratio={k: pair(f"organ_ratio.{k}", v) for k, v in u["organ_ratio"].items()},
            lesion_count=pair("lesion_count", u["lesion_count"], int), lesion_hosts=hosts,
            necrotic_probability=float(u["necrotic_probability"]),
            **{k: pair(k, u[k]) for k in names})


@dataclass(frozen=True)
class PhantomSettings:
    """Everything :func:`pvc_core.phantom.generate_case` reads from ``config['phantom']``."""

    source: str
    bed_probabilities: dict[str, float]
    bed_jitter_mm: float
    bmi_range: tuple[float, float]
    height_scale_range: tuple[float, float]
    organ_scale_sd: float
    body_margin_mm: float
    shape_edge_mm: tuple[float, float]
    shape_edge_distribution: str
    active_volume_ml: Distribution
    total_activity_mbq: Distribution
    volume_tolerance: float
    max_shapes: int
    pattern_correlation_mm: tuple[float, float]
    pattern_min_range: tuple[float, float]
    shape_level_range: tuple[float, float]
    sharp_steps_probability: float
    sharp_steps_levels: tuple[int, int]
    voxel: VoxelSettings = field(default=None)  # type: ignore[assignment]
    #: None (settings built by hand) means random shapes for every case, as with the default.
    uptake: UptakeSettings | None = None

    @classmethod
    def from_config(cls, config: Mapping) -> "PhantomSettings":
        """Read ``config['phantom']``; keys left out take the schema's defaults.

        Raises :class:`InputError` naming the key for a range whose minimum exceeds its maximum,
        bed probabilities that are all zero, or an incomplete ``voxel`` section.
        """
        p = _with_schema_defaults(config.get("phantom") or {})

        def pair(key: str, value=None) -> tuple[float, float]:
            lo, hi = (p[key] if value is None else value)
            if lo > hi:
                raise InputError(f"minimum {lo} exceeds maximum {hi}", f"phantom.{key}")
            return float(lo), float(hi)

        def dist(key: str) -> Distribution:
            d = p[key]
            lo, hi = pair(key, (d["min"], d["max"]))
            return Distribution(d.get("distribution", "loguniform"), lo, hi)

        beds = {b: float(p["bed_positions"].get(b, 0.0)) for b in BED_POSITIONS}
        if sum(beds.values()) <= 0:
            raise InputError("probabilities must not all be zero", "phantom.bed_positions")
        v = p["voxel"]
        voxel = VoxelSettings(
            path=v.get("path"), labels={int(k): str(m) for k, m in (v.get("labels") or {}).items()},
            orientation=str(v.get("orientation", "LPS")).upper(),
            bed_centres_mm={k: float(x) for k, x in (v.get("bed_centres_mm") or {}).items()},
            scale_range=pair("voxel.scale_range", v.get("scale_range", [1.0, 1.0])), fit=v.get("fit", "scale"))
        settings = cls(
            source=p["source"], bed_probabilities=beds, bed_jitter_mm=float(p["bed_jitter_mm"]),
            bmi_range=pair("bmi_range"), height_scale_range=pair("height_scale_range"),
            organ_scale_sd=float(p["organ_scale_sd"]), body_margin_mm=float(p["body_margin_mm"]),
            shape_edge_mm=pair("shape_edge_mm"), shape_edge_distribution=p["shape_edge_distribution"],
            active_volume_ml=dist("active_volume_ml"), total_activity_mbq=dist("total_activity_mbq"),
            volume_tolerance=float(p["volume_tolerance"]), max_shapes=int(p["max_shapes"]),
            pattern_correlation_mm=pair("pattern_correlation_mm"), pattern_min_range=pair("pattern_min_range"),
            shape_level_range=pair("shape_level_range"),
            sharp_steps_probability=float(p["sharp_steps"].get("probability", 0.0)),
            sharp_steps_levels=tuple(int(x) for x in pair("sharp_steps.levels",  # type: ignore[arg-type]
                                                          p["sharp_steps"].get("levels", [2, 4]))),
            voxel=voxel, uptake=UptakeSettings.from_section(p["uptake"]))
        if settings.source == "voxel":
            _check_voxel(settings, beds)
            if settings.uptake.patient_like:
                raise InputError("patient-like uptake reads the procedural body's organs; with source 'voxel' "
                                 "set it to 0", "phantom.uptake.patient_probability")
        return settings


def _check_voxel(s: PhantomSettings, beds: dict[str, float]) -> None:
    if not s.voxel.path:
        raise InputError("source is 'voxel' but no label map is given", "phantom.voxel.path")
    if not s.voxel.labels:
        raise InputError("source is 'voxel' but the label -> material table is empty", "phantom.voxel.labels")
    for bed, prob in beds.items():
        if prob > 0 and bed not in s.voxel.bed_centres_mm:
            raise InputError(f"bed position '{bed}' has probability {prob} but no centre",
                             "phantom.voxel.bed_centres_mm")


@functools.lru_cache(maxsize=1)
def _phantom_schema() -> dict:
    return load_schema()["properties"]["phantom"]["properties"]


def _with_schema_defaults(section: Mapping) -> dict:
    """The phantom section with every missing key (one level of nesting) set to the schema's default."""
    props = copy.deepcopy(_phantom_schema())
    out = dict(section)
    for key, sub in props.items():
        if key not in out and "default" in sub:
            out[key] = sub["default"]
        if isinstance(out.get(key), dict) and "properties" in sub:
            inner = dict(out[key])
            for k2, s2 in sub["properties"].items():
                if k2 not in inner and "default" in s2:
                    inner[k2] = s2["default"]
            out[key] = inner
    return out


@dataclass(frozen=True)
class CollimatorSpec:
    """A parallel-hole collimator plus the camera's intrinsic resolution (all lengths in mm).

    The physics (resolution vs distance, efficiency, septal penetration) is
    :class:`pvc_core.spect.collimator.Collimator`, built from this spec with
    ``Collimator.from_spec``.

    Attributes
    ----------
    hole_diameter_mm, hole_length_mm, septal_thickness_mm:
        Hole geometry (flat-to-flat diameter for hexagonal holes).
    intrinsic_fwhm_mm:
        Intrinsic resolution of the detector at the photon energy.
    image_plane_gap_mm:
        Collimator back face to the image plane (mean depth of interaction) in mm.
    hole_shape:
        'hexagonal', 'round' or 'square' (only the efficiency constant depends on it).
    energy_kev:
        Photon energy (for lead's attenuation in the effective length).
    tail_fraction:
        Fraction of the primary counts in the long-range pedestal (septal penetration plus any
        configured extra pedestal); used only by the simulator.
    tail_rms_tan:
        RMS of tan(theta) of the pedestal's photons (sets its width).
    """

    hole_diameter_mm: float
    hole_length_mm: float
    septal_thickness_mm: float
    intrinsic_fwhm_mm: float
    image_plane_gap_mm: float
    hole_shape: str
    energy_kev: float
    tail_fraction: float
    tail_rms_tan: float


@dataclass(frozen=True)
class EnergyWindowsSpec:
    """The three acquisition windows and the energy resolution: photopeak centre (keV), photopeak
    width and each scatter window's width (percent of the photopeak energy), energy resolution
    (FWHM, percent at the photopeak). Bounds and acceptance:
    :class:`pvc_core.spect.energy_windows.EnergyWindows` (``EnergyWindows.from_spec``)."""

    photopeak_kev: float
    photopeak_width_pct: float
    scatter_width_pct: float
    resolution_pct: float


#: Medium-energy parallel-hole collimators of two vendors, from their published hole geometry
#: (lengths in mm): the name ``randomise.collimator`` draws -> (label, hole diameter, septal
#: thickness, hole length, hole shape). Siemens MELP: SIMIND's collimator database (collim.col,
#: SY-ME: 0.294 / 0.114 / 4.064 cm, hexagonal), the camera's default. GE MEGP (Discovery NM/CT
#: 670, NM/CT 870): hexagonal holes 3.0 mm, septa 1.05 mm, length 58 mm (GE's MEGP as modelled in
#: OpenGATE's GE NM670 head, opengate contrib ``spect_ge_nm670``; SIMIND collim.col GV-MEGP and
#: GI-MEGP, GE Millennium VG and Infinia: 0.300 / 0.105 / 5.800 cm).
COLLIMATORS: dict[str, tuple[str, float, float, float, str]] = {
    "siemens_melp": ("Siemens MELP (SY-ME)", 2.94, 1.14, 40.64, "hexagonal"),
    "ge_megp": ("GE MEGP (Discovery 670/870)", 3.0, 1.05, 58.0, "hexagonal"),
}


@dataclass(frozen=True)
class OrbitSpec:
    """The orbit: clearance (mm), body threshold (1/cm), minimum radius (mm), first angle (deg) and
    ``shape``: ``contour`` (each view the body outline's extent plus the clearance) or ``circular``
    (one radius: the largest of the contour's, so the body clears by at least the clearance in
    every view); :func:`pvc_core.spect.orbit.orbit_radii_mm`."""

    clearance_mm: float
    body_threshold_per_cm: float
    min_radius_mm: float
    start_angle_deg: float
    shape: str = "contour"


@dataclass(frozen=True)
class ScatterSpec:
    """Scatter model of the simulator: orders simulated and Monte Carlo histories of the second order."""

    model: str
    second_order_samples: int

    @property
    def orders(self) -> int:
        return {"none": 0, "first_order": 1, "first_and_second_order": 2}[self.model]


@dataclass(frozen=True)
class CameraSpec:
    """The acquisition and camera: what the simulator models and what both reconstructions assume.

    Attributes
    ----------
    n_views, time_per_view_s:
        Views over 360 degrees and seconds per view.
    sensitivity_cps_per_mbq:
        Photopeak count rate of one head per MBq in air (sets the counts and the calibration).
    collimator:
        Collimator geometry with the intrinsic resolution and the pedestal
        (:class:`CollimatorSpec`); ``collimator_name`` labels it.
    windows:
        Photopeak and scatter windows with the energy resolution (:class:`EnergyWindowsSpec`).
    orbit, scatter:
        Orbit and scatter model (:class:`OrbitSpec`, :class:`ScatterSpec`).
    tew_smoothing_fwhm_mm:
        Smoothing of the TEW scatter estimate (mm) in both reconstructions.
    project_at:
        ``sim`` (primary photons projected from the phantom grid) or ``recon``.
    """

    n_views: int
    time_per_view_s: float
    sensitivity_cps_per_mbq: float
    collimator: CollimatorSpec
    collimator_name: str
    windows: EnergyWindowsSpec
    orbit: OrbitSpec
    scatter: ScatterSpec
    tew_smoothing_fwhm_mm: float
    project_at: str

    @property
    def counts_per_mbq(self) -> float:
        """Expected photopeak counts per MBq per view in air (sensitivity x time per view)."""
        return self.sensitivity_cps_per_mbq * self.time_per_view_s

    @classmethod
    def from_config(cls, config: Mapping) -> "CameraSpec":
        cam = config["camera"]
        col, ew, orb, sc = cam["collimator"], cam["energy_windows"], cam["orbit"], cam["scatter"]
        tail = col.get("tail", {})
        collimator = CollimatorSpec(
            hole_diameter_mm=float(col["hole_diameter_mm"]), hole_length_mm=float(col["hole_length_mm"]),
            septal_thickness_mm=float(col["septal_thickness_mm"]), hole_shape=col["hole_shape"],
            intrinsic_fwhm_mm=float(cam["intrinsic_fwhm_mm"]), image_plane_gap_mm=float(col["image_plane_gap_mm"]),
            energy_kev=float(ew["photopeak_kev"]),
            tail_fraction=float(tail.get("penetration_fraction", 0.0)) + float(tail.get("extra_fraction", 0.0)),
            tail_rms_tan=float(tail.get("rms_tan", 0.3)))
        windows = EnergyWindowsSpec(photopeak_kev=float(ew["photopeak_kev"]),
                                    photopeak_width_pct=float(ew["photopeak_width_pct"]),
                                    scatter_width_pct=float(ew["scatter_width_pct"]),
                                    resolution_pct=float(cam["energy_resolution_pct"]))
        return cls(
            n_views=int(cam["n_views"]), time_per_view_s=float(cam["time_per_view_s"]),
            sensitivity_cps_per_mbq=float(cam["sensitivity_cps_per_mbq"]), collimator=collimator,
            collimator_name=str(col["name"]), windows=windows,
            orbit=OrbitSpec(float(orb["clearance_mm"]), float(orb["body_threshold_per_cm"]),
                            float(orb["min_radius_mm"]), float(orb["start_angle_deg"]), str(orb.get("shape", "contour"))),
            scatter=ScatterSpec(str(sc["model"]), int(sc["second_order_samples"])),
            tew_smoothing_fwhm_mm=float(cam["tew_smoothing_fwhm_mm"]), project_at=str(cam["project_at"]))


@dataclass(frozen=True)
class ReconSpec:
    """One OSEM reconstruction: ``name`` (noRR or RR), iterations, subsets and the scatter
    correction (``tew``: triple energy window, as a camera can; ``model``: a model-based estimate
    from the current image, :mod:`pvc_core.spect.scatter_model`; ``simulated``: the simulator's
    expected photopeak scatter, an oracle only a simulation has).

    ``psf`` (the collimator-detector response modelled) is true for RR. ``post_filter_fwhm_mm``:
    a Gaussian (FWHM, mm) applied to every image after OSEM and calibration, activity conserved
    (0: none, the paper's; set per case by ``randomise``, :class:`RandomiseSpec`).
    """

    name: str
    iterations: int
    subsets: int
    scatter_correction: str = "tew"
    post_filter_fwhm_mm: float = 0.0
    #: Voxel (mm) reconstructed at: 0, the grid's; else the projections are rebinned to that
    #: pixel, reconstructed on a grid of the same field of view and the image resampled back to
    #: the grid, activity conserved (:meth:`pvc_core.spect.acquisition.AcquisitionChain.reconstruct`).
    voxel_mm: float = 0.0

    @property
    def psf(self) -> bool:
        return self.name == "RR"


@dataclass(frozen=True)
class CalibrationSpec:
    """The calibration acquisition (:mod:`pvc_core.calibration`): a uniform water cylinder of
    ``activity_mbq`` MBq, ``diameter_mm`` x ``length_mm``, axis along the rotation axis; VOI =
    the cylinder enlarged by ``voi_margin_mm``; ``noise`` 'n' (Poisson, as measured) or 'nf'."""

    diameter_mm: float
    length_mm: float
    activity_mbq: float
    voi_margin_mm: float
    noise: str


@dataclass(frozen=True)
class SplitSpec:
    n_test: int
    n_validation: int


@dataclass(frozen=True)
class ResolutionSpec:
    """Matched-filter FWHM: number of noise-free calibration cases and the search bracket (mm)."""

    calibration_cases: int
    fwhm_search_mm: tuple[float, float]


@dataclass(frozen=True)
class PvcSpec:
    """Iterative Yang (iterations, back end: python or PETPVC) and the mask-free deconvolutions'
    iterations (Richardson-Lucy, Van Cittert)."""

    iy_iterations: int
    backend: str
    rl_iterations: int = 10
    vc_iterations: int = 10


@dataclass(frozen=True)
class EvaluationSpec:
    """VAA tolerance (relative) and the level of the paired Wilcoxon tests."""

    alpha: float
    significance: float


@dataclass(frozen=True)
class StorageSpec:
    keep_projections: bool
    keep_sim_grid: bool


@dataclass(frozen=True)
class ReportSpec:
    n_example_cases: int


@dataclass(frozen=True)
class MinFeatureSizeSpec:
    """Figure 5's study: cube edges in reconstruction voxels and random distributions per edge."""

    edges_voxels: tuple[int, ...]
    repeats: int


@dataclass(frozen=True)
class StudiesSpec:
    """The paper's studies beyond the test set (:mod:`pvc_core.studies`)."""

    min_feature_size: MinFeatureSizeSpec
    validation_phantoms: tuple[str, ...]


#: The reconstruction axes of ``randomise.reconstruction.<noRR|RR>``.
RECON_AXES = ("iterations_subsets", "post_filter_fwhm_mm", "scatter_correction", "voxel_mm")
#: The camera axes of ``randomise``.
CAMERA_AXES = ("time_per_view_s", "intrinsic_fwhm_mm", "collimator", "orbit", "orbit_clearance_mm")
#: The order the axes take their uniform numbers in (:meth:`RandomiseSpec.draw`): ``(None, axis)``
#: a camera axis, ``(name, axis)`` reconstruction ``name``'s. An axis added later goes at the end,
#: so a configuration's existing axes keep their draws (cases of a run already made stay valid).
DRAW_ORDER: tuple[tuple[str | None, str], ...] = (
    (None, "time_per_view_s"), (None, "intrinsic_fwhm_mm"),
    ("noRR", "iterations_subsets"), ("noRR", "post_filter_fwhm_mm"), ("noRR", "scatter_correction"),
    ("RR", "iterations_subsets"), ("RR", "post_filter_fwhm_mm"), ("RR", "scatter_correction"),
    (None, "collimator"), (None, "orbit"), (None, "orbit_clearance_mm"), ("noRR", "voxel_mm"), ("RR", "voxel_mm"),
)
#: Axes whose values are names, not numbers.
NAMED_AXES = ("collimator", "orbit", "scatter_correction")


@dataclass(frozen=True)
class AxisSpec:
    """One randomised axis: discrete ``levels`` (numbers, strings or [iterations, subsets] pairs),
    each equally likely, or a ``range`` (low, high) drawn uniformly; ``steps`` > 1 quantises the
    range into that many evenly spaced levels (each equally likely)."""

    levels: tuple | None = None
    range: tuple[float, float] | None = None
    steps: int = 0

    def values(self) -> tuple | None:
        """The discrete values this axis can take (None: a continuous range)."""
        if self.levels is not None:
            return self.levels
        if self.steps > 1:
            lo, hi = self.range  # type: ignore[misc]
            return tuple(round(float(v), 9) for v in np.linspace(lo, hi, self.steps))
        return None

    def pick(self, u: float):
        """The value of a uniform ``u`` in [0, 1): a level (index floor(u x count)) or a point of the range."""
        values = self.values()
        if values is not None:
            return values[min(int(u * len(values)), len(values) - 1)]
        lo, hi = self.range  # type: ignore[misc]
        return float(lo + u * (hi - lo))

    def as_dict(self) -> dict:
        """The axis as configured (for fingerprints, the model card)."""
        out: dict = {"levels": spec_dict(self.levels)} if self.levels is not None else {"range": list(self.range)}
        if self.steps > 1:
            out["steps"] = self.steps
        return out

    @classmethod
    def from_section(cls, section: Mapping, key: str) -> "AxisSpec":
        """Parse ``randomise.<key>``: exactly one of ``levels`` and ``range``, a range's low not
        above its high (:class:`InputError` naming the key otherwise)."""
        if ("levels" in section) == ("range" in section):
            raise InputError("give either 'levels' or 'range'", f"randomise.{key}")
        if "range" in section:
            lo, hi = (float(x) for x in section["range"])
            if lo > hi:
                raise InputError(f"low {lo:g} exceeds high {hi:g}", f"randomise.{key}.range")
            return cls(range=(lo, hi), steps=int(section.get("steps", 0)))
        levels = tuple(tuple(int(x) for x in v) if isinstance(v, (list, tuple)) else v for v in section["levels"])
        return cls(levels=levels)


@dataclass(frozen=True)
class RandomiseSpec:
    """Acquisitions that vary from case to case as clinics' do (``randomise``): each case draws its
    camera axes (:data:`CAMERA_AXES`) and each reconstruction's axes (:data:`RECON_AXES`) from its
    own stream ``(seed, case id, 'acquisition')`` (:func:`pvc_core.spect.acquisition.chain_for_case`).
    No axis set (the default): every case is acquired with the configured camera and
    reconstructions, as before.

    The draw takes one uniform number per axis slot in a fixed order (:data:`DRAW_ORDER`),
    configured or not, so adding an axis never changes another's draws.
    """

    seed: int = 0
    time_per_view_s: AxisSpec | None = None
    intrinsic_fwhm_mm: AxisSpec | None = None
    collimator: AxisSpec | None = None
    orbit: AxisSpec | None = None
    orbit_clearance_mm: AxisSpec | None = None
    reconstruction: Mapping[str, Mapping[str, AxisSpec]] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """Whether any axis is randomised."""
        return bool(self.camera_axes() or any(self.reconstruction.values()))

    def camera_axes(self) -> dict[str, AxisSpec]:
        return {a: getattr(self, a) for a in CAMERA_AXES if getattr(self, a) is not None}

    def recon_axes(self, name: str) -> dict[str, AxisSpec]:
        return dict(self.reconstruction.get(name) or {})

    def camera_keys(self) -> dict[str, Any]:
        """Fingerprint keys of the camera axes (``randomise.time_per_view_s.range``, ...); {} when none."""
        return flatten({a: ax.as_dict() for a, ax in self.camera_axes().items()}, "randomise")

    def recon_keys(self, name: str) -> dict[str, Any]:
        """Fingerprint keys of reconstruction ``name``'s axes; {} when none."""
        return flatten({a: ax.as_dict() for a, ax in self.recon_axes(name).items()}, f"randomise.reconstruction.{name}")

    def draw(self, rng: np.random.Generator) -> dict:
        """One case's values of every configured axis: ``{time_per_view_s, intrinsic_fwhm_mm,
        collimator, orbit, orbit_clearance_mm, reconstruction: {name: {iterations, subsets,
        post_filter_fwhm_mm, scatter_correction, voxel_mm}}}`` (only the axes configured; ``rng``:
        the case's 'acquisition' stream)."""
        u = rng.random(len(DRAW_ORDER))  # the first k numbers of random(n > k) are random(k)'s
        out: dict = {}
        recons: dict[str, dict] = {}
        for (name, axis), x in zip(DRAW_ORDER, u):
            spec = getattr(self, axis) if name is None else self.recon_axes(name).get(axis)
            if spec is None:
                continue
            value = spec.pick(float(x))
            target = out if name is None else recons.setdefault(name, {})
            if axis == "iterations_subsets":
                target["iterations"], target["subsets"] = int(value[0]), int(value[1])
            else:
                target[axis] = value if axis in NAMED_AXES else float(value)
        recons = {n: recons[n] for n in RECONSTRUCTIONS if recons.get(n)}
        if recons:
            out["reconstruction"] = recons
        return out

    @classmethod
    def from_config(cls, config: Mapping) -> "RandomiseSpec":
        """Parse the validated ``randomise`` section (absent or empty: nothing randomised)."""
        section = config.get("randomise") or {}
        camera = {a: AxisSpec.from_section(section[a], a) for a in CAMERA_AXES if section.get(a) is not None}
        recons = {name: {a: AxisSpec.from_section(axes[a], f"reconstruction.{name}.{a}") for a in RECON_AXES
                         if axes.get(a) is not None}
                  for name, axes in (section.get("reconstruction") or {}).items()}
        return cls(seed=int(config.get("seed", 0)), **camera, reconstruction={k: v for k, v in recons.items() if v})


@dataclass(frozen=True)
class Settings:
    """Every spec of one validated configuration (:func:`pvc_core.config.validate_config`)."""

    seed: int
    n_cases: int
    cases_per_shard: int
    results_dir: str
    #: Root of the projections (:class:`pvc_core.pipeline.paths.RunLayout`); ``None``: ``results_dir``.
    scratch_dir: str | None
    grid: GridSpec
    phantom: PhantomSettings
    camera: CameraSpec
    reconstructions: Mapping[str, ReconSpec]
    calibration: CalibrationSpec
    split: SplitSpec
    resolution: ResolutionSpec
    pvc: PvcSpec
    evaluation: EvaluationSpec
    storage: StorageSpec
    report: ReportSpec
    training: Mapping[str, Any]
    studies: StudiesSpec
    #: What varies per case (``randomise``); the default randomises nothing.
    randomise: RandomiseSpec = field(default_factory=RandomiseSpec)

    @classmethod
    def from_config(cls, config: Mapping) -> "Settings":
        """Parse a validated configuration (defaults filled in) once."""
        rec = config["reconstruction"]
        res = config["resolution"]
        cal = config["calibration"]
        mfs = config["studies"]["min_feature_size"]
        return cls(
            seed=int(config["seed"]), n_cases=int(config["n_cases"]), cases_per_shard=int(config["cases_per_shard"]),
            results_dir=str(config["results_dir"]),
            scratch_dir=str(config["scratch_dir"]) if config.get("scratch_dir") else None, grid=GridSpec.from_config(config),
            phantom=PhantomSettings.from_config(config), camera=CameraSpec.from_config(config),
            reconstructions={r: ReconSpec(r, int(rec[r]["iterations"]), int(rec[r]["subsets"]),
                                          str(rec[r].get("scatter_correction", "tew"))) for r in RECONSTRUCTIONS},
            calibration=CalibrationSpec(float(cal["diameter_mm"]), float(cal["length_mm"]), float(cal["activity_mbq"]),
                                        float(cal["voi_margin_mm"]), str(cal["noise"])),
            split=SplitSpec(int(config["split"]["n_test"]), int(config["split"]["n_validation"])),
            resolution=ResolutionSpec(int(res["calibration_cases"]), tuple(float(x) for x in res["fwhm_search_mm"])),
            pvc=PvcSpec(int(config["pvc"]["iy_iterations"]), str(config["pvc"]["backend"]),
                        int(config["pvc"]["rl_iterations"]), int(config["pvc"]["vc_iterations"])),
            evaluation=EvaluationSpec(float(config["evaluation"]["alpha"]), float(config["evaluation"]["significance"])),
            storage=StorageSpec(bool(config["storage"]["keep_projections"]), bool(config["storage"]["keep_sim_grid"])),
            report=ReportSpec(int(config["report"]["n_example_cases"])),
            training=dict(config["training"]),
            studies=StudiesSpec(MinFeatureSizeSpec(tuple(int(e) for e in mfs["edges_voxels"]), int(mfs["repeats"])),
                                tuple(str(p) for p in config["studies"]["validation_phantoms"]["phantoms"])),
            randomise=RandomiseSpec.from_config(config))


def spec_dict(spec: Any) -> Any:
    """A spec as plain JSON-serialisable data (dataclasses -> dicts, tuples -> lists), for
    fingerprints and the metadata that outputs record."""
    if is_dataclass(spec) and not isinstance(spec, type):
        return {f.name: spec_dict(getattr(spec, f.name)) for f in fields(spec)}
    if isinstance(spec, Mapping):
        return {str(k): spec_dict(v) for k, v in spec.items()}
    if isinstance(spec, (list, tuple)):
        return [spec_dict(v) for v in spec]
    return spec


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{'a': {'b': 1}}`` -> ``{'prefix.a.b': 1}``: nested settings as dotted keys; lists stay values."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


__all__ = ["BED_POSITIONS", "Grid", "GridSpec", "Distribution", "VoxelSettings", "UptakeSettings", "PhantomSettings",
           "CollimatorSpec", "EnergyWindowsSpec", "OrbitSpec", "ScatterSpec", "CameraSpec", "ReconSpec", "CalibrationSpec", "SplitSpec",
           "ResolutionSpec", "PvcSpec", "AxisSpec", "RandomiseSpec", "CAMERA_AXES", "RECON_AXES", "DRAW_ORDER", "NAMED_AXES", "COLLIMATORS", "EvaluationSpec", "StorageSpec", "ReportSpec", "Settings", "spec_dict", "flatten", "recon_spec",
           "phantom_specs"]


def recon_spec(config: Mapping, name: str) -> ReconSpec:
    """The :class:`ReconSpec` of reconstruction ``name`` of a validated configuration."""
    return Settings.from_config(config).reconstructions[name]


def phantom_specs(config: Mapping) -> tuple[PhantomSettings, GridSpec]:
    """(phantom settings, grid) of a configuration: what the phantom generator takes."""
    return PhantomSettings.from_config(config), GridSpec.from_config(config)
