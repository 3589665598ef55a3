"""The acquisition chain, written once: phantom -> projections -> Poisson noise -> each calibrated
reconstruction.

:class:`AcquisitionChain` holds what an acquisition is (the camera, the grids, the
reconstructions) and is the only code that sequences the steps. Every caller goes through it:

=============================  ===============================================================
caller                         what it runs
=============================  ===============================================================
the DAG's per-case stages      one step per stage (:meth:`~AcquisitionChain.project`,
                               :meth:`~AcquisitionChain.add_noise`,
                               :meth:`~AcquisitionChain.reconstruct`), files between them
the calibration cylinder       :meth:`~AcquisitionChain.acquire`, uncalibrated (factor 1)
``dlpvc simulate``             :meth:`~AcquisitionChain.acquire`, every level and reconstruction
the studies                    :meth:`~AcquisitionChain.acquire`, one dataset, its own stream
the benchmarks                 :meth:`~AcquisitionChain.acquire`
=============================  ===============================================================

so a scatter model or a randomised acquisition is one change here. The Poisson noise of an
acquisition comes from one named stream of (seed, index) (:class:`NoiseSeed`): a case's is
``(seed, case id, "noise")``, the calibration cylinder's ``(seed, 0, "calibration_noise")``, a
study's ``(seed, index, <study>)``; each acquisition is reproducible from it.

A randomised acquisition (config ``randomise``, :class:`pvc_core.specs.RandomiseSpec`) is one
function, :func:`chain_for_case`: the case's chain (camera and reconstructions with the values the
case drew from ``(seed, case id, "acquisition")``) and the draw, which the stages record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Sequence

import numpy as np

from pvc_core.domain import NOISE_LEVELS, dataset_name
from pvc_core.geometry.blocks import downsample_mean
from pvc_core.seeding import rng_for
from pvc_core.specs import COLLIMATORS, CameraSpec, GridSpec, RandomiseSpec, ReconSpec
from pvc_core.spect.collimator import Collimator
from pvc_core.spect.noise import add_poisson_noise
from pvc_core.spect.post_filter import post_filter
from pvc_core.spect.projections import Projections
from pvc_core.spect.voxel_size import rebin_projections, resample_mu, resample_to_grid, voxel_grid

#: The noise stream of a DAG case (``rng_for(seed, case id, CASE_NOISE_STREAM)``).
CASE_NOISE_STREAM = "noise"
#: The stream a case's randomised acquisition is drawn from (:func:`chain_for_case`).
ACQUISITION_STREAM = "acquisition"


def recon_grid_mu(mu_sim_per_cm: np.ndarray, grid: GridSpec) -> np.ndarray:
    """Attenuation (1/cm) on the reconstruction grid: block mean of the phantom grid's."""
    return downsample_mean(mu_sim_per_cm, grid.sim_factor)


@dataclass(frozen=True)
class NoiseSeed:
    """Where an acquisition's Poisson noise comes from: ``rng_for(seed, index, stream)``."""

    seed: int
    index: int
    stream: str = CASE_NOISE_STREAM

    def rng(self) -> np.random.Generator:
        return rng_for(self.seed, self.index, self.stream)


@dataclass
class Acquired:
    """What :meth:`AcquisitionChain.acquire` made: projections per noise level (``nf`` and, when
    asked, ``n``), images per dataset (``RR_n``, ... in MBq/mL, divided by their calibration
    factor), mu on the reconstruction grid (1/cm) and seconds per step."""

    projections: dict[str, Projections]
    images: dict[str, np.ndarray]
    mu_recon_per_cm: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class AcquisitionChain:
    """One acquisition protocol: ``camera`` (collimator, windows, orbit, views, scatter model),
    ``grid`` (the phantom grid and the reconstruction grid, which is also the detector's) and
    ``reconstructions`` (the OSEM reconstructions made from the projections).

    Activity (MBq/mL) and mu (1/cm at 208 keV) come on the phantom grid of ``grid``.

    ``protocol_camera``: the camera of the clinic's protocol that the per-camera work is done
    with (the scatter model's fit, the calibration): a randomised case's camera with the
    configured time per view (:func:`chain_for_case`; counts scale with the time, these are per
    MBq); None: ``camera``.
    """

    camera: CameraSpec
    grid: GridSpec
    reconstructions: tuple[ReconSpec, ...] = ()
    protocol_camera: CameraSpec | None = None

    @property
    def fit_camera(self) -> CameraSpec:
        """The camera the per-camera fits and the calibration use (``protocol_camera`` or ``camera``)."""
        return self.protocol_camera or self.camera

    @property
    def _cache_subsets(self) -> tuple[int, ...]:
        """The subsets of the reconstructions that follow in this process: the cached system is
        built for them (speed only; no count depends on it)."""
        return tuple(r.subsets for r in self.reconstructions)

    def calibration_chain(self) -> "AcquisitionChain":
        """The chain the calibration factor of this chain's reconstructions is measured with: the
        protocol's camera (:attr:`fit_camera`: the factor is per MBq, so the time per view does not
        change it) and each reconstruction without its post-filter (applied after calibration,
        activity conserving, and the cylinder's VOI margin of 40 mm holds its spill)."""
        return AcquisitionChain(self.fit_camera, self.grid,
                                tuple(replace(r, post_filter_fwhm_mm=0.0) for r in self.reconstructions))

    def mu_recon(self, mu_sim_per_cm: np.ndarray) -> np.ndarray:
        """Attenuation (1/cm) on the reconstruction grid (:func:`recon_grid_mu`)."""
        return recon_grid_mu(mu_sim_per_cm, self.grid)

    def project(self, activity_sim_mbq_ml: np.ndarray, mu_sim_per_cm: np.ndarray) -> Projections:
        """Noise-free expected counts in the three windows (photopeak, lower, upper)."""
        # lazy: torch (~1.5 s) for the phantom stage and `dlpvc simulate`'s checks; tests patch pvc_core.spect.simulate_projections
        from pvc_core.spect import simulate_projections

        return simulate_projections(activity_sim_mbq_ml, mu_sim_per_cm, self.grid.sim.voxel_mm, self.camera,
                                    self.grid, cache_subsets=self._cache_subsets)

    @staticmethod
    def add_noise(noise_free: Projections, noise: NoiseSeed) -> Projections:
        """The Poisson realisation of every window, from ``noise``'s stream."""
        return add_poisson_noise(noise_free, noise.rng())

    def reconstruct(self, projections: Mapping[str, Projections], mu_recon_per_cm: np.ndarray, recon: ReconSpec,
                    calibration_factor: float = 1.0) -> dict[str, np.ndarray]:
        """OSEM reconstruction ``recon`` of every acquisition in ``projections`` (a noise level ->
        projections; one batched run): {level: image in MBq/mL}, divided by ``calibration_factor``
        (:mod:`pvc_core.calibration`; 1 = nominal sensitivity), then smoothed by the
        reconstruction's post-filter when it has one (:func:`~pvc_core.spect.post_filter.post_filter`).
        A reconstruction with its own ``voxel_mm`` is made at that voxel from rebinned projections
        and resampled back to the grid, activity conserved (:mod:`pvc_core.spect.voxel_size`).

        Each image equals the reconstruction of its projections alone; the batch only shares the
        projector's passes over the cached geometry.
        """
        from pvc_core.spect.osem import reconstruct_together  # lazy: torch (~1.5 s)

        if not calibration_factor > 0 or not np.isfinite(calibration_factor):
            raise ValueError(f"calibration factor of {recon.name} must be positive and finite, got {calibration_factor}")
        levels = list(projections)
        acquired = [projections[k] for k in levels]
        grid_voxel, voxel = self.grid.recon_voxel_mm, self.grid.recon_voxel_mm
        if recon.voxel_mm and abs(recon.voxel_mm - acquired[0].pixel_mm) > 1e-9:
            # a clinic's voxel (pvc_core.spect.voxel_size): rebin, reconstruct there, resample back
            voxel = float(recon.voxel_mm)
            n = voxel_grid(self.grid.recon_matrix, grid_voxel, voxel)
            acquired = [rebin_projections(p, voxel, n) for p in acquired]
            mu_recon_per_cm = resample_mu(mu_recon_per_cm, grid_voxel, voxel, n)
        scatter_model = self.scatter_model(acquired[0]) if recon.scatter_correction == "model" else None
        images = reconstruct_together(acquired, mu_recon_per_cm, recon, self.camera,
                                      cache_subsets=self._cache_subsets, scatter_model=scatter_model)
        if calibration_factor != 1.0:
            images = [(im / np.float32(calibration_factor)).astype(np.float32) for im in images]
        if recon.post_filter_fwhm_mm > 0:
            images = [post_filter(im, voxel, recon.post_filter_fwhm_mm) for im in images]
        if voxel != grid_voxel:
            images = [resample_to_grid(im, voxel, grid_voxel, self.grid.recon_matrix) for im in images]
        return dict(zip(levels, images))

    def scatter_model(self, projections: Projections):
        """The fitted parameters of the model-based scatter correction for this camera and the
        detector of ``projections`` (:func:`pvc_core.spect.scatter_model_fit.fit_scatter_model`:
        calibration acquisitions through this chain's camera on that detector, phantom grid twice as
        fine; fitted once, then cached)."""
        from pvc_core.spect.scatter_model_fit import fit_scatter_model  # lazy: torch and scipy.optimize (~1.6 s)

        n_u = int(projections.windows["photopeak"].shape[1])
        return fit_scatter_model(AcquisitionChain(self.fit_camera, GridSpec(n_u, round(float(projections.pixel_mm), 9), 2)))

    def acquire(self, activity_sim_mbq_ml: np.ndarray, mu_sim_per_cm: np.ndarray, noise: NoiseSeed, *,
                calibration: Mapping[str, float], noise_levels: Sequence[str] = NOISE_LEVELS,
                progress: Callable[[str], None] | None = None) -> Acquired:
        """Project, add noise and reconstruct with every reconstruction of the chain and every
        level of ``noise_levels`` (``n``: Poisson from ``noise``, ``nf``: noise-free).

        ``calibration``: the factor of every reconstruction (its images are divided by it;
        :func:`pvc_core.calibration.calibrate`); required, so that no caller forgets it (the
        calibration cylinder itself passes 1).
        """
        missing = [r.name for r in self.reconstructions if r.name not in calibration]
        if missing:
            raise ValueError(f"no calibration factor for {missing}")
        unknown = [n for n in noise_levels if n not in NOISE_LEVELS]
        if unknown:
            raise ValueError(f"unknown noise level(s) {unknown}; expected some of {NOISE_LEVELS}")
        say = progress or (lambda _msg: None)
        seconds: dict[str, float] = {}
        t0 = time.perf_counter()
        say(f"projecting {self.camera.n_views} views (photopeak and two scatter windows)")
        nf = self.project(activity_sim_mbq_ml, mu_sim_per_cm)
        seconds["simulate"] = time.perf_counter() - t0
        projections = {"nf": nf}
        if "n" in noise_levels:
            t0 = time.perf_counter()
            projections["n"] = self.add_noise(nf, noise)
            seconds["noise"] = time.perf_counter() - t0
        mu_recon = self.mu_recon(mu_sim_per_cm)
        images: dict[str, np.ndarray] = {}
        for recon in self.reconstructions:
            say(f"reconstructing {recon.name} ({', '.join(noise_levels)})")
            t0 = time.perf_counter()
            levels = self.reconstruct({n: projections[n] for n in noise_levels}, mu_recon, recon,
                                      calibration[recon.name])
            seconds[f"recon {recon.name}"] = time.perf_counter() - t0
            images.update({dataset_name(recon.name, n): im for n, im in levels.items()})
        return Acquired({k: projections[k] for k in noise_levels}, images, mu_recon, seconds)


def chain_for_case(chain: AcquisitionChain, randomise: RandomiseSpec | None, case_id: int) -> tuple[AcquisitionChain, dict]:
    """The acquisition of case ``case_id``: ``chain`` with the camera and reconstructions changed by
    what the case drew from ``rng_for(randomise.seed, case_id, "acquisition")``
    (:meth:`pvc_core.specs.RandomiseSpec.draw`), and the draw (plain data, for markers and sidecars).

    Nothing randomised (``randomise`` None or without axes): ``(chain, {})``, the same object. Else
    the drawn collimator (:func:`with_collimator`), orbit shape and clearance, time per view and
    intrinsic FWHM replace the camera's (``dataclasses.replace`` on the frozen specs), each
    reconstruction of the chain takes its drawn iterations, subsets, scatter correction,
    post-filter and voxel, and ``protocol_camera`` keeps the configured time per view (the
    scatter-model fit and the calibration are per MBq, made once per drawn camera, not per case).
    """
    if randomise is None or not randomise.active:
        return chain, {}
    draw = randomise.draw(rng_for(randomise.seed, case_id, ACQUISITION_STREAM))
    camera = chain.camera
    if "collimator" in draw:
        camera = with_collimator(camera, draw["collimator"])
    if "orbit" in draw or "orbit_clearance_mm" in draw:
        orbit = replace(camera.orbit, shape=draw.get("orbit", camera.orbit.shape),
                        clearance_mm=float(draw.get("orbit_clearance_mm", camera.orbit.clearance_mm)))
        camera = replace(camera, orbit=orbit)
    if "intrinsic_fwhm_mm" in draw:
        camera = replace(camera, collimator=replace(camera.collimator, intrinsic_fwhm_mm=draw["intrinsic_fwhm_mm"]))
    protocol = camera
    if "time_per_view_s" in draw:
        camera = replace(camera, time_per_view_s=draw["time_per_view_s"])
    drawn = draw.get("reconstruction", {})
    recons = tuple(replace(r, **drawn[r.name]) if r.name in drawn else r for r in chain.reconstructions)
    return AcquisitionChain(camera, chain.grid, recons, protocol if protocol != camera else None), draw


def with_collimator(camera: CameraSpec, name: str) -> CameraSpec:
    """``camera`` with collimator ``name`` of :data:`pvc_core.specs.COLLIMATORS`: its hole geometry
    and label replace the camera's (the intrinsic resolution, image-plane gap and pedestal stay)
    and the sensitivity scales with the geometric efficiency (same crystal, other holes:
    :meth:`pvc_core.spect.collimator.Collimator.geometric_efficiency`). The configured
    collimator's own geometry returns ``camera`` unchanged."""
    label, diameter, septa, length, shape = COLLIMATORS[name]
    old = camera.collimator
    new = replace(old, hole_diameter_mm=diameter, septal_thickness_mm=septa, hole_length_mm=length, hole_shape=shape)
    if new == old:
        return camera
    ratio = Collimator.from_spec(new).geometric_efficiency() / Collimator.from_spec(old).geometric_efficiency()
    return replace(camera, collimator=new, collimator_name=label,
                   sensitivity_cps_per_mbq=camera.sensitivity_cps_per_mbq * ratio)
