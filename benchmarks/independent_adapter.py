"""Our model-based scatter correction on the independent chain's projections, as a clinic with
another camera would use it.

``benchmarks/independent_chain.py`` (PyTomography's projector, its own scatter and penetration, a
circular orbit) makes the projections; this module reconstructs them with *our* OSEM
(:func:`pvc_core.spect.osem.reconstruct_together`) and *our* scatter model
(:mod:`pvc_core.spect.scatter_model`), with the model's parameters fitted
(:func:`pvc_core.spect.scatter_model_fit.fit_scatter_model`) to calibration acquisitions (water
cylinder, three rods) made through the independent chain's simulator, noise-free. Nothing of our
simulator makes a count: the only pieces of ours that see the independent camera are the
reconstruction, the model and its fit, and the RR response, which is fitted
(:func:`pvc_core.spect.response_fit.fit_response`) to the independent camera's collimator as its
published hole geometry describes it (below).

Why this design (reconstruct with our OSEM) rather than putting our scatter model into the
independent chain's PyTomography OSEM: the model is computed from the current image inside OSEM
with our projector's optical-depth classes (``SPECTSystem.depth_classes``) and fitted with our
projector's primary; carrying it into PyTomography would mean rewriting it. Our OSEM reads the
independent projections once they are in our layout, which a geometry check settles
(:func:`to_projections`; ``tests/benchmarks/test_independent_adapter.py``).

Geometry (measured with an off-centre point source and attenuating slabs through
:func:`independent_chain.system_matrix`): PyTomography's view at angle ``a`` has its detector on
the side ``(-sin a, -cos a)`` of the axis and its transaxial pixel at ``u = x cos a - y sin a``;
ours at angle ``theta`` has the detector at ``(sin theta, -cos theta)`` and ``u = x cos theta +
y sin theta`` (:mod:`pvc_core.spect.geometry`). So ``theta = -a`` (mod 360) with the same pixel
order along ``u`` and along ``z``, the same pixel centres (``(j - (n - 1) / 2) v``), and the
circular orbit's radius (axis to collimator face) as every view's radius.

The adapter camera (:func:`independent_camera`): the independent chain's views, time per view and
sensitivity in air; its collimator (the protocol's preset, Siemens MELP by default: its hole geometry,
intrinsic resolution scaled to 208 keV and image-plane distance, i.e. the independent chain's
resolution formula, which is ours term by term); no pedestal (the independent chain's RR does not model its 1 % penetration halo either:
the fit takes it as part of the measured scatter); the same 20 % / 10 % / 10 % windows.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
if str(REPO / "benchmarks") not in sys.path:
    sys.path.insert(0, str(REPO / "benchmarks"))

import independent_chain as ic

from pvc_core.specs import CameraSpec, EnergyWindowsSpec, GridSpec, ReconSpec
from pvc_core.spect.projections import Projections
from pvc_core.spect.scatter_model import ScatterModelParams

#: Version of this adapter's fit (part of the cached parameters' name).
ADAPTER_VERSION = 1


def our_angles_deg(n_views: int) -> np.ndarray:
    """Our view angles (degrees, :mod:`pvc_core.spect.geometry`) of the independent chain's views, in its order."""
    return np.mod(-ic._angles(n_views), 360.0)


def protocol_collimator(protocol: ic.Protocol) -> ic.Collimator:
    """The independent chain's collimator of ``protocol`` (its preset when the chain has presets)."""
    return protocol.camera() if hasattr(protocol, "camera") else ic.Collimator()


def independent_camera(base: CameraSpec, protocol: ic.Protocol, collimator: ic.Collimator | None = None,
                       windows: ic.Windows | None = None) -> CameraSpec:
    """Our description of the independent camera (see the module docstring), from ``base`` (any of
    our cameras); ``collimator`` and ``windows`` default to the independent chain's."""
    collimator = collimator or protocol_collimator(protocol)
    windows = windows or ic.Windows()
    col = replace(base.collimator, hole_diameter_mm=collimator.hole_diameter_mm,
                  hole_length_mm=collimator.hole_length_mm, septal_thickness_mm=collimator.septa_mm,
                  intrinsic_fwhm_mm=float(collimator.intrinsic_fwhm_mm),
                  image_plane_gap_mm=float(getattr(collimator, "image_plane_mm", 0.0)),
                  hole_shape="hexagonal", energy_kev=ic.PHOTOPEAK_KEV, tail_fraction=0.0)
    peak_pct = 100.0 * windows.peak_kev / ic.PHOTOPEAK_KEV
    scatter_pct = 100.0 * windows.lower_kev / ic.PHOTOPEAK_KEV
    if abs(windows.upper_kev - windows.lower_kev) > 1e-9:
        raise ValueError("our camera has one scatter-window width; the independent chain's differ")
    win = EnergyWindowsSpec(photopeak_kev=ic.PHOTOPEAK_KEV, photopeak_width_pct=round(peak_pct, 9),
                            scatter_width_pct=round(scatter_pct, 9), resolution_pct=base.windows.resolution_pct)
    return replace(base, n_views=protocol.n_views, time_per_view_s=protocol.time_per_view_s,
                   sensitivity_cps_per_mbq=collimator.sensitivity_cps_per_mbq, collimator=col,
                   collimator_name=f"independent chain: {collimator.name}", windows=win,
                   orbit=replace(base.orbit, clearance_mm=protocol.orbit_clearance_mm, start_angle_deg=0.0))


def to_projections(proj: ic.Projections, protocol: ic.Protocol, radius_mm: float) -> Projections:
    """The independent chain's projections in our layout and geometry (see the module docstring)."""
    n_views = proj.peak.shape[0]
    if n_views != protocol.n_views:
        raise ValueError(f"{n_views} views; the protocol has {protocol.n_views}")
    return Projections({"photopeak": proj.peak, "lower": proj.lower, "upper": proj.upper}, our_angles_deg(n_views),
                       np.full(n_views, float(radius_mm)), float(protocol.voxel_mm), float(protocol.time_per_view_s))


@dataclass(frozen=True)
class IndependentAdapterChain:
    """The independent chain as the scatter-model fit's ``AcquisitionChain``
    (:class:`pvc_core.spect.scatter_model_fit.AcquisitionChain`): ``project`` is the independent
    chain's noise-free :func:`independent_chain.simulate` (circular orbit fitted to the phantom),
    converted by :func:`to_projections`; ``camera`` is :func:`independent_camera`."""

    camera: CameraSpec
    grid: GridSpec
    protocol: ic.Protocol = field(default_factory=ic.Protocol)
    collimator: ic.Collimator = field(default_factory=ic.Collimator)
    scatter: ic.ScatterModel = field(default_factory=ic.ScatterModel)

    @classmethod
    def build(cls, base: CameraSpec, protocol: ic.Protocol, sim_factor: int = 2) -> IndependentAdapterChain:
        """The adapter for ``protocol`` (its collimator; the scatter window model of the chain's default)."""
        grid = GridSpec(protocol.matrix, round(float(protocol.voxel_mm), 9), sim_factor)
        collimator = protocol_collimator(protocol)
        return cls(independent_camera(base, protocol, collimator), grid, protocol, collimator)

    def radius_mm(self, mu_sim_per_cm: np.ndarray) -> float:
        return ic.orbit_radius_mm(mu_sim_per_cm, self.grid.sim.voxel_mm, self.protocol.orbit_clearance_mm)

    def project(self, activity_sim_mbq_ml: np.ndarray, mu_sim_per_cm: np.ndarray) -> Projections:
        radius = self.radius_mm(mu_sim_per_cm)
        p = ic.simulate(activity_sim_mbq_ml, mu_sim_per_cm, self.grid.sim.voxel_mm, coarse_factor=self.grid.sim_factor,
                        protocol=self.protocol, collimator=self.collimator, scatter=self.scatter, radius_mm=radius)
        return to_projections(p, self.protocol, radius)

    def mu_recon(self, mu_sim_per_cm: np.ndarray) -> np.ndarray:
        return ic.resample_concentration(mu_sim_per_cm, self.grid.sim.voxel_mm, self.protocol.matrix,
                                         self.protocol.voxel_mm)


def fit_tag() -> str:
    """The scatter-model fit's version in cache names ('' for version 1, whose caches predate it)."""
    from pvc_core.spect.scatter_model import FIT_VERSION

    return "" if FIT_VERSION == 1 else f"_fit{FIT_VERSION}"


def fitted_model(chain: IndependentAdapterChain, cache_dir: Path | None = None) -> ScatterModelParams:
    """The scatter model fitted through ``chain`` (:func:`~pvc_core.spect.scatter_model_fit.fit_scatter_model`,
    not in its per-camera disk cache, whose key cannot see the independent simulator), cached as
    JSON under ``cache_dir`` when given."""
    from pvc_core.spect.scatter_model_fit import fit_scatter_model

    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"ic_scatter_model_v{ADAPTER_VERSION}{fit_tag()}_{chain.protocol.matrix}.json"
        if path.exists():
            return ScatterModelParams.from_dict(json.loads(path.read_text()))
    params = fit_scatter_model(chain, cache=False)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        d = params.as_dict()
        d["provenance"] = {**d["provenance"], "chain": "benchmarks/independent_adapter.py (independent_chain.simulate)"}
        path.write_text(json.dumps(d, indent=1, default=str))
    return params


def reconstruct(proj: Projections, mu_recon_per_cm: np.ndarray, camera: CameraSpec, recon: ReconSpec,
                scatter_correction: str, *, tew_fwhm_mm: float | None = None,
                scatter_model: ScatterModelParams | None = None, model_scaling: str = "tew") -> np.ndarray:
    """Our OSEM of converted projections (MBq/mL, nominal sensitivity): ``scatter_correction``
    ``tew`` (smoothed ``tew_fwhm_mm``, default the camera's) or ``model`` (each view scaled to its
    TEW total, or with ``model_scaling='fit'`` the fitted amounts)."""
    from pvc_core.spect.osem import reconstruct_together

    if tew_fwhm_mm is not None:
        camera = replace(camera, tew_smoothing_fwhm_mm=float(tew_fwhm_mm))
    spec = replace(recon, scatter_correction=scatter_correction, post_filter_fwhm_mm=0.0)
    return reconstruct_together([proj], np.asarray(mu_recon_per_cm, np.float32), spec, camera, cache_subsets=(2, 6),
                                model_scaling=model_scaling, scatter_model=scatter_model)[0]
