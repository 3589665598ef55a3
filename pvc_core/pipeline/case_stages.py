"""Per-case stages (phantom, simulate, noise, reconstruct), each run over one shard of cases.

Each stage reads the case's inputs from the results folder, computes with its step of the one
acquisition chain (:class:`pvc_core.spect.acquisition.AcquisitionChain`: project, add noise,
reconstruct) or the phantom generator, writes its outputs atomically and then
its JSON marker: the marker holds the stage's fingerprint and dependencies
(:mod:`pvc_core.pipeline.fingerprints`), and a case's stage is done only when its marker's
fingerprint equals the current one (and its outputs exist).

With ``randomise`` (:class:`pvc_core.specs.RandomiseSpec`) the simulate and reconstruct stages
acquire each case with its own chain (:func:`pvc_core.spect.acquisition.chain_for_case`) and record
the draw (``acquisition``) in the marker and the sidecars; a drawn reconstruction is calibrated once
per level (:func:`pvc_core.pipeline.calibration_stage.cached_calibration`).
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from pvc_core.domain import NOISE_LEVELS, dataset_name
from pvc_core.errors import InputError
from pvc_core.io import load_image, read_json, save_image, write_json
from pvc_core.phantom import generate_case
from pvc_core.phantom.settings import PhantomSettings
from pvc_core.pipeline import paths
from pvc_core.pipeline.calibration_stage import cached_calibration, cached_calibration_file
from pvc_core.pipeline.shards import ShardJob, UpstreamCorrupt, failed_cases, run_shard
from pvc_core.specs import CalibrationSpec, GridSpec, RandomiseSpec, ReconSpec
from pvc_core.spect.acquisition import AcquisitionChain, NoiseSeed, chain_for_case
from pvc_core.spect.interfile import read_projections, write_projections


def case_is_done(layout: paths.RunLayout, stage: str, fingerprint: str | None = None,
                 outputs: tuple[str, ...] = ()) -> Callable[[int], bool]:
    """Whether a case's stage is finished: its marker exists, records ``fingerprint`` (when
    given) and every file of ``outputs`` exists."""

    def is_done(case: int) -> bool:
        marker = layout.marker_file(case, stage)
        if not marker.is_file() or not all(layout.case_file(case, o).is_file() for o in outputs):
            return False
        if fingerprint is None:
            return True
        try:
            return read_json(marker).get("fingerprint") == fingerprint
        except (OSError, ValueError):
            return False

    return is_done


def _write_marker(job: ShardJob, case: int, stage: str, meta: dict) -> None:
    write_json(job.layout.marker_file(case, stage),
               {**meta, "fingerprint": job.fingerprint, "depends_on": dict(job.depends_on)})


def _run(stage: str, job: ShardJob, process: Callable[[int], None], outputs: tuple[str, ...] = ()) -> dict:
    """Run ``process`` over the job's cases not yet done (:func:`pvc_core.pipeline.shards.run_shard`)."""
    return run_shard(stage, job.shard, job.cases, is_done=case_is_done(job.layout, stage, job.fingerprint, outputs),
                     process=process, manifest_path=job.manifest_out, upstream_failed=failed_cases(job.upstream),
                     log=job.log, token=job.token)


def _read_upstream(layout: paths.RunLayout, case: int, stage: str, read: Callable):
    """Read a case's input produced by ``stage``; if it is unreadable, invalidate that stage's
    marker for this case (so the next run redoes it there) and raise :class:`UpstreamCorrupt`."""
    try:
        return read()
    except (InputError, OSError, ValueError, EOFError) as err:
        layout.marker_file(case, stage).unlink(missing_ok=True)
        raise UpstreamCorrupt(stage, str(err).splitlines()[0] if str(err) else type(err).__name__) from err


def _read_projections(layout: paths.RunLayout, case: int, noise: str):
    producer = "simulate" if noise == "nf" else "noise"
    return _read_upstream(layout, case, producer,
                          lambda: read_projections(str(layout.projections_header(case, noise))))


def run_phantom_shard(job: ShardJob, phantom: PhantomSettings, grid: GridSpec, seed: int) -> dict:
    """Generate the phantom (anatomy, attenuation, activity) of every case in the shard."""
    def process(case: int) -> None:
        pc = generate_case(case, seed, phantom, grid)
        f = lambda name: job.layout.case_file(case, name)  # noqa: E731
        save_image(f(paths.TRUTH_SIM), pc.activity_mbq_ml, pc.sim_voxel_mm, "true activity MBq/mL")
        save_image(f(paths.MU_SIM), pc.mu_per_cm, pc.sim_voxel_mm, "mu 1/cm at 208 keV")
        save_image(f(paths.LABELS_SIM), pc.labels, pc.sim_voxel_mm, "organ labels", dtype=np.uint8)
        save_image(f(paths.TRUTH), pc.activity_recon_mbq_ml, pc.recon_voxel_mm, "true activity MBq/mL")
        save_image(f(paths.MU), pc.mu_recon_per_cm, pc.recon_voxel_mm, "mu 1/cm at 208 keV")
        _write_marker(job, case, "phantom", pc.meta)

    return _run("phantom", job, process)


def run_simulate_shard(job: ShardJob, chain: AcquisitionChain, randomise: RandomiseSpec | None = None) -> dict:
    """Noise-free projections (photopeak and both scatter windows) of every case in the shard,
    with the case's drawn camera when ``randomise`` has axes (the marker records the draw)."""
    layout = job.layout

    def process(case: int) -> None:
        act, mu = _read_upstream(layout, case, "phantom", lambda: (
            load_image(layout.case_file(case, paths.TRUTH_SIM), allow_negative=False, name="activity"),
            load_image(layout.case_file(case, paths.MU_SIM), allow_negative=False, name="mu map")))
        case_chain, draw = chain_for_case(chain, randomise, case)
        t0 = time.perf_counter()
        proj = case_chain.project(act.data, mu.data)
        write_projections(layout.projections_stem(case, "nf"), proj)
        meta = {**proj.meta, "seconds": time.perf_counter() - t0}
        _write_marker(job, case, "simulate", {**meta, "acquisition": draw} if draw else meta)

    return _run("simulate", job, process)


def run_noise_shard(job: ShardJob, seed: int) -> dict:
    """Poisson realisation of every window, from the stream of (seed, case id)."""
    def process(case: int) -> None:
        noisy = AcquisitionChain.add_noise(_read_projections(job.layout, case, "nf"), NoiseSeed(seed, case))
        write_projections(job.layout.projections_stem(case, "n"), noisy)
        _write_marker(job, case, "noise",
                      {"seed": seed, "case_id": case, "counts": {w: float(np.sum(a)) for w, a in noisy.windows.items()}})

    return _run("noise", job, process)


def run_reconstruct_shard(job: ShardJob, chain: AcquisitionChain, recon: ReconSpec, calibration_path: str,
                          randomise: RandomiseSpec | None = None, calibration_spec: CalibrationSpec | None = None) -> dict:
    """OSEM reconstruction ``recon`` (noRR or RR) of the noisy and noise-free projections,
    calibrated with the reconstruction's factor from ``calibration_path``; each image gets a
    JSON sidecar (units, reconstruction, calibration).

    With ``randomise`` axes each case is reconstructed with its drawn camera and reconstruction
    (:func:`~pvc_core.spect.acquisition.chain_for_case`), calibrated with the factor of that level
    (``calibration_spec``'s cylinder through :func:`cached_calibration`, once per level under
    :meth:`~pvc_core.pipeline.paths.RunLayout.calibration_levels_dir`; the configured level is
    ``calibration_path``'s), and the sidecars and the marker record the draw."""
    from pvc_core.spect import rr_response  # lazy: torch (~1.2 s); the Snakefile imports this module when it plans

    stage = f"recon_{recon.name}"
    outputs = tuple(paths.recon_name(dataset_name(recon.name, n)) for n in NOISE_LEVELS)
    layout = job.layout
    calibration = read_json(calibration_path)
    factor = float(calibration["factor"])
    sidecar = {"units": "MBq/mL", "reconstruction": {"name": recon.name, "iterations": recon.iterations,
                                                      "subsets": recon.subsets, "resolution_modelling": recon.psf,
                                                      "attenuation_correction": True,
                                                      "scatter_correction": recon.scatter_correction},
               "calibration": {"factor": factor, "file": str(calibration_path),
                               "fingerprint": calibration.get("fingerprint")}}

    def process(case: int) -> None:
        mu = _read_upstream(layout, case, "phantom", lambda: load_image(
            layout.case_file(case, paths.MU), allow_negative=False, name="mu map"))
        proj = {noise: _read_projections(layout, case, noise) for noise in NOISE_LEVELS}
        case_chain, draw = chain_for_case(chain, randomise, case)
        case_recon, case_factor, case_sidecar = recon, factor, sidecar
        if draw:
            case_recon, case_factor, case_sidecar = _drawn_level(case_chain, recon.name, draw)
        t0 = time.perf_counter()
        images = case_chain.reconstruct(proj, mu.data, case_recon, calibration_factor=case_factor)
        seconds = time.perf_counter() - t0
        for noise, image in images.items():
            dataset = dataset_name(recon.name, noise)
            response = rr_response(case_chain.camera, proj[noise].pixel_mm).as_dict() if recon.psf else None
            write_json(layout.case_file(case, paths.recon_sidecar_name(dataset)),
                       {**case_sidecar, "dataset": dataset, "noise": noise, "response_model": response})
            save_image(layout.case_file(case, paths.recon_name(dataset)), image,
                       mu.affine, f"SPECT {recon.name} OSEM MBq/mL")
        marker = {"reconstruction": recon.name, "iterations": case_recon.iterations, "subsets": case_recon.subsets,
                  "calibration_factor": case_factor, "seconds": seconds}
        _write_marker(job, case, stage, {**marker, "acquisition": draw} if draw else marker)

    levels: dict[str, dict] = {}  # a level's (camera, reconstruction) -> its calibration, read once per shard

    def _drawn_level(case_chain: AcquisitionChain, name: str, draw: dict) -> tuple[ReconSpec, float, dict]:
        """The case's reconstruction, its level's calibration factor and its sidecar's common part."""
        (case_recon,) = case_chain.reconstructions  # the shard's chain holds ``recon`` alone
        level = case_chain.calibration_chain()
        if level.camera == chain.camera and level.reconstructions == (recon,):
            record = calibration  # the configured level: the calibration rule's own file
        else:
            if calibration_spec is None:
                raise ValueError(f"{name}: a drawn reconstruction needs the calibration cylinder (calibration_spec)")
            key = repr((level.camera, level.reconstructions))
            if key not in levels:
                folder = layout.calibration_levels_dir()
                record = cached_calibration(level, calibration_spec, randomise.seed, folder, job.log)
                levels[key] = {**record, "file": str(cached_calibration_file(folder, name, record["fingerprint"]))}
            record = levels[key]
        level_factor = float(record["factor"])
        rec_meta = {**sidecar["reconstruction"], "iterations": case_recon.iterations, "subsets": case_recon.subsets,
                    "scatter_correction": case_recon.scatter_correction,
                    "post_filter_fwhm_mm": case_recon.post_filter_fwhm_mm,
                    "reconstructed_voxel_mm": case_recon.voxel_mm or case_chain.grid.recon_voxel_mm}
        cal_meta = {"factor": level_factor, "file": record.get("file") or str(calibration_path),
                    "fingerprint": record.get("fingerprint")}
        return case_recon, level_factor, {**sidecar, "reconstruction": rec_meta, "calibration": cal_meta,
                                          "acquisition": draw}

    return _run(stage, job, process, outputs)
