"""Typed settings: the validated configuration parsed once into frozen, documented specs.

The configuration dict stops at :meth:`Settings.from_config`; every core function takes the specs
it uses (a grid, a camera, one reconstruction, ...) and images, never the whole configuration.
A rule passes only the specs of its stage, so what a stage depends on is visible in its
signature, and :mod:`pvc_core.pipeline.fingerprints` hashes exactly those specs.

=================  ===================================================================
spec               configuration section (documented key by key in config/schema.yaml)
=================  ===================================================================
:class:`GridSpec`        ``grid``: reconstruction grid and the finer phantom grid
PhantomSettings          ``phantom`` (:mod:`pvc_core.phantom.settings`)
:class:`CameraSpec`      ``camera``: collimator + intrinsic resolution, energy windows, orbit,
                         sensitivity, views and time per view, scatter model, TEW smoothing
:class:`ReconSpec`       ``reconstruction.<noRR|RR>``: one OSEM reconstruction
:class:`CalibrationSpec` ``calibration``: the calibration cylinder
:class:`SplitSpec`       ``split``
:class:`ResolutionSpec`  ``resolution``: matched-filter calibration
:class:`PvcSpec`         ``pvc``: iterative Yang
:class:`EvaluationSpec`  ``evaluation``
:class:`StorageSpec`     ``storage``
:class:`ReportSpec`      ``report``
:class:`StudiesSpec`     ``studies`` (:mod:`pvc_core.studies`)
=================  ===================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Mapping

from pvc_core.domain import RECONSTRUCTIONS
from pvc_core.phantom.settings import Grid, PhantomSettings
from pvc_core.spect.collimator import Collimator
from pvc_core.spect.energy_windows import EnergyWindows


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
class OrbitSpec:
    """Body-contour orbit: clearance (mm), body threshold (1/cm), minimum radius (mm), first angle (deg)."""

    clearance_mm: float
    body_threshold_per_cm: float
    min_radius_mm: float
    start_angle_deg: float


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
        (:class:`~pvc_core.spect.collimator.Collimator`); ``collimator_name`` labels it.
    windows:
        Photopeak and scatter windows with the energy resolution.
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
    collimator: Collimator
    collimator_name: str
    windows: EnergyWindows
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
        collimator = Collimator(
            hole_diameter_mm=float(col["hole_diameter_mm"]), hole_length_mm=float(col["hole_length_mm"]),
            septal_thickness_mm=float(col["septal_thickness_mm"]), hole_shape=col["hole_shape"],
            intrinsic_fwhm_mm=float(cam["intrinsic_fwhm_mm"]), image_plane_gap_mm=float(col["image_plane_gap_mm"]),
            energy_kev=float(ew["photopeak_kev"]),
            tail_fraction=float(tail.get("penetration_fraction", 0.0)) + float(tail.get("extra_fraction", 0.0)),
            tail_rms_tan=float(tail.get("rms_tan", 0.3)))
        windows = EnergyWindows(photopeak_kev=float(ew["photopeak_kev"]), photopeak_width_pct=float(ew["photopeak_width_pct"]),
                                scatter_width_pct=float(ew["scatter_width_pct"]),
                                resolution_pct=float(cam["energy_resolution_pct"]))
        return cls(
            n_views=int(cam["n_views"]), time_per_view_s=float(cam["time_per_view_s"]),
            sensitivity_cps_per_mbq=float(cam["sensitivity_cps_per_mbq"]), collimator=collimator,
            collimator_name=str(col["name"]), windows=windows,
            orbit=OrbitSpec(float(orb["clearance_mm"]), float(orb["body_threshold_per_cm"]),
                            float(orb["min_radius_mm"]), float(orb["start_angle_deg"])),
            scatter=ScatterSpec(str(sc["model"]), int(sc["second_order_samples"])),
            tew_smoothing_fwhm_mm=float(cam["tew_smoothing_fwhm_mm"]), project_at=str(cam["project_at"]))


@dataclass(frozen=True)
class ReconSpec:
    """One OSEM reconstruction: ``name`` (noRR or RR), iterations, subsets and the scatter
    correction (``tew``: triple energy window, as a camera can; ``simulated``: the simulator's
    expected photopeak scatter, an oracle only a simulation has).

    ``psf`` (the collimator-detector response modelled) is true for RR.
    """

    name: str
    iterations: int
    subsets: int
    scatter_correction: str = "tew"

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


@dataclass(frozen=True)
class Settings:
    """Every spec of one validated configuration (:func:`pvc_core.config.validate_config`)."""

    seed: int
    n_cases: int
    cases_per_shard: int
    results_dir: str
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

    @classmethod
    def from_config(cls, config: Mapping) -> "Settings":
        """Parse a validated configuration (defaults filled in) once."""
        rec = config["reconstruction"]
        res = config["resolution"]
        cal = config["calibration"]
        mfs = config["studies"]["min_feature_size"]
        return cls(
            seed=int(config["seed"]), n_cases=int(config["n_cases"]), cases_per_shard=int(config["cases_per_shard"]),
            results_dir=str(config["results_dir"]), grid=GridSpec.from_config(config),
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
                                tuple(str(p) for p in config["studies"]["validation_phantoms"]["phantoms"])))


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


__all__ = ["GridSpec", "OrbitSpec", "ScatterSpec", "CameraSpec", "ReconSpec", "CalibrationSpec", "SplitSpec", "ResolutionSpec",
           "PvcSpec", "EvaluationSpec", "StorageSpec", "ReportSpec", "Settings", "spec_dict", "flatten", "recon_spec",
           "phantom_specs"]


def recon_spec(config: Mapping, name: str) -> ReconSpec:
    """The :class:`ReconSpec` of reconstruction ``name`` of a validated configuration."""
    return Settings.from_config(config).reconstructions[name]


def phantom_specs(config: Mapping) -> tuple[PhantomSettings, GridSpec]:
    """(phantom settings, grid) of a configuration: what the phantom generator takes."""
    return PhantomSettings.from_config(config), GridSpec.from_config(config)
